"""``/v1/events``: every event made for the caller, as its endpoints received it (30 days)."""

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from payhook.api import auth
from payhook.api.params import path_id
from payhook.api.responses import merchant_list, query
from payhook.api.state import state
from payhook.db.engine import reading
from payhook.services import merchant_events


async def list_events(request: Request) -> Response:
    return await merchant_list(request, merchant_events.list_events, merchant_events.to_object,
                               ("type",))


async def get_event(request: Request) -> Response:
    async with reading(state(request).engine) as conn:
        caller = await auth.merchant(request, conn)
        query(request)
        row = await merchant_events.get(conn, caller, path_id(request, "evt"))
    return JSONResponse(merchant_events.to_object(row))


routes = [
    Route("/v1/events", list_events, methods=["GET"]),
    Route("/v1/events/{id}", get_event, methods=["GET"]),
]
