"""Approval tokens: bound to plan id and content hash, single use, expiring; the refusals map to the
statuses the API answers (403 foreign/unknown/changed, 409 used, 410 expired)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from breakfix.api.approvals import TokenBook, TokenExpired, TokenInvalid, TokenUsed

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def book() -> TokenBook:
    return TokenBook(timedelta(minutes=10))


def test_token_redeems_once(book: TokenBook) -> None:
    token, grant = book.issue("plan-a", "h1", "ann", T0)
    assert grant.expires_at == T0 + timedelta(minutes=10)
    assert book.redeem(token, "plan-a", "h1", T0 + timedelta(minutes=9)).approver == "ann"
    with pytest.raises(TokenUsed) as err:
        book.redeem(token, "plan-a", "h1", T0)
    assert err.value.status == 409


def test_token_for_another_plan_unknown_or_changed_content_is_403(book: TokenBook) -> None:
    token, _ = book.issue("plan-a", "h1", "ann", T0)
    for args in (("plan-b", "h1"), ("plan-a", "h2")):
        with pytest.raises(TokenInvalid) as err:
            book.redeem(token, *args, T0)
        assert err.value.status == 403
    with pytest.raises(TokenInvalid):
        book.redeem("bfa_guess", "plan-a", "h1", T0)
    assert book.redeem(token, "plan-a", "h1", T0)  # refusals did not spend it


def test_expired_token_is_410(book: TokenBook) -> None:
    token, _ = book.issue("plan-a", "h1", "ann", T0)
    with pytest.raises(TokenExpired) as err:
        book.redeem(token, "plan-a", "h1", T0 + timedelta(minutes=10))
    assert err.value.status == 410


def test_spend_plan_voids_every_token_of_the_plan(book: TokenBook) -> None:
    a, _ = book.issue("plan-a", "h1", "ann", T0)
    b, _ = book.issue("plan-a", "h1", "bob", T0)
    other, _ = book.issue("plan-b", "h9", "ann", T0)
    book.spend_plan("plan-a")
    for token in (a, b):
        with pytest.raises(TokenUsed):
            book.redeem(token, "plan-a", "h1", T0)
    assert book.redeem(other, "plan-b", "h9", T0)


def test_tokens_are_unguessable_and_distinct(book: TokenBook) -> None:
    tokens = {book.issue("plan-a", "h1", "ann", T0)[0] for _ in range(50)}
    assert len(tokens) == 50 and all(len(t) > 40 for t in tokens)
