"""Endpoints without credentials: session status, the customer's access page (api/access.py),
health, readiness, metrics."""

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from payhook.api import access
from payhook.api.params import path_id
from payhook.api.responses import query
from payhook.api.state import state
from payhook.db.engine import reading
from payhook.services import sessions


async def session_status(request: Request) -> Response:
    query(request)
    session_id = path_id(request, "cs")
    async with reading(state(request).engine) as conn:
        row = await sessions.get_public(conn, session_id)
    return JSONResponse(sessions.to_status(row))


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
