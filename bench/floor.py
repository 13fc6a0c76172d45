"""The floor under ``make bench-worker``'s throughput: a paid session's two network calls alone.

One POST as the worker makes it, ``MerchantClient.post_bounded`` straight to aiohttp (at most
8 in flight, the worker's limit per merchant origin; the same POST through httpx's own
transport, and through httpx's API over aiohttp, are measured beside it), and one aiosmtplib
message (over 4 kept-open connections, as the worker's mailer), run in a process of their own
against the endpoint and inbox ``bench.worker`` runs, on uvloop as the worker is. The CPU they
cost per session is what no change to payhook's own code can go below with this stack:

    .venv/bin/python -m bench.floor --http http://127.0.0.1:PORT/hook --smtp 127.0.0.1:PORT

It prints one JSON object: microseconds of this process's CPU per POST (``post_us``, the worker's
way; ``httpx_api_post_us``, httpx's API over the same aiohttp transport; ``httpx_post_us``,
plain httpx) and per message.
"""

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable

import aiosmtplib
import httpx
import uvloop

from payhook.effects.transport import MerchantClient, merchant_client

POSTS_IN_FLIGHT = 8
SMTP_CONNECTIONS = 4
BODY = json.dumps({"type": "bench.floor", "data": {"pad": "x" * 1500}}).encode()
MESSAGE = (b"From: shop@payhook.test\r\nTo: floor@payhook.test\r\nSubject: floor\r\n"
           b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + b"x" * 600 + b"\r\n")


def httpx_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=10, follow_redirects=False, trust_env=False)


def aiohttp_client() -> httpx.AsyncClient:
    """What the worker POSTs through (private URLs allowed, as the bench's worker runs)."""
    return merchant_client(allow_private=True)


async def posts(url: str, count: int, client: Callable[[], httpx.AsyncClient],
                bounded: bool = False) -> None:
    """``count`` POSTs, through httpx's API or (``bounded``) the worker's own way."""
    gate = asyncio.Semaphore(POSTS_IN_FLIGHT)
    headers = {"content-type": "application/json"}
    async with client() as http:
        async def one() -> None:
            async with gate:
                if bounded:
                    assert isinstance(http, MerchantClient)
                    await http.post_bounded(url, BODY, headers, 4096)
                    return
                async with http.stream("POST", url, content=BODY, headers=headers) as answer:
                    async for _ in answer.aiter_bytes():
                        pass

        await asyncio.gather(*(one() for _ in range(count)))


async def messages(host: str, port: int, count: int) -> None:
    idle: asyncio.LifoQueue[aiosmtplib.SMTP] = asyncio.LifoQueue()
    clients = [aiosmtplib.SMTP(hostname=host, port=port) for _ in range(SMTP_CONNECTIONS)]
    for client in clients:
        await client.connect()
        idle.put_nowait(client)

    async def one() -> None:
        client = await idle.get()
        try:
            await client.sendmail("shop@payhook.test", ["floor@payhook.test"], MESSAGE)
        finally:
            idle.put_nowait(client)

    try:
        await asyncio.gather(*(one() for _ in range(count)))
    finally:
        for client in clients:
            await client.quit()


async def cpu_per_call(run: Callable[[int], Awaitable[None]], count: int) -> float:
    await run(max(50, count // 10))  # warm: connections open, code paths hot
    started = time.process_time()
    await run(count)
    return (time.process_time() - started) / count * 1e6


async def main(args: argparse.Namespace) -> dict[str, float]:
    host, _, port = args.smtp.rpartition(":")
    httpx_us = await cpu_per_call(lambda n: posts(args.http, n, httpx_client), args.count)
    api_us = await cpu_per_call(lambda n: posts(args.http, n, aiohttp_client), args.count)
    post_us = await cpu_per_call(lambda n: posts(args.http, n, aiohttp_client, bounded=True),
                                 args.count)
    mail_us = await cpu_per_call(lambda n: messages(host, int(port), n), args.count)
    return {"post_us": round(post_us), "httpx_api_post_us": round(api_us),
            "httpx_post_us": round(httpx_us), "mail_us": round(mail_us)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--http", required=True, help="the endpoint's URL")
    parser.add_argument("--smtp", required=True, help="the inbox's host:port")
    parser.add_argument("--count", type=int, default=2000)
    print(json.dumps(uvloop.run(main(parser.parse_args()))))
    sys.exit(0)
