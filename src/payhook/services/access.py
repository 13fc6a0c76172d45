"""The customer's access to a session: the signed link, what its page shows, and the one
reveal of the API key provisioned for it.

The link is a JWT at ``<base>/access/<session id>?token=<jwt>``, signed HS256 with a key derived
for this purpose only, so it can neither forge nor be forged by anything else keyed from
``PAYHOOK_SECRET_KEY``. The worker issues it (:mod:`payhook.effects.access_links`); the web
process checks it and answers the page.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from payhook.config import Settings
from payhook.crypto import Sealer, Unsealable, derive_key
from payhook.db.tables import api_keys, checkout_sessions, invoices
from payhook.errors import Conflict, Unauthorized
from payhook.ids import new_id
from payhook.services import api_keys as api_key_service
from payhook.services import invoices as invoice_service
from payhook.services import sessions

AUDIENCE = "payhook:access"
ISSUER = "payhook"
ALGORITHM = "HS256"
CLOCK_SKEW_SECONDS = 30  # the worker that signs and the web process that checks may disagree
REQUIRED_CLAIMS = ["exp", "iat", "aud", "iss", "sub", "jti"]


class InvalidLink(Unauthorized):
    code = "invalid_access_token"

    def __init__(self) -> None:
        # One message for every cause: a visitor learns nothing about why it failed.
        super().__init__("the access link is invalid or has expired", param="token")


@dataclass(frozen=True)
class Link:
    url: str
    expires_at: datetime


class AccessLinks:
    def __init__(self, secret: str, base_url: str, days: int):
        self._key = derive_key(secret, "access-links")
        self._base_url = base_url
        self._lifetime = timedelta(days=days)

    @classmethod
    def from_settings(cls, settings: Settings) -> "AccessLinks":
        return cls(settings.require_secret(), settings.public_base_url,
                   settings.access_link_days)

    def issue(self, session_id: str, now: datetime) -> Link:
        issued_at = int(now.timestamp())
        expires = issued_at + int(self._lifetime.total_seconds())
        token = jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "sub": session_id,
                            "iat": issued_at, "exp": expires, "jti": new_id("al")},
                           self._key, algorithm=ALGORITHM)
        return Link(url=f"{self._base_url}/access/{session_id}?token={token}",
                    expires_at=datetime.fromtimestamp(expires, UTC))

    def verify(self, session_id: str, token: str) -> dict[str, Any]:
        """The claims of a valid, unexpired token for exactly this session; else InvalidLink.

        The algorithm is pinned here, never read from the token (no ``none``, no others).
        """
        try:
            return jwt.decode(token, self._key, algorithms=[ALGORITHM], audience=AUDIENCE,
                              issuer=ISSUER, subject=session_id, leeway=CLOCK_SKEW_SECONDS,
                              options={"require": REQUIRED_CLAIMS, "strict_aud": True})
        except jwt.PyJWTError:
            raise InvalidLink() from None


@dataclass(frozen=True)
class AccessPage:
    """What the page shows: the session, its invoice (None until created) and the key
    provisioned for it (None if none was), with ``waiting``: whether its raw value still waits
    to be revealed. The sealed value itself is never read for the page."""

    session: Any
    invoice: Any | None
    key: Any | None


@dataclass(frozen=True)
class RevealedKey:
    row: Any
    secret: str


async def read_page(conn: AsyncConnection, session_id: str) -> AccessPage:
    session = await _session(conn, session_id)
    invoice = (await conn.execute(
        select(invoices).where(invoices.c.session_id == session_id))).first()
    waiting = and_(api_keys.c.sealed_secret.is_not(None), api_keys.c.revoked_at.is_(None))
    key = (await conn.execute(
        select(*(column for column in api_keys.c if column.key != "sealed_secret"),
               waiting.label("waiting"))
        .where(api_keys.c.provisioned_for == session_id))).first()
    return AccessPage(session=session, invoice=invoice, key=key)


def to_object(page: AccessPage, settings: Settings) -> dict[str, Any]:
    """The page as JSON; a waiting key says where to reveal it, never what it is."""
    key = None
    if page.key is not None:
        key = {**api_key_service.to_object(page.key), "revealed": not page.key.waiting}
        if page.key.waiting:
            key["reveal_url"] = f"{settings.public_base_url}/access/{page.session.id}/reveal"
    return {
        "object": "customer_access",
        "session": sessions.to_object(page.session, settings),
        "invoice": invoice_service.to_object(page.invoice) if page.invoice is not None else None,
        "api_key": key,
    }


async def reveal(conn: AsyncConnection, sealer: Sealer, session_id: str) -> RevealedKey:
    """Take the key provisioned for this session and destroy its sealed copy, once; a
    :class:`Conflict` when there is none, or it was revealed or revoked already.

    RETURNING gives the row after the update (the secret already gone), so the sealed value is
    read first and the UPDATE is the compare-and-set: of two concurrent reveals only the one
    whose UPDATE still finds the secret reveals it (on PostgreSQL the other waits for the row
    lock, then no longer matches; SQLite has one writer).
    """
    await _session(conn, session_id)
    found = (await conn.execute(
        select(api_keys.c.id, api_keys.c.sealed_secret, api_keys.c.revoked_at)
        .where(api_keys.c.provisioned_for == session_id))).first()
    if found is None:
        raise Conflict("no API key was provisioned for this session", code="no_api_key")
    taken = (await conn.execute(
        update(api_keys)
        .where(api_keys.c.id == found.id, api_keys.c.sealed_secret.is_not(None),
               api_keys.c.revoked_at.is_(None))
        .values(sealed_secret=None)
        .returning(*api_keys.c))).first()
    if taken is None:
        if found.revoked_at is not None:
            raise Conflict("this API key was revoked", code="api_key_revoked")
        raise Conflict("this API key was already revealed: it is shown only once",
                       code="api_key_already_revealed")
    try:
        secret = sealer.open(found.sealed_secret)
    except Unsealable:  # raised inside the caller's transaction: the sealed copy stays
        raise Conflict("this API key cannot be opened any more (the service's secret key "
                       "changed); an operator can issue the merchant a new key",
                       code="api_key_unavailable") from None
    return RevealedKey(row=taken, secret=secret)


async def _session(conn: AsyncConnection, session_id: str) -> Any:
    """The session a valid token names; one that no longer exists is the same 401."""
    session = (await conn.execute(select(checkout_sessions).where(
        checkout_sessions.c.id == session_id))).first()
    if session is None:
        raise InvalidLink()
    return session
