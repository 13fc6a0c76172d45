"""The e-mail that brings the customer their access link, sent through ``PAYHOOK_SMTP_URL``.

Sent outside any transaction, then ``email_sent_at`` is recorded with the fenced ``done``: a
crash between the two sends again (at-least-once), while a re-run after the record sends
nothing. Neither the link nor its token is ever logged; an SMTP error carries neither.
"""

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import Message
from email.policy import compat32
from email.utils import format_datetime, make_msgid
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from payhook import clock
from payhook.db.engine import reading
from payhook.db.statements import update_each
from payhook.db.tables import checkout_sessions as sessions
from payhook.outbox.drain import Outcome
from payhook.outbox.store import Entry

if TYPE_CHECKING:  # the context holds a Mailer: import it for annotations only
    from payhook.effects.context import EffectContext

# scheme → (default port, TLS from the first byte, STARTTLS required)
_SCHEMES = {"smtp": (25, False, False), "smtp+starttls": (587, False, True),
            "smtps": (465, True, False)}
_TIMEOUT_SECONDS = 10.0
CONNECTIONS = 4
_WIRE = compat32.clone(linesep="\r\n")


@dataclass
class _Link:
    """One kept-open connection, used by one sender at a time."""

    client: aiosmtplib.SMTP | None = None


class _Pool:
    """A few kept-open connections, so that one message's round trips overlap another's; the
    one used last is used next, so a quiet worker keeps only one open."""

    def __init__(self, size: int):
        self.links = [_Link() for _ in range(size)]
        self.idle: asyncio.LifoQueue[_Link] = asyncio.LifoQueue()
        for link in self.links:
            self.idle.put_nowait(link)


@dataclass(frozen=True)
class Mailer:
    hostname: str
    port: int
    use_tls: bool
    start_tls: bool
    sender: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    _pool: _Pool = field(default_factory=lambda: _Pool(CONNECTIONS), repr=False,
                         compare=False)

    @classmethod
    def from_url(cls, url: str, default_sender: str) -> "Mailer":
        """``smtp://``, ``smtp+starttls://`` or ``smtps://[user:password@]host[:port]``, with an
        optional ``?from=address``; anything else is a ValueError."""
        parts = urlsplit(url)
        if parts.scheme not in _SCHEMES:
            raise ValueError("the scheme must be smtp, smtp+starttls or smtps")
        if not parts.hostname or parts.path not in ("", "/"):
            raise ValueError("expected scheme://[user:password@]host[:port]")
        query = parse_qs(parts.query, keep_blank_values=True)
        if set(query) - {"from"} or len(query.get("from", [])) > 1:
            raise ValueError("the only query parameter is from=<address>")
        default_port, use_tls, start_tls = _SCHEMES[parts.scheme]
        return cls(hostname=parts.hostname, port=parts.port or default_port, use_tls=use_tls,
                   start_tls=start_tls, sender=query.get("from", [default_sender])[0],
                   username=unquote(parts.username) if parts.username else None,
                   password=unquote(parts.password) if parts.password else None)

    async def send(self, message: Message) -> None:
        """Over a kept-open SMTP connection (a new one per message costs more than the
        message); a connection the server has closed meanwhile is opened again, once."""
        link = await self._pool.idle.get()
        try:
            for attempt in (1, 2):
                client = await self._connected(link)
                try:
                    await client.sendmail(self.sender, [message["To"]],
                                          message.as_bytes(policy=_WIRE))
                    return
                except (aiosmtplib.SMTPServerDisconnected, ConnectionError):
                    await _quit(link)
                    if attempt == 2:
                        raise
        finally:
            self._pool.idle.put_nowait(link)

    async def _connected(self, link: _Link) -> aiosmtplib.SMTP:
        if link.client is None or not link.client.is_connected:
            client = aiosmtplib.SMTP(hostname=self.hostname, port=self.port,
                                     use_tls=self.use_tls, start_tls=self.start_tls,
                                     timeout=_TIMEOUT_SECONDS)
            await client.connect()
            if self.username is not None and self.password is not None:
                await client.login(self.username, self.password)
            link.client = client
        return link.client

    async def close(self) -> None:
        for link in self._pool.links:
            await _quit(link)


async def _quit(link: _Link) -> None:
    client, link.client = link.client, None
    if client is not None and client.is_connected:
        try:
            await client.quit()
        except (aiosmtplib.SMTPException, ConnectionError):
            client.close()


async def send_access_emails(context: "EffectContext", entries: Sequence[Entry]) -> Outcome:
    ids = {entry.id: entry.payload["session_id"] for entry in entries}
    async with reading(context.engine) as conn:
        found = {row.id: row for row in await conn.execute(
            select(sessions).where(sessions.c.id.in_(set(ids.values()))))}
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
    await asyncio.wait_for(mailer.send(compose(session, mailer.sender)), deadline)


SUBJECT = "Your payment is complete: your access link"


def compose(session: Any, sender: str) -> Message:
    """The message, built with the ``compat32`` policy: the default policy parses every header
    it is given, which cost more than the rest of the session's effects together. So nothing
    here is parsed, and a header value with a line break is refused (the customer's address is
    checked when the session is created; this guards the sender from the configuration too)."""
    headers = {"From": sender, "To": session.customer_email,
               "Date": format_datetime(clock.now()),
               "Message-ID": make_msgid(domain=sender.rpartition("@")[2] or None),
               "Subject": SUBJECT}
    if any(("\r" in value or "\n" in value) for value in headers.values()):
        raise ValueError("an e-mail header value holds a line break")
    message = Message()
    for name, value in headers.items():
        message[name] = value
    greeting = f"Hello {session.customer_name}," if session.customer_name else "Hello,"
    message.set_payload(
        f"{greeting}\n\n"
        f"Thank you: your payment ({session.id}) is complete.\n\n"
        f"Your receipt and purchase are on your personal page:\n\n"
        f"{session.customer_access_url}\n\n"
        f"The link is yours alone; keep it private. It expires on "
        f"{clock.iso(session.customer_access_expires_at)}.\n", charset="utf-8")
    return message
