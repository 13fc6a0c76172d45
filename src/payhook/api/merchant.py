"""The merchant API, ``/v1``: sessions and API keys here, invoices and webhook endpoints in their
own modules; everything scoped to the key's merchant and mode."""

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from payhook.api import auth, deliveries, invoices, merchant_events, webhook_endpoints
from payhook.api.body import read_object
from payhook.api.params import path_id
from payhook.api.responses import merchant_get, merchant_list, query
from payhook.api.state import state
from payhook.db.engine import reading
from payhook.schemas import ApiKeyCreate, Empty, SessionCreate, parse
from payhook.services import api_keys, idempotency, sessions
from payhook.services.api_keys import Caller
from payhook.services.idempotency import Answer


async def create_session(request: Request) -> Response:
    app = state(request)
    async with reading(app.engine) as conn:
        caller = await auth.merchant(request, conn)
    query(request)
    document = await read_object(request)
    body = parse(SessionCreate, document, mode=caller.mode,
                 crypto=app.settings.fiat_and_crypto_symbols)

    async def work(conn: AsyncConnection) -> Answer:
        row = await sessions.create(conn, caller.merchant_id, caller.mode, body,
                                    app.settings.deposit_account)
        return Answer(status=201, body=sessions.to_object(row, app.settings))

    key = request.headers.get("idempotency-key")
    if key is None:
        async with app.engine.begin() as conn:
            answer = await work(conn)
    else:
        answer = await idempotency.run_once(
            app.engine, (caller.merchant_id, caller.mode), idempotency.check_key(key),
            idempotency.fingerprint(document), work,
        )
    return JSONResponse(answer.body, status_code=answer.status)


async def get_session(request: Request) -> Response:
    settings = state(request).settings
    return await merchant_get(request, "cs", sessions.get,
                              lambda row: sessions.to_object(row, settings))


async def list_sessions(request: Request) -> Response:
    settings = state(request).settings
    return await merchant_list(request, sessions.list_sessions,
                               lambda row: sessions.to_object(row, settings), ("status",))


async def cancel_session(request: Request) -> Response:
    app = state(request)
    async with reading(app.engine) as conn:
        caller = await auth.merchant(request, conn)
    query(request)
    session_id = path_id(request, "cs")
    parse(Empty, await read_object(request))
    async with app.engine.begin() as conn:
        row = await sessions.cancel(conn, caller, session_id, app.settings.outbox_max_attempts)
    app.nudge()
    return JSONResponse(sessions.to_object(row, app.settings))


async def list_api_keys(request: Request) -> Response:
    return await merchant_list(request, api_keys.list_keys, api_keys.to_object)


async def create_api_key(request: Request) -> Response:
    app = state(request)
    async with reading(app.engine) as conn:
        caller: Caller = await auth.merchant(request, conn)
    query(request)
    body = parse(ApiKeyCreate, await read_object(request))
    async with app.engine.begin() as conn:
        issued = await api_keys.issue(conn, app.hasher, caller.merchant_id, caller.mode,
                                      body.label)
    return JSONResponse(api_keys.to_object(issued.row, secret=issued.secret), status_code=201)


async def revoke_api_key(request: Request) -> Response:
    app = state(request)
    async with app.engine.begin() as conn:
        caller = await auth.merchant(request, conn)
        query(request)
        row: Any = await api_keys.revoke(conn, caller, path_id(request, "key"))
    return JSONResponse(api_keys.to_object(row))


routes = [
    Route("/v1/checkout/sessions", create_session, methods=["POST"]),
    Route("/v1/checkout/sessions", list_sessions, methods=["GET"]),
    Route("/v1/checkout/sessions/{id}", get_session, methods=["GET"]),
    Route("/v1/checkout/sessions/{id}/cancel", cancel_session, methods=["POST"]),
    Route("/v1/api_keys", list_api_keys, methods=["GET"]),
    Route("/v1/api_keys", create_api_key, methods=["POST"]),
    Route("/v1/api_keys/{id}", revoke_api_key, methods=["DELETE"]),
    *invoices.routes,
    *webhook_endpoints.routes,
    *deliveries.routes,
    *merchant_events.routes,
]
