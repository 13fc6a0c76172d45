"""The on-chain check a Web3 notice asks for (outbox kind ``onchain.check``): the notice is a
hint, the session is paid from the chain alone (docs/api.md, ``POST /webhooks/web3``).

One check per (session, transaction) is at work at a time, however many notices name it (the
outbox row's dedup key). Before each check the node must serve ``PAYHOOK_WEB3_CHAIN_ID``, or no
check runs (a failed attempt, retried with backoff). A mined transaction short of
``PAYHOOK_WEB3_CONFIRMATIONS`` is checked again within 5 s until the session expires; one the
node does not know is checked again after as long as it has been looked for (5 s, doubling, at
most :data:`NOT_FOUND_MAX_WAIT`), and given up :data:`NOT_FOUND_GIVE_UP` after the check began
— a notice names a transaction that may never exist, and polling a node for it until a session
expires days later costs the node's quota for nothing. Either wait is :class:`NotReady` (no
attempt used), its reason shown as the row's ``last_error``; a check that ends unpaid — the
session over, or the hour up — is an anomaly. A confirmed transaction is judged by
:func:`payhook.domain.onchain.judge`: it counts only if it sends to the session's own deposit
address. One that counts is claimed for the session, and the session's claimed transfers are
added up: once they reach its amount it takes the same paid path as every other provider; short
of it, the session stays pending with an ``underpaid`` anomaly and the claim kept, so the next
transfer to its address adds to it. A transaction counts for at most one session, ever:
``onchain_payments`` is unique on (chain id, tx hash), so of two sessions claiming it at once
one gets it and the other a ``reused`` anomaly. Every check that does not pay its session is an
anomaly naming both.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from payhook import clock
from payhook.db import sessions
from payhook.db.engine import reading
from payhook.db.statements import insert_ignoring_conflicts
from payhook.db.tables import anomalies, checkout_sessions, onchain_payments
from payhook.domain import onchain
from payhook.domain.decisions import SessionView, payment
from payhook.domain.onchain import Expected, MinedTransaction, Verdict
from payhook.domain.sessions import Status, sources
from payhook.effects.chain import Chain, Sighting, WrongChain
from payhook.effects.context import EffectContext
from payhook.ids import new_id
from payhook.outbox.drain import NotReady, Writes
from payhook.outbox.store import Entry, enqueue

log = logging.getLogger("payhook.onchain")

PROVIDER = "web3"
RECHECK_SECONDS = 5.0  # docs/api.md: re-checked at least every 5 s until the session expires
NOT_FOUND_MAX_WAIT = timedelta(minutes=5)
NOT_FOUND_GIVE_UP = timedelta(hours=1)  # then the check ends; a later notice starts another


class Web3NotConfigured(Exception):
    """``PAYHOOK_WEB3_RPC_URL`` or ``PAYHOOK_WEB3_CHAIN_ID`` is missing."""


@dataclass(frozen=True)
class Check:
    session_id: str
    tx_hash: str
    event_id: str | None  # the webhook event that asked for the check
    chain_id: int
    started: datetime  # when the check was first asked for (its outbox row's creation)


@dataclass(frozen=True)
class Session:
    status: Status
    amount: int
    currency: str
    created_at: datetime
    expires_at: datetime
    address: str | None  # its deposit address; None for a session made before there were any

    def awaits_payment(self, now: datetime) -> bool:
        return self.status in sources(Status.PAID) and now < self.expires_at


async def check_transaction(context: EffectContext, entry: Entry) -> Writes | None:
    chain, chain_id = _configured(context)
    check = Check(session_id=entry.payload["session_id"],
                  tx_hash=str(entry.payload["tx_hash"]).lower(),
                  event_id=entry.payload.get("event"), chain_id=chain_id,
                  started=entry.created_at)
    await chain.require_chain_id(chain_id)
    session, owner = await _read(context.engine, check)
    if owner == check.session_id:
        return None  # this session's own earlier check already recorded it (a second notice)
    if owner is not None:
        return _noted(check, onchain.REUSED, {"paid_session": owner})
    if session.address is None:
        return _noted(check, onchain.NO_DEPOSIT_ADDRESS, {})
    sighting = await chain.sight(check.tx_hash, context.settings.web3_confirmations)
    if sighting.mined is None:
        return _not_yet(check, session, sighting, context.settings.web3_confirmations)
    verdict = onchain.judge(sighting.mined, Expected(
        amount=session.amount, address=session.address,
        token=_token(session.currency, context.settings.web3_tokens),
        not_before=int(session.created_at.timestamp())))
    log.info("on-chain check judged", extra={
        "session_id": check.session_id, "transaction": check.tx_hash,
        "counts": verdict.counts, "anomaly": verdict.anomaly})
    if not verdict.counts:
        assert verdict.anomaly is not None
        return _noted(check, verdict.anomaly, verdict.details)
    return _claimed(check, session, sighting.mined, verdict,
                    context.settings.outbox_max_attempts)


async def check_node(context: EffectContext) -> bool:
    """For a runner's start-up: whether the configured node answers with the right chain id.
    Never raises — a wrong or unreachable node is logged, and each check tries again."""
    if context.chain is None or context.settings.web3_chain_id is None:
        return False
    try:
        await context.chain.require_chain_id(context.settings.web3_chain_id)
    except WrongChain:
        return False  # logged by require_chain_id
    except Exception as error:  # noqa: BLE001 - any transport error: the node is unreachable
        log.error("the web3 node does not answer (%s): on-chain checks will be retried",
                  type(error).__name__)
        return False
    return True


def _configured(context: EffectContext) -> tuple[Chain, int]:
    if context.chain is None or context.settings.web3_chain_id is None:
        raise Web3NotConfigured("set PAYHOOK_WEB3_RPC_URL and PAYHOOK_WEB3_CHAIN_ID to check "
                                "transactions")
    return context.chain, context.settings.web3_chain_id


def _token(currency: str, tokens: tuple[str, ...]) -> str | None:
    if currency == onchain.NATIVE:
        return None
    contracts = onchain.token_contracts(tokens)
    if currency not in contracts:
        raise LookupError(f"{currency!r} is not in PAYHOOK_WEB3_TOKENS")
    return contracts[currency]


async def _read(engine: AsyncEngine, check: Check) -> tuple[Session, str | None]:
    """The session, and the session this transaction already paid (if any)."""
    async with reading(engine) as conn:
        row = (await conn.execute(
            select(checkout_sessions.c.status, checkout_sessions.c.amount,
                   checkout_sessions.c.currency, checkout_sessions.c.created_at,
                   checkout_sessions.c.expires_at, checkout_sessions.c.deposit_address)
            .where(checkout_sessions.c.id == check.session_id))).one()
        owner = await _owner(conn, check)
    return Session(status=Status(row.status), amount=row.amount, currency=row.currency,
                   created_at=clock.as_utc(row.created_at),
                   expires_at=clock.as_utc(row.expires_at),
                   address=row.deposit_address), owner


async def _owner(conn: AsyncConnection, check: Check) -> str | None:
    return await conn.scalar(select(onchain_payments.c.session_id).where(
        onchain_payments.c.chain_id == check.chain_id,
        onchain_payments.c.tx_hash == check.tx_hash))


def _not_yet(check: Check, session: Session, sighting: Sighting, required: int) -> Writes:
    """Check again while the session may still be paid (a transaction not found: for an hour,
    less and less often); after that, an anomaly. A mined transaction short of its
    confirmations is waited for even once the session has ended (for the hour): the watcher
    finds a late payment at its first block, and it is a late payment only once confirmed."""
    now = clock.now()
    looked_for = now - check.started
    if sighting.confirmations > 0 and (session.awaits_payment(now)
                                       or looked_for < NOT_FOUND_GIVE_UP):
        raise NotReady(f"{sighting.confirmations} of {required} confirmations",
                       RECHECK_SECONDS, shown=True)
    if session.awaits_payment(now) and looked_for < NOT_FOUND_GIVE_UP:
        raise NotReady(f"transaction not found on chain; looked for since "
                       f"{clock.iso(check.started)}, given up at "
                       f"{clock.iso(check.started + NOT_FOUND_GIVE_UP)}",
                       not_found_wait(looked_for).total_seconds(), shown=True)
    if sighting.confirmations == 0:
        return _noted(check, onchain.NOT_FOUND, {"session_status": session.status.value,
                                                 "looked_for_seconds": int(
                                                     looked_for.total_seconds())})
    return _noted(check, onchain.UNCONFIRMED, {"confirmations": sighting.confirmations,
                                               "required": required})


def not_found_wait(looked_for: timedelta) -> timedelta:
    """As long again as the transaction has been looked for (5 s, 10 s, 20 s…), at most
    :data:`NOT_FOUND_MAX_WAIT`, and never past the hour, so the last look is at the hour."""
    wait = min(max(looked_for, timedelta(seconds=RECHECK_SECONDS)), NOT_FOUND_MAX_WAIT)
    return min(wait, NOT_FOUND_GIVE_UP - looked_for)


def _noted(check: Check, kind: str, details: dict[str, Any]) -> Writes:
    async def write(conn: AsyncConnection) -> None:
        await _note(conn, check, kind, details)

    return write


async def _note(conn: AsyncConnection, check: Check, kind: str, details: dict[str, Any]) -> None:
    await conn.execute(anomalies.insert().values(
        id=new_id("an"), kind=kind, session_id=check.session_id, event_id=check.event_id,
        provider=PROVIDER,
        details={"transaction": check.tx_hash, "chain_id": check.chain_id, **details},
        created_at=clock.now()))


def _claimed(check: Check, session: Session, mined: MinedTransaction, verdict: Verdict,
             max_attempts: int) -> Writes:
    """Take the session's row, claim the transaction for the session, then settle the session
    on the sum of its claims — one transaction, so a lost claim counts for nothing."""

    async def write(conn: AsyncConnection) -> None:
        now = clock.now()
        # The session's row is taken first. The claim's foreign key takes a share lock on it:
        # two checks that each held that and then asked for the row's update lock (to settle)
        # deadlocked, and one of them failed (test_two_halves_settled_at_once_are_added_up).
        held = await sessions.view(conn, check.session_id, lock=True)
        assert held is not None  # read before the check; sessions are never deleted
        claimed = await conn.scalar(
            insert_ignoring_conflicts(conn, onchain_payments).values(
                id=new_id("op"), chain_id=check.chain_id, tx_hash=check.tx_hash,
                session_id=check.session_id, currency=session.currency,
                amount=verdict.received, block_number=mined.block_number,
                block_hash=mined.block_hash, created_at=now,
            ).returning(onchain_payments.c.id))
        if claimed is None:
            owner = await _owner(conn, check)
            if owner != check.session_id:
                await _note(conn, check, onchain.REUSED, {"paid_session": owner})
            return
        await _settle(conn, check, held, verdict, now, max_attempts)

    return write


async def _settle(conn: AsyncConnection, check: Check, session: SessionView, verdict: Verdict,
                  now: datetime, max_attempts: int) -> None:
    """Pay the session once its claimed transfers add up to its amount, by the rules of every
    provider's payment, on its row as it is now (``session``, held until the move, so two
    transfers settled at once are added up by the second). Paid otherwise, failed or expired
    meanwhile: an anomaly, and the claim stays (the money came for this session; an operator
    settles it)."""
    tally = onchain.tally(session.amount, await _received(conn, check))
    transferred = {"transferred": verdict.received}
    if not tally.paid and session.status in sources(Status.PAID) and now < session.expires_at:
        assert tally.anomaly is not None
        await _note(conn, check, tally.anomaly, {**tally.details, **transferred})
        return
    decision = payment(session, check.tx_hash, now)
    for note in decision.anomalies:
        await _note(conn, check, note.kind, {**note.details, **transferred})
    if decision.target is None:
        return
    if not await sessions.move(conn, check.session_id, decision.target, now=now,
                               payment_provider=PROVIDER, provider_reference=check.tx_hash,
                               paid_at=now):
        raise RuntimeError(f"{check.session_id} changed under its lock")
    await enqueue(conn, [(kind, {"session_id": check.session_id, "event": check.event_id,
                                 **extra}) for kind, extra in decision.outbox],
                  now, max_attempts)
    if tally.anomaly is not None:  # overpaid: paid all the same
        await _note(conn, check, tally.anomaly, {**tally.details, **transferred})


async def _received(conn: AsyncConnection, check: Check) -> int:
    """What the session's claimed transfers on this chain add up to (summed here: SQLite keeps
    amounts as text)."""
    amounts = await conn.scalars(select(onchain_payments.c.amount).where(
        onchain_payments.c.session_id == check.session_id,
        onchain_payments.c.chain_id == check.chain_id))
    return sum(amounts)
