"""`breakfix keys create|revoke|list` as an operator runs them: generation, rotation, revocation."""

from __future__ import annotations

import stat
from pathlib import Path

from typer.testing import CliRunner

from breakfix.cli.main import app
from schemas.signing import ROLES, Keyring, Signer, verify

runner = CliRunner()


def keys(*args: str) -> str:
    done = runner.invoke(app, ["keys", *args])
    assert done.exit_code == 0, done.output
    return done.output


def test_create_rotate_and_revoke(tmp_path: Path) -> None:
    keys("create", "--dir", str(tmp_path))
    for role in ROLES:
        assert stat.S_IMODE((tmp_path / f"{role}.key").stat().st_mode) == 0o600, "private keys are owner-only"
    old = Signer.parse((tmp_path / "guard.key").read_text())
    keys("create", "--role", "guard", "--id", "guard-next", "--dir", str(tmp_path))  # rotation
    new = Signer.parse((tmp_path / "guard.key").read_text())
    assert new.key_id == "guard-next" and (tmp_path / f"guard.{old.key_id}.key").is_file()
    ring = Keyring.parse((tmp_path / "trusted.keys").read_text())
    for signer in (old, new):  # both verify while the signer restarts with the new key
        assert verify(signer.seal({"id": "d"}, 100.0), ring, {"guard"}, 100.0, 900).ok
    keys("revoke", old.key_id, "--dir", str(tmp_path))
    ring = Keyring.parse((tmp_path / "trusted.keys").read_text())
    assert verify(old.seal({"id": "d"}, 100.0), ring, {"guard"}, 100.0, 900).reason == "revoked_key"
    assert verify(new.seal({"id": "d"}, 100.0), ring, {"guard"}, 100.0, 900).ok
    listing = keys("list", "--dir", str(tmp_path))
    assert "revoked" in listing and "guard-next" in listing


def test_a_pool_scoped_agent_key(tmp_path: Path) -> None:
    keys("create", "--role", "agent", "--scope", "gpu-train-*", "--dir", str(tmp_path))
    agent = Signer.parse((tmp_path / "agent.key").read_text())
    ring = Keyring.parse((tmp_path / "trusted.keys").read_text())
    answer = agent.seal({"id": "r", "node": "gpu-train-3"}, 100.0)
    assert verify(answer, ring, {"agent"}, 100.0, None, "gpu-train-3").ok
    assert verify(answer, ring, {"agent"}, 100.0, None, "gpu-infer-1").reason == "out_of_scope"


def test_unknown_role_is_refused_with_the_roles_to_use(tmp_path: Path) -> None:
    done = runner.invoke(app, ["keys", "create", "--role", "emperor", "--dir", str(tmp_path)])
    assert done.exit_code == 2 and "guard" in done.output
