"""The signing core (schemas/signing.py): what verifies, and each way a forged message is refused."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.signing import Keyring, Refusal, Signer, SigningError, verify

GUARD = Signer.generate("guard-1", "guard")
GUARD_NEXT = Signer.generate("guard-2", "guard")
ACTUATORS = Signer.generate("act-1", "actuators")
POOL_AGENT = Signer.generate("agent-train", "agent")
RING = Keyring.parse(
    GUARD.trust_line()
    + GUARD_NEXT.trust_line()
    + ACTUATORS.trust_line()
    + POOL_AGENT.trust_line("gpu-train-*")
)
NOW = 1_800_000_000.0
DOC = {"id": "d-1", "node": "gpu-train-1", "executable": True, "confidence": 0.93, "reasons": ["xid 79"]}


def check(
    doc: dict[str, Any], roles: set[str] | None = None, node: str | None = None, **kw: Any
) -> Refusal | None:
    return verify(doc, RING, roles or {"guard"}, kw.get("now", NOW), kw.get("max_age_s", 900), node).reason


def test_a_sealed_message_verifies_and_reports_its_signer_time_and_epoch() -> None:
    verdict = verify(GUARD.seal(DOC, NOW - 5, epoch=7), RING, {"guard"}, NOW, 900)
    assert verdict.ok and (verdict.key_id, verdict.signer, verdict.issued, verdict.epoch) == (
        "guard-1",
        "guard",
        NOW - 5,
        7,
    )


def test_both_keys_of_a_role_verify_during_rotation_and_a_revoked_one_is_refused() -> None:
    old, new = GUARD.seal(DOC, NOW), GUARD_NEXT.seal(DOC, NOW)
    assert check(old) is None and check(new) is None
    revoked = RING.with_revoked(["guard-1"])
    assert verify(old, revoked, {"guard"}, NOW, 900).reason is Refusal.REVOKED_KEY
    assert verify(new, revoked, {"guard"}, NOW, 900).ok
    in_file = Keyring.parse(GUARD.trust_line() + "revoke guard-1\n")
    assert verify(old, in_file, {"guard"}, NOW, 900).reason is Refusal.REVOKED_KEY


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        (DOC, Refusal.UNSIGNED),
        ({**DOC, "seal": {"key": "guard-1"}}, Refusal.MALFORMED_SEAL),
        (Signer.generate("guard-1", "guard").seal(DOC, NOW), Refusal.BAD_SIGNATURE),  # same id, other key
        (Signer.generate("rogue", "guard").seal(DOC, NOW), Refusal.UNKNOWN_KEY),
        (ACTUATORS.seal(DOC, NOW), Refusal.WRONG_SIGNER),  # a real key, but not the guard's
        ({**GUARD.seal(DOC, NOW), "executable": False}, Refusal.BAD_SIGNATURE),
        ({**GUARD.seal(DOC, NOW), "extra": 1}, Refusal.BAD_SIGNATURE),  # an added field is not trusted
        (GUARD.seal(DOC, NOW - 7 * 86_400), Refusal.EXPIRED),  # a week-old decision
        (GUARD.seal(DOC, NOW + 3600), Refusal.FUTURE_DATED),
    ],
    ids=[
        "unsigned",
        "malformed",
        "wrong-key",
        "unknown-key",
        "wrong-role",
        "tampered",
        "added",
        "old",
        "future",
    ],
)
def test_forged_messages_are_refused_with_their_own_reason(doc: dict[str, Any], expected: Refusal) -> None:
    assert check(doc) is expected


def test_a_stamp_claiming_another_signer_or_epoch_breaks_the_signature() -> None:
    doc = GUARD.seal(DOC, NOW, epoch=1)
    assert check({**doc, "seal": {**doc["seal"], "epoch": 9}}) is Refusal.BAD_SIGNATURE
    assert check({**doc, "seal": {**doc["seal"], "issued": NOW + 10}}) is Refusal.BAD_SIGNATURE


def test_a_pool_key_signs_only_for_its_pool_nodes() -> None:
    answer = POOL_AGENT.seal({"id": "r-1", "node": "gpu-train-7"}, NOW)
    assert check(answer, {"agent"}, node="gpu-train-7") is None
    assert check(answer, {"agent"}, node="gpu-infer-1") is Refusal.OUT_OF_SCOPE


def test_key_and_trust_lines_round_trip_and_bad_lines_name_the_line() -> None:
    again = Signer.parse(GUARD.private_line())
    assert check(again.seal(DOC, NOW)) is None
    with pytest.raises(SigningError, match="trust line 2"):
        Keyring.parse(GUARD.trust_line() + "guard-x emperor * AAAA\n")
    with pytest.raises(SigningError, match="not Ed25519"):
        Keyring.parse("k guard * " + base64.b64encode(b"short").decode())


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
)


@settings(max_examples=150, deadline=None)
@given(field=st.sampled_from(sorted(DOC)), value=json_values)
def test_any_change_to_a_signed_field_is_refused(field: str, value: Any) -> None:
    doc = GUARD.seal(DOC, NOW)
    changed = {**doc, field: value}
    assert check(changed) is (
        None if value == DOC[field] and type(value) is type(DOC[field]) else Refusal.BAD_SIGNATURE
    )
