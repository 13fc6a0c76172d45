"""What a batch of ``delivery.send`` rows does, decided without I/O.

:func:`plan`: the claimed rows and their deliveries as read → which to try, which end untried
(the endpoint is deleted), which are held (the endpoint is disabled: the row is postponed, its
attempt not counted, and made due at once when the endpoint is enabled again — never finished,
so that a re-enable racing this very read cannot miss it) and which fail (no such delivery).
:func:`settle`: the tries' results → what each row writes and which rows fail, and what the
endpoint's health becomes. :mod:`payhook.effects.deliveries` reads, POSTs and writes around them.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from payhook.domain.webhooks import failed_too_long
from payhook.outbox.drain import NotReady, RetryLater
from payhook.outbox.store import Entry

PENDING, DELIVERED, FAILED, DEAD = "pending", "delivered", "failed", "dead"
HELD_SECONDS = 3600.0  # a held row looks again this often (enabling it makes it due at once)


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
    failing_since: datetime | None = None
    previous_secret: bytes | None = None  # sealed; during a rotation's overlap only
    previous_secret_expires_at: datetime | None = None

    def secrets(self, now: datetime) -> list[bytes]:
        """The sealed secrets to sign with: the current one, and the one it replaced until
        that expires."""
        expires = self.previous_secret_expires_at
        if self.previous_secret is not None and expires is not None and expires > now:
            return [self.sealed_secret, self.previous_secret]
        return [self.sealed_secret]


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
    """What one row writes: its try (None when nothing was sent) and the delivery's new
    status; ``endpoint_id`` with ``healthy`` (True: the endpoint delivered, False: it failed,
    None: no news) and ``disable`` (a reason) say what becomes of the endpoint."""

    delivery_id: str
    attempt: Attempt | None
    status: str
    endpoint_id: str | None = None
    healthy: bool | None = None
    disable: str | None = None
    was_failing: bool = False  # the endpoint had failed before this try


@dataclass
class Plan:
    tries: list[tuple[Entry, Target]] = field(default_factory=list)
    ended: dict[str, Record] = field(default_factory=dict)  # by row id: untried, ended
    unsent: dict[str, BaseException] = field(default_factory=dict)  # by row id: held, or lost


@dataclass
class Settled:
    records: dict[str, Record] = field(default_factory=dict)  # by row id, failed rows' too
    failed: dict[str, BaseException] = field(default_factory=dict)  # by row id


def plan(entries: Sequence[Entry], targets: Mapping[str, Target]) -> Plan:
    """The tries to make; a delivery already delivered (the row ran before) needs none and
    writes nothing; one whose endpoint is disabled is held."""
    planned = Plan()
    for entry in entries:
        delivery_id = entry.payload["delivery_id"]
        target = targets.get(delivery_id)
        if target is None:
            planned.unsent[entry.id] = LookupError(f"no delivery {delivery_id}")
        elif target.status == DELIVERED:
            continue
        elif target.endpoint_status == "disabled":
            planned.unsent[entry.id] = NotReady(
                "held: the endpoint is disabled; enabling it sends this delivery",
                retry_in=HELD_SECONDS, shown=True)
        elif target.endpoint_status != "enabled":  # deleted: nothing will ever be sent
            planned.ended[entry.id] = Record(target.id, None, DEAD)
        else:
            planned.tries.append((entry, target))
    return planned


def settle(planned: Plan, attempts: Sequence[Attempt], now: datetime,
           disable_after: timedelta) -> Settled:
    """2xx delivers; 410 Gone disables the endpoint and holds the delivery (``failed``, sent
    again once the endpoint is enabled); any other result fails the row — the delivery is
    ``failed`` while it is retried, ``dead`` after the row's last attempt — and disables the
    endpoint once every try has failed for ``disable_after``."""
    settled = Settled(records=dict(planned.ended), failed=dict(planned.unsent))
    for (entry, target), attempt in zip(planned.tries, attempts, strict=True):
        was_failing = target.failing_since is not None
        if attempt.delivered:
            settled.records[entry.id] = Record(target.id, attempt, DELIVERED, target.endpoint_id,
                                               True, was_failing=was_failing)
        elif attempt.status_code == 410:
            settled.records[entry.id] = Record(target.id, attempt, FAILED, target.endpoint_id,
                                               False, "gone", was_failing)
        else:
            last = entry.attempts >= entry.max_attempts
            disable = ("failing" if failed_too_long(target.failing_since, now, disable_after)
                       else None)
            settled.records[entry.id] = Record(target.id, attempt, DEAD if last else FAILED,
                                               target.endpoint_id, False, disable, was_failing)
            settled.failed[entry.id] = DeliveryFailed(
                attempt.error or f"endpoint answered {attempt.status_code}",
                retry_in=attempt.retry_after)
    return settled
