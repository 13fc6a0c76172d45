"""The customer's access link: a JWT at ``<base>/access/<session id>?token=<jwt>``.

Signed HS256 with a key derived for this purpose only, so it can neither forge nor be forged by
anything else keyed from ``PAYHOOK_SECRET_KEY``. A session gets one link, ever: the handler sets
it with a compare-and-set on the locked row, and in the same writes queues the e-mail that
carries it.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import jwt
from sqlalchemy.ext.asyncio import AsyncConnection

from payhook import clock
from payhook.config import Settings
from payhook.crypto import derive_key
from payhook.db.statements import paid_sessions, update_each
from payhook.db.tables import checkout_sessions
from payhook.domain.decisions import EMAIL
from payhook.errors import Unauthorized
from payhook.ids import new_id
from payhook.outbox import store
from payhook.outbox.drain import Outcome
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


async def issue_links(context: "EffectContext", _entries: Sequence[Entry]) -> Outcome:
    """A link for each paid session that has none, and the e-mail that carries it queued; a
    session that has its link (an earlier run) gets neither again."""

    async def write(conn: AsyncConnection, held: Sequence[Entry]) -> None:
        paid = await paid_sessions(conn, (entry.payload["session_id"] for entry in held),
                                   checkout_sessions.c.customer_access_url,
                                   checkout_sessions.c.customer_email, lock=True)
        now = clock.now()
        links = {session.id: context.links.issue(session.id, now)
                 for session in paid.values() if session.customer_access_url is None}
        await update_each(conn, checkout_sessions, [
            {"id": session_id, "customer_access_url": link.url,
             "customer_access_expires_at": link.expires_at}
            for session_id, link in links.items()],
            checkout_sessions.c.customer_access_url.is_(None), updated_at=now)
        if context.settings.smtp_url:
            await store.enqueue(conn, [(EMAIL, {"session_id": session_id}) for session_id in links
                                       if paid[session_id].customer_email],
                                now, context.settings.outbox_max_attempts)

    return Outcome(write)
