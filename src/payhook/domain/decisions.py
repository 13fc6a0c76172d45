"""What a provider event does to its session: a pure function of the event and the session.

Trust nothing in a payload: amount, currency and mode come from the session, and an event that
disagrees is recorded with an anomaly, never applied. Storage then applies the decided
transition as a compare-and-set; if that loses a race it decides again on a fresh read.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from payhook.domain.events import Intent, ProviderEvent
from payhook.domain.sessions import FailureReason, Status, can_move

# Outbox kinds (the worker's handler registry uses the same names).
INVOICE = "invoice.create"
API_KEY = "api_key.provision"
ACCESS_LINK = "access_link.issue"
NOTIFY = "merchant.notify"
ONCHAIN_CHECK = "onchain.check"
EMAIL = "email.send"  # written by the access-link effect, not by a decision
DELIVER = "delivery.send"  # one per delivery, written by the notification, retry and recover

PAID = "checkout.session.paid"
FAILED = "checkout.session.failed"

# What a paid session owes, whichever provider paid it (the on-chain check included).
PAID_EFFECTS: tuple[tuple[str, dict[str, Any]], ...] = (
    (INVOICE, {}), (API_KEY, {}), (ACCESS_LINK, {}), (NOTIFY, {"type": PAID}))

_TARGETS = {Intent.PAY: Status.PAID, Intent.PEND: Status.PENDING, Intent.FAIL: Status.FAILED,
            Intent.CHECK: Status.PENDING}


@dataclass(frozen=True)
class SessionView:
    """What a decision needs to know of the session, read just before deciding."""

    status: Status
    amount: int
    currency: str
    mode: str
    expires_at: datetime
    provider_reference: str | None = None


@dataclass(frozen=True)
class Note:
    """An anomaly for operators."""

    kind: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    outcome: str  # applied | recorded | ignored | unmatched
    target: Status | None = None  # the compare-and-set target when outcome is "applied"
    failure_reason: FailureReason | None = None
    anomalies: tuple[Note, ...] = ()
    outbox: tuple[tuple[str, dict[str, Any]], ...] = ()


def decide(
    event: ProviderEvent, session: SessionView | None, now: datetime,
    crypto: frozenset[str] = frozenset(),
) -> Decision:
    if event.intent is Intent.IGNORE:
        return Decision("ignored")
    if event.session_id is None or session is None:  # None: names a session that cannot exist
        return Decision("unmatched")
    if event.mode is not None and event.mode != session.mode:
        return _recorded("mode_mismatch", expected=session.mode, received=event.mode)
    if event.intent is Intent.RECORD:
        return Decision("recorded")
    if event.intent is Intent.PAY:
        return _pay(event, session, now)
    if event.intent is Intent.CHECK:
        return _check(event, session, now, crypto)
    target = _TARGETS[event.intent]
    if not can_move(session.status, target) or _expired(session, now):
        return Decision("recorded")
    if target is Status.FAILED:
        return Decision("applied", target, FailureReason.PROVIDER_FAILED,
                        outbox=((NOTIFY, {"type": FAILED}),))
    return Decision("applied", target)


def _pay(event: ProviderEvent, session: SessionView, now: datetime) -> Decision:
    if event.currency != session.currency:
        return _recorded("currency_mismatch", expected=session.currency,
                         received=event.currency)
    if event.amount != session.amount:
        return _recorded("amount_mismatch", expected=session.amount, received=event.amount)
    return payment(session, event.reference, now)


def payment(session: SessionView, reference: str | None, now: datetime) -> Decision:
    """A payment of what the session asks, whoever made it (a provider's event, or the on-chain
    check's verified transaction): it pays an open session; a session paid with another
    reference is a duplicate payment, a failed or expired one a late payment."""
    if session.status is Status.PAID:
        if reference and session.provider_reference not in (None, reference):
            return _recorded("duplicate_payment", paid_by=session.provider_reference,
                             received=reference)
        return Decision("recorded")
    if session.status is Status.FAILED or _expired(session, now):
        return _recorded("late_payment", session_status=session.status.value,
                         expired=_expired(session, now))
    return Decision("applied", Status.PAID, outbox=PAID_EFFECTS)


def _check(event: ProviderEvent, session: SessionView, now: datetime,
           crypto: frozenset[str]) -> Decision:
    if session.currency not in crypto:
        return _recorded("currency_mismatch", expected=session.currency, received="crypto")
    if session.status is Status.PAID:
        return Decision("recorded")
    if session.status is Status.FAILED or _expired(session, now):
        return _recorded("late_payment", session_status=session.status.value,
                         transaction=event.reference)
    check = ((ONCHAIN_CHECK, {"tx_hash": event.reference}),)
    if session.status is Status.CREATED:
        return Decision("applied", Status.PENDING, outbox=check)
    return Decision("recorded", outbox=check)


def dedup_key(kind: str, payload: Mapping[str, Any]) -> str | None:
    """Outbox rows of one key are one piece of work: the database keeps at most one of them
    unfinished. However many notices name a transaction, one check per (session, tx) runs."""
    if kind == ONCHAIN_CHECK:
        return f"{kind}:{payload['session_id']}:{payload['tx_hash']}"
    if kind == DELIVER:  # one delivery is sent by one row at a time (retry, recover, re-enable)
        return f"{kind}:{payload['delivery_id']}"
    return None


def _expired(session: SessionView, now: datetime) -> bool:
    return session.expires_at <= now


def _recorded(kind: str, **details: Any) -> Decision:
    return Decision("recorded", anomalies=(Note(kind, details),))
