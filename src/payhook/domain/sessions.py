"""The checkout-session state machine.

``created → pending | paid | failed`` and ``pending → paid | failed``; ``paid`` and ``failed`` are
terminal. Storage applies a transition as a compare-and-set using :func:`sources`, never as a
read-modify-write.
"""

from enum import StrEnum


class Status(StrEnum):
    CREATED = "created"
    PENDING = "pending"
    PAID = "paid"
    FAILED = "failed"


class FailureReason(StrEnum):
    CANCELED = "canceled"
    EXPIRED = "expired"
    PROVIDER_FAILED = "provider_failed"


TERMINAL = frozenset({Status.PAID, Status.FAILED})

_ALLOWED: dict[Status, frozenset[Status]] = {
    Status.CREATED: frozenset({Status.PENDING, Status.PAID, Status.FAILED}),
    Status.PENDING: frozenset({Status.PAID, Status.FAILED}),
    Status.PAID: frozenset(),
    Status.FAILED: frozenset(),
}

_PAYMENT_STATUS = {
    Status.CREATED: "not_started",
    Status.PENDING: "processing",
    Status.PAID: "completed",
    Status.FAILED: "failed",
}


def can_move(current: Status, target: Status) -> bool:
    return target in _ALLOWED[current]


def sources(target: Status) -> tuple[Status, ...]:
    """The states a session may be in for a move to ``target`` (the compare-and-set's IN list)."""
    return tuple(state for state in Status if target in _ALLOWED[state])


def payment_status(status: Status) -> str:
    return _PAYMENT_STATUS[status]
