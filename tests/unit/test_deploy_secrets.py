"""No working default secrets in the shipped stack, and each ClickHouse user holds only what its job
needs. ClickHouse and Docker cannot run here, so the files are checked as their engines read them:
compose's ``${VAR:?message}`` (required, no default), ClickHouse's users.d XML (``from_env``
passwords, ``grants`` queries, profile settings and constraints), the API's tokens file through the
same loader ``breakfix serve`` uses."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import urlparse

import yaml

from breakfix.api.tokens import load_tokens

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_TEXT = (ROOT / "docker-compose.yml").read_text()
COMPOSE = yaml.safe_load(COMPOSE_TEXT)
USERS = ET.parse(ROOT / "deploy" / "clickhouse" / "users.d" / "breakfix.xml").getroot()
SECRET = re.compile(r"PASSWORD|TOKEN|SECRET", re.IGNORECASE)


def _grants(user: str) -> list[str]:
    node = USERS.find(f"users/{user}")
    assert node is not None, f"no ClickHouse user {user}"
    return [q.text or "" for q in node.findall("grants/query")]


def _store_user(service: str, setting: str = "BREAKFIX_STORE_DSN") -> str:
    """The ClickHouse user of a role's DSN setting, or of a one-shot job's --store option."""
    svc = COMPOSE["services"][service]
    dsn = (svc.get("environment") or {}).get(setting)
    if dsn is None:
        dsn = svc["command"][svc["command"].index("--store") + 1]
    return urlparse(re.sub(r"\$\{[^}]*\}", "set", dsn)).username or ""


def _no_migrate(service: str) -> bool:
    return str(COMPOSE["services"][service]["environment"].get("BREAKFIX_MIGRATE")).lower() == "false"


def test_every_secret_in_compose_is_required_and_has_no_default() -> None:
    refs = re.findall(r"\$\{(\w+)(:?[-?])?([^}]*)\}", COMPOSE_TEXT)
    secrets = [(name, op, rest) for name, op, rest in refs if SECRET.search(name)]
    assert len({n for n, _, _ in secrets}) >= 5, "the ClickHouse users' and Grafana's passwords"
    for name, op, rest in secrets:
        assert op == ":?", f"${{{name}}} must be required (:?), not defaulted ({op}{rest})"
    assert "admin/admin" not in COMPOSE_TEXT and ":-admin}" not in COMPOSE_TEXT
    clickhouse = COMPOSE["services"]["clickhouse"]
    assert "CLICKHOUSE_USER" not in clickhouse["environment"], "the image would create a user with all rights"
    assert "CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT" not in clickhouse["environment"]
    assert all(str(p).startswith("127.0.0.1:") for p in clickhouse["ports"]), "ClickHouse on loopback only"


def test_every_clickhouse_password_comes_from_the_environment_and_nobody_manages_access() -> None:
    users = USERS.find("users")
    assert users is not None
    for user in users:
        assert user.findtext("access_management") == "0", f"{user.tag} may manage access"
        if user.tag == "default":
            assert [ip.text for ip in user.findall("networks/ip")] == ["127.0.0.1", "::1"]
            continue
        password = user.find("password")
        assert password is not None and password.get("from_env") and not (password.text or "").strip()
        assert password.get("from_env") in COMPOSE["services"]["clickhouse"]["environment"]


def test_the_sink_can_only_insert_and_each_job_uses_its_own_user() -> None:
    assert _grants("breakfix_sink") == ["GRANT INSERT ON breakfix.*"]
    assert _grants("breakfix_viewer") == ["GRANT SELECT ON breakfix.*"]
    assert _grants("breakfix_api") == ["GRANT SELECT ON breakfix.*", "GRANT INSERT ON breakfix.audit"]
    assert not any(re.search(r"\b(FILE|URL|S3|REMOTE|SOURCES|ALL)\b", q) for u in
                   ("breakfix_sink", "breakfix_api", "breakfix_viewer") for q in _grants(u))  # fmt: skip
    assert _store_user("sink") == "breakfix_sink" and _no_migrate("sink")
    assert _store_user("migrate") == "breakfix_admin"
    assert _store_user("api") == "breakfix_api" and _no_migrate("api")
    assert _store_user("api", "BREAKFIX_SQL_STORE_DSN") == "breakfix_viewer"
    assert _store_user("metrics") == "breakfix_viewer"


def test_the_viewer_profile_is_read_only_with_limits_it_cannot_raise() -> None:
    profile = USERS.find("profiles/breakfix_viewer")
    assert profile is not None and USERS.findtext("users/breakfix_viewer/profile") == "breakfix_viewer"
    assert profile.findtext("readonly") in ("1", "2")
    assert profile.findtext("constraints/readonly/min") == "1", "readonly cannot be switched off"
    for setting in ("max_execution_time", "max_memory_usage", "max_result_rows"):
        assert profile.findtext(f"constraints/{setting}/max") == profile.findtext(setting), setting


def test_the_shipped_api_tokens_are_refused_by_serve() -> None:
    table = load_tokens(ROOT / "deploy" / "api" / "tokens.yaml")
    assert len(table.weak) == len(table) > 0, "every example token is one serve refuses"
