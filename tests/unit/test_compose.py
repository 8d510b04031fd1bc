"""docker-compose.yml and deploy/ cannot run here (no Docker engine), so they are checked against the
code they start: settings, CLI commands, metric ports, Prometheus targets, mounted files, Grafana
data sources, every metric a dashboard graphs and every table and column its SQL reads.

Renaming a setting, a CLI option, a metric, a table or a column makes one of these tests fail.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import socket
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from prometheus_client import REGISTRY, Metric

import actuators.metrics  # noqa: F401 - registers the workflow step histogram in the default registry
import breakfix.api.anonymous  # registers the API's anonymous refusal counter
import breakfix.api.metrics  # noqa: F401 - registers the API's plan and workflow counters
import streams.metrics  # registers the stage counters in the default registry
import streams.pipeline.heap  # noqa: F401 - registers the workers' garbage collection counters
from breakfix.api import tokens as api_tokens
from breakfix.cli.main import app
from breakfix.cli.run_cmd import role_command
from breakfix.metrics import FleetCollector
from breakfix.opsclient import config as ops_config
from breakfix.roles.settings import ROLES
from store import dsn
from store.base import Store
from store.client_store import ClientStore
from store.migrate import migrate
from streams.settings import StreamSettings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
IMAGE = "gpu-breakfix:latest"
DASHBOARDS = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))
CONDITIONS = ("service_started", "service_healthy", "service_completed_successfully")
_VAR = re.compile(r"\$\{(\w+)(?::?([-?])([^}]*))?\}")


def _interpolate(value: Any) -> Any:
    """Compose's ``${VAR:-default}`` with every variable unset (the documented defaults); a required
    ``${VAR:?message}`` (the secrets) as if the operator had set it."""
    if isinstance(value, str):
        return _VAR.sub(_value, value).replace("$$", "$")
    if isinstance(value, list):
        return [_interpolate(v) for v in value]
    if isinstance(value, dict):
        return {k: _interpolate(v) for k, v in value.items()}
    return value


def _value(m: re.Match[str]) -> str:
    return f"set-{m.group(1).lower()}" if m.group(2) == "?" else m.group(3) or ""


COMPOSE: dict[str, Any] = _interpolate(yaml.safe_load((ROOT / "docker-compose.yml").read_text()))
SERVICES: dict[str, Any] = COMPOSE["services"]
OURS = sorted(name for name, s in SERVICES.items() if s.get("image") == IMAGE)
PROMETHEUS: dict[str, Any] = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
CLI: Any = typer.main.get_command(app)  # typer vendors click: groups are recognised by .commands


def _env(service: str) -> dict[str, str]:
    env = SERVICES[service].get("environment") or {}
    assert isinstance(env, dict), f"{service}: write environment as a mapping"
    return {k: str(v) for k, v in env.items()}


# --- commands --------------------------------------------------------------------------------


def _breakfix_command(args: list[str]) -> tuple[str, Any]:
    """Resolve ``breakfix ARGS`` to its leaf command and parse the options the way click would,
    without running it: an unknown command, option or invalid value raises here."""
    cmd = CLI
    path = ["breakfix"]
    rest = list(args)
    while hasattr(cmd, "commands"):
        if not rest or rest[0] not in cmd.commands:
            raise AssertionError(f"'{' '.join([*path, *rest[:1]])}' is not a breakfix command")
        path.append(rest.pop(0))
        cmd = cmd.commands[path[-1]]
    if path == ["breakfix", "run"]:  # `run --role ROLE ...`: the role's own command parses the rest
        assert rest[:1] == ["--role"] and rest[1] in ROLES, f"'breakfix run {' '.join(rest)}': no --role"
        path += rest[:2]
        cmd, rest = role_command(rest[1]), rest[2:]
    return " ".join(path), cmd.make_context(" ".join(path), rest)


def _role(service: str) -> str | None:
    """The role a service runs (``breakfix run --role ROLE``), else None (a one-shot job)."""
    argv = [str(a) for a in SERVICES[service]["command"]]
    return argv[3] if argv[:3] == ["breakfix", "run", "--role"] else None


def _role_settings(service: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The service's role settings model built from its environment alone, as the container would."""
    for key in [k for k in os.environ if k.startswith("BREAKFIX_")]:
        monkeypatch.delenv(key)
    for key, value in _env(service).items():
        monkeypatch.setenv(key, value)
    role = _role(service)
    assert role is not None
    return ROLES[role](_env_file=None)


def _module_help(module: str) -> str:
    """``python -m MODULE --help`` output, captured in process (argparse prints and exits)."""
    import importlib

    main = importlib.import_module(module).main
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        main(["--help"])
    return out.getvalue()


def _served_ports(service: str) -> set[int]:
    """Ports on which the service's process serves Prometheus metrics, read from its role's settings
    (the stages' BREAKFIX_METRICS_PORT; the API's and the fleet exporter's own port)."""
    role = _role(service)
    if role is None:
        return set()
    with pytest.MonkeyPatch.context() as mp:
        settings = _role_settings(service, mp)
    if role in ("api", "metrics"):
        return {int(settings.port)}
    return {int(settings.metrics_port)} if settings.metrics_port is not None else set()


@pytest.mark.parametrize("service", OURS)
def test_command_is_one_the_code_registers(service: str) -> None:
    argv = [str(a) for a in SERVICES[service]["command"]]
    assert argv[0] == "breakfix", f"{service}: every process is a breakfix command"
    _breakfix_command(argv[1:])


def test_every_long_running_service_is_a_role_and_every_role_is_deployed() -> None:
    """Long-running services are `breakfix run --role ROLE` (no module or launcher entry points);
    every role but the node agent (on GPU nodes) and MCP (spawned by an agent) runs in the stack."""
    roles = {}
    for name in OURS:
        if SERVICES[name].get("restart") != "no":
            roles[name] = _role(name)
            assert roles[name] is not None, f"{name}: a long-running service runs `breakfix run --role`"
    assert set(roles.values()) == set(ROLES) - {"node-agent", "mcp"}
    assert roles["worker"] == "pipeline" and SERVICES["worker"]["deploy"]["replicas"] >= 2, (
        "the node stage scales by replicas"
    )


def test_every_job_of_the_pipeline_is_in_the_stack() -> None:
    commands = {" ".join(str(a) for a in SERVICES[s]["command"]) for s in OURS}
    for needle in ("topics create", "db migrate"):
        assert any(needle in c for c in commands), f"no service runs {needle!r}"


def test_sink_topics_are_catalogue_topics(monkeypatch: pytest.MonkeyPatch) -> None:
    from schemas.topics import TOPIC_BY_NAME

    topics = _role_settings("sink", monkeypatch).topics.split(",")
    unknown = set(topics) - set(TOPIC_BY_NAME)
    assert not unknown, f"sink: unknown topics {unknown}"
    assert "breakfix.proposals" not in topics  # it also carries the node stage's watermark marks


# --- environment ------------------------------------------------------------------------------


def test_the_sink_has_the_trust_file_it_verifies_levers_with() -> None:
    """Without it the sink records no lever at all (each is a dead letter): it fails closed."""
    keys_dir = _env("sink")["BREAKFIX_KEYS_DIR"]
    targets = {v.split(":")[1] for v in SERVICES["sink"].get("volumes", [])}
    assert keys_dir in targets


def test_breakfix_env_names_are_settings_or_documented_cli_variables() -> None:
    settings_names = {f"BREAKFIX_{name.upper()}" for model in ROLES.values() for name in model.model_fields}
    cli_names = {
        dsn.ENV_DSN,
        api_tokens.ENV_FILE,
        api_tokens.ENV_JSON,
        ops_config.URL_ENV,
        ops_config.TOKEN_ENV,
    }
    used = {k for s in OURS for k in _env(s) if k.startswith("BREAKFIX_")}
    assert used, "the stack configures its processes through BREAKFIX_* variables"
    unknown = used - settings_names - cli_names
    assert not unknown, f"BREAKFIX_* variables no setting or command reads: {unknown}"


@pytest.mark.parametrize("service", OURS)
def test_env_builds_the_settings_model(service: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every service's environment builds its role's settings model, StreamSettings for a job
    (BREAKFIX_STORE is 'memory'/'rocksdb'; the ClickHouse DSN is BREAKFIX_STORE_DSN)."""
    if _role(service) is not None:
        settings = _role_settings(service, monkeypatch)
    else:
        for key in [k for k in os.environ if k.startswith("BREAKFIX_")]:
            monkeypatch.delenv(key)
        for key, value in _env(service).items():
            monkeypatch.setenv(key, value)
        settings = StreamSettings(_env_file=None)
    if "BREAKFIX_BROKER" in _env(service):
        assert settings.broker.split(":")[0] in SERVICES, f"{service}: broker host is not a service"


def test_table_store_and_store_dsn_are_separate_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker's BREAKFIX_STORE (memory/rocksdb) and the store commands' ClickHouse DSN must never be
    read from one variable: either value would crash or misdirect the other reader."""
    monkeypatch.setenv("BREAKFIX_STORE", "rocksdb")
    monkeypatch.delenv(dsn.ENV_DSN, raising=False)
    assert StreamSettings(_env_file=None).store == "rocksdb"
    assert dsn.default_dsn() == dsn.DEFAULT_DSN, "the table store setting leaked into the store DSN"
    monkeypatch.delenv("BREAKFIX_STORE")
    monkeypatch.setenv(dsn.ENV_DSN, "http://clickhouse:8123/?database=breakfix")
    assert dsn.ENV_DSN == "BREAKFIX_STORE_DSN"
    assert StreamSettings(_env_file=None).store == "memory", "the store DSN leaked into the table store"
    assert dsn.default_dsn() == "http://clickhouse:8123/?database=breakfix"


# --- ports, healthchecks, Prometheus ---------------------------------------------------------


def _scrape_targets() -> set[tuple[str, int]]:
    targets: set[tuple[str, int]] = set()
    for job in PROMETHEUS["scrape_configs"]:
        for static in job.get("static_configs", []):
            for t in static["targets"]:
                host, port = t.rsplit(":", 1)
                if host != "localhost":  # Prometheus scraping itself
                    targets.add((host, int(port)))
        for sd in job.get("dns_sd_configs", []):
            targets.update((name, int(sd["port"])) for name in sd["names"])
    return targets


def test_prometheus_scrapes_exactly_the_ports_the_processes_serve() -> None:
    served = {(s, port) for s in OURS for port in _served_ports(s)}
    assert _scrape_targets() == served


def test_prometheus_scrapes_the_stage_processes_and_the_fleet_exporter() -> None:
    targets = _scrape_targets()
    for service in ("worker", "actuators", "sink", "metrics"):
        assert (service, next(iter(_served_ports(service)))) in targets, service


@pytest.mark.parametrize("service", [s for s in OURS if "healthcheck" in SERVICES[s]])
def test_healthcheck_probes_a_port_the_process_serves(service: str) -> None:
    probe = " ".join(SERVICES[service]["healthcheck"]["test"])
    [port] = re.findall(r"127\.0\.0\.1:(\d+)", probe)
    assert int(port) in _served_ports(service)


def test_long_running_services_have_healthchecks_and_jobs_do_not_restart() -> None:
    for name, s in SERVICES.items():
        if s.get("restart") == "no":
            continue
        assert "healthcheck" in s, f"{name} has no healthcheck"


def test_depends_on_names_services_with_conditions() -> None:
    one_shot = {n for n, s in SERVICES.items() if s.get("restart") == "no"}
    for name, s in SERVICES.items():
        for dep, spec in (s.get("depends_on") or {}).items():
            assert dep in SERVICES, f"{name} depends on unknown {dep}"
            want = "service_completed_successfully" if dep in one_shot else None
            assert spec["condition"] in CONDITIONS, f"{name}: depends_on {dep} without a known condition"
            if want:
                assert spec["condition"] == want, f"{name} must wait for {dep} to finish"
            elif spec["condition"] == "service_healthy":
                assert "healthcheck" in SERVICES[dep], f"{name} waits on {dep}'s missing healthcheck"


# --- files and volumes ---------------------------------------------------------------------------


def test_mounted_files_and_named_volumes_exist() -> None:
    declared = set(COMPOSE.get("volumes") or {})
    for name, s in SERVICES.items():
        for v in s.get("volumes", []):
            source = v.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in declared, f"{name} uses undeclared volume {source}"
        if "build" in s:
            assert (ROOT / s["build"]["context"] / s["build"]["dockerfile"]).is_file()


def test_dockerfile_copies_every_package() -> None:
    import tomllib

    dockerfile = (DEPLOY / "Dockerfile").read_text()
    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    for pattern in include["include"]:
        package = pattern.rstrip("*")
        assert re.search(rf"^COPY {package} ", dockerfile, re.M), f"the image lacks {package}/"
    assert "FROM python:3.11-slim" in dockerfile and "pip install ." in dockerfile


def test_api_token_file_parses() -> None:
    mounted = [v for v in SERVICES["api"]["volumes"] if v.startswith("./")]
    [tokens] = [v.split(":") for v in mounted if v.split(":")[1] == _env("api")[api_tokens.ENV_FILE]]
    assert len(api_tokens.load_tokens(ROOT / tokens[0])) > 0


def _grafana_mount(target: str) -> Path:
    for v in SERVICES["grafana"]["volumes"]:
        source, mounted = v.split(":")[:2]
        if mounted == target:
            return ROOT / str(source)
    raise AssertionError(f"grafana mounts nothing at {target}")


def _datasources() -> dict[str, dict[str, Any]]:
    folder = _grafana_mount("/etc/grafana/provisioning") / "datasources"
    out = {}
    for f in folder.glob("*.yaml"):
        for ds in yaml.safe_load(f.read_text())["datasources"]:
            out[ds["uid"]] = ds
    return out


def test_grafana_provisions_both_data_sources_and_loads_the_dashboard_folder() -> None:
    ds = {d["type"]: d for d in _datasources().values()}
    assert ds["prometheus"]["url"] == "http://prometheus:9090"
    ch = ds["grafana-clickhouse-datasource"]["jsonData"]
    assert (ch["host"], ch["port"], ch["protocol"]) == ("clickhouse", 8123, "http")
    assert ch["defaultDatabase"] == SERVICES["clickhouse"]["environment"]["CLICKHOUSE_DB"]
    assert ch["username"] == "breakfix_viewer"  # read-only (tests/unit/test_deploy_secrets.py)
    assert "grafana-clickhouse-datasource" in SERVICES["grafana"]["environment"]["GF_INSTALL_PLUGINS"]
    providers = _grafana_mount("/etc/grafana/provisioning") / "dashboards"
    [provider] = [p for f in providers.glob("*.yaml") for p in yaml.safe_load(f.read_text())["providers"]]
    assert _grafana_mount(provider["options"]["path"]) == DEPLOY / "grafana" / "dashboards"
    assert len(DASHBOARDS) >= 2


# --- dashboards ---------------------------------------------------------------------------------


def _targets(kind: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
    uids = {uid: d["type"] for uid, d in _datasources().items()}
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            if panel["type"] == "row":
                continue
            assert uids.get(panel["datasource"]["uid"]), f"{path.name}/{panel['title']}: unknown data source"
            for t in panel["targets"]:
                if uids[t["datasource"]["uid"]] == kind:
                    yield path.name, panel["title"], t


def _sample_names(metric: Metric) -> set[str]:
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "summary": ("_sum", "_count", "_created"),
    }.get(metric.type, ("",))
    return {metric.name + s for s in suffixes}


@pytest.fixture(scope="module")
def empty_store(chdb_client: Any) -> Iterator[Store]:
    store = ClientStore(chdb_client, f"compose_{uuid.uuid4().hex[:8]}", "chdb")
    migrate(store)
    yield store
    store.command(f"DROP DATABASE IF EXISTS {store.database}")


@pytest.fixture(scope="module")
def defined_metrics(empty_store: Store) -> dict[str, set[str]]:
    """Every metric family the code can expose, with its series names: the stage processes'
    default registry and the fleet exporter's gauges, collected for real from a migrated store."""
    fleet = list(FleetCollector(empty_store).collect())
    up = next(m for m in fleet if m.name == "breakfix_store_up")
    assert up.samples[0].value == 1, "the fleet collector could not read the migrated store"
    every = [*REGISTRY.collect(), *fleet]
    families = {m.name: _sample_names(m) for m in every if m.name.startswith("breakfix_")}
    assert {"breakfix_dead_letters", "breakfix_workflow_step_seconds", "breakfix_nodes"} <= set(families)
    return families


def test_every_promql_metric_is_defined_by_the_code(defined_metrics: dict[str, set[str]]) -> None:
    series = set().union(*defined_metrics.values())
    used: set[str] = set()
    for board, title, target in _targets("prometheus"):
        found = set(re.findall(r"\bbreakfix_\w+", target["expr"]))
        assert found, f"{board}/{title}: graphs no breakfix metric"
        assert found <= series, f"{board}/{title}: undefined {found - series}"
        used |= found
    unused = sorted(name for name, names in defined_metrics.items() if not names & used)
    assert not unused, f"metrics no dashboard shows: {unused}"


def _migrated_tables(store: Store) -> set[str]:
    rows = store.query(f"SELECT name FROM system.tables WHERE database = '{store.database}'").rows
    return {r[0] for r in rows}


def _runnable(sql: str, database: str) -> str:
    """Expand the ClickHouse plugin's time macros the way Grafana would for a 30-day range."""
    sql = re.sub(r"\$__timeFilter\((\w+)\)", r"(\1 >= now() - INTERVAL 30 DAY AND \1 <= now())", sql)
    sql = re.sub(r"\$__timeInterval\((\w+)\)", r"toStartOfInterval(\1, INTERVAL 60 second)", sql)
    assert "$" not in sql, f"unexpanded macro in {sql[:80]}"
    return re.sub(r"\bbreakfix\.", f"{database}.", sql)


def test_dashboard_sql_reads_migrated_tables_and_runs(empty_store: Store) -> None:
    tables = _migrated_tables(empty_store)
    queries = list(_targets("grafana-clickhouse-datasource"))
    assert len(queries) >= 6
    for board, title, target in queries:
        sql = target["rawSql"]
        for source in re.findall(r"\b(?:FROM|JOIN)\s+(?!\()([\w.]+)", sql):
            assert source.startswith("breakfix."), f"{board}/{title}: unqualified table {source}"
            assert source.removeprefix("breakfix.") in tables, f"{board}/{title}: no table {source}"
        empty_store.query(_runnable(sql, empty_store.database))  # columns and syntax: raises if wrong


def test_dashboards_cover_the_issue_panels() -> None:
    text = " ".join(p.read_text() for p in DASHBOARDS)
    for needle in (
        "breakfix_nodes",
        "breakfix_capacity_removed_gpus",
        "breakfix_pool_gpus",
        "breakfix_automation_success_ratio",
        "breakfix_false_positive_quarantines",
        "breakfix_mean_repair_seconds",
        "breakfix_repeat_offender_nodes",
        "breakfix_dead_letters_total",
        "breakfix_guard_blocks_total",
        "breakfix_breaker_open",
        "breakfix_consumer_lag_messages",
        "histogram_quantile(0.95",
        "Decisions per hour by mode",
        "False-positive",
        "MTTR per failure class",
    ):
        assert needle in text, needle


# --- the metrics launcher -----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str, deadline_s: float = 15.0) -> str:
    end = time.monotonic() + deadline_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return str(r.read().decode())
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.1)
