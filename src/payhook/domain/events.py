"""A provider's event, normalised: the one shape every provider module produces."""

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Intent(StrEnum):
    """What the provider says happened, before we check it against the session."""

    PAY = "pay"  # the payment succeeded
    PEND = "pend"  # the payment is processing
    FAIL = "fail"  # the payment failed for good
    RECORD = "record"  # worth keeping, changes nothing (e.g. a retryable card decline)
    CHECK = "check"  # a hint to verify on chain (web3)
    IGNORE = "ignore"  # not an event we handle


# The mode of an event that should state one and does not: it matches no session's mode, so
# such an event is recorded as a mode mismatch, never applied.
UNSTATED = "unstated"


@dataclass(frozen=True)
class ProviderEvent:
    """Every string here is one both databases can store (the providers drop any other: see
    ``providers.base.text_field``), so the writers store them as they are."""

    provider: str
    event_id: str
    type: str
    intent: Intent
    session_id: str | None  # None unless it has the form of a session id (never looked up)
    raw: bytes
    headers: dict[str, str]
    amount: int | None = None
    currency: str | None = None
    # "test" or "live" as the event states it; None from a provider that has no modes
    # (One.com, web3); UNSTATED when the provider has modes but this event names none.
    mode: str | None = None
    reference: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
