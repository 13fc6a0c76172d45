"""A merchant's webhook endpoint for tests: a real HTTP server (Starlette on uvicorn) on a free
loopback port that verifies every delivery with the `standardwebhooks` package — independent
code, not ours — and records it. It can be told to answer any status, to redirect, or to hang.
"""

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from standardwebhooks.webhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    payload: Any  # the verified JSON, or None when verification failed
    error: str | None


@dataclass
class MerchantServer:
    port: int = 0
    secret: str | None = None  # the endpoint's whsec_…, as the create answer gave it
    answer: int | str = 200  # a status code, or "hang"
    retry_after: str | None = None  # sent as Retry-After with the answer, if set
    received: list[Received] = field(default_factory=list)
    redirects_followed: int = 0
    release: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    @property
    def verified(self) -> list[Any]:
        return [entry.payload for entry in self.received if entry.error is None]

    async def hook(self, request: Request) -> Response:
        raw = await request.body()
        try:
            assert self.secret is not None, "the test never told the server its secret"
            payload = Webhook(self.secret).verify(raw, dict(request.headers))
            self.received.append(Received(dict(request.headers), raw, payload, None))
        except Exception as error:  # noqa: BLE001 - standardwebhooks raises several kinds
            self.received.append(Received(dict(request.headers), raw, None, repr(error)))
            return PlainTextResponse("bad signature", status_code=400)
        if self.answer == "hang":
            await self.release.wait()
            return PlainTextResponse("too late")
        if self.answer in (301, 302, 303, 307, 308):
            return RedirectResponse(f"http://127.0.0.1:{self.port}/moved",
                                    status_code=int(self.answer))
        assert isinstance(self.answer, int)
        return PlainTextResponse(f"answer {self.answer} " + "x" * 2000,
                                 status_code=self.answer,
                                 headers={"retry-after": self.retry_after}
                                 if self.retry_after is not None else None)

    async def moved(self, _request: Request) -> Response:
        self.redirects_followed += 1
        return PlainTextResponse("followed")


@asynccontextmanager
async def running() -> AsyncIterator[MerchantServer]:
    merchant = MerchantServer()
    app = Starlette(routes=[Route("/hook", merchant.hook, methods=["POST"]),
                            Route("/moved", merchant.moved, methods=["GET", "POST"])])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    merchant.port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning",
                                           http="h11", ws="none",
                                           timeout_graceful_shutdown=1))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield merchant
    finally:
        merchant.release.set()
        server.should_exit = True
        await task
        sock.close()
