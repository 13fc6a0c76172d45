"""The one place where errors become HTTP answers in the contract's shape.

``{"error": {"type", "code", "message", "param"}}``. Storage failures are 503 (retry); anything
unexpected is a 500 with no detail (logged with its traceback, never sent). Route handlers map
what they can (inside route middleware, so its headers apply); :func:`answer_escaped` answers
whatever escapes them (called by the outermost middleware,
:class:`payhook.api.middleware.Observe`), so that no error ever reaches the server.
"""

import logging
from typing import Any

import asyncpg
from sqlalchemy import exc as sa
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from payhook.db.outages import is_storage_outage
from payhook.errors import (
    MethodNotAllowed,
    NotFound,
    PayhookError,
    PayloadTooLarge,
    StorageUnavailable,
    UnsupportedMediaType,
)

log = logging.getLogger("payhook.errors")

CLIENT_CLOSED_REQUEST = 499

_BY_STATUS: dict[int, type[PayhookError]] = {
    404: NotFound, 405: MethodNotAllowed, 413: PayloadTooLarge, 415: UnsupportedMediaType,
}


def error_response(error: PayhookError, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": {"type": error.type, "code": error.code, "message": error.message,
                      "param": error.param}}
    return JSONResponse(body, status_code=error.status, headers=headers)


async def on_payhook_error(_request: Request, error: Exception) -> Response:
    assert isinstance(error, PayhookError)
    return error_response(error)


async def on_http_exception(_request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    kind = _BY_STATUS.get(error.status_code)
    if kind is None:
        return error_response(PayhookError(str(error.detail)))
    message = "no such route" if error.status_code == 404 else str(error.detail).lower()
    return error_response(kind(message), headers=dict(error.headers or {}))


def storage_unavailable(error: BaseException) -> Response:
    log.warning("storage unavailable: %s", type(error).__name__)
    return error_response(StorageUnavailable("storage is unavailable; retry later"),
                          headers={"Retry-After": "1"})


async def on_storage_error(_request: Request, error: Exception) -> Response:
    if not is_storage_outage(error):
        raise error
    return storage_unavailable(error)


async def on_client_gone(_request: Request, _error: Exception) -> Response:
    """The client left (or its body was too slow and it got a 408) before its request was
    read: nobody is there for an answer, and nothing failed. The status, nginx's "client
    closed request", is for the request log and the metrics."""
    return Response(status_code=CLIENT_CLOSED_REQUEST)


async def on_unexpected(_request: Request, error: Exception) -> Response:
    log.error("unhandled error", exc_info=error)
    return error_response(PayhookError("internal error"))


async def answer_escaped(error: Exception, scope: Scope, receive: Receive, send: Send) -> None:
    """An error that escaped the route handlers, answered (503 for a storage outage, else 500)
    and not raised further, when no answer has started. Starlette's outermost middleware would
    answer it too but then re-raise it, and uvicorn closes the connection of an app that
    raised: the client's next request on that keep-alive connection got no answer at all."""
    answer = (storage_unavailable(error) if is_storage_outage(error)
              else await on_unexpected(Request(scope), error))
    await answer(scope, receive, send)


HANDLERS: dict[Any, Any] = {
    PayhookError: on_payhook_error,
    HTTPException: on_http_exception,
    ClientDisconnect: on_client_gone,
    sa.SQLAlchemyError: on_storage_error,
    OSError: on_storage_error,
    asyncpg.PostgresError: on_storage_error,
    asyncpg.InterfaceError: on_storage_error,
    asyncpg.InternalClientError: on_storage_error,
    Exception: on_unexpected,  # what escapes answer_escaped: an error after the answer began
}
