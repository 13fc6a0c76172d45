"""The HTTP connection as ``payhook serve`` runs it: uvicorn's httptools protocol, bounded.

uvicorn reads a request's headers and body for as long as the client cares to send them, so
a few clients that send ``Content-Length: 1000000`` and then a byte at a time hold their
connections (and the memory behind them) forever. Here each connection gets:

- ``PAYHOOK_HTTP_HEADER_TIMEOUT_SECONDS`` to finish a request's headers, counted from the
  connection (the first request) or from the request's first byte (the next ones); then it is
  closed;
- ``PAYHOOK_HTTP_BODY_TIMEOUT_SECONDS`` from the end of the headers for the whole body, read
  by the app or not; then, if no answer has started, a 408 in the contract's shape with
  ``Connection: close`` (the app, waiting for the body, reads a disconnect), and the
  connection is closed;
- a request on a connection past ``PAYHOOK_HTTP_MAX_CONNECTIONS`` open ones is answered 503
  in the contract's shape and its connection closed (uvicorn's own ``limit_concurrency``
  answers plain text).

And each response leaves in one write where uvicorn makes two (its status line and headers,
then the body): a send is a system call, and under webhook load each one took about 4 % of
the web process's CPU (py-spy, make bench-ingest).

Read against uvicorn 0.54's ``protocols/http/httptools_impl.py``: the hooks are its parser
callbacks, and ``self.app`` is what ``on_headers_complete`` hands the request to.
"""

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, cast

from starlette.responses import Response
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from payhook.api.errors import error_response
from payhook.errors import RequestTimeout, TooManyConnections

log = logging.getLogger("payhook.http")

_CLOSE = {"connection": "close"}
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"  # what uvicorn writes before reading a body


@dataclass(frozen=True)
class Bounds:
    header_seconds: float
    body_seconds: float
    max_connections: int


def bounded_protocol(bounds: Bounds) -> type[HttpToolsProtocol]:
    """The protocol class to give uvicorn as ``http=``, with these bounds."""
    busy = error_response(TooManyConnections("too many connections are open; retry later"),
                          headers={**_CLOSE, "retry-after": "1"})
    return type("BoundedHttpToolsProtocol", (BoundedHttpToolsProtocol,),
                {"bounds": bounds, "busy": busy})


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    bounds: ClassVar[Bounds]
    busy: ClassVar[Response]  # the answer past the connection limit (an ASGI app)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._served = self.app
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self._arm(self.bounds.header_seconds, self._headers_late)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._deadline is None:  # the first request's deadline runs from the connection
            self._arm(self.bounds.header_seconds, self._headers_late)

    def on_headers_complete(self) -> None:
        self._disarm()
        busy = (len(self.connections) > self.bounds.max_connections
                or len(self.tasks) >= self.bounds.max_connections)
        if busy:
            log.warning("too many connections: answered 503",
                        extra={"connections": len(self.connections)})
        self.app = self.busy if busy else self._served
        before = self.cycle
        super().on_headers_complete()
        if self.cycle is not before:  # a request's cycle (an upgrade makes none)
            # It is not a Transport, but it answers everything the cycle asks of one.
            self.cycle.transport = cast(asyncio.Transport, OneWriteHead(self.transport, self.loop))
        self._arm(self.bounds.body_seconds, self._body_late)

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def _arm(self, seconds: float, late: Callable[[], None]) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, late)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _headers_late(self) -> None:
        self._deadline = None
        self.transport.close()

    def _body_late(self) -> None:
        self._deadline = None
        cycle = self.cycle
        if cycle is not None and not cycle.response_started and not self.transport.is_closing():
            log.warning("request body not received in time: answered 408", extra={
                "path": cycle.scope.get("path"), "timeout_seconds": self.bounds.body_seconds})
            cycle.disconnected = True  # the app now reads a disconnect; its answer is dropped
            self.transport.write(self._timed_out())
        self.transport.close()

    def _timed_out(self) -> bytes:
        response = error_response(
            RequestTimeout(f"the request body did not arrive within "
                           f"{self.bounds.body_seconds:g} s"), headers=_CLOSE)
        headers = [*self.server_state.default_headers, *response.raw_headers]
        return b"".join([STATUS_LINE[response.status_code],
                         *(name + b": " + value + b"\r\n" for name, value in headers),
                         b"\r\n", response.body])


class OneWriteHead:
    """The transport as one request's cycle sees it: the response's head (the cycle's first
    write but a ``100 Continue``) is held and goes out joined to the next write, the body's. A
    response whose body does not follow in the same step still gets its head at once: the
    loop's next turn sends what is held. Everything else goes to the transport as it is.

    It knows nothing of the cycle, which holds it: a reference back would make each request a
    reference cycle, left for the garbage collector instead of freed on the spot."""

    __slots__ = ("_transport", "_loop", "_held", "_head_seen")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held = b""
        self._head_seen = False

    def write(self, data: bytes) -> None:
        if self._held:
            data, self._held = self._held + data, b""
        elif not self._head_seen and data != _CONTINUE:
            self._head_seen = True
            self._held = data
            self._loop.call_soon(self.flush)
            return
        self._transport.write(data)

    def flush(self) -> None:
        if self._held:
            data, self._held = self._held, b""
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)
