"""The node agent's Kafka loop: commands for this node from ``breakfix.commands``, results to
``breakfix.events`` keyed by node.

Each agent is its own consumer group (``breakfix-node-agent-<node>``) and keeps only its node's
commands. Offsets are committed after the result is published, so a crash re-delivers the command;
the agent's idempotency (same request id → same result) and its age limit keep that harmless. A
message that is not a valid ActionRequest is logged and skipped: bad input never acts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pydantic import ValidationError

from actuators.nodeagent.agent import NodeAgent
from schemas.actions import ActionRequest
from schemas.events import as_dict
from schemas.topics import Topic

COMMANDS_TOPIC = Topic.COMMANDS
EVENTS_TOPIC = Topic.EVENTS
log = logging.getLogger("breakfix.node_agent")


async def run_agent(
    agent: NodeAgent,
    broker: str,
    topic_prefix: str = "",
    exit_after: int | None = None,
    on_result: Callable[[dict[str, object]], None] | None = None,
) -> int:
    """Serve commands until cancelled (or after ``exit_after`` handled commands); returns the count."""
    consumer = AIOKafkaConsumer(
        topic_prefix + COMMANDS_TOPIC,
        bootstrap_servers=broker,
        group_id=f"breakfix-node-agent-{agent.node}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=10_000,
        heartbeat_interval_ms=1_000,
    )
    producer = AIOKafkaProducer(bootstrap_servers=broker, acks="all")
    await producer.start()
    await consumer.start()
    handled = 0
    try:
        async for msg in consumer:
            try:
                req = ActionRequest.model_validate_json(msg.value or b"")
            except ValidationError as err:
                log.warning("skipping invalid command at offset %s: %s", msg.offset, err.errors()[0]["msg"])
                await consumer.commit()
                continue
            try:
                result = agent.handle(req)
            except Exception as err:  # never crash on a command: the restart would read it again
                log.exception("command %s raised; answered failed", req.id)
                result = agent.failure(req, f"the agent could not handle it: {type(err).__name__}: {err}")
            if result is not None:
                doc = as_dict(result)
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
