"""The HTTP client merchant deliveries POST through: aiohttp under httpx's API (httpx-aiohttp),
which costs far less CPU per POST than httpx's own transport (``bench/floor.py`` measures both),
with every guarantee of a delivery kept.

- The address checked is the address connected to: unless private URLs are allowed, the
  connector resolves names only through :class:`PublicResolver`, which answers with the
  addresses :func:`payhook.net.public_host_addresses` checked (or refuses), and aiohttp's DNS
  cache is off, so every new connection is checked again. aiohttp never asks a resolver about an
  IP literal, so :class:`CheckedTransport` checks those itself before the request.
- Host and TLS server name stay the URL's host: the URL is never rewritten; aiohttp connects to
  the resolved address and sends the name. A pooled connection is keyed by that name, so it
  never serves another name that shares its address.
- No redirect is followed (httpx's ``follow_redirects=False``; the transport asks aiohttp for
  none either) and no proxy is taken from the environment (``trust_env=False`` on both).
- Reads stay bounded: the answer is streamed and the caller stops after what it keeps.

A delivery's POST (:meth:`MerchantClient.post_bounded`) goes from httpx's API straight to the
same aiohttp session, past httpx's layers for auth, redirects, cookies and event hooks, none
of which a delivery uses: that halves the client's CPU per POST (``bench/floor.py``). It keeps
each guarantee above: the same connector and resolver, the same literal check, no redirect, no
proxy, the client's timeouts, aiohttp's errors raised as httpx's.
"""

import socket
import ssl
from collections.abc import Callable

import aiohttp
import httpx
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.helpers import is_ip_address
from httpx_aiohttp import AiohttpTransport
from httpx_aiohttp.transport import map_aiohttp_exceptions

from payhook import net

MAX_CONNECTIONS = 100
KEEPALIVE_SECONDS = 5.0
NUMERIC = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV  # what aiohttp's own resolver sets


class PublicResolver(AbstractResolver):
    """A name's addresses only when every one of them is public; :class:`net.ForbiddenAddress`
    or :class:`net.Unresolvable` otherwise (neither is an ``OSError``, so aiohttp lets them
    through unchanged and the attempt records the refusal)."""

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        addresses = await net.public_host_addresses(host, port)
        found: list[ResolveResult] = [
            {"hostname": host, "host": str(address), "port": port,
             "family": socket.AF_INET6 if address.version == 6 else socket.AF_INET,
             "proto": 0, "flags": NUMERIC} for address in addresses]
        wanted = [result for result in found if family in (0, result["family"])]
        return wanted or found

    async def close(self) -> None:
        return None


class CheckedTransport(AiohttpTransport):
    """aiohttp under httpx's API that, unless private URLs are allowed, refuses an IP literal
    that is not public before connecting to it (names are checked by the resolver)."""

    def __init__(self, allow_private: bool, tls: ssl.SSLContext):
        # ``verify=tls``: else it builds a TLS context of its own (the system's CAs read
        # again, ~40 ms) that nothing uses — the session's connector has ``tls``.
        super().__init__(verify=tls, client=_session(allow_private, tls), trust_env=False,
                         limits=httpx.Limits(max_connections=MAX_CONNECTIONS))
        self.allow_private = allow_private

    async def check_literal(self, url: httpx.URL) -> None:
        if not self.allow_private and is_ip_address(url.host):
            await net.public_host_addresses(url.host, url.port)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await self.check_literal(request.url)
        return await super().handle_async_request(request)

    def session(self) -> aiohttp.ClientSession:
        if not isinstance(self.client, aiohttp.ClientSession):
            self.client = self.get_client()
        return self.client


# An answer read as far as the caller keeps: status, the bytes read, the Retry-After header.
Bounded = tuple[int, bytes, str | None]


class MerchantClient(httpx.AsyncClient):
    """The client for merchant endpoints (:func:`merchant_client`), with the delivery's own
    POST beside httpx's API."""

    def __init__(self, transport: CheckedTransport, timeout: httpx.Timeout):
        super().__init__(transport=transport, follow_redirects=False, trust_env=False,
                         timeout=timeout)
        self.checked = transport
        # httpx's timeouts as the transport hands them to aiohttp.
        self.aiohttp_timeout = aiohttp.ClientTimeout(
            sock_connect=timeout.connect, sock_read=timeout.read, connect=timeout.pool)

    async def post_bounded(self, url: str, content: bytes, headers: dict[str, str],
                           limit: int) -> Bounded:
        """POST ``content``; of the answer at most about ``limit`` bytes are read, then the
        connection is dropped unless the answer was read to its end."""
        target = httpx.URL(url)  # what httpx would refuse (no scheme, a bad port) it refuses
        await self.checked.check_literal(target)
        with map_aiohttp_exceptions():
            async with self.checked.session().post(
                    str(target), data=content, headers=headers, allow_redirects=False,
                    auto_decompress=False, compress=False,
                    timeout=self.aiohttp_timeout) as response:
                read = b""
                while len(read) < limit and (chunk := await response.content.read(limit)):
                    read += chunk
                if not response.content.at_eof():
                    response.close()  # not reused: the rest of the answer is never read
                return response.status, read, response.headers.get("retry-after")


def merchant_client(allow_private: bool, verify: ssl.SSLContext | None = None,
                    timeout: httpx.Timeout | None = None) -> MerchantClient:
    """The client for merchant endpoints: short timeouts, no redirects, no proxy, and (unless
    ``allow_private``) only public addresses. ``verify`` replaces the system's CAs (tests)."""
    tls = verify if verify is not None else httpx.create_ssl_context(trust_env=False)
    return MerchantClient(CheckedTransport(allow_private, tls),
                          timeout or httpx.Timeout(10.0, connect=5.0))


def _session(allow_private: bool, tls: ssl.SSLContext) -> Callable[[], aiohttp.ClientSession]:
    """The aiohttp session, made at the first request (it needs the running loop)."""

    def make() -> aiohttp.ClientSession:
        resolver = None if allow_private else PublicResolver()
        connector = aiohttp.TCPConnector(resolver=resolver, use_dns_cache=allow_private,
                                         ssl=tls, limit=MAX_CONNECTIONS,
                                         keepalive_timeout=KEEPALIVE_SECONDS)
        return aiohttp.ClientSession(connector=connector, trust_env=False)

    return make
