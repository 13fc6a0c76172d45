"""The decision rules, one by one, and a property: no sequence of events leaves a terminal
state or reaches an illegal one."""

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from payhook.domain.decisions import (
    ACCESS_LINK,
    API_KEY,
    INVOICE,
    NOTIFY,
    ONCHAIN_CHECK,
    SessionView,
    decide,
)
from payhook.domain.events import UNSTATED, Intent, ProviderEvent
from payhook.domain.sessions import TERMINAL, FailureReason, Status, can_move, sources

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)
CRYPTO = frozenset({"eth", "usdc"})


def session(status: Status = Status.CREATED, **changes) -> SessionView:
    values = {"status": status, "amount": 1999, "currency": "usd", "mode": "test",
              "expires_at": LATER, "provider_reference": None}
    values.update(changes)
    return SessionView(**values)


def event(intent: Intent, **changes) -> ProviderEvent:
    values = {"provider": "stripe", "event_id": "evt_1", "type": "t", "intent": intent,
              "session_id": "cs_1", "raw": b"{}", "headers": {}, "amount": 1999,
              "currency": "usd", "mode": "test", "reference": "pi_1"}
    values.update(changes)
    return ProviderEvent(**values)


def kinds(decision) -> list[str]:
    return [kind for kind, _ in decision.outbox]


def anomaly(decision) -> str | None:
    return decision.anomalies[0].kind if decision.anomalies else None


def test_a_payment_pays_and_causes_the_four_effects():
    decision = decide(event(Intent.PAY), session(), NOW)
    assert (decision.outcome, decision.target) == ("applied", Status.PAID)
    assert kinds(decision) == [INVOICE, API_KEY, ACCESS_LINK, NOTIFY]
    assert decision.outbox[-1][1] == {"type": "checkout.session.paid"}
    assert decide(event(Intent.PAY), session(Status.PENDING), NOW).target is Status.PAID


def test_mismatches_are_recorded_with_an_anomaly_and_never_pay():
    for changes, kind in (({"amount": 1998}, "amount_mismatch"),
                          ({"currency": "eur"}, "currency_mismatch"),
                          ({"mode": "live"}, "mode_mismatch"),
                          ({"amount": None}, "amount_mismatch")):
        decision = decide(event(Intent.PAY, **changes), session(), NOW)
        assert (decision.outcome, decision.target, anomaly(decision)) == ("recorded", None, kind)
        assert decision.outbox == ()


def test_a_mode_mismatch_cannot_fail_a_session_either():
    decision = decide(event(Intent.FAIL, mode="live"), session(), NOW)
    assert (decision.outcome, anomaly(decision)) == ("recorded", "mode_mismatch")


def test_an_event_that_states_no_mode_matches_no_session():
    for mode in ("test", "live"):
        decision = decide(event(Intent.PAY, mode=UNSTATED), session(mode=mode), NOW)
        assert (decision.outcome, decision.target, anomaly(decision)) == (
            "recorded", None, "mode_mismatch")
        assert decision.anomalies[0].details == {"expected": mode, "received": UNSTATED}


def test_payment_for_a_failed_or_expired_session_is_a_late_payment():
    failed = decide(event(Intent.PAY), session(Status.FAILED), NOW)
    expired = decide(event(Intent.PAY), session(expires_at=NOW - timedelta(seconds=1)), NOW)
    for decision in (failed, expired):
        assert (decision.outcome, decision.target, anomaly(decision)) == (
            "recorded", None, "late_payment")


def test_a_second_payment_of_a_paid_session():
    same = decide(event(Intent.PAY), session(Status.PAID, provider_reference="pi_1"), NOW)
    assert (same.outcome, same.anomalies) == ("recorded", ())
    other = decide(event(Intent.PAY), session(Status.PAID, provider_reference="pi_0"), NOW)
    assert anomaly(other) == "duplicate_payment"


def test_pending_failed_and_recorded_intents():
    assert decide(event(Intent.PEND), session(), NOW).target is Status.PENDING
    assert decide(event(Intent.PEND), session(Status.PENDING), NOW).outcome == "recorded"
    failed = decide(event(Intent.FAIL), session(Status.PENDING), NOW)
    assert (failed.target, failed.failure_reason) == (Status.FAILED,
                                                      FailureReason.PROVIDER_FAILED)
    assert failed.outbox == ((NOTIFY, {"type": "checkout.session.failed"}),)
    assert decide(event(Intent.FAIL), session(Status.PAID), NOW).outcome == "recorded"
    assert decide(event(Intent.RECORD), session(), NOW).outcome == "recorded"


def test_ignored_and_unmatched():
    assert decide(event(Intent.IGNORE), session(), NOW).outcome == "ignored"
    # No session id: the provider named one that cannot exist (no reference at all is IGNORE).
    assert decide(event(Intent.PAY, session_id=None), None, NOW).outcome == "unmatched"
    assert decide(event(Intent.PAY), None, NOW).outcome == "unmatched"


def test_a_web3_hint_moves_to_pending_and_asks_for_a_check():
    hint = event(Intent.CHECK, provider="web3", mode=None, amount=None, currency=None,
                 reference="0x" + "a" * 64)
    created = decide(hint, session(currency="eth"), NOW, CRYPTO)
    assert (created.outcome, created.target) == ("applied", Status.PENDING)
    assert created.outbox == ((ONCHAIN_CHECK, {"tx_hash": "0x" + "a" * 64}),)
    pending = decide(hint, session(Status.PENDING, currency="eth"), NOW, CRYPTO)
    assert (pending.outcome, pending.target, kinds(pending)) == ("recorded", None,
                                                                 [ONCHAIN_CHECK])
    fiat = decide(hint, session(currency="usd"), NOW, CRYPTO)
    assert (fiat.outcome, anomaly(fiat), fiat.outbox) == ("recorded", "currency_mismatch", ())
    late = decide(hint, session(Status.FAILED, currency="eth"), NOW, CRYPTO)
    assert (anomaly(late), late.outbox) == ("late_payment", ())


intents = st.sampled_from(list(Intent))
events = st.builds(
    event, intent=intents, amount=st.sampled_from([1999, 1, None]),
    currency=st.sampled_from(["usd", "eur", None]), mode=st.sampled_from(["test", "live", None]),
    reference=st.sampled_from(["pi_1", "pi_2", None]))


@given(st.lists(events, max_size=12), st.sampled_from(["usd", "eth"]),
       st.booleans())
def test_no_sequence_of_events_leaves_a_terminal_state(sequence, currency, expired):
    """Applies each decision as storage does (compare-and-set on ``sources``)."""
    expires = NOW - timedelta(seconds=1) if expired else LATER
    status, reference = Status.CREATED, None
    for incoming in sequence:
        view = session(status, currency=currency, expires_at=expires,
                       provider_reference=reference)
        decision = decide(incoming, view, NOW, CRYPTO)
        if decision.target is not None:
            assert decision.outcome == "applied"
            assert status in sources(decision.target) and can_move(status, decision.target)
            assert not (expired and decision.target is Status.PAID)
            before, status = status, decision.target
            assert before not in TERMINAL
            if status is Status.PAID:
                reference = incoming.reference
        else:
            assert decision.outcome != "applied"
        assert status in Status
