"""Settings of the streaming shell, read from the environment (``BREAKFIX_*``) and an optional file.

One frozen object built once per process; every other streams module takes it as an argument, so a
test builds its own instead of mutating globals. Each field is documented where it is declared; the
The settings page (docs/operate/settings.md) is generated from these descriptions
(``StreamSettings.describe()``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

SOURCES = SettingsConfigDict(
    env_prefix="BREAKFIX_",
    env_file="breakfix.env",
    env_file_encoding="utf-8",
    extra="ignore",
    frozen=True,
)
"""Where every process's settings come from: ``BREAKFIX_*`` variables, then ``./breakfix.env``."""


class StreamSettings(BaseSettings):
    """``BREAKFIX_BROKER=kafka:9092 BREAKFIX_STORE=rocksdb breakfix run`` or a ``breakfix.env`` file."""

    model_config = SOURCES

    broker: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers, host:port[,host:port].")
    app_id: str = Field(
        "breakfix", description="Faust app id: the consumer group and the prefix of changelog topics."
    )
    topic_prefix: str = Field(
        "", description="Prefix added to every catalogue topic name (several pipelines on one broker)."
    )
    store: Literal["memory", "rocksdb"] = Field(
        "memory", description="Table store: 'memory' (rebuilt from the changelog at start) or 'rocksdb'."
    )
    data_dir: Path = Field(Path(".breakfix/data"), description="Where each worker keeps RocksDB state.")
    session_timeout_s: float = Field(
        10.0, gt=0, description="Consumer group session timeout; a join waits half of it on Tansu."
    )
    heartbeat_s: float = Field(1.0, gt=0, description="Consumer group heartbeat interval.")
    web_port: int = Field(
        6066,
        ge=0,
        le=65535,
        description="Web port of worker 0; worker i binds web_port + i (0: any free port).",
    )
    web_host: str = Field(
        "127.0.0.1", description="Interface the worker's web server (and metrics port) listens on."
    )
    metrics_port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="Prometheus /metrics port of a stage process (worker i binds metrics_port + i; the "
        "actuator stage binds it as is); unset: not served.",
    )
    workers: int = Field(1, ge=1, le=64, description="Worker processes started by 'breakfix run'.")
    worker_index: int = Field(
        0, ge=0, description="Set by 'breakfix run' for each worker: its web port offset and data subfolder."
    )
    checkpoint_events: int = Field(
        20000, ge=1, description="Node state is written to its table at least every N events per partition."
    )
    checkpoint_s: float = Field(
        5.0,
        gt=0,
        description="... and at least this often (seconds); always before a proposal leaves. Longer means "
        "fewer state writes (a node's whole state is written once per checkpoint however many events it "
        "had) and more input re-read after a crash; nothing acknowledged is ever lost.",
    )
    fetch_max_wait_ms: int = Field(
        50,
        ge=1,
        description="Longest wait of a worker's empty fetch (Faust hard-codes 1500 ms). Tansu answers an "
        "empty fetch only when it expires, so every hop of event->decision latency can cost this much.",
    )
    progress_s: float = Field(
        0.05, gt=0, description="How often the node stage tells the guard how far each partition got."
    )
    idle_s: float = Field(
        0.5, gt=0, description="A partition without input this long counts as caught up to the stream clock."
    )
    guard_max_wait_s: float = Field(
        30.0,
        gt=0,
        description="Bound of the guard's watermark: a proposal waits at most this long for slow partitions.",
    )
    heap_freeze_s: float = Field(
        10.0,
        gt=0,
        description="How often a worker moves its long-lived objects out of the garbage collector's way "
        "(streams/pipeline/heap.py): automatic collections then walk only what is newer.",
    )
    heap_full_s: float = Field(
        3600.0,
        gt=0,
        description="How often a worker runs a full garbage collection (a pause of ~0.1 s per 200,000 "
        "objects held, ~0.7 s with 5,000 nodes): the only one that frees reference cycles among them.",
    )
    policy_file: Path | None = Field(None, description="Policy file; the packaged default when unset.")
    engine: str = Field(
        "",
        description="'module:function' returning a streams.pipeline.app.EngineBundle instead of "
        "policy.engine (tests drive the shell with a stand-in engine this way).",
    )
    log_level: str = Field("warning", description="Worker log level.")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="How every Kafka client connects (streams/kafka/client.py)."
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        None, description="SASL mechanism with SASL_PLAINTEXT or SASL_SSL."
    )
    kafka_username: str | None = Field(None, description="This component's Kafka principal (SASL).")
    kafka_password: SecretStr | None = Field(None, description="Its SASL password (a secret).")
    kafka_ssl_cafile: Path | None = Field(
        None, description="CA bundle that signed the brokers' certificates."
    )
    kafka_ssl_certfile: Path | None = Field(None, description="Client certificate (mutual TLS).")
    kafka_ssl_keyfile: Path | None = Field(None, description="Client certificate's private key.")
    keys_dir: Path = Field(
        Path(".breakfix/keys"),
        description="Signing keys (`breakfix keys create`): `<role>.key`, this process's private key, and "
        "`trusted.keys`, the public keys it accepts (docs/security/signed-path.md).",
    )
    signing_key: SecretStr | None = Field(
        None,
        description="This process's private key line ('<key id> <role> <base64>') instead of "
        "`keys_dir/<role>.key` (from a secret store).",
    )
    trusted_keys_file: Path | None = Field(None, description="Trust file instead of `keys_dir/trusted.keys`.")
    revoked_keys: str = Field(
        "", description="Comma-separated key ids refused on top of the trust file's 'revoke' lines."
    )
    decision_max_age_s: float = Field(
        900.0,
        gt=0,
        description="The actuator stage refuses a decision the guard signed longer ago than this; "
        "hosts must keep wall clocks in sync (NTP) well within it.",
    )

    def topic(self, name: str) -> str:
        """The broker-side name of a catalogue topic."""
        return f"{self.topic_prefix}{name}"

    @classmethod
    def describe(cls) -> list[tuple[str, str, str]]:
        """(environment variable, default, description) of every setting, for the settings page and --help."""
        rows = []
        for name, f in cls.model_fields.items():
            default = str(f.default) if isinstance(f.default, Path) else repr(f.default)
            rows.append((f"BREAKFIX_{name.upper()}", default, f.description or ""))
        return rows
