"""What a batch of ``delivery.send`` rows does, decided without I/O.

:func:`plan`: the claimed rows and their deliveries as read → which to try, which end untried
(the endpoint is disabled or deleted) and which fail (no such delivery). :func:`settle`: the
tries' results → what each row writes and which rows fail. :mod:`payhook.effects.deliveries`
reads, POSTs and writes around them.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from payhook.outbox.drain import RetryLater
from payhook.outbox.store import Entry

DELIVERED, FAILED = "delivered", "failed"


class DeliveryFailed(RetryLater):
    """This try did not deliver; the outbox retries with backoff, and no sooner than the
    endpoint's ``Retry-After`` (on 429 or 503) asked."""


@dataclass(frozen=True)
class Target:
    """A delivery as read for its try, with its endpoint."""

    id: str
    endpoint_id: str
    event_id: str
    body: dict[str, Any]
    status: str  # the delivery's
    url: str
    sealed_secret: bytes
    endpoint_status: str


@dataclass(frozen=True)
class Attempt:
    """One try's result, as its ``delivery_attempts`` row keeps it."""

    status_code: int | None
    duration_ms: int
    snippet: str | None = None
    error: str | None = None
    retry_after: float | None = None  # seconds, from a 429's or 503's Retry-After

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True)
class Record:
    """What one row writes: its try (None when nothing was sent) and the delivery's new status
    (None: still pending); ``gone`` names an endpoint that answered 410, to disable."""

    delivery_id: str
    attempt: Attempt | None
    status: str | None = None
    gone: str | None = None


@dataclass
class Plan:
    tries: list[tuple[Entry, Target]] = field(default_factory=list)
    ended: dict[str, Record] = field(default_factory=dict)  # by row id: untried, failed
    missing: dict[str, BaseException] = field(default_factory=dict)  # by row id


@dataclass
class Settled:
    records: dict[str, Record] = field(default_factory=dict)  # by row id, failed rows' too
    failed: dict[str, BaseException] = field(default_factory=dict)  # by row id


def plan(entries: Sequence[Entry], targets: Mapping[str, Target]) -> Plan:
    """The tries to make; a delivery already delivered (the row ran before) needs none, and
    writes nothing."""
    planned = Plan()
    for entry in entries:
        delivery_id = entry.payload["delivery_id"]
        target = targets.get(delivery_id)
        if target is None:
            planned.missing[entry.id] = LookupError(f"no delivery {delivery_id}")
        elif target.status == DELIVERED:
            continue
        elif target.endpoint_status != "enabled":  # disabled or deleted: nothing to send
            planned.ended[entry.id] = Record(target.id, None, FAILED)
        else:
            planned.tries.append((entry, target))
    return planned


def settle(planned: Plan, attempts: Sequence[Attempt]) -> Settled:
    """2xx delivers; 410 Gone ends the delivery and disables its endpoint; any other result
    fails the row, and the delivery too on the row's last attempt."""
    settled = Settled(records=dict(planned.ended), failed=dict(planned.missing))
    for (entry, target), attempt in zip(planned.tries, attempts, strict=True):
        if attempt.delivered:
            settled.records[entry.id] = Record(target.id, attempt, DELIVERED)
        elif attempt.status_code == 410:
            settled.records[entry.id] = Record(target.id, attempt, FAILED, target.endpoint_id)
        else:
            last = entry.attempts >= entry.max_attempts
            settled.records[entry.id] = Record(target.id, attempt, FAILED if last else None)
            settled.failed[entry.id] = DeliveryFailed(
                attempt.error or f"endpoint answered {attempt.status_code}",
                retry_in=attempt.retry_after)
    return settled
