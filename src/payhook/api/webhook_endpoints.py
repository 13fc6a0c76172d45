"""``/v1/webhook_endpoints``: where a merchant receives signed ``checkout.session.*`` events."""

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from payhook import net
from payhook.api import auth
from payhook.api.body import read_object
from payhook.api.params import path_id
from payhook.api.responses import merchant_list, query
from payhook.api.state import state
from payhook.db.engine import reading
from payhook.errors import InvalidRequest
from payhook.schemas import WebhookEndpointCreate, parse
from payhook.services import webhook_endpoints


async def create_endpoint(request: Request) -> Response:
    app = state(request)
    async with reading(app.engine) as conn:
        caller = await auth.merchant(request, conn)
    query(request)
    body = parse(WebhookEndpointCreate, await read_object(request), mode=caller.mode)
    if not app.settings.allow_private_urls:
        await refuse_non_public(body.url)  # resolves the host: outside any transaction
    async with app.engine.begin() as conn:
        created = await webhook_endpoints.create(conn, app.sealer, caller, body.url)
    return JSONResponse(webhook_endpoints.to_object(created.row, secret=created.secret),
                        status_code=201)


async def refuse_non_public(url: str) -> None:
    """400 for a host that is or resolves to a non-public address. A host that does not
    resolve yet is accepted: every delivery checks the address it connects to again."""
    try:
        await net.public_addresses(url)
    except net.ForbiddenAddress:
        # Not the address itself: the answer must not map the internal network for the caller.
        raise InvalidRequest("url: must not point at a loopback, private, link-local or other "
                             "non-public address", param="url", code="url_not_public") from None
    except net.Unresolvable:
        pass


async def list_endpoints(request: Request) -> Response:
    return await merchant_list(request, webhook_endpoints.list_endpoints,
                               webhook_endpoints.to_object)


async def delete_endpoint(request: Request) -> Response:
    app = state(request)
    async with app.engine.begin() as conn:
        caller = await auth.merchant(request, conn)
        query(request)
        row = await webhook_endpoints.delete(conn, caller, path_id(request, "we"))
    return JSONResponse(webhook_endpoints.to_object(row))


routes = [
    Route("/v1/webhook_endpoints", list_endpoints, methods=["GET"]),
    Route("/v1/webhook_endpoints", create_endpoint, methods=["POST"]),
    Route("/v1/webhook_endpoints/{id}", delete_endpoint, methods=["DELETE"]),
]
