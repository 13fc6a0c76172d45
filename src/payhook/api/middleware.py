"""One ASGI middleware for every request: request id, access log line, metrics, and the answer
to an error nothing else answered."""

import logging
import random
import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from payhook.api.errors import answer_escaped
from payhook.observability import Metrics, request_id

log = logging.getLogger("payhook.access")

_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def new_request_id() -> str:
    """32 hex digits, as a uuid4's: an id to find a request's lines by, not a secret (so not
    from the system's entropy, a system call per request)."""
    return f"{random.getrandbits(128):032x}"


class Observe:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        rid = incoming if _VALID_ID.match(incoming) else new_request_id()
        token = request_id.set(rid)
        status = 0  # no answer started
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as error:
            if status:  # the answer began: this connection cannot carry on
                raise
            await answer_escaped(error, scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.observe(route, scope["method"], status or 500, elapsed)
            log.info(
                "%s %s %d", scope["method"], route, status or 500,
                extra={"request_id": rid, "method": scope["method"], "path": scope["path"],
                       "route": route, "status": status or 500,
                       "duration_ms": round(elapsed * 1000, 2)},
            )
            request_id.reset(token)
