"""Which network addresses a merchant's webhook URL may reach: public ones only.

A URL is checked when its endpoint is created and again at every delivery, against every
address its host resolves to (a name can be re-pointed at an internal address later). The
delivery's connector resolves through this check (:mod:`payhook.effects.transport`), so it
connects to the very addresses checked and a name that answers differently the second time (DNS
rebinding) cannot slip an internal address past the check.
``PAYHOOK_ALLOW_PRIVATE_URLS=true`` turns the check off (local development, tests).
"""

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

CGNAT = ipaddress.IPv4Network("100.64.0.0/10")  # carrier-grade NAT; not ``is_private``
RESOLVE_TIMEOUT_SECONDS = 5.0


class ForbiddenAddress(Exception):
    """The URL's host is, or resolves to, an address that is not public. The message names the
    address: it is for operators, not for the merchant's API answer."""


class Unresolvable(Exception):
    """The URL's host does not resolve (now)."""


def is_forbidden(address: IPAddress) -> bool:
    """Loopback, private, link-local, CGNAT, unspecified, multicast, reserved, IPv4-mapped, or
    anything else that is not globally reachable."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return True
        embedded = address.sixtofour or (address.teredo[1] if address.teredo else None)
        if embedded is not None and is_forbidden(embedded):
            return True
    elif address in CGNAT:
        return True
    return (address.is_private or address.is_loopback or address.is_link_local
            or address.is_reserved or address.is_multicast or address.is_unspecified
            or not address.is_global)


def literal(host: str) -> IPAddress | None:
    """The host as an IP address when it is written as one (``[::1]`` arrives as ``::1``)."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


async def resolve(host: str, port: int | None = None) -> list[IPAddress]:
    """Every address ``host`` resolves to, in the resolver's preferred order, without blocking
    the event loop; :class:`Unresolvable` when it resolves to none."""
    address = literal(host)
    if address is not None:
        return [address]
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), RESOLVE_TIMEOUT_SECONDS)
    except (OSError, UnicodeError, TimeoutError) as error:
        raise Unresolvable(f"{host} does not resolve ({type(error).__name__})") from None
    found: list[IPAddress] = []
    for info in infos:
        # A scoped IPv6 address ("fe80::1%eth0") is link-local whatever its scope.
        resolved = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if resolved not in found:
            found.append(resolved)
    if not found:
        raise Unresolvable(f"{host} does not resolve")
    return found


async def public_addresses(url: str) -> list[IPAddress]:
    """The addresses the URL's host resolves to, all of them public, or
    :class:`ForbiddenAddress` naming the first that is not (:class:`Unresolvable` if none)."""
    parts = urlsplit(url)
    return await public_host_addresses(parts.hostname or "", parts.port)


async def public_host_addresses(name: str, port: int | None = None) -> list[IPAddress]:
    """:func:`public_addresses` for a host name (or literal) and port, as a connector's
    resolver is asked for them."""
    host = name.rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):  # RFC 6761: always loopback
        raise ForbiddenAddress(f"{host} is a loopback name")
    addresses = await resolve(host, port)
    for address in addresses:
        if is_forbidden(address):
            named = "" if literal(host) is not None else f"{host} resolves to "
            raise ForbiddenAddress(f"{named}{address}: a non-public address")
    return addresses
