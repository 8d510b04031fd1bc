"""The compose stack's Kafka runs SASL_SSL with one principal per component and an ACL set per
principal (docker-compose.yml, deploy/kafka/acls.sh). No Docker engine here, so the files are parsed
and checked against the code: every client connects through the client factory's settings as its own
principal, the broker knows each principal, and the ACLs give each what it uses and no more of what
matters (only the API writes levers, only the guard's workers write decisions, only the actuator
stage writes node-agent commands)."""

from __future__ import annotations

import re
import shlex
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

from streams.kafka.client import kafka_options
from streams.settings import StreamSettings
from tests.unit.test_compose import _interpolate

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = _interpolate(yaml.safe_load((ROOT / "docker-compose.yml").read_text()))
SERVICES: dict[str, Any] = COMPOSE["services"]
KAFKA_ENV: dict[str, str] = SERVICES["kafka"]["environment"]


def acls() -> dict[tuple[str, str], set[str]]:
    """(principal, operation) → resources ("topic:<name>", "topic-prefix:<p>", "group:<name>", ...)."""
    out: dict[tuple[str, str], set[str]] = defaultdict(set)
    for line in (ROOT / "deploy" / "kafka" / "acls.sh").read_text().splitlines():
        if not line.startswith("acl "):
            continue
        args = shlex.split(line)[1:]
        principal = args[args.index("--allow-principal") + 1].removeprefix("User:")
        ops = [args[i + 1] for i, a in enumerate(args) if a == "--operation"]
        prefixed = (
            "--resource-pattern-type" in args
            and args[args.index("--resource-pattern-type") + 1] == "prefixed"
        )
        res = {
            f"{a[2:]}{'-prefix' if prefixed else ''}:{args[i + 1]}"
            for i, a in enumerate(args)
            if a in ("--topic", "--group")
        }
        for op in ops:
            out[(principal, op)] |= res
    return out


def clients() -> dict[str, dict[str, str]]:
    """Services that reach the broker, with their environment."""
    return {
        n: svc["environment"]
        for n, svc in SERVICES.items()
        if "BREAKFIX_BROKER" in (svc.get("environment") or {})
    }


def test_the_broker_serves_clients_only_over_sasl_ssl_and_denies_what_no_acl_allows() -> None:
    listeners = dict(x.split("://") for x in KAFKA_ENV["KAFKA_LISTENERS"].split(","))
    assert set(listeners) == {"SASL_SSL", "CONTROLLER"}
    assert KAFKA_ENV["KAFKA_ADVERTISED_LISTENERS"] == "SASL_SSL://kafka:9092"
    assert KAFKA_ENV["KAFKA_INTER_BROKER_LISTENER_NAME"] == "SASL_SSL"
    assert KAFKA_ENV["KAFKA_AUTHORIZER_CLASS_NAME"].endswith("StandardAuthorizer")
    assert KAFKA_ENV["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    assert KAFKA_ENV["KAFKA_SUPER_USERS"] == "User:admin"


def test_every_client_is_its_own_principal_known_to_the_broker_through_the_factory() -> None:
    jaas = KAFKA_ENV["KAFKA_LISTENER_NAME_SASL__SSL_PLAIN_SASL_JAAS_CONFIG"]
    known = set(re.findall(r"user_(\w+)=", jaas))
    users = {}
    for name, env in clients().items():
        s = StreamSettings(
            **{k.removeprefix("BREAKFIX_").lower(): v for k, v in env.items() if k.startswith("BREAKFIX_")}
        )
        ca = Path("/etc/breakfix/kafka/ca.pem")
        assert s.kafka_ssl_cafile == ca and any(
            str(v).endswith(f"{ca.parent}:ro") for v in SERVICES[name]["volumes"]
        )
        opts = kafka_options(
            settings=s.model_copy(update={"kafka_ssl_cafile": None})
        )  # the CA is made on install
        assert opts["security_protocol"] == "SASL_SSL" and opts["sasl_mechanism"] == "PLAIN", name
        assert s.kafka_password is not None and s.kafka_password.get_secret_value(), name
        users[name] = s.kafka_username
    assert set(users.values()) <= known
    assert len({u for n, u in users.items() if n != "topics"}) == len(users) - 1, (
        "one principal per component"
    )


def test_each_principal_can_use_what_it_reads_and_writes() -> None:
    a = acls()
    sunk = SERVICES["sink"]["environment"]["BREAKFIX_TOPICS"].split(",")
    assert {f"topic:{t}" for t in sunk} <= a[("sink", "Read")]
    assert {"topic:breakfix.decisions", "topic:breakfix.control"} <= a[("actuators", "Read")]
    assert {"topic:breakfix.commands", "topic:breakfix.events"} <= a[("actuators", "Write")]
    assert "group:breakfix-actuators" in a[("actuators", "Read")]
    assert a[("agent", "Read")] == {"topic:breakfix.commands", "group-prefix:breakfix-node-agent-"}
    assert {
        "topic:breakfix.events",
        "topic:breakfix.decisions",
        "topic:breakfix.proposals",
        "topic:breakfix.control",
    } <= a[("worker", "Read")]
    assert {p for p, _ in a} == {"worker", "actuators", "agent", "api", "sink"}


def test_only_the_entitled_principal_writes_the_topics_that_can_lead_to_an_action() -> None:
    a = acls()

    def writers(topic: str) -> set[str]:
        return {p for (p, op), res in a.items() if op in ("Write", "All") and f"topic:{topic}" in res}

    assert writers("breakfix.control") == {"api"}
    assert writers("breakfix.decisions") == {"worker"}
    assert writers("breakfix.proposals") == {"worker", "api"}  # the API: operator plan steps only
    assert writers("breakfix.commands") == {"actuators"}
