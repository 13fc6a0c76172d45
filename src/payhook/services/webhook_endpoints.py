"""Webhook endpoints: where a merchant receives its events (those its ``enabled_events`` name).

Each endpoint has its own Standard Webhooks signing secret (``whsec_`` + base64 of random
bytes), answered once at creation (and at each rotation) and kept sealed (AES-GCM) because
every delivery needs it again. A rotation keeps the secret it replaces until ``expires_in``
passes — deliveries carry both signatures meanwhile — and the sweep destroys it then.
Endpoints belong to the caller's merchant and mode; another's is answered like an unknown id.
Deleted endpoints are kept (their deliveries refer to them) but no longer listed or found. A
merchant has at most 16 in each mode, no two with the same URL. Enabling a disabled endpoint
sends the deliveries it held.
"""

import base64
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from payhook import clock
from payhook.crypto import Sealer
from payhook.db.pagination import Page, PageRequest, fetch_page
from payhook.db.tables import merchants
from payhook.db.tables import webhook_endpoints as endpoints
from payhook.domain.webhooks import EVERY
from payhook.errors import Conflict, InvalidRequest, NotFound
from payhook.ids import new_id
from payhook.schemas import WebhookEndpointCreate, WebhookEndpointUpdate
from payhook.services import deliveries
from payhook.services.api_keys import Caller

SECRET_BYTES = 32  # Standard Webhooks asks for 24 to 64
# Endpoints per merchant and mode (deleted ones aside): one event is delivered at most this
# many times, so no merchant can turn one payment into a flood of requests.
MAX_PER_MODE = 16


@dataclass(frozen=True)
class CreatedEndpoint:
    row: Any
    secret: str  # shown once; only the sealed copy is stored


def generate_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


async def create(conn: AsyncConnection, sealer: Sealer, caller: Caller,
                 body: WebhookEndpointCreate) -> CreatedEndpoint:
    """A new endpoint, unless the caller's mode already has :data:`MAX_PER_MODE` or one with
    this URL."""
    await _lock_merchant(conn, caller)
    await _check_room(conn, caller, body.url)
    secret = generate_secret()
    now = clock.now()
    row = (await conn.execute(
        endpoints.insert().values(
            id=new_id("we"), merchant_id=caller.merchant_id, mode=caller.mode, url=body.url,
            sealed_secret=sealer.seal(secret), status="enabled",
            enabled_events=list(body.enabled_events or (EVERY,)), description=body.description,
            created_at=now, updated_at=now,
        ).returning(*endpoints.c)
    )).one()
    return CreatedEndpoint(row=row, secret=secret)


async def _lock_merchant(conn: AsyncConnection, caller: Caller) -> None:
    """Concurrent creates and URL changes are checked one after the other (on SQLite the one
    writer does that already)."""
    await conn.execute(select(merchants.c.id).where(merchants.c.id == caller.merchant_id)
                       .with_for_update())


async def _check_room(conn: AsyncConnection, caller: Caller, url: str,
                      moving: str | None = None) -> None:
    """Room for ``url`` in the caller's mode (``moving``: the endpoint taking it, not counted)."""
    urls = (await conn.execute(select(endpoints.c.url).where(
        *_own(caller), endpoints.c.status != "deleted", endpoints.c.id != (moving or "")))
    ).scalars().all()
    if url in urls:
        raise InvalidRequest("url: this mode already has an endpoint with this URL",
                             param="url", code="url_duplicate")
    if moving is None and len(urls) >= MAX_PER_MODE:
        raise InvalidRequest(f"url: at most {MAX_PER_MODE} webhook endpoints per mode; "
                             "delete one first", param="url", code="endpoint_limit_reached")


async def list_endpoints(conn: AsyncConnection, caller: Caller, page: PageRequest) -> Page:
    return await fetch_page(conn, endpoints, page, [*_own(caller),
                                                    endpoints.c.status != "deleted"])


async def delete(conn: AsyncConnection, caller: Caller, endpoint_id: str) -> Any:
    """No more deliveries to it; deleting a deleted endpoint answers it again."""
    deleted = (await conn.execute(
        update(endpoints)
        .where(*_own(caller), endpoints.c.id == endpoint_id, endpoints.c.status != "deleted")
        .values(status="deleted", updated_at=clock.now())
        .returning(*endpoints.c)
    )).first()
    if deleted is not None:
        return deleted
    existing = (await conn.execute(
        select(endpoints).where(*_own(caller), endpoints.c.id == endpoint_id))).first()
    if existing is None:
        raise NotFound(f"no such webhook endpoint: {endpoint_id}", param="id")
    return existing


async def get(conn: AsyncConnection, caller: Caller, endpoint_id: str,
              lock: bool = False) -> Any:
    """One of the caller's endpoints (a deleted one is unknown)."""
    query = select(endpoints).where(*_own(caller), endpoints.c.id == endpoint_id,
                                    endpoints.c.status != "deleted")
    row = (await conn.execute(query.with_for_update() if lock else query)).first()
    if row is None:
        raise NotFound(f"no such webhook endpoint: {endpoint_id}", param="id")
    return row


async def enabled(conn: AsyncConnection, caller: Caller, endpoint_id: str) -> Any:
    """The caller's endpoint, locked, and enabled: a disabled one would only hold what is sent
    to it (409: enable it first)."""
    endpoint = await get(conn, caller, endpoint_id, lock=True)
    if endpoint.status != "enabled":
        raise Conflict("the endpoint is disabled: enable it first (disabled: false)",
                       code="endpoint_disabled")
    return endpoint


async def update_endpoint(conn: AsyncConnection, caller: Caller, endpoint_id: str,
                          body: WebhookEndpointUpdate, max_attempts: int) -> Any:
    """The fields the body names; ``disabled: false`` enables the endpoint again, whatever
    disabled it, and sends what it held."""
    if body.url is not None:
        await _lock_merchant(conn, caller)
    current = await get(conn, caller, endpoint_id, lock=True)
    if body.url is not None:
        await _check_room(conn, caller, body.url, moving=endpoint_id)
    row = (await conn.execute(update(endpoints).where(endpoints.c.id == endpoint_id)
                              .values(**_changes(current, body)).returning(*endpoints.c))).one()
    if current.status == "disabled" and row.status == "enabled":
        await deliveries.release_held(conn, endpoint_id, max_attempts)
    return row


def _changes(current: Any, body: WebhookEndpointUpdate) -> dict[str, Any]:
    values: dict[str, Any] = {"updated_at": clock.now()}
    if body.url is not None:
        values["url"] = body.url
        if body.url != current.url:  # a new address: its failures so far were another's
            values["failing_since"] = None
    if body.enabled_events is not None:
        values["enabled_events"] = list(body.enabled_events)
    if "description" in body.model_fields_set:
        values["description"] = body.description
    if body.disabled is True and current.status == "enabled":
        values.update(status="disabled", disabled_reason="merchant")
    elif body.disabled is False and current.status == "disabled":
        values.update(status="enabled", disabled_reason=None, failing_since=None)
    return values


async def rotate_secret(conn: AsyncConnection, sealer: Sealer, caller: Caller,
                        endpoint_id: str, expires_in: int) -> CreatedEndpoint:
    """A new secret, answered once; the current one signs too for ``expires_in`` seconds (0:
    not at all). An older secret still in its overlap is destroyed now: two at most."""
    current = await get(conn, caller, endpoint_id, lock=True)
    secret = generate_secret()
    now = clock.now()
    keep = expires_in > 0
    row = (await conn.execute(update(endpoints).where(endpoints.c.id == current.id).values(
        sealed_secret=sealer.seal(secret),
        previous_secret=current.sealed_secret if keep else None,
        previous_secret_expires_at=now + timedelta(seconds=expires_in) if keep else None,
        updated_at=now).returning(*endpoints.c))).one()
    return CreatedEndpoint(row=row, secret=secret)


async def destroy_expired_secrets(conn: AsyncConnection, now: datetime) -> int:
    """Rotated-out secrets whose overlap has ended: gone for good."""
    destroyed = await conn.execute(
        update(endpoints).where(endpoints.c.previous_secret_expires_at <= now)
        .values(previous_secret=None, previous_secret_expires_at=None))
    return int(destroyed.rowcount)


def _own(caller: Caller) -> list[Any]:
    return [endpoints.c.merchant_id == caller.merchant_id, endpoints.c.mode == caller.mode]


def to_object(row: Any, secret: str | None = None) -> dict[str, Any]:
    document = {
        "id": row.id,
        "object": "webhook_endpoint",
        "url": row.url,
        "mode": row.mode,
        "enabled_events": list(row.enabled_events),
        "description": row.description,
        "status": row.status,
        "disabled_reason": row.disabled_reason,
        "previous_secret_expires_at": clock.iso(row.previous_secret_expires_at),
        "created_at": clock.iso(row.created_at),
    }
    if secret is not None:
        document["secret"] = secret
    return document
