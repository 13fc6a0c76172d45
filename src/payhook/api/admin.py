"""Operators' endpoints, ``/admin``, behind ``Bearer <PAYHOOK_ADMIN_TOKEN>``."""

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from payhook.api import auth
from payhook.api.body import read_object
from payhook.api.responses import query
from payhook.api.state import state
from payhook.errors import InvalidRequest
from payhook.schemas import AdminSessionCreate, MerchantCreate, parse
from payhook.services import merchants, sessions


async def create_merchant(request: Request) -> Response:
    app = state(request)
    auth.admin(request)
    query(request)
    body = parse(MerchantCreate, await read_object(request))
    async with app.engine.begin() as conn:
        created = await merchants.create(conn, app.hasher, body.name)
    return JSONResponse(merchants.to_object(created), status_code=201)


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
        row = await sessions.create(conn, body.merchant_id, body.mode, body)
    return JSONResponse(sessions.to_object(row, app.settings.public_base_url), status_code=201)


routes = [
    Route("/admin/merchants", create_merchant, methods=["POST"]),
    Route("/admin/checkout/sessions", create_session, methods=["POST"]),
]
