"""``POST /webhooks/{provider}``: verify, deduplicate and record in one transaction, answer."""

from functools import cache

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from payhook.api.body import read_raw, require_json_content_type
from payhook.api.state import state
from payhook.errors import NotFound


async def receive(request: Request) -> Response:
    app = state(request)
    provider = app.providers.get(request.path_params["provider"])
    if provider is None:
        raise NotFound("no such provider", param="provider")
    raw = await read_raw(request)
    require_json_content_type(request)
    event = provider.verify(raw, request.headers, provider.context)  # raises InvalidWebhook
    outcome = await app.ingest.record(event)  # the one transaction
    if outcome != "duplicate":
        app.nudge()  # after commit only
    return Response(_answer(outcome), media_type="application/json")


@cache
def _answer(outcome: str) -> bytes:
    """The body of the answer: one of a handful, each encoded once."""
    return bytes(JSONResponse({"received": True, "outcome": outcome}).body)


routes = [Route("/webhooks/{provider}", receive, methods=["POST"])]
