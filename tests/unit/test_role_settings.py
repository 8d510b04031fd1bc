"""Role settings (breakfix/roles/): the precedence flag > environment > settings file > default, one
model and one command per role, and secrets that never print."""

from __future__ import annotations

import os
from pathlib import Path
from unittest.mock import patch

import pytest
from pydantic import SecretStr

from breakfix.cli.run_cmd import ROLE_COMMANDS, role_command
from breakfix.roles.load import MASK, build, export_env, masked, masked_dsn
from breakfix.roles.settings import ROLES, ApiSettings, SinkSettings
from streams.settings import StreamSettings


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No BREAKFIX_GROUP/BREAKFIX_PORT from the caller, and no ./breakfix.env to pick up."""
    for name in ("BREAKFIX_GROUP", "BREAKFIX_PORT", "BREAKFIX_HOST", "BREAKFIX_STORE_DSN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def test_flag_beats_environment_beats_file_beats_default(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    file = tmp_path / "api.env"
    file.write_text("BREAKFIX_PORT=7001\nBREAKFIX_HOST=10.0.0.1\nBREAKFIX_STATE_DIR=/srv/api\n")
    assert build(ApiSettings).port == 8080  # default
    assert build(ApiSettings, file).port == 7001  # file over default
    clean_env.setenv("BREAKFIX_PORT", "7002")
    from_env = build(ApiSettings, file)
    assert (from_env.port, from_env.host) == (7002, "10.0.0.1")  # environment over file, file kept
    flagged = build(ApiSettings, file, port=7003, host=None)
    assert (flagged.port, flagged.host) == (7003, "10.0.0.1")  # a given flag wins, an absent one doesn't
    assert flagged.state_dir == Path("/srv/api")


def test_breakfix_env_in_the_working_directory_is_the_default_file(clean_env: pytest.MonkeyPatch) -> None:
    Path("breakfix.env").write_text("BREAKFIX_GROUP=from-file\n")
    assert build(SinkSettings).group == "from-file"


def test_a_missing_settings_file_is_an_error_not_silence(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.env"):
        build(SinkSettings, tmp_path / "nope.env")


def test_secrets_are_masked_and_a_dsn_keeps_its_host() -> None:
    s = SinkSettings(
        store_dsn=SecretStr("http://sink:pa55word@clickhouse:8123/?database=breakfix"),
        kafka_password=SecretStr("kafka-pa55"),
        signing_key=SecretStr("k1 sink AAAA"),
    )
    shown = masked(s)
    assert shown["BREAKFIX_STORE_DSN"] == f"http://sink:{MASK}@clickhouse:8123/?database=breakfix"
    assert shown["BREAKFIX_KAFKA_PASSWORD"] == MASK and shown["BREAKFIX_SIGNING_KEY"] == MASK
    assert "pa55" not in repr(shown)
    assert masked_dsn("chdb:///var/lib/chdb") == "chdb:///var/lib/chdb"  # nothing secret in it


def test_export_env_hands_the_effective_values_to_code_reading_the_environment(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("BREAKFIX_KAFKA_PASSWORD", "old")
    with patch.dict(os.environ):  # export_env writes every field: restore the session's environment
        export_env(build(SinkSettings, kafka_password="new", group="g1"))
        assert os.environ["BREAKFIX_KAFKA_PASSWORD"] == "new" and os.environ["BREAKFIX_GROUP"] == "g1"
        password = StreamSettings().kafka_password
        assert password is not None and password.get_secret_value() == "new"


@pytest.mark.parametrize("role", sorted(ROLES))
def test_every_role_has_a_command_taking_the_common_options(role: str) -> None:
    assert role in ROLE_COMMANDS
    names = {o for p in role_command(role).params for o in p.opts}
    assert {"--settings", "--print-settings"} <= names


def test_the_cli_flag_reaches_its_setting_over_environment_and_file(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Through the command itself: `--store` is BREAKFIX_STORE_DSN, `--port` BREAKFIX_PORT."""
    from typer.testing import CliRunner

    from breakfix.cli.main import app

    file = tmp_path / "api.env"
    file.write_text("BREAKFIX_PORT=7001\nBREAKFIX_STORE_DSN=chdb:///from-file\nBREAKFIX_MAX_BODY_KIB=64\n")
    clean_env.setenv("BREAKFIX_PORT", "7002")
    args = ["run", "--role", "api", "--settings", str(file), "--store", "chdb:///from-flag"]
    args.append("--print-settings")
    out = CliRunner().invoke(app, args).stdout
    assert "BREAKFIX_PORT=7002\n" in out  # environment over file
    assert "BREAKFIX_STORE_DSN=chdb:///from-flag\n" in out  # flag over file
    assert "BREAKFIX_MAX_BODY_KIB=64\n" in out  # file over default
    assert out.index("BREAKFIX_HOST=") < out.index("BREAKFIX_BROKER="), "the role's own settings first"


@pytest.mark.parametrize("role", sorted(ROLES))
def test_print_settings_masks_every_secret_given_by_environment(
    role: str, clean_env: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from breakfix.cli.main import app

    secret = "s3cret-" + role
    for name in ("KAFKA_PASSWORD", "JIRA_TOKEN", "NICO_TOKEN", "API_TOKEN", "SIGNING_KEY"):
        clean_env.setenv(f"BREAKFIX_{name}", secret)
    clean_env.setenv("BREAKFIX_STORE_DSN", f"http://u:{secret}@clickhouse:8123/")
    clean_env.setenv("BREAKFIX_API_TOKENS", f'{{"{secret}": {{"actor": "a", "role": "viewer"}}}}')
    result = CliRunner().invoke(app, ["run", "--role", role, "--print-settings"])
    assert result.exit_code == 0, result.output
    assert secret not in result.output and MASK in result.output
