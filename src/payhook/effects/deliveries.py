"""``delivery.send``: POST one event to one merchant endpoint, signed the Standard Webhooks way
(with both secrets, space-separated, while a rotation's old secret has not expired).

Every try leaves a ``delivery_attempts`` row (status code, duration, the first KiB of the answer
or the error). 2xx delivers. 410 Gone disables the endpoint and holds the delivery. Anything
else — another status, a redirect (never followed), a timeout, an unreachable or non-public
address, and any other error of this one try (a URL httpx cannot use, a secret that will not
open) — fails the attempt alone: its record is committed with the row's retry (with backoff,
dead after the last attempt), and an endpoint that has failed every try for
``PAYHOOK_ENDPOINT_DISABLE_AFTER_HOURS`` is disabled. Which try leads where is decided by
:mod:`payhook.effects.delivery_plan`; this module reads, POSTs and writes. Unless private URLs
are allowed, the host is resolved and checked for every new connection by the client's own
resolver, which connects to the checked addresses only (Host header and TLS server name are the
URL's host), so DNS cannot swap in an internal address after the check.
"""

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from functools import partial

import aiohttp
import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from standardwebhooks.webhooks import Webhook

from payhook import __version__, clock, net
from payhook.db.engine import reading
from payhook.db.statements import among, insert_rows, update_each
from payhook.db.tables import deliveries, delivery_attempts
from payhook.db.tables import webhook_endpoints as endpoints
from payhook.domain.decisions import DELIVER
from payhook.domain.webhooks import wire
from payhook.effects.context import EffectContext
from payhook.effects.delivery_plan import Attempt, Record, Target, plan, settle
from payhook.effects.transport import MerchantClient
from payhook.ids import new_id
from payhook.outbox.drain import Outcome
from payhook.outbox.store import Entry
from payhook.redaction import describe, redact

log = logging.getLogger("payhook.deliveries")

__all__ = ["DELIVER", "send", "signed_headers"]
SNIPPET_BYTES = 1024  # of an answer, kept on the attempt
READ_LIMIT_BYTES = 4096  # of an answer: enough for the snippet, never the whole of a huge body


async def send(context: EffectContext, entries: Sequence[Entry]) -> Outcome:
    """Every claimed delivery tried side by side; each row's record written with its settle:
    the delivered and ended ones together, a failed try with its row's retry."""
    planned = plan(entries, await _targets(context.engine, entries))
    attempts = await asyncio.gather(*(_try(context, target) for _, target in planned.tries))
    for (_, target), attempt in zip(planned.tries, attempts, strict=True):
        log.info("delivery attempt", extra={
            "delivery_id": target.id, "endpoint_id": target.endpoint_id,
            "status_code": attempt.status_code, "duration_ms": attempt.duration_ms})
    settled = settle(planned, attempts, clock.now(),
                     timedelta(hours=context.settings.endpoint_disable_after_hours))
    write = partial(_write, settled.records)
    return Outcome(writes=write, failed=settled.failed, failure_writes=write)


async def _targets(engine: AsyncEngine, entries: Sequence[Entry]) -> Mapping[str, Target]:
    """The rows' deliveries with their endpoints, by delivery id."""
    async with reading(engine) as conn:
        return {row.id: Target(**row._mapping) for row in await conn.execute(
            select(deliveries.c.id, deliveries.c.endpoint_id, deliveries.c.event_id,
                   deliveries.c.body, deliveries.c.status, endpoints.c.url,
                   endpoints.c.sealed_secret, endpoints.c.status.label("endpoint_status"),
                   endpoints.c.failing_since, endpoints.c.previous_secret,
                   endpoints.c.previous_secret_expires_at)
            .join(endpoints, endpoints.c.id == deliveries.c.endpoint_id)
            .where(among(conn, deliveries.c.id,
                         {entry.payload["delivery_id"] for entry in entries})))}


async def _try(context: EffectContext, target: Target) -> Attempt:
    """One try: its turn at the merchant's origin, then the signed POST, all within one
    deadline, so that a batch never outlives the drain's handler timeout because one origin is
    slow (a try that found no turn in time fails alone and is retried with backoff). Signed and
    timed once its turn comes."""
    started = time.monotonic()

    def elapsed() -> int:
        return round((time.monotonic() - started) * 1000)

    try:
        async with asyncio.timeout(context.deadline):
            async with context.origins.hold(target.url):
                raw = wire(target.body).encode()
                now = clock.now()
                headers = signed_headers([context.sealer.open(sealed)
                                          for sealed in target.secrets(now)],
                                         target.event_id, raw, now)
                started = time.monotonic()
                status_code, snippet, retry_after = await post(context.http, target.url, raw,
                                                               headers)
    except (net.ForbiddenAddress, net.Unresolvable) as error:
        return Attempt(None, elapsed(), error=f"refused: {redact(str(error))}")
    except Exception as error:  # noqa: BLE001 - one endpoint's fault fails its own try alone
        # Whatever this row holds (a URL httpx cannot use, a secret that will not open), the
        # batch's other deliveries, other merchants' included, still go out and are recorded.
        return Attempt(None, elapsed(), error=_describe(error))
    return Attempt(status_code, elapsed(), snippet, _status_error(status_code),
                   retry_after if status_code in (429, 503) else None)


def signed_headers(secrets: Sequence[str], event_id: str, raw: bytes,
                   now: datetime) -> dict[str, str]:
    """Standard Webhooks headers over exactly ``raw``, one signature per secret, space-separated
    (a receiver holding either secret verifies); ``webhook-id`` is the event id, the same on
    every try, so the merchant can drop duplicates."""
    return {
        "content-type": "application/json",
        "user-agent": f"payhook/{__version__}",
        "webhook-id": event_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": " ".join(Webhook(secret).sign(event_id, now, raw.decode())
                                      for secret in secrets),
    }


Answer = tuple[int, str, float | None]  # status, a snippet of the body, Retry-After seconds


async def post(http: MerchantClient, url: str, raw: bytes, headers: dict[str, str]) -> Answer:
    """POST ``raw`` to ``url``; of the answer only the first READ_LIMIT_BYTES are read. Which
    addresses the client may connect to is its own business (:mod:`payhook.effects.transport`)."""
    status_code, read, retry_after_header = await http.post_bounded(url, raw, headers,
                                                                    READ_LIMIT_BYTES)
    return status_code, snippet(read), retry_after(retry_after_header)


def snippet(read: bytes) -> str:
    """The first KiB of an answer as text; a NUL (which PostgreSQL text cannot hold) shown as
    the replacement character, like any byte that is not UTF-8."""
    return read[:SNIPPET_BYTES].decode(errors="replace").replace("\x00", "\ufffd")


def retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds from now: delay-seconds or an HTTP-date; None if absent or
    unreadable (then the usual backoff applies)."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - clock.now()).total_seconds())


def _status_error(status_code: int) -> str | None:
    if 200 <= status_code < 300:
        return None
    if 300 <= status_code < 400:
        return f"endpoint answered {status_code} (redirects are not followed)"
    if status_code == 410:
        return "endpoint answered 410 Gone: endpoint disabled"
    return f"endpoint answered {status_code}"


def _describe(error: BaseException) -> str:
    """The error as stored on the attempt (the merchant and operators read it): what went
    wrong, never a URL's credentials."""
    if isinstance(error, httpx.TransportError) and isinstance(error.__cause__,
                                                              aiohttp.ClientError):
        # httpx-aiohttp names any lost connection a ConnectTimeout: say what aiohttp saw.
        error = error.__cause__
    if isinstance(error, TimeoutError | httpx.TimeoutException):
        return f"timed out ({type(error).__name__})"
    return describe(error)  # a merchant's URL may carry its own credentials


async def _write(settled: Mapping[str, Record], conn: AsyncConnection,
                 held: Sequence[Entry]) -> None:
    """What the held rows settled: their tries recorded; an untried delivery ended; the
    endpoints' health (continuous failure since when; disabled by a 410 or by failing)."""
    records = [settled[entry.id] for entry in held if entry.id in settled]
    now = clock.now()
    await _record(conn, [(record, record.attempt) for record in records
                         if record.attempt is not None], now)
    if untried := [record.delivery_id for record in records if record.attempt is None]:
        await conn.execute(update(deliveries).where(deliveries.c.id.in_(untried),
                                                    deliveries.c.status != "delivered")
                           .values(status="dead"))
    await endpoint_health(conn, records, now)


async def _record(conn: AsyncConnection, tried: Sequence[tuple[Record, Attempt]],
                  now: datetime) -> None:
    """Each try's row, and its delivery's count and new status (one UPDATE per status)."""
    if not tried:
        return
    await insert_rows(conn, delivery_attempts, [
        {"id": new_id("da"), "delivery_id": record.delivery_id, "attempted_at": now,
         "status_code": attempt.status_code, "duration_ms": attempt.duration_ms,
         "response_snippet": attempt.snippet, "error": attempt.error}
        for record, attempt in tried])
    for status in {record.status for record, _ in tried}:
        changes = {"delivered_at": now} if status == "delivered" else {}
        await update_each(conn, deliveries, [{"id": record.delivery_id} for record, _ in tried
                                             if record.status == status],
                          attempts=deliveries.c.attempts + 1, status=status, **changes)


async def endpoint_health(conn: AsyncConnection, records: Sequence[Record],
                          now: datetime) -> None:
    """Only what changed is written — nothing while an endpoint keeps delivering: a delivery
    ends its endpoint's failing spell, a first failure starts one, a 410 or a spell past the
    limit disables it (the limit checked again in SQL, against the spell as stored)."""
    recovered = {r.endpoint_id for r in records if r.healthy and r.was_failing}
    failing = {r.endpoint_id for r in records if r.healthy is False and not r.was_failing}
    if recovered:
        await conn.execute(update(endpoints).where(endpoints.c.id.in_(recovered))
                           .values(failing_since=None))
    if failing - recovered:
        await conn.execute(update(endpoints).where(endpoints.c.id.in_(failing - recovered),
                                                   endpoints.c.failing_since.is_(None))
                           .values(failing_since=now))
    for reason in ("gone", "failing"):
        chosen = {r.endpoint_id for r in records if r.disable == reason} - recovered
        if not chosen:
            continue
        where = [endpoints.c.id.in_(chosen), endpoints.c.status == "enabled"]
        if reason == "failing":  # another try may have delivered since this one read it
            where.append(endpoints.c.failing_since.is_not(None))
        await conn.execute(update(endpoints).where(*where).values(
            status="disabled", disabled_reason=reason, updated_at=now))
