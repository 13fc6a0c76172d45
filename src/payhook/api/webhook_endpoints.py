"""``/v1/webhook_endpoints``: where a merchant receives its signed events; each endpoint's
update, secret rotation, test event and recovery of a window of failed deliveries."""

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from payhook import net
from payhook.api import auth
from payhook.api.body import read_object
from payhook.api.params import path_id
from payhook.api.responses import addressed, merchant_get, merchant_list, query
from payhook.api.state import AppState, state
from payhook.db.engine import reading
from payhook.errors import InvalidRequest
from payhook.schemas import (
    Empty,
    Recovery,
    SecretRotation,
    WebhookEndpointCreate,
    WebhookEndpointUpdate,
    parse,
)
from payhook.services import deliveries, webhook_endpoints


async def create_endpoint(request: Request) -> Response:
    app = state(request)
    async with reading(app.engine) as conn:
        caller = await auth.merchant(request, conn)
    query(request)
    body = parse(WebhookEndpointCreate, await read_object(request), mode=caller.mode)
    await _check_public(app, body.url)
    async with app.engine.begin() as conn:
        created = await webhook_endpoints.create(conn, app.sealer, caller, body)
    return JSONResponse(webhook_endpoints.to_object(created.row, secret=created.secret),
                        status_code=201)


async def _check_public(app: AppState, url: str | None) -> None:
    if url is not None and not app.settings.allow_private_urls:
        await refuse_non_public(url)  # resolves the host: outside any transaction


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


async def get_endpoint(request: Request) -> Response:
    return await merchant_get(request, "we", webhook_endpoints.get, webhook_endpoints.to_object)


async def update_endpoint(request: Request) -> Response:
    app, caller, endpoint_id = await addressed(request, "we")
    body = parse(WebhookEndpointUpdate, await read_object(request), mode=caller.mode)
    await _check_public(app, body.url)
    async with app.engine.begin() as conn:
        row = await webhook_endpoints.update_endpoint(conn, caller, endpoint_id, body,
                                                      app.settings.outbox_max_attempts)
    app.nudge()
    return JSONResponse(webhook_endpoints.to_object(row))


async def rotate_secret(request: Request) -> Response:
    app, caller, endpoint_id = await addressed(request, "we")
    body = parse(SecretRotation, await read_object(request))
    async with app.engine.begin() as conn:
        rotated = await webhook_endpoints.rotate_secret(conn, app.sealer, caller, endpoint_id,
                                                        body.expires_in)
    return JSONResponse(webhook_endpoints.to_object(rotated.row, secret=rotated.secret))


async def send_test(request: Request) -> Response:
    app, caller, endpoint_id = await addressed(request, "we")
    parse(Empty, await read_object(request))
    async with app.engine.begin() as conn:
        endpoint = await webhook_endpoints.enabled(conn, caller, endpoint_id)
        delivery = await deliveries.send_test(conn, caller, endpoint,
                                              app.settings.outbox_max_attempts)
        more = await deliveries.details(conn, [delivery])
    app.nudge()
    return JSONResponse(deliveries.to_object(delivery, more[delivery.id]), status_code=201)


async def recover(request: Request) -> Response:
    app, caller, endpoint_id = await addressed(request, "we")
    since, until = parse(Recovery, await read_object(request)).window
    async with app.engine.begin() as conn:
        await webhook_endpoints.enabled(conn, caller, endpoint_id)
        count = await deliveries.recover(conn, endpoint_id, since, until,
                                         app.settings.outbox_max_attempts)
    app.nudge()
    return JSONResponse({"object": "recovery", "recovered": count})


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
    Route("/v1/webhook_endpoints/{id}", get_endpoint, methods=["GET"]),
    Route("/v1/webhook_endpoints/{id}", update_endpoint, methods=["POST"]),
    Route("/v1/webhook_endpoints/{id}", delete_endpoint, methods=["DELETE"]),
    Route("/v1/webhook_endpoints/{id}/rotate_secret", rotate_secret, methods=["POST"]),
    Route("/v1/webhook_endpoints/{id}/test", send_test, methods=["POST"]),
    Route("/v1/webhook_endpoints/{id}/recover", recover, methods=["POST"]),
]
