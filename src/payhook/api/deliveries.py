"""``/v1/deliveries``: every delivery of the caller's events with every attempt, and a retry."""

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from payhook.api import auth
from payhook.api.body import read_object
from payhook.api.params import path_id
from payhook.api.responses import addressed, page_request, query
from payhook.api.state import state
from payhook.db.engine import reading
from payhook.schemas import Empty, parse
from payhook.services import deliveries

FILTERS = ("endpoint", "status")


async def list_deliveries(request: Request) -> Response:
    async with reading(state(request).engine) as conn:
        caller = await auth.merchant(request, conn)  # before the query: a stranger gets a 401
        page, params = page_request(request, filters=FILTERS)
        found = await deliveries.list_deliveries(conn, caller, page,
                                                 **{name: params.get(name) for name in FILTERS})
        more = await deliveries.details(conn, found.rows)
    return JSONResponse(found.to_list(lambda row: deliveries.to_object(row, more[row.id])))


async def get_delivery(request: Request) -> Response:
    async with reading(state(request).engine) as conn:
        caller = await auth.merchant(request, conn)
        query(request)
        row = await deliveries.get(conn, caller, path_id(request, "dl"))
        more = await deliveries.details(conn, [row])
    return JSONResponse(deliveries.to_object(row, more[row.id]))


async def retry_delivery(request: Request) -> Response:
    app, caller, delivery_id = await addressed(request, "dl")
    parse(Empty, await read_object(request))
    async with app.engine.begin() as conn:
        row = await deliveries.retry(conn, caller, delivery_id, app.settings.outbox_max_attempts)
        more = await deliveries.details(conn, [row])
    app.nudge()
    return JSONResponse(deliveries.to_object(row, more[row.id]))


routes = [
    Route("/v1/deliveries", list_deliveries, methods=["GET"]),
    Route("/v1/deliveries/{id}", get_delivery, methods=["GET"]),
    Route("/v1/deliveries/{id}/retry", retry_delivery, methods=["POST"]),
]
