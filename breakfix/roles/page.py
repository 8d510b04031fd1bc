"""The operate page of every role (docs/operate/roles.md), generated from the settings models so the
page cannot drift from the code: ``python -m breakfix.roles.page > docs/operate/roles.md``
(tests/unit/test_roles_page.py fails when the page and this output differ)."""

from __future__ import annotations

from pydantic_settings import BaseSettings

from breakfix.roles.load import describe
from breakfix.roles.settings import ROLES, RoleSettings
from streams.settings import StreamSettings

INTRO = """\
# Roles: every long-running process

Every process of the product that runs until it is stopped is one command,
`breakfix run --role ROLE`, with one settings model (`breakfix/roles/settings.py`, pydantic-settings).
A process reads its settings, highest precedence first, from:

1. its command-line flags (`breakfix run --role ROLE --help` lists them);
2. `BREAKFIX_<SETTING>` environment variables (the tables below);
3. a settings file of the same `BREAKFIX_<SETTING>=value` lines: `--settings FILE`, else
   `breakfix.env` in the working directory when there is one;
4. the defaults below.

`breakfix run --role ROLE --print-settings` prints the effective settings and exits, with every
secret (Kafka SASL password, signing key, API and Jira/NICo tokens) masked and a store DSN shown
with its password masked: check a deployment's configuration without reading its secrets.

<!-- runnable -->
```bash
BREAKFIX_STORE_DSN='http://sink:s3cret@clickhouse:8123/?database=breakfix' \\
  breakfix run --role sink --spool /var/lib/breakfix/spool --print-settings | grep -E 'STORE_DSN|SPOOL='
```

Keep secrets in the environment or the settings file (mode 0600), never in flags: a command line
is visible to every user of the host in its process list.

Every role stops cleanly on SIGTERM (systemd, Kubernetes and `docker stop` send it) and SIGINT,
with exit status 0: consumers leave their group, stores close, in-flight workflows stay in their
journal for the next start. `docker-compose.yml` runs each service this way
([production stack](production-stack.md)); `breakfix up` starts the same processes on one host
([local stack](local-stack.md)).

The older command names still work and are the same commands: `breakfix serve` is
`--role api`, `breakfix sink` is `--role sink`, `breakfix node-agent` is `--role node-agent`,
`breakfix mcp` is `--role mcp` (and `breakfix metrics --port P` serves what `--role metrics` serves).

| role | what it runs | where |
| --- | --- | --- |
"""

WHERE = {
    "pipeline": "any host near Kafka; scale by workers or replicas (one consumer group)",
    "actuators": "one per fleet (it reaches Kubernetes, SLURM, NICo, tickets)",
    "sink": "one or more (one consumer group); ClickHouse reachable",
    "api": "operators' network; HTTPS with `tls_cert`/`tls_key`",
    "node-agent": "every GPU node (systemd unit or DaemonSet), its own `agent` key",
    "metrics": "next to Prometheus; a read-only ClickHouse user",
    "mcp": "spawned by an agent framework (stdio) or shared over http",
}

SHARED = """\
The roles that talk to Kafka (pipeline, actuators, sink, api, node-agent) also read the shared
streaming settings: broker, Kafka security (`BREAKFIX_KAFKA_*`), signing keys, topic prefix, log
level, metrics port; all are listed on the [settings page](settings.md).
"""

EXAMPLE = """
Example: a node agent under systemd, its Kafka password in a settings file only root reads.

<!-- production -->
```
# /etc/breakfix/agent.env (mode 0600)
BREAKFIX_BROKER=kafka-1:9093,kafka-2:9093
BREAKFIX_KAFKA_SECURITY_PROTOCOL=SASL_SSL
BREAKFIX_KAFKA_SASL_MECHANISM=SCRAM-SHA-512
BREAKFIX_KAFKA_USERNAME=agent
BREAKFIX_KAFKA_PASSWORD=...
BREAKFIX_KEYS_DIR=/etc/breakfix/keys
BREAKFIX_STATE_DIR=/var/lib/breakfix-agent

# the unit's ExecStart (the node id from the host name):
breakfix run --role node-agent --settings /etc/breakfix/agent.env --node %H
# what it will run with, the password masked:
breakfix run --role node-agent --settings /etc/breakfix/agent.env --node gpu-a-0001 --print-settings
```
"""


def own_fields(model: type[BaseSettings]) -> list[tuple[str, str, str]]:
    """The settings a role adds to its base (StreamSettings or RoleSettings)."""
    base = StreamSettings if issubclass(model, StreamSettings) else RoleSettings
    return [row for row in describe(model) if row[0][len("BREAKFIX_") :].lower() not in base.model_fields]


def summary(model: type[BaseSettings]) -> str:
    """The model docstring after ``role``: as a sentence."""
    text = (model.__doc__ or "").split(":", 1)[-1].strip().replace("``", "`")
    return text[:1].upper() + text[1:]


def render() -> str:
    out = [INTRO]
    for role, model in ROLES.items():
        out.append(f"| [`{role}`](#{role}) | {summary(model)} | {WHERE[role]} |\n")
    out.append("\n" + SHARED)
    out.append(EXAMPLE)
    for role, model in ROLES.items():
        shared = ", plus the shared streaming settings" if issubclass(model, StreamSettings) else ""
        head = f"`breakfix run --role {role}`: `{model.__name__}`{shared}."
        out.append(f"\n## {role}\n\n{summary(model)}\n\n{head}\n\n")
        out.append("| variable | default | what |\n| --- | --- | --- |\n")
        for var, default, what in own_fields(model):
            out.append(f"| `{var}` | `{default}` | {what.replace('|', '/')} |\n")
    return "".join(out)


if __name__ == "__main__":
    print(render(), end="")
