"""The customer's access link: a JWT at ``<base>/access/<session id>?token=<jwt>``.

Signed HS256 with a key derived for this purpose only, so it can neither forge nor be forged by
anything else keyed from ``PAYHOOK_SECRET_KEY``. A session gets one link, ever: the handler sets
it with a compare-and-set, and in the same writes queues the e-mail that carries it.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import jwt
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from payhook import clock
from payhook.config import Settings
from payhook.crypto import derive_key
from payhook.db.tables import checkout_sessions, outbox_entries
from payhook.domain.decisions import EMAIL
from payhook.errors import Unauthorized
from payhook.ids import new_id
from payhook.outbox import store
from payhook.outbox.drain import Writes
from payhook.outbox.store import Entry

if TYPE_CHECKING:  # the context holds an AccessLinks: import it for annotations only
    from payhook.effects.context import EffectContext

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


async def issue_link(context: "EffectContext", entry: Entry) -> Writes:
    session_id = entry.payload["session_id"]

    async def write(conn: AsyncConnection) -> None:
        now = clock.now()
        link = context.links.issue(session_id, now)
        issued = (await conn.execute(
            update(checkout_sessions)
            .where(checkout_sessions.c.id == session_id, checkout_sessions.c.status == "paid",
                   checkout_sessions.c.customer_access_url.is_(None))
            .values(customer_access_url=link.url, customer_access_expires_at=link.expires_at,
                    updated_at=now)
            .returning(checkout_sessions.c.customer_email))).first()
        if issued is None:
            await _require_paid(conn, session_id)
            return  # issued by an earlier run: never a second link, nor a second e-mail
        if issued.customer_email and context.settings.smtp_url:
            await conn.execute(outbox_entries.insert().values(store.new_entry(
                EMAIL, {"session_id": session_id}, now, context.settings.outbox_max_attempts)))

    return write


async def _require_paid(conn: AsyncConnection, session_id: str) -> None:
    paid = await conn.scalar(select(checkout_sessions.c.id).where(
        checkout_sessions.c.id == session_id, checkout_sessions.c.status == "paid"))
    if paid is None:
        raise LookupError(f"no paid session {session_id}")
