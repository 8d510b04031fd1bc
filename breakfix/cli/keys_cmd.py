"""``breakfix keys create|revoke|list``: the Ed25519 keys of the signed action path.

Each signing component (guard, actuator stage, node agents, API, an external repair controller's
client) holds one private key; every verifier reads one trust file of public keys. See
docs/security/signed-path.md for generation, rotation, revocation and enrolment of agents at scale.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from breakfix.cli.common import console, fail
from schemas.signing import ROLES, Keyring, SigningError

keys_app = typer.Typer(help="Signing keys of the signed action path.", no_args_is_help=True)

_DIR = typer.Option(Path(".breakfix/keys"), "--dir", help="Folder of private keys and the trust file.")
_TRUST = typer.Option(None, "--trust", help="Trust file to append to (default DIR/trusted.keys).")


@keys_app.command("create")
def create(
    keys_dir: Path = _DIR,
    role: str | None = typer.Option(
        None, "--role", help=f"One of {', '.join(ROLES)}; without it, one key for every role."
    ),
    key_id: str = typer.Option("", "--id", help="Key id (default <role>-<random>)."),
    scope: str = typer.Option(
        "*", "--scope", help="Nodes this key may sign for, as a pattern: gpu-train-* for a pool's agents."
    ),
    trust: Path | None = _TRUST,
) -> None:
    """Create a key pair: DIR/<role>.key (mode 0600) and its public line in the trust file. A role's
    previous key stays trusted (rotation) until you revoke it.

    Example: breakfix keys create --role agent --scope 'gpu-train-*' --dir /etc/breakfix/keys
    """
    from streams.keys import create_key

    roles = [role] if role else list(ROLES)
    if role and role not in ROLES:
        fail(f"unknown role {role!r}", f"use one of {', '.join(ROLES)}")
    if key_id and len(roles) > 1:
        fail("--id names one key", "add --role")
    try:
        made = [create_key(keys_dir, r, key_id, scope, trust) for r in roles]
    except SigningError as err:
        fail(str(err))
    for signer in made:
        console.print(f"created {signer.role} key {signer.key_id}: {keys_dir / (signer.role + '.key')}")
    console.print(f"trusted in {trust or keys_dir / 'trusted.keys'}; copy that file to every verifier")


@keys_app.command("revoke")
def revoke(
    key_id: str = typer.Argument(..., help="Key id to refuse."),
    keys_dir: Path = _DIR,
    trust: Path | None = _TRUST,
) -> None:
    """Refuse a key id everywhere this trust file is read (takes effect when verifiers restart).

    Example: breakfix keys revoke guard-1a2b3c4d --dir /etc/breakfix/keys
    """
    from streams.keys import revoke_key

    path = trust or keys_dir / "trusted.keys"
    if not path.is_file():
        fail(f"no trust file at {path}", "pass --dir or --trust")
    revoke_key(path, key_id)
    console.print(f"revoked {key_id} in {path}")


@keys_app.command("list")
def list_keys(keys_dir: Path = _DIR, trust: Path | None = _TRUST) -> None:
    """Show the trusted keys: id, role, scope, revoked.

    Example: breakfix keys list --dir /etc/breakfix/keys
    """
    path = trust or keys_dir / "trusted.keys"
    try:
        ring = Keyring.parse(path.read_text())
    except (OSError, SigningError) as err:
        fail(str(err), "create keys with `breakfix keys create`")
    table = Table(title=str(path))
    for col in ("key id", "role", "scope", "status"):
        table.add_column(col)
    for k in ring.keys.values():
        table.add_row(k.key_id, k.role, k.scope, "revoked" if k.key_id in ring.revoked else "trusted")
    console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
