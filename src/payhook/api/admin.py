"""Operators' endpoints, ``/admin``, behind ``Bearer <PAYHOOK_ADMIN_TOKEN>``."""

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from payhook.api import auth
from payhook.api.body import read_object
from payhook.api.params import path_id
from payhook.api.responses import listing, page_request, query
from payhook.api.state import state
from payhook.db.engine import reading
from payhook.db.pagination import Page
from payhook.errors import InvalidRequest
from payhook.observability import request_id
from payhook.outbox import operators
from payhook.schemas import (
    AdminApiKeyCreate,
    AdminSessionCreate,
    MerchantCreate,
    ReplayMany,
    ReplayOne,
    parse,
)
from payhook.services import anomalies, api_keys, events, merchants, sessions


async def create_merchant(request: Request) -> Response:
    app = state(request)
    auth.admin(request)
    query(request)
    body = parse(MerchantCreate, await read_object(request))
    async with app.engine.begin() as conn:
        created = await merchants.create(conn, app.hasher, body.name)
    return JSONResponse(merchants.to_object(created), status_code=201)


async def create_api_key(request: Request) -> Response:
    app = state(request)
    auth.admin(request)
    merchant_id = path_id(request, "mer")
    query(request)
    body = parse(AdminApiKeyCreate, await read_object(request))
    async with app.engine.begin() as conn:
        issued = await merchants.issue_key(conn, app.hasher, merchant_id, body.mode, body.label)
    return JSONResponse(api_keys.to_object(issued.row, secret=issued.secret), status_code=201)


async def create_session(request: Request) -> Response:
    app = state(request)
    auth.admin(request)
    query(request)
    document = await read_object(request)
    mode = document.get("mode")
    body = parse(AdminSessionCreate, document, mode=mode,
                 crypto=app.settings.fiat_and_crypto_symbols)
    async with app.engine.begin() as conn:
        if not await merchants.exists(conn, body.merchant_id):
            raise InvalidRequest(f"no such merchant: {body.merchant_id}", param="merchant_id")
        row = await sessions.create(conn, body.merchant_id, body.mode, body,
                                    app.settings.deposit_account)
    return JSONResponse(sessions.to_object(row, app.settings), status_code=201)


async def list_events(request: Request) -> Response:
    return await _filtered_list(request, ("provider", "outcome"), events.list_events,
                                events.to_object)


async def get_event(request: Request) -> Response:
    app = state(request)
    auth.admin(request)
    query(request)
    event_id = path_id(request, "ev")
    async with reading(app.engine) as conn:
        row = await events.get(conn, event_id)
    return JSONResponse(events.to_object(row, with_body=True))


async def list_anomalies(request: Request) -> Response:
    return await _filtered_list(request, ("kind", "session_id"), anomalies.list_anomalies,
                                anomalies.to_object)


async def list_outbox(request: Request) -> Response:
    return await _filtered_list(request, ("status", "kind"), operators.list_entries,
                                operators.to_object)


async def _filtered_list(request: Request, filters: tuple[str, ...],
                         fetch: Callable[..., Awaitable[Page]],
                         render: Callable[[Any], dict[str, Any]]) -> Response:
    """An operators' list: the admin token, paging, and the filters as keyword arguments."""
    app = state(request)
    auth.admin(request)
    page, params = page_request(request, filters=filters)
    async with reading(app.engine) as conn:
        found = await fetch(conn, page, **{name: params.get(name) for name in filters})
    return listing(found, render)


async def get_outbox_entry(request: Request) -> Response:
    app = state(request)
    auth.admin(request)
    query(request)
    entry_id = path_id(request, "ob")
    async with reading(app.engine) as conn:
        row = await operators.get_entry(conn, entry_id)
    return JSONResponse(operators.to_object(row))


async def replay_outbox_entry(request: Request) -> Response:
    app = state(request)
    auth.admin(request)
    query(request)
    entry_id = path_id(request, "ob")
    body = parse(ReplayOne, await read_object(request))
    async with app.engine.begin() as conn:
        row = await operators.replay_one(conn, entry_id, _actor(request), body.reason)
    app.nudge()
    return JSONResponse(operators.to_object(row))


async def replay_outbox(request: Request) -> Response:
    app = state(request)
    auth.admin(request)
    query(request)
    body = parse(ReplayMany, await read_object(request))
    async with app.engine.begin() as conn:
        replayed = await operators.replay_dead(conn, _actor(request), kind=body.kind,
                                               reason=body.reason)
    app.nudge()
    return JSONResponse({"replayed": len(replayed), "ids": replayed})


def _actor(request: Request) -> str:
    """The admin token is shared, so the audit names the request: client and request id."""
    client = request.client.host if request.client else "unknown"
    return f"admin-api:{client}:{request_id.get() or '-'}"


routes = [
    Route("/admin/merchants", create_merchant, methods=["POST"]),
    Route("/admin/merchants/{id}/api_keys", create_api_key, methods=["POST"]),
    Route("/admin/checkout/sessions", create_session, methods=["POST"]),
    Route("/admin/events", list_events, methods=["GET"]),
    Route("/admin/events/{id}", get_event, methods=["GET"]),
    Route("/admin/anomalies", list_anomalies, methods=["GET"]),
    Route("/admin/outbox", list_outbox, methods=["GET"]),
    Route("/admin/outbox/replay", replay_outbox, methods=["POST"]),
    Route("/admin/outbox/{id}", get_outbox_entry, methods=["GET"]),
    Route("/admin/outbox/{id}/replay", replay_outbox_entry, methods=["POST"]),
]
