"""`payhook serve`'s HTTP protocol sends each response in one write, and holds nothing back.

A real uvicorn server in this process, with the protocol class `payhook serve` gives it, and raw
sockets as clients; the connection's transport is watched (every write it is given is recorded
and passed on) to count the writes a response takes."""

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from payhook.api.connections import Bounds, bounded_protocol

STREAM_PAUSE = 0.5  # between a streamed response's head and its body


class Watched:
    """The connection's transport, every write recorded."""

    def __init__(self, transport: asyncio.Transport, writes: list[bytes]) -> None:
        self._transport = transport
        self.writes = writes

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


async def echo(request: Request) -> Response:
    return JSONResponse({"received": len(await request.body())})


async def slow_stream(request: Request) -> Response:
    async def body() -> AsyncIterator[bytes]:
        await asyncio.sleep(STREAM_PAUSE)
        yield b"late"

    return StreamingResponse(body(), media_type="text/plain")


app = Starlette(routes=[Route("/echo", echo, methods=["POST"]), Route("/stream", slow_stream)])


@pytest.fixture
async def server() -> AsyncIterator[tuple[int, list[bytes]]]:
    writes: list[bytes] = []
    base = bounded_protocol(Bounds(header_seconds=5, body_seconds=5, max_connections=100))

    class WatchedProtocol(base):  # type: ignore[valid-type,misc]
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(Watched(transport, writes))  # type: ignore[arg-type]

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, http=WatchedProtocol, lifespan="off", log_config=None,
                            access_log=False, ws="none")
    served = uvicorn.Server(config)
    task = asyncio.create_task(served.serve(sockets=[sock]))
    while not served.started:
        await asyncio.sleep(0.01)
    yield sock.getsockname()[1], writes
    served.should_exit = True
    await task


async def exchange(port: int, request: bytes, until: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    try:
        answer = b""
        while until not in answer:
            chunk = await asyncio.wait_for(reader.read(65536), 5)
            assert chunk, f"connection closed after {answer!r}"
            answer += chunk
        return answer
    finally:
        writer.close()


def post(body: bytes, *extra: bytes) -> bytes:
    return b"\r\n".join([b"POST /echo HTTP/1.1", b"Host: t", b"Content-Type: application/json",
                         b"Content-Length: %d" % len(body), *extra, b"", body])


async def test_a_response_is_one_write(server):
    port, writes = server
    answer = await exchange(port, post(b"{}"), b'{"received":2}')
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert writes == [answer]  # head and body in the same write


async def test_each_response_on_a_kept_connection_is_one_write(server):
    port, writes = server
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        answers = []
        for body, length in ((b"{}", b"2"), (b"[1,2]", b"5")):
            writer.write(post(body))
            answers.append(await asyncio.wait_for(
                reader.readuntil(b'{"received":%s}' % length), 5))
    finally:
        writer.close()
    assert writes == answers


async def test_a_streamed_head_is_not_held_until_its_body(server):
    port, writes = server
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET /stream HTTP/1.1\r\nHost: t\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), STREAM_PAUSE / 2)
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        rest = await asyncio.wait_for(reader.readuntil(b"0\r\n\r\n"), 5)
        assert b"late" in rest
    finally:
        writer.close()
    assert writes[0] == head  # the head went alone, before the body existed


async def test_100_continue_is_sent_before_the_body_arrives(server):
    port, writes = server
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        request = post(b'{"a":1}', b"Expect: 100-continue")
        head, body = request.split(b"\r\n\r\n", 1)
        writer.write(head + b"\r\n\r\n")
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(body)
        answer = await asyncio.wait_for(reader.readuntil(b'{"received":7}'), 5)
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    finally:
        writer.close()
    assert writes == [interim, answer]
