"""``delivery.send``: POST one event to one merchant endpoint, signed the Standard Webhooks way.

Every try leaves a ``delivery_attempts`` row (status code, duration, a snippet of the answer or
the error). 2xx delivers. 410 Gone disables the endpoint and ends the delivery. Anything else —
another status, a redirect (never followed), a timeout, an unreachable or non-public address,
and any other error of this one try (a URL httpx cannot use, a secret that will not open) —
fails the attempt alone: its record is committed with the row's retry (with backoff, dead after
the last attempt). Which try leads where is decided by :mod:`payhook.effects.delivery_plan`;
this module reads, POSTs and writes. Unless private URLs are allowed, the host is resolved and
checked at every try, and the request goes to one of the checked addresses (with the original
Host header and TLS server name), so DNS cannot swap in an internal address after the check.
"""

import asyncio
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from functools import partial
from typing import Any

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from standardwebhooks.webhooks import Webhook

from payhook import __version__, clock, net
from payhook.db.engine import reading
from payhook.db.statements import update_each
from payhook.db.tables import deliveries, delivery_attempts
from payhook.db.tables import webhook_endpoints as endpoints
from payhook.effects.context import EffectContext
from payhook.effects.delivery_plan import DELIVERED, FAILED, Attempt, Record, Target, plan, settle
from payhook.ids import new_id
from payhook.outbox.drain import Outcome
from payhook.outbox.store import Entry
from payhook.redaction import describe, redact

log = logging.getLogger("payhook.deliveries")

DELIVER = "delivery.send"
SNIPPET_CHARS = 500
READ_LIMIT_BYTES = 4096  # of an answer: enough for the snippet, never the whole of a huge body
# ``scheme://user:password@`` in an error's text: what precedes the ``@`` is not kept.


@dataclass(frozen=True)
class Route:
    """Where one request goes: the URL (its host possibly replaced by a checked address)."""

    url: httpx.URL
    headers: dict[str, str]
    extensions: dict[str, Any]


async def send(context: EffectContext, entries: Sequence[Entry]) -> Outcome:
    """Every claimed delivery tried side by side; each row's record written with its settle:
    the delivered and ended ones together, a failed try with its row's retry."""
    planned = plan(entries, await _targets(context.engine, entries))
    attempts = await asyncio.gather(*(_try(context, target) for _, target in planned.tries))
    for (_, target), attempt in zip(planned.tries, attempts, strict=True):
        log.info("delivery attempt", extra={
            "delivery_id": target.id, "endpoint_id": target.endpoint_id,
            "status_code": attempt.status_code, "duration_ms": attempt.duration_ms})
    settled = settle(planned, attempts)
    write = partial(_write, settled.records)
    return Outcome(writes=write, failed=settled.failed, failure_writes=write)


async def _targets(engine: AsyncEngine, entries: Sequence[Entry]) -> Mapping[str, Target]:
    """The rows' deliveries with their endpoints, by delivery id."""
    async with reading(engine) as conn:
        return {row.id: Target(**row._mapping) for row in await conn.execute(
            select(deliveries.c.id, deliveries.c.endpoint_id, deliveries.c.event_id,
                   deliveries.c.body, deliveries.c.status, endpoints.c.url,
                   endpoints.c.sealed_secret, endpoints.c.status.label("endpoint_status"))
            .join(endpoints, endpoints.c.id == deliveries.c.endpoint_id)
            .where(deliveries.c.id.in_({entry.payload["delivery_id"] for entry in entries})))}


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
                raw = json.dumps(target.body, separators=(",", ":")).encode()
                headers = signed_headers(context.sealer.open(target.sealed_secret),
                                         target.event_id, raw, clock.now())
                started = time.monotonic()
                routes = await _routes(target.url, context.settings.allow_private_urls)
                status_code, snippet, retry_after = await _post(context.http, routes, raw,
                                                                headers)
    except (net.ForbiddenAddress, net.Unresolvable) as error:
        return Attempt(None, elapsed(), error=f"refused: {redact(str(error))}")
    except Exception as error:  # noqa: BLE001 - one endpoint's fault fails its own try alone
        # Whatever this row holds (a URL httpx cannot use, a secret that will not open), the
        # batch's other deliveries, other merchants' included, still go out and are recorded.
        return Attempt(None, elapsed(), error=_describe(error))
    return Attempt(status_code, elapsed(), snippet, _status_error(status_code),
                   retry_after if status_code in (429, 503) else None)


def signed_headers(secret: str, event_id: str, raw: bytes, now: datetime) -> dict[str, str]:
    """Standard Webhooks headers over exactly ``raw``; ``webhook-id`` is the event id, the
    same on every try, so the merchant can drop duplicates."""
    return {
        "content-type": "application/json",
        "user-agent": f"payhook/{__version__}",
        "webhook-id": event_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(event_id, now, raw.decode()),
    }


async def _routes(url: str, allow_private: bool) -> list[Route]:
    if allow_private:
        return [Route(httpx.URL(url), {}, {})]
    return [pinned(url, address) for address in await net.public_addresses(url)]


def pinned(url: str, address: net.IPAddress) -> Route:
    """The request to ``url`` sent to ``address``: Host header and TLS server name (certificate
    check included) stay the URL's host. ``Connection: close`` keeps a pooled connection made
    for one host name from serving another that shares its address."""
    parsed = httpx.URL(url)
    if net.literal(parsed.host) is not None:
        return Route(parsed, {}, {})
    extensions = {"sni_hostname": parsed.raw_host.decode()} if parsed.scheme == "https" else {}
    return Route(parsed.copy_with(host=str(address)),
                 {"host": parsed.netloc.decode(), "connection": "close"}, extensions)


Answer = tuple[int, str, float | None]  # status, a snippet of the body, Retry-After seconds


async def _post(http: httpx.AsyncClient, routes: list[Route], raw: bytes,
                headers: dict[str, str]) -> Answer:
    """POST to the first address that accepts a connection."""
    for route in routes[:-1]:
        try:
            return await _post_once(http, route, raw, headers)
        except httpx.ConnectError:
            continue
    return await _post_once(http, routes[-1], raw, headers)


async def _post_once(http: httpx.AsyncClient, route: Route, raw: bytes,
                     headers: dict[str, str]) -> Answer:
    async with http.stream("POST", route.url, content=raw, headers={**headers, **route.headers},
                           extensions=route.extensions) as response:
        read = b""
        async for chunk in response.aiter_bytes():
            read += chunk
            if len(read) >= READ_LIMIT_BYTES:
                break
        return (response.status_code, read.decode(errors="replace")[:SNIPPET_CHARS],
                retry_after(response.headers.get("retry-after")))


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
    if isinstance(error, TimeoutError | httpx.TimeoutException):
        return f"timed out ({type(error).__name__})"
    return describe(error)  # a merchant's URL may carry its own credentials


async def _write(settled: Mapping[str, Record], conn: AsyncConnection,
                 held: Sequence[Entry]) -> None:
    """What the held rows settled: their tries recorded; an untried delivery ended; an
    endpoint that answered 410 Gone disabled."""
    records = [settled[entry.id] for entry in held if entry.id in settled]
    now = clock.now()
    await _record(conn, [(record, record.attempt) for record in records
                         if record.attempt is not None], now)
    if untried := [record.delivery_id for record in records if record.attempt is None]:
        await conn.execute(update(deliveries).where(deliveries.c.id.in_(untried),
                                                    deliveries.c.status == "pending")
                           .values(status=FAILED))
    for record in records:
        if record.gone is not None:
            await _disable(conn, record.gone, record.delivery_id, now)


async def _record(conn: AsyncConnection, tried: Sequence[tuple[Record, Attempt]],
                  now: datetime) -> None:
    """Each try's row, and its delivery's count and new status (one UPDATE per status)."""
    if not tried:
        return
    await conn.execute(delivery_attempts.insert(), [
        {"id": new_id("da"), "delivery_id": record.delivery_id, "attempted_at": now,
         "status_code": attempt.status_code, "duration_ms": attempt.duration_ms,
         "response_snippet": attempt.snippet, "error": attempt.error}
        for record, attempt in tried])
    for status, changes in ((None, {}), (FAILED, {"status": FAILED}),
                            (DELIVERED, {"status": DELIVERED, "delivered_at": now})):
        await update_each(conn, deliveries, [{"id": record.delivery_id} for record, _ in tried
                                             if record.status == status],
                          attempts=deliveries.c.attempts + 1, **changes)


async def _disable(conn: AsyncConnection, endpoint_id: str, delivery_id: str,
                   now: datetime) -> None:
    await conn.execute(
        update(endpoints).where(endpoints.c.id == endpoint_id, endpoints.c.status == "enabled")
        .values(status="disabled", updated_at=now,
                disabled_reason=f"answered 410 Gone to delivery {delivery_id} at "
                                f"{clock.iso(now)}"))
