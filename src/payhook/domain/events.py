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
    mode: str | None = None
    reference: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
