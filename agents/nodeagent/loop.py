"""The node agent's Kafka loop: commands for this node from ``breakfix.commands``, results to
``breakfix.events`` keyed by node.

Each agent is its own consumer group (``breakfix-node-agent-<node>``) and keeps only its node's
commands. One process may serve several simulated nodes (:func:`run_agents`, the local stack's
stand-in for a fleet of hosts): one consumer, each command routed to its node's agent, which judges
it exactly as a lone agent would.

A command acts only when the actuator stage signed it (:func:`schemas.signing.verify`: a trusted
``actuators`` key, within ``max_age_s`` by the signer's wall clock); an unsigned, forged, revoked,
stale or malformed command is a dead letter with its reason, counted, and never acts. Every answer
carries the agent's own seal (role ``agent``, a per-pool or per-node key), so the controller can
tell it from a forged one.

Offsets are committed after the result is published, so a crash re-delivers the command; the agent's
persistent request journal (same request id → same result, also across its own reboot) and the age
limit keep that harmless.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pydantic import ValidationError

from agents.nodeagent.agent import NodeAgent
from schemas.actions import ActionRequest
from schemas.deadletter import DeadLetter, DeadLetterReason
from schemas.events import as_dict
from schemas.signing import SEAL, Keyring, Signer, verify
from schemas.topics import Topic

COMMANDS_TOPIC = Topic.COMMANDS
EVENTS_TOPIC = Topic.EVENTS
DEADLETTER_TOPIC = Topic.DEADLETTER
log = logging.getLogger("breakfix.node_agent")


@dataclass
class AgentKeys:
    """The agent's own key (it signs answers) and the keys it accepts commands from."""

    signer: Signer
    keyring: Keyring
    refused: dict[str, int] = field(default_factory=dict)
    """Commands dead-lettered, by reason."""


def admit(raw: bytes, agent: NodeAgent, keys: AgentKeys, now: float) -> ActionRequest | DeadLetter | None:
    """The command to run, a dead letter, or None when it is another node's (not ours to judge)."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        return _letter(DeadLetterReason.MALFORMED_JSON, f"not JSON: {err}", raw)
    if not isinstance(doc, dict) or doc.get("node") != agent.node:
        return (
            None if isinstance(doc, dict) else _letter(DeadLetterReason.INVALID_VALUE, "not an object", raw)
        )
    seal = verify(doc, keys.keyring, {"actuators"}, now, agent.max_age_s, agent.node)
    if not seal.ok:
        return _letter(DeadLetterReason(str(seal.reason)), f"command refused: {seal.detail}", raw)
    try:
        return ActionRequest.model_validate({k: v for k, v in doc.items() if k != SEAL})
    except ValidationError as err:
        return _letter(DeadLetterReason.INVALID_VALUE, f"not a command: {err.errors()[0]['msg']}", raw)


def addressee(raw: bytes, agents: Mapping[str, NodeAgent]) -> NodeAgent | None:
    """The agent a command is for: the one its ``node`` names; for input naming no node (not JSON,
    not an object) any one of them, whose :func:`admit` dead-letters it once; None for a command to a
    node this process does not serve."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        doc = None
    if not isinstance(doc, dict):
        return next(iter(agents.values()))
    node = doc.get("node")
    return agents.get(node) if isinstance(node, str) else None


def _letter(reason: DeadLetterReason, message: str, raw: bytes) -> DeadLetter:
    return DeadLetter(reason=reason, message=message, raw=raw.decode("utf-8", "replace"), source="node-agent")


async def run_agent(
    agent: NodeAgent,
    broker: str,
    keys: AgentKeys,
    topic_prefix: str = "",
    exit_after: int | None = None,
    on_result: Callable[[dict[str, Any]], None] | None = None,
    kafka: Mapping[str, Any] | None = None,
) -> int:
    """Serve commands until cancelled (or after ``exit_after`` handled commands); returns the count.
    ``kafka``: client options with transport security (streams.kafka.client), else plain ``broker``."""
    return await run_agents([agent], broker, keys, topic_prefix, exit_after, on_result, kafka)


async def run_agents(
    agents: Sequence[NodeAgent],
    broker: str,
    keys: AgentKeys,
    topic_prefix: str = "",
    exit_after: int | None = None,
    on_result: Callable[[dict[str, Any]], None] | None = None,
    kafka: Mapping[str, Any] | None = None,
) -> int:
    """:func:`run_agent` for several nodes in one process (simulated nodes: a real agent serves the
    host it runs on), one consumer group named after the first node and the count of the others."""
    by_node = {a.node: a for a in agents}
    group = agents[0].node + (f"+{len(agents) - 1}" if len(agents) > 1 else "")
    conn = dict(kafka or {"bootstrap_servers": broker})
    consumer = AIOKafkaConsumer(
        topic_prefix + COMMANDS_TOPIC,
        **conn,
        group_id=f"breakfix-node-agent-{group}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=10_000,
        heartbeat_interval_ms=1_000,
    )
    producer = AIOKafkaProducer(**conn, acks="all")
    await producer.start()
    await consumer.start()
    handled = 0
    try:
        async for msg in consumer:
            agent = addressee(msg.value or b"", by_node)
            if agent is None:  # another node's command
                await consumer.commit()
                continue
            got = admit(msg.value or b"", agent, keys, time.time())
            if isinstance(got, DeadLetter):
                keys.refused[got.reason.value] = keys.refused.get(got.reason.value, 0) + 1
                log.warning("refused command at offset %s: %s", msg.offset, got.message)
                letter = got.model_copy(
                    update={"node": agent.node, "source": f"{msg.topic}/{msg.partition}@{msg.offset}"}
                )
                await producer.send_and_wait(
                    topic_prefix + DEADLETTER_TOPIC, letter.model_dump_json().encode()
                )
            result = None
            if isinstance(got, ActionRequest):
                try:
                    result = agent.handle(got)
                except Exception as err:  # never crash on a command: the restart would read it again
                    log.exception("command %s raised; answered failed", got.id)
                    result = agent.failure(got, f"the agent could not handle it: {type(err).__name__}: {err}")
            if result is not None:
                doc = keys.signer.seal(orjson.loads(orjson.dumps(as_dict(result))), time.time())
                await producer.send_and_wait(
                    topic_prefix + EVENTS_TOPIC, orjson.dumps(doc), key=agent.node.encode()
                )
                handled += 1
                if on_result:
                    on_result(doc)
            await consumer.commit()
            if exit_after is not None and handled >= exit_after:
                break
    finally:
        await consumer.stop()
        await producer.stop()
    return handled
