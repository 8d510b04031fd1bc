"""A replay marker is no pass on the live path: a replay-marked tenant report, repair status or action
result is applied only when sealed, by its usual origin or by ``breakfix replay --into-kafka``'s
``replay`` key (whose seal counts on replay-marked input only). Unsigned, it is a dead letter of its
own reason, ``unsigned_replay``, counted by the node stage. Offline replay never passes this check."""

from __future__ import annotations

import time

import orjson
import pytest

from schemas.deadletter import DeadLetterReason
from schemas.parse import parse_event
from schemas.signing import Keyring, Signer
from streams.kafka.replay import mark_replay
from streams.signed_input import SignedInput

REPLAY, API = Signer.generate("replay-k", "replay"), Signer.generate("api-k", "api")
CHECK = SignedInput(Keyring.parse(REPLAY.trust_line() + API.trust_line()))
EVENTS = {
    "tenant.report": {"instance_id": "i-1", "category": "HARDWARE", "summary": "GPU fell off", "details": ""},
    "repair.status": {"repair_status": "Completed", "repair_details": "swapped the GPU"},
    "action.result": {"decision_id": "d-1", "action": "validate", "step": "workflow", "status": "succeeded"},
}


def _event(kind: str, replay: bool) -> dict[str, object]:
    return {
        "id": f"{kind}-1", "type": kind, "source": "tenant", "time": "2026-11-23T10:00:00+00:00",
        "node": "gpu-1", "replay": replay, "data": EVENTS[kind],
    }  # fmt: skip


def _verdict(doc: dict[str, object]) -> DeadLetterReason | None:
    raw = orjson.dumps(doc)
    parsed = parse_event(raw, "t/0@1")
    letter = CHECK.event(parsed, raw, "t/0@1")  # type: ignore[arg-type]
    return None if letter is None else letter.reason


@pytest.mark.parametrize("kind", sorted(EVENTS))
def test_a_replay_marked_lifecycle_event_needs_a_seal_on_the_live_path(kind: str) -> None:
    marked = _event(kind, replay=True)
    assert _verdict(marked) is DeadLetterReason.UNSIGNED_REPLAY
    payload, key, _ = mark_replay(orjson.dumps(_event(kind, replay=False)), REPLAY)
    assert key == b"gpu-1" and _verdict(orjson.loads(payload)) is None  # what replay --into-kafka sends
    sealed = REPLAY.seal(marked, time.time())
    unmarked = {**sealed, "replay": False}  # the marker is inside the seal: it cannot be dropped
    assert _verdict(unmarked) in (DeadLetterReason.WRONG_SIGNER, DeadLetterReason.BAD_SIGNATURE)
    live = REPLAY.seal(_event(kind, replay=False), time.time())  # the replay key never speaks live
    assert _verdict(live) is DeadLetterReason.WRONG_SIGNER


def test_telemetry_is_not_sealed_by_the_replay_and_stays_unchecked() -> None:
    raw = orjson.dumps(
        {"id": "x-1", "type": "gpu.xid", "source": "dcgm", "time": "2026-11-23T10:00:00+00:00",
         "node": "gpu-1", "data": {"gpu": 0, "xid": 79}}
    )  # fmt: skip
    payload, _, _ = mark_replay(raw, REPLAY)
    assert "seal" not in orjson.loads(payload) and _verdict(orjson.loads(payload)) is None
