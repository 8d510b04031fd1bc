"""Signing keys from files or the environment: the shell half of :mod:`schemas.signing`.

A process signs with ``keys_dir/<role>.key`` (or ``BREAKFIX_SIGNING_KEY``) and trusts the keys in
``keys_dir/trusted.keys`` (or ``BREAKFIX_TRUSTED_KEYS_FILE``), minus ``BREAKFIX_REVOKED_KEYS``. A
missing key is an error that says how to make one: nothing that can act runs unauthenticated.
:func:`create_key` is what ``breakfix keys create`` runs: a new key pair, the private line written
readable by its owner only, the public line appended to the trust file (the old key of the role stays
trusted until revoked: that is rotation).
"""

from __future__ import annotations

import os
from pathlib import Path

from schemas.signing import ROLES, Keyring, Signer, SigningError
from streams.settings import StreamSettings

TRUST_FILE = "trusted.keys"


class KeysMissing(SigningError):
    """No usable key where the settings point; the message says what to run."""


def trust_path(settings: StreamSettings) -> Path:
    return settings.trusted_keys_file or settings.keys_dir / TRUST_FILE


def load_signer(settings: StreamSettings, role: str) -> Signer:
    """This process's private key for ``role``."""
    if settings.signing_key is not None:
        signer = Signer.parse(settings.signing_key.get_secret_value())
    else:
        path = settings.keys_dir / f"{role}.key"
        if not path.is_file():
            raise KeysMissing(
                f"no signing key for {role!r} at {path}; create one with "
                f"`breakfix keys create --role {role} --dir {settings.keys_dir}` "
                "(or set BREAKFIX_SIGNING_KEY)"
            )
        signer = Signer.parse(path.read_text())
    if signer.role != role:
        raise SigningError(f"the configured key {signer.key_id!r} is a {signer.role!r} key, not {role!r}")
    return signer


def load_keyring(settings: StreamSettings) -> Keyring:
    """The trusted public keys; an absent trust file is an error (trusting nothing would refuse every
    message silently, trusting anything is the hole this closes)."""
    path = trust_path(settings)
    if not path.is_file():
        raise KeysMissing(
            f"no trust file at {path}; create keys with `breakfix keys create --dir {settings.keys_dir}` "
            "or point BREAKFIX_TRUSTED_KEYS_FILE at your fleet's trust file"
        )
    revoked = [k.strip() for k in settings.revoked_keys.split(",") if k.strip()]
    return Keyring.parse(path.read_text(), revoked)


def create_key(
    keys_dir: Path, role: str, key_id: str = "", scope: str = "*", trust: Path | None = None
) -> Signer:
    """A new key for ``role``: ``keys_dir/<role>.key`` (the previous one kept as ``<role>.<id>.key``)
    and its public line appended to the trust file."""
    keys_dir.mkdir(parents=True, exist_ok=True)
    path = keys_dir / f"{role}.key"
    if path.is_file():
        old = Signer.parse(path.read_text())
        path.replace(keys_dir / f"{role}.{old.key_id}.key")
    signer = Signer.generate(key_id or f"{role}-{os.urandom(4).hex()}", role)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(signer.private_line())
    with open(trust or keys_dir / TRUST_FILE, "a") as out:
        out.write(signer.trust_line(scope))
    return signer


def revoke_key(trust: Path, key_id: str) -> None:
    """Refuse ``key_id`` from now on, wherever this trust file is read."""
    with open(trust, "a") as out:
        out.write(f"revoke {key_id}\n")


def create_all(keys_dir: Path) -> list[Signer]:
    """One key per role in one folder: a single-host installation, the demo and the tests."""
    return [create_key(keys_dir, role) for role in ROLES]


def single_host_keys(keys_dir: Path) -> Path:
    """One host (the demo, ``run --embedded``, benchmarks): a key per role in ``keys_dir`` unless it
    already holds a trust file; returns ``keys_dir`` for the settings."""
    if not (keys_dir / TRUST_FILE).is_file():
        create_all(keys_dir)
    return keys_dir
