"""Endpoints without credentials: session status, the customer's access page (api/access.py),
health, readiness, metrics."""

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from payhook.api import access
from payhook.api.pages import for_people, render, wants_page
from payhook.api.params import path_id
from payhook.api.responses import query
from payhook.api.state import state
from payhook.db.engine import reading
from payhook.services import sessions


@for_people
async def session_status(request: Request) -> Response:
    """The session's ``url``: its status as JSON, or the hosted page for a browser (one that
    ranks ``text/html`` above JSON; ``*/*`` and no Accept keep the JSON API clients know)."""
    query(request)
    session_id = path_id(request, "cs")
    app = state(request)
    async with reading(app.engine) as conn:
        row = await sessions.get_public(conn, session_id)
    status = sessions.to_status(row, app.settings)
    if wants_page(request):  # what is paid, where to pay on chain (with its uri), the way back
        return render(request, "session.html", session=sessions.to_object(row, app.settings),
                      crypto=status["crypto_payment"])
    return JSONResponse(status)


async def healthz(_request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Ready when the database answers; a storage outage is the usual 503 error shape. With a
    Web3 node, how the chain watch stands: a node down or on the wrong chain is reported
    (``degraded``), and the process stays ready: webhooks are still recorded."""
    app_state = state(request)
    async with reading(app_state.engine) as conn:
        await conn.execute(text("SELECT 1"))
    body: dict[str, Any] = {"status": "ok", "database": "ok"}
    if app_state.web3_status is not None:
        body["web3"] = await app_state.web3_status()
        if body["web3"]["status"] != "ok":
            body["status"] = "degraded"
    return JSONResponse(body)


async def metrics(request: Request) -> Response:
    return Response(generate_latest(state(request).metrics.registry),
                    media_type=CONTENT_TYPE_LATEST)


routes = [
    Route("/session/{id}/status", session_status, methods=["GET"]),
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
    *access.routes,
]
