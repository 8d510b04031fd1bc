"""One settings model per role: what each ``breakfix run --role ROLE`` process reads, and nothing else.

Every model reads ``BREAKFIX_<FIELD>`` variables and a dotenv settings file (``breakfix.env`` in the
working directory, or the file ``--settings`` names); command-line flags override both. So the
precedence is flag > environment > settings file > default, which is pydantic-settings' own order
(keyword arguments, then the environment, then the dotenv file, then field defaults).

The roles that talk to Kafka extend :class:`~streams.settings.StreamSettings` (broker, Kafka
security, signing keys, log level); the two that only talk HTTP (metrics exporter, MCP server)
start from :class:`RoleSettings`. Secrets are ``SecretStr``: printed masked, never logged; a store
DSN shows its host and user with the password masked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode

from streams.settings import SOURCES, StreamSettings


class RoleSettings(BaseSettings):
    """The same sources as :class:`StreamSettings` for a role that needs none of its Kafka settings."""

    model_config = SOURCES


class PipelineSettings(StreamSettings):
    """``pipeline``: the node stage and the guard as ``workers`` Faust processes."""

    embedded: bool = Field(False, description="Start an embedded Tansu broker (one host; memory storage).")
    embedded_port: int | None = Field(
        None, ge=1, le=65535, description="The embedded broker's port (unset: a free one)."
    )
    log_dir: Path | None = Field(None, description="Write each worker's log here instead of stdout.")
    create_topics: bool = Field(
        True,
        description="Create missing catalogue topics before the workers start (false where a deploy job "
        "creates them and this principal may not).",
    )


class ActuatorSettings(StreamSettings):
    """``actuators``: decisions -> workflows -> action results, on real infrastructure or simulated."""

    simulate: bool = Field(False, description="Act on a simulated fleet instead of real infrastructure.")
    state_dir: Path = Field(Path(".breakfix/actuators"), description="Workflow journal and fleet ledger.")
    catalog_dir: Path | None = Field(None, description="Playbook directory (unset: the shipped catalog).")
    kube: bool = Field(False, description="Kubernetes via the in-cluster account or ~/.kube/config.")
    kube_url: str | None = Field(
        None, description="Kubernetes API server URL without auth (kubectl proxy, a stand-in)."
    )
    kubeconfig: Path | None = Field(None, description="Kubernetes via this kubeconfig.")
    slurm: bool = Field(False, description="SLURM via scontrol/sinfo/squeue on PATH.")
    slurm_conf: Path | None = Field(None, description="SLURM_CONF to use with slurm.")
    slurm_gpus: int | None = Field(
        None, ge=1, description="GPUs per node validation expects SLURM to register back (GRES)."
    )
    node_agent: bool = Field(
        False,
        description="GPU reset/reboot/diagnostics through `breakfix run --role node-agent` over Kafka (with "
        "simulate: agents run with --simulate, the rest of the fleet is simulated).",
    )
    tickets_dir: Path | None = Field(None, description="Built-in ticket store directory.")
    jira_url: str | None = Field(None, description="Jira base URL (tickets go to Jira instead).")
    jira_project: str | None = Field(None, description="Jira project key.")
    jira_user: str | None = Field(None, description="Jira user the token belongs to.")
    jira_token: SecretStr | None = Field(None, description="Jira API token (a secret).")
    machines_dir: Path | None = Field(None, description="Machine records for NICo-style health overrides.")
    nico_config: Path | None = Field(
        None, description="NICo as the repair target: its YAML file (actuators/nico/config.py)."
    )
    nico_token: SecretStr | None = Field(None, description="The NICo repair tenant's JWT (a secret).")
    actuators: list[str] = Field(
        default_factory=list,
        description="Registered actuator kinds built from their own config file, KIND or KIND=FILE "
        '(environment: a JSON list, ["kind=/etc/kind.yaml"]).',
    )
    workload_cmd: str | None = Field(
        None, description="Validation's test workload command ({node}, {gpu} filled in)."
    )
    labels: Path | None = Field(
        None, description="simulate: ground truth from 'breakfix simulate --labels' (faults to find)."
    )
    speed: float = Field(1.0, ge=0.001, description="simulate: fleet seconds per wall second.")
    origin: float | None = Field(
        None, description="simulate: fleet time (epoch s) at wall_origin (unset: now)."
    )
    wall_origin: float | None = Field(None, description="simulate: wall time (epoch s) of origin.")
    lag: float = Field(0.0, ge=0, description="simulate: fleet clock lag (fleet seconds).")
    step_speed: float | None = Field(
        None, ge=0.001, description="simulate: workflow steps run this much faster (unset: speed)."
    )
    until: float | None = Field(None, description="simulate: fleet clock end (epoch s).")
    seed: int = Field(0, description="simulate: seed of simulated step failures.")


class SinkSettings(StreamSettings):
    """``sink``: every topic into the ClickHouse audit store, exactly once per row."""

    store_dsn: SecretStr | None = Field(
        None, description="Audit store: http://user:password@host:8123/?database=breakfix or chdb:///path."
    )
    spool: Path = Field(Path(".breakfix/spool"), description="Where batches wait while the store is down.")
    spool_max_bytes: int = Field(1 << 30, ge=1, description="Largest spool before the sink stops consuming.")
    group: str = Field("breakfix-sink", description="Consumer group.")
    topics: str = Field("", description="Comma-separated topics (empty: every catalogue topic).")
    batch_rows: int = Field(5000, ge=1, description="Rows per insert.")
    batch_interval_s: float = Field(1.0, gt=0, description="Longest wait before a partial batch is written.")
    migrate: bool = Field(
        True, description="Create/upgrade the tables first (false for an insert-only ClickHouse user)."
    )


class ApiSettings(StreamSettings):
    """``api``: the operator HTTP API (OpenAPI at /openapi.json, Prometheus metrics at /metrics)."""

    host: str = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(8080, ge=1, le=65535, description="TCP port.")
    store_dsn: SecretStr | None = Field(
        None, description="Audit store DSN: chdb:///path or http://user:password@host:8123 (unset: chdb)."
    )
    sql_store_dsn: SecretStr | None = Field(
        None, description="Store DSN for ad-hoc SQL, e.g. a read-only ClickHouse user (unset: store_dsn)."
    )
    api_tokens_file: Path | None = Field(
        None, description="YAML/JSON file: token -> {actor, role} (docs/operate/http-api.md)."
    )
    api_tokens: SecretStr | None = Field(
        None, description="The same table as JSON, instead of the file (a secret)."
    )
    state_dir: Path = Field(
        Path(".breakfix/api"), description="Plans, approvals, workflow records, machine records, tickets."
    )
    approval_ttl_min: int = Field(
        30, ge=1, description="Minutes an approval (plan token, decision approval) stays valid."
    )
    tls_cert: Path | None = Field(None, description="PEM certificate (chain): serve HTTPS (with tls_key).")
    tls_key: Path | None = Field(None, description="PEM private key of tls_cert.")
    max_body_kib: int = Field(1024, ge=1, description="Largest request body accepted (413 before auth).")
    migrate: bool = Field(True, description="Create/upgrade the store's tables first (needs DDL rights).")


class NodeAgentSettings(StreamSettings):
    """``node-agent``: on a GPU node, execute its signed commands and report the results."""

    node: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="This node's id, as the pipeline knows it (required). Several, comma-separated, only "
        "with simulate: one process plays several simulated nodes, as `breakfix up` runs them.",
    )
    simulate: bool = Field(False, description="Drive simulated GPUs instead of NVML/dcgmi.")
    gpus: int = Field(8, ge=1, le=64, description="simulate: how many GPUs to simulate.")
    bundle_dir: Path | None = Field(None, description="Where diagnostic bundles are written (unset: tmp).")
    max_age_s: float = Field(900.0, gt=0, description="Refuse commands older than this (seconds).")
    state_dir: Path = Field(
        Path("/var/lib/breakfix-agent"),
        description="The request journal, kept across the reboots the agent performs: local disk, not tmpfs.",
    )
    exit_after: int | None = Field(None, ge=1, description="Stop after handling N commands.")
    verbose: bool = Field(False, description="Print each result as JSON.")

    @field_validator("node", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        """``BREAKFIX_NODE=gpu-1,gpu-2`` (the environment and settings-file form) as a list."""
        return [n.strip() for n in value.split(",") if n.strip()] if isinstance(value, str) else value


class MetricsSettings(RoleSettings):
    """``metrics``: the fleet figures (MTTR, false positives...) as Prometheus gauges from the store."""

    store_dsn: SecretStr | None = Field(None, description="Audit store DSN (a read-only user is enough).")
    addr: str = Field("127.0.0.1", description="Address to listen on (0.0.0.0 in a container).")
    port: int = Field(9400, ge=0, le=65535, description="TCP port of /metrics.")
    since: str | None = Field(None, description="Sliding window of the figures, a duration such as 30d.")


class McpSettings(RoleSettings):
    """``mcp``: the operator API's capabilities as MCP tools for agent frameworks."""

    transport: Literal["stdio", "http"] = Field(
        "stdio", description="stdio (spawned by the agent) or http (each agent sends its own token)."
    )
    host: str = Field("127.0.0.1", description="http: address to listen on.")
    port: int = Field(8765, ge=1, le=65535, description="http: port to listen on.")
    api_url: str | None = Field(None, description="Operator API base URL (unset: http://127.0.0.1:8080).")
    api_token: SecretStr | None = Field(None, description="stdio: the API bearer token (a secret).")
    api_token_file: Path | None = Field(None, description="stdio: read the API token from this file.")


ROLES: dict[str, type[BaseSettings]] = {
    "pipeline": PipelineSettings,
    "actuators": ActuatorSettings,
    "sink": SinkSettings,
    "api": ApiSettings,
    "node-agent": NodeAgentSettings,
    "metrics": MetricsSettings,
    "mcp": McpSettings,
}
"""Every long-running process, by the name ``breakfix run --role`` takes."""
