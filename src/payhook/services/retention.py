"""What grows with traffic, pruned past ``PAYHOOK_RETENTION_DAYS`` by the sweep.

Each kind of row has one rule (:data:`RULES`): which rows are past the retention and needed by
nothing still alive. A sweep deletes them oldest first, at most :data:`BATCH` rows a statement,
each statement its own short transaction, and at most :data:`ROUNDS` statements a kind, so a
backlog (a retention shortened, a first upgrade) is worked off over several sweeps while ingest
goes on. On PostgreSQL the chosen rows are locked ``SKIP LOCKED``: a row some other transaction
holds is left for the next sweep, and two runners sweeping at once never wait on each other.
On SQLite (one writer) the clause is dropped and each statement is one short write.

What is kept whatever its age: outbox rows not done (a dead one waits for its replay), a
delivery not delivered, or delivered but being sent again (its ``delivery.send`` row is
unfinished), a provider event an anomaly names (the foreign key) or an unfinished on-chain
check carries (the check records its anomalies against that event). A provider event
pruned is also forgotten for de-duplication: a provider's retry arriving after the retention
would be taken as new (providers stop retrying after days: Stripe's last is at 3 days).
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Delete, Select, Table, delete, exists, literal, select
from sqlalchemy.ext.asyncio import AsyncEngine

from payhook.db.statements import written
from payhook.db.tables import (
    anomalies,
    deliveries,
    delivery_attempts,
    merchant_events,
    outbox_entries,
    webhook_events,
)
from payhook.domain.decisions import DELIVER, ONCHAIN_CHECK, dedup_key

BATCH = 1000  # rows a statement: a short transaction that holds few locks
ROUNDS = 3  # statements a kind a sweep, while they come back full
UNFINISHED = ("pending", "running", "dead")
# The dedup key of a delivery's send row, less the delivery id (the one key format).
_SEND_KEY_PREFIX = dedup_key(DELIVER, {"delivery_id": ""})


@dataclass(frozen=True)
class Rule:
    """``choose(cutoff)``: the ids (oldest first, unlimited) of ``table``'s rows to prune."""

    table: Table
    choose: Callable[[datetime], Select[Any]]


def _done_outbox(cutoff: datetime) -> Select[Any]:
    # Finished past the retention, not only made then: a row replayed yesterday stays.
    return (select(outbox_entries.c.id)
            .where(outbox_entries.c.status == "done", outbox_entries.c.created_at < cutoff,
                   outbox_entries.c.updated_at < cutoff)
            .order_by(outbox_entries.c.created_at))


def _delivered(cutoff: datetime) -> list[Any]:
    """Delivered (last) before the cutoff and not being sent again."""
    sending = exists().where(outbox_entries.c.dedup_key == literal(_SEND_KEY_PREFIX)
                             + deliveries.c.id, outbox_entries.c.status != "done")
    return [deliveries.c.status == "delivered", deliveries.c.created_at < cutoff,
            deliveries.c.delivered_at < cutoff, ~sending]


def _delivered_attempts(cutoff: datetime) -> Select[Any]:
    return (select(delivery_attempts.c.id)
            .join(deliveries, deliveries.c.id == delivery_attempts.c.delivery_id)
            .where(*_delivered(cutoff)).order_by(deliveries.c.created_at))


def _delivered_deliveries(cutoff: datetime) -> Select[Any]:
    # Their attempts go first (the foreign key): a delivery goes once it has none left.
    attempted = exists().where(delivery_attempts.c.delivery_id == deliveries.c.id)
    return (select(deliveries.c.id).where(*_delivered(cutoff), ~attempted)
            .order_by(deliveries.c.created_at))


def _provider_events(cutoff: datetime) -> Select[Any]:
    named = exists().where(anomalies.c.event_id == webhook_events.c.id)
    # Every row ingest queues names its event, but only an on-chain check reads it (its
    # anomalies point at it): only those are asked (ix_outbox_entries_onchain_checks, whose
    # predicate the kind is written out to meet), once a statement — NOT IN of an uncorrelated
    # set is hashed, where a correlated EXISTS compared every candidate with every check
    # (2,000 dead checks: 0.4 s a batch).
    event = outbox_entries.c.payload["event"].as_string()
    carried = select(event).where(outbox_entries.c.status.in_(UNFINISHED),
                                  outbox_entries.c.kind == written(ONCHAIN_CHECK),
                                  event.is_not(None))  # one NULL would make NOT IN keep all
    return (select(webhook_events.c.id)
            .where(webhook_events.c.created_at < cutoff, ~named,
                   webhook_events.c.id.not_in(carried))
            .order_by(webhook_events.c.created_at))


def _merchant_events(cutoff: datetime) -> Select[Any]:
    return (select(merchant_events.c.id).where(merchant_events.c.created_at < cutoff)
            .order_by(merchant_events.c.created_at))


RULES: dict[str, Rule] = {
    "outbox_entries": Rule(outbox_entries, _done_outbox),
    "delivery_attempts": Rule(delivery_attempts, _delivered_attempts),
    "deliveries": Rule(deliveries, _delivered_deliveries),
    "webhook_events": Rule(webhook_events, _provider_events),
    "merchant_events": Rule(merchant_events, _merchant_events),
}


async def prune(engine: AsyncEngine, now: datetime, retention: timedelta,
                batch: int = BATCH, rounds: int = ROUNDS) -> dict[str, int]:
    """Each kind's rows past ``retention``, up to ``rounds`` × ``batch`` of them; how many
    of each kind went (kinds with none left out)."""
    pruned = {}
    for name, rule in RULES.items():
        if count := await _prune_kind(engine, rule, now - retention, batch, rounds):
            pruned[name] = count
    return pruned


async def _prune_kind(engine: AsyncEngine, rule: Rule, cutoff: datetime, batch: int,
                      rounds: int) -> int:
    total = 0
    for _ in range(rounds):
        count = await prune_batch(engine, rule, cutoff, batch)
        total += count
        if count < batch:
            break
    return total


async def prune_batch(engine: AsyncEngine, rule: Rule, cutoff: datetime, batch: int) -> int:
    """One statement in its own transaction: the oldest ``batch`` rows of the rule's."""
    async with engine.begin() as conn:
        result = await conn.execute(batch_statement(rule, cutoff, batch))
    return int(result.rowcount)


def batch_statement(rule: Rule, cutoff: datetime, batch: int) -> Delete:
    chosen = (rule.choose(cutoff).limit(batch)
              .with_for_update(skip_locked=True, of=rule.table))
    return delete(rule.table).where(rule.table.c.id.in_(chosen))
