"""The delivery transport (aiohttp under httpx's API) keeps every guarantee of a delivery, each
proven against a real socket: the address checked is the address connected to, Host and TLS
server name are the URL's host, no redirect is followed, no proxy is taken from the
environment, a huge answer is read only as far as kept, one origin gets its limit of requests at
a time, and the deadline ends a try that hangs.

No real DNS: ``net.resolve`` is replaced by a scripted resolver, and loopback addresses play the
public ones (``net.is_forbidden`` answers for them as told), so the production client — the
strict one, with the check on — can be aimed at peers on this machine.
"""

import asyncio
import ipaddress
import time

import httpx
import pytest

from payhook import net
from payhook.effects import deliveries
from payhook.effects.context import OriginGates
from payhook.effects.transport import merchant_client
from tests import http_peer

PUBLIC = "127.0.0.1"  # plays a public address
INTERNAL = "127.0.0.2"  # plays an internal one
BODY = b'{"type":"test"}'
HEADERS = {"content-type": "application/json"}


@pytest.fixture
def dns(monkeypatch):
    """Scripted answers per name, the next one at each lookup; every lookup is noted."""
    answers: dict[str, list[str]] = {}
    lookups: list[str] = []
    real = net.is_forbidden

    async def resolve(host, port=None):
        literal = net.literal(host)
        if literal is not None:
            return [literal]
        lookups.append(host)
        script = answers[host]
        return [ipaddress.ip_address(script.pop(0) if len(script) > 1 else script[0])]

    monkeypatch.setattr(net, "resolve", resolve)
    monkeypatch.setattr(net, "is_forbidden",
                        lambda address: str(address) != PUBLIC and real(address))
    return answers, lookups


@pytest.fixture
async def client():
    http = merchant_client(allow_private=False)
    yield http
    await http.aclose()


async def test_a_name_that_answers_differently_after_the_check_is_never_connected_to(
        dns, client):
    """One lookup per connection, and the connection goes to its answer: a second answer
    naming an internal address is refused, and nothing there is ever connected to."""
    answers, lookups = dns
    async with http_peer.running(PUBLIC) as shop, http_peer.running(INTERNAL, shop.port) as lan:
        shop.close = True  # every request needs a new connection, so a new lookup
        answers["rebind.example"] = [PUBLIC, INTERNAL]
        url = f"http://rebind.example:{shop.port}/hook"
        assert (await deliveries.post(client, url, BODY, HEADERS))[0] == 200
        assert lookups == ["rebind.example"] and shop.connections == 1

        with pytest.raises(net.ForbiddenAddress, match=INTERNAL):
            await deliveries.post(client, url, BODY, HEADERS)
        assert lookups == ["rebind.example"] * 2
        assert lan.connections == 0 and shop.connections == 1


async def test_internal_literals_and_loopback_names_are_refused_without_a_connection(
        dns, client):
    async with http_peer.running(INTERNAL) as lan:
        for url in (f"http://{INTERNAL}:{lan.port}/", f"http://localhost:{lan.port}/"):
            with pytest.raises(net.ForbiddenAddress):
                await deliveries.post(client, url, BODY, HEADERS)
        assert lan.connections == 0


async def test_host_and_tls_server_name_are_the_urls_host(dns, tmp_path):
    """Over TLS to a checked address: the certificate is verified for the URL's name, which
    is also the SNI and the Host header; a certificate for another name fails."""
    answers, _ = dns
    answers["shop.example"] = answers["other.example"] = [PUBLIC]
    tls = http_peer.certificates("shop.example", tmp_path)
    http = merchant_client(allow_private=False, verify=tls.client)
    try:
        async with http_peer.running(PUBLIC, tls=tls.server) as shop:
            url = f"https://shop.example:{shop.port}/hook"
            assert (await deliveries.post(http, url, BODY, HEADERS))[0] == 200
            [request] = shop.requests
            assert request.headers["host"] == f"shop.example:{shop.port}"
            assert shop.server_names == ["shop.example"]
            with pytest.raises(httpx.TransportError) as caught:
                await deliveries.post(http, f"https://other.example:{shop.port}/", BODY,
                                      HEADERS)
            assert "certificate" in repr(caught.value.__cause__).lower()
            assert len(shop.requests) == 1
    finally:
        await http.aclose()


async def test_a_redirect_is_answered_not_followed(dns, client):
    async with http_peer.running(PUBLIC) as shop:
        shop.answer = "redirect"
        status, _, _ = await deliveries.post(client, f"http://{PUBLIC}:{shop.port}/hook", BODY,
                                             HEADERS)
        assert status == 302
        assert [request.line for request in shop.requests] == ["POST /hook HTTP/1.1"]


async def test_proxy_settings_in_the_environment_are_ignored(dns, monkeypatch):
    async with http_peer.running(PUBLIC) as shop, http_peer.running(PUBLIC) as proxy:
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                     "all_proxy"):
            monkeypatch.setenv(name, f"http://{PUBLIC}:{proxy.port}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        http = merchant_client(allow_private=False)  # made with the proxy in its environment
        try:
            assert (await deliveries.post(http, f"http://{PUBLIC}:{shop.port}/hook", BODY,
                                          HEADERS))[0] == 200
        finally:
            await http.aclose()
        assert len(shop.requests) == 1 and proxy.connections == 0


async def test_a_huge_answer_is_read_only_as_far_as_it_is_kept(dns, client):
    """A 1 GiB answer: the try ends after READ_LIMIT_BYTES, the connection is dropped, and
    the peer got to write no more than socket buffers hold."""
    async with http_peer.running(PUBLIC) as shop:
        shop.answer = "endless"
        started = time.monotonic()
        status, snippet, _ = await deliveries.post(client, f"http://{PUBLIC}:{shop.port}/hook",
                                                   BODY, HEADERS)
        assert status == 200 and snippet == "x" * deliveries.SNIPPET_BYTES
        async with asyncio.timeout(5):
            await shop.finished.wait()  # the client hung up
        assert shop.written < 64 << 20 and time.monotonic() - started < 5


async def test_one_origin_gets_its_limit_of_requests_at_a_time(dns, client):
    gates = OriginGates(limit=2)
    async with http_peer.running(PUBLIC) as shop:
        shop.answer = "slow"
        url = f"http://{PUBLIC}:{shop.port}/hook"

        async def one() -> int:
            async with gates.hold(url):
                return (await deliveries.post(client, url, BODY, HEADERS))[0]

        assert await asyncio.gather(*(one() for _ in range(6))) == [200] * 6
        assert shop.most_in_flight == 2 and len(shop.requests) == 6


async def test_the_deadline_ends_a_hanging_try_and_a_refused_one_says_so(dns, client):
    async with http_peer.running(PUBLIC) as shop:
        shop.answer = "hang"
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await deliveries.post(client, f"http://{PUBLIC}:{shop.port}/hook", BODY,
                                      HEADERS)
        assert time.monotonic() - started < 2 and len(shop.requests) == 1
        closed_port = shop.port
    with pytest.raises(httpx.TransportError) as caught:
        await deliveries.post(client, f"http://{PUBLIC}:{closed_port}/hook", BODY, HEADERS)
    described = deliveries._describe(caught.value)
    assert "timed out" not in described and "Cannot connect" in described


async def test_httpx_api_of_the_same_client_keeps_the_checks(dns, client):
    """Deliveries POST past httpx's layers (``post_bounded``); the client's httpx API, over the
    same aiohttp session, refuses what a delivery refuses and follows no redirect either."""
    answers, lookups = dns
    async with http_peer.running(PUBLIC) as shop, http_peer.running(INTERNAL, shop.port) as lan:
        shop.close = True
        answers["rebind.example"] = [PUBLIC, INTERNAL]
        url = f"http://rebind.example:{shop.port}/hook"
        assert (await client.post(url, content=BODY, headers=HEADERS)).status_code == 200
        with pytest.raises(net.ForbiddenAddress, match=INTERNAL):
            await client.post(url, content=BODY, headers=HEADERS)
        with pytest.raises(net.ForbiddenAddress):
            await client.post(f"http://{INTERNAL}:{lan.port}/", content=BODY)
        assert lookups == ["rebind.example"] * 2 and lan.connections == 0
        shop.answer = "redirect"
        answer = await client.post(f"http://{PUBLIC}:{shop.port}/hook", content=BODY)
        assert answer.status_code == 302 and len(shop.requests) == 2
