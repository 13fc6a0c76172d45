"""The SMTP connection the access e-mails go out through, from ``PAYHOOK_SMTP_URL``: a few
kept-open connections, each used by one sender at a time."""

import asyncio
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

# scheme → (default port, TLS from the first byte, STARTTLS required)
_SCHEMES = {"smtp": (25, False, False), "smtp+starttls": (587, False, True),
            "smtps": (465, True, False)}
_TIMEOUT_SECONDS = 10.0
CONNECTIONS = 4


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

    async def send(self, recipient: str, message: bytes) -> None:
        """``message`` (as it goes on the wire) to ``recipient``, over a kept-open SMTP
        connection (a new one per message costs more than the message); a connection the
        server has closed meanwhile is opened again, once."""
        link = await self._pool.idle.get()
        try:
            for attempt in (1, 2):
                client = await self._connected(link)
                try:
                    await client.sendmail(self.sender, [recipient], message)
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
