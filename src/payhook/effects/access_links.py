"""A customer access link (:class:`payhook.services.access.AccessLinks`) for each paid session.

A session gets one link, ever: the handler sets it with a compare-and-set on the locked row, and
in the same writes queues the e-mail that carries it.
"""

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncConnection

from payhook import clock
from payhook.db.statements import paid_sessions, update_each
from payhook.db.tables import checkout_sessions
from payhook.domain.decisions import EMAIL
from payhook.effects.context import EffectContext
from payhook.outbox import store
from payhook.outbox.drain import Outcome
from payhook.outbox.store import Entry


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
