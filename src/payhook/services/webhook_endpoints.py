"""Webhook endpoints: where a merchant receives ``checkout.session.*`` events.

Each endpoint has its own Standard Webhooks signing secret (``whsec_`` + base64 of random
bytes), answered once at creation and kept sealed (AES-GCM) because every delivery needs it
again. Endpoints belong to the caller's merchant and mode; another's is answered like an
unknown id. Deleted endpoints are kept (their deliveries refer to them) but no longer listed.
A merchant has at most 16 in each mode, no two with the same URL.
"""

import base64
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from payhook import clock
from payhook.crypto import Sealer
from payhook.db.pagination import Page, PageRequest, fetch_page
from payhook.db.tables import merchants
from payhook.db.tables import webhook_endpoints as endpoints
from payhook.errors import InvalidRequest, NotFound
from payhook.ids import new_id
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
                 url: str) -> CreatedEndpoint:
    """A new endpoint, unless the caller's mode already has :data:`MAX_PER_MODE` or one with
    this URL. The merchant's row is locked first, so that concurrent creates are checked one
    after the other (on SQLite the one writer does that already)."""
    await conn.execute(select(merchants.c.id).where(merchants.c.id == caller.merchant_id)
                       .with_for_update())
    await _check_room(conn, caller, url)
    secret = generate_secret()
    now = clock.now()
    row = (await conn.execute(
        endpoints.insert().values(
            id=new_id("we"), merchant_id=caller.merchant_id, mode=caller.mode, url=url,
            sealed_secret=sealer.seal(secret), status="enabled", created_at=now, updated_at=now,
        ).returning(*endpoints.c)
    )).one()
    return CreatedEndpoint(row=row, secret=secret)


async def _check_room(conn: AsyncConnection, caller: Caller, url: str) -> None:
    urls = (await conn.execute(select(endpoints.c.url).where(
        *_own(caller), endpoints.c.status != "deleted"))).scalars().all()
    if url in urls:
        raise InvalidRequest("url: this mode already has an endpoint with this URL",
                             param="url", code="url_duplicate")
    if len(urls) >= MAX_PER_MODE:
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


def _own(caller: Caller) -> list[Any]:
    return [endpoints.c.merchant_id == caller.merchant_id, endpoints.c.mode == caller.mode]


def to_object(row: Any, secret: str | None = None) -> dict[str, Any]:
    document = {
        "id": row.id,
        "object": "webhook_endpoint",
        "url": row.url,
        "mode": row.mode,
        "status": row.status,
        "disabled_reason": row.disabled_reason,
        "created_at": clock.iso(row.created_at),
    }
    if secret is not None:
        document["secret"] = secret
    return document
