"""``/v1/events``: every event made for the caller, as its endpoints received it (30 days)."""

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from payhook.api.responses import merchant_get, merchant_list
from payhook.services import merchant_events


async def list_events(request: Request) -> Response:
    return await merchant_list(request, merchant_events.list_events, merchant_events.to_object,
                               ("type",))


async def get_event(request: Request) -> Response:
    return await merchant_get(request, "evt", merchant_events.get, merchant_events.to_object)


routes = [
    Route("/v1/events", list_events, methods=["GET"]),
    Route("/v1/events/{id}", get_event, methods=["GET"]),
]
