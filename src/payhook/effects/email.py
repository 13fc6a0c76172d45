"""The e-mail that brings the customer their access link, sent through ``PAYHOOK_SMTP_URL``.

Sent outside any transaction, then ``email_sent_at`` is recorded with the fenced ``done``: a
crash between the two sends again (at-least-once), while a re-run after the record sends
nothing. Neither the link nor its token is ever logged; an SMTP error carries neither.
"""

import asyncio
import base64
from collections.abc import Sequence
from email.header import Header
from email.utils import format_datetime, make_msgid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from payhook import clock
from payhook.db.engine import reading
from payhook.db.statements import among, update_each
from payhook.db.tables import checkout_sessions as sessions
from payhook.effects.context import EffectContext
from payhook.effects.mailer import Mailer
from payhook.outbox.drain import Outcome
from payhook.outbox.store import Entry

# What the message and the check before it read of a session.
MESSAGE_COLUMNS = (sessions.c.id, sessions.c.customer_email, sessions.c.customer_name,
                   sessions.c.customer_access_url, sessions.c.customer_access_expires_at,
                   sessions.c.email_sent_at)


async def send_access_emails(context: "EffectContext", entries: Sequence[Entry]) -> Outcome:
    ids = {entry.id: entry.payload["session_id"] for entry in entries}
    async with reading(context.engine) as conn:
        found = {row.id: row for row in await conn.execute(
            select(*MESSAGE_COLUMNS).where(among(conn, sessions.c.id, set(ids.values()))))}
    outcome = Outcome()
    to_send: dict[str, Any] = {}
    for entry_id, session_id in ids.items():
        session = found.get(session_id)
        if session is None:
            outcome.failed[entry_id] = LookupError(f"no session {session_id}")
        elif session.email_sent_at is not None or not session.customer_email:
            continue
        elif session.customer_access_url is None:
            outcome.failed[entry_id] = LookupError(
                f"session {session_id} has no access link to send")
        elif context.mailer is None:
            outcome.failed[entry_id] = LookupError(
                "PAYHOOK_SMTP_URL is not set; replay this row once it is")
        else:
            to_send[entry_id] = session
    if to_send and context.mailer is not None:
        # Each message within its own deadline, its wait for a connection included, and
        # composed within its own try: a slow server or one message that cannot be built fails
        # those messages alone, never the whole batch (whose sent messages would then go out
        # again).
        results = await asyncio.gather(
            *(_send(context.mailer, session, context.deadline) for session in to_send.values()),
            return_exceptions=True)
        for entry_id, result in zip(to_send, results, strict=True):
            if isinstance(result, Exception):
                outcome.failed[entry_id] = result
            elif isinstance(result, BaseException):
                raise result

    async def record(conn: AsyncConnection, held: Sequence[Entry]) -> None:
        now = clock.now()
        await update_each(conn, sessions, [
            {"id": ids[entry.id], "email_sent_at": now} for entry in held if entry.id in to_send],
            sessions.c.email_sent_at.is_(None), updated_at=now)

    outcome.writes = record
    return outcome


async def _send(mailer: Mailer, session: Any, deadline: float) -> None:
    async with asyncio.timeout(deadline):  # wait_for would run the send as a task of its own
        await mailer.send(session.customer_email, compose(session, mailer.sender))


SUBJECT = "Your payment is complete: your access link"
_BODY_HEADERS = (b"MIME-Version: 1.0\r\n"
                 b'Content-Type: text/plain; charset="utf-8"\r\n'
                 b"Content-Transfer-Encoding: base64\r\n\r\n")


def compose(session: Any, sender: str) -> bytes:
    """The message as it goes on the wire (CRLF line ends, the text in base64), written out
    directly: building an ``email.message`` and generating it cost more than the rest of the
    message's work. A header value with a line break is refused (the customer's address is
    checked when the session is created; this guards the sender from the configuration too);
    one that is not ASCII is encoded as RFC 2047 says."""
    headers = {"From": sender, "To": session.customer_email,
               "Date": format_datetime(clock.now()),
               "Message-ID": make_msgid(domain=sender.rpartition("@")[2] or None),
               "Subject": SUBJECT}
    if any(("\r" in value or "\n" in value) for value in headers.values()):
        raise ValueError("an e-mail header value holds a line break")
    greeting = f"Hello {session.customer_name}," if session.customer_name else "Hello,"
    text = (f"{greeting}\n\n"
            f"Thank you: your payment ({session.id}) is complete.\n\n"
            f"Your receipt and purchase are on your personal page:\n\n"
            f"{session.customer_access_url}\n\n"
            f"The link is yours alone; keep it private. It expires on "
            f"{clock.iso(session.customer_access_expires_at)}.\n")
    head = "".join(f"{name}: {_header_value(value)}\r\n" for name, value in headers.items())
    return (head.encode() + _BODY_HEADERS
            + base64.encodebytes(text.encode()).replace(b"\n", b"\r\n"))


def _header_value(value: str) -> str:
    return value if value.isascii() else Header(value, "utf-8").encode()
