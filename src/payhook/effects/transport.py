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
"""

import socket
import ssl
from collections.abc import Callable

import aiohttp
import httpx
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.helpers import is_ip_address
from httpx_aiohttp import AiohttpTransport

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
    """Refuses an IP literal that is not public before aiohttp connects to it (names are
    checked by the resolver)."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if is_ip_address(request.url.host):
            await net.public_host_addresses(request.url.host, request.url.port)
        return await super().handle_async_request(request)


def merchant_client(allow_private: bool, verify: ssl.SSLContext | None = None,
                    timeout: httpx.Timeout | None = None) -> httpx.AsyncClient:
    """The client for merchant endpoints: short timeouts, no redirects, no proxy, and (unless
    ``allow_private``) only public addresses. ``verify`` replaces the system's CAs (tests)."""
    tls = verify if verify is not None else httpx.create_ssl_context(trust_env=False)
    kind = AiohttpTransport if allow_private else CheckedTransport
    transport = kind(client=_session(allow_private, tls), trust_env=False,
                     limits=httpx.Limits(max_connections=MAX_CONNECTIONS))
    return httpx.AsyncClient(transport=transport, follow_redirects=False, trust_env=False,
                             timeout=timeout or httpx.Timeout(10.0, connect=5.0))


def _session(allow_private: bool, tls: ssl.SSLContext) -> Callable[[], aiohttp.ClientSession]:
    """The aiohttp session, made at the first request (it needs the running loop)."""

    def make() -> aiohttp.ClientSession:
        resolver = None if allow_private else PublicResolver()
        connector = aiohttp.TCPConnector(resolver=resolver, use_dns_cache=allow_private,
                                         ssl=tls, limit=MAX_CONNECTIONS,
                                         keepalive_timeout=KEEPALIVE_SECONDS)
        return aiohttp.ClientSession(connector=connector, trust_env=False)

    return make
