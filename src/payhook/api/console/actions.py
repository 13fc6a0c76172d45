"""The console's pages that change something: replaying one dead outbox row, retrying now
one that waits out its backoff, sending one delivery again now (the service behind
``POST /v1/deliveries/{id}/retry``, written in the audit trail with the outbox row it makes
due), and the bulk
replay — a dry-run preview first (a GET: it writes nothing), then the operator confirms exactly
the rows previewed, with a reason. Every replay goes through :mod:`payhook.outbox.operators`,
which writes the audit trail, and nudges the worker after the commit."""

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from payhook import ids
from payhook.api.console.auth import actor, signed_in, url
from payhook.api.console.views import page, story_page
from payhook.api.pages import for_people
from payhook.api.params import path_id
from payhook.api.responses import query
from payhook.api.state import state
from payhook.db.engine import reading
from payhook.errors import Conflict, InvalidRequest
from payhook.outbox import operators
from payhook.services import deliveries, replay_plan

MAX_REASON = 1000


def _reason(request: Request, required: bool) -> str | None:
    reason = str(request.state.form.get("reason", "")).strip()[:MAX_REASON]
    if required and not reason:
        raise InvalidRequest("say why you replay these rows: the audit trail keeps it",
                             param="reason")
    return reason or None


@for_people
@signed_in
async def replay_one(request: Request) -> Response:
    """A dead row back to pending with fresh attempts."""
    return await _one(request, operators.replay_one, "replayed")


@for_people
@signed_in
async def retry_one(request: Request) -> Response:
    """A row waiting out its backoff, due now."""
    return await _one(request, operators.retry_now, "retried")


async def _one(request: Request, act: Callable[..., Awaitable[Any]], done: str) -> Response:
    query(request)
    entry_id = path_id(request, "ob")
    app = state(request)
    async with app.engine.begin() as conn:
        row = await act(conn, entry_id, actor(request), _reason(request, required=False))
    app.nudge()
    session_id = row.payload.get("session_id")
    back = (f"/sessions/{session_id}?{done}={entry_id}" if ids.has_prefix(str(session_id), "cs")
            else "/outbox?status=pending")
    return RedirectResponse(url(request, back), status_code=303)


@for_people
@signed_in
async def retry_delivery(request: Request) -> Response:
    """A delivery sent again now; refused (409) while it is in flight or its endpoint is
    disabled — said on the session's story, where the operator pressed the button."""
    query(request)
    delivery_id = path_id(request, "dl")
    app = state(request)
    delivery = None
    try:
        async with app.engine.begin() as conn:
            delivery = await deliveries.find(conn, delivery_id)
            await deliveries.send_again(conn, delivery, app.settings.outbox_max_attempts)
            entry_id = await deliveries.sending_row(conn, delivery_id)
            await operators.audit(conn, actor(request), _reason(request, required=False),
                                  [entry_id] if entry_id else [])
    except Conflict as refused:
        if delivery is None or delivery.session_id is None:
            raise
        return await story_page(request, delivery.session_id, status_code=409,
                                refused=f"Not sent again: {refused.message}.",
                                refused_code=refused.code)
    app.nudge()
    back = (f"/sessions/{delivery.session_id}?resent={delivery_id}" if delivery.session_id
            else f"/deliveries?endpoint={delivery.endpoint_id}")
    return RedirectResponse(url(request, back), status_code=303)


@for_people
@signed_in
async def bulk_form(request: Request) -> Response:
    query(request)
    return page(request, "console/replay.html")


@for_people
@signed_in
async def preview(request: Request) -> Response:
    kind = query(request, ("kind",)).get("kind") or None
    async with reading(state(request).engine) as conn:
        planned = await replay_plan.preview(conn, kind)
    return page(request, "console/replay_preview.html", kind=kind, planned=planned,
                limit=replay_plan.LIMIT)


@for_people
@signed_in
async def bulk_replay(request: Request) -> Response:
    query(request)
    entry_ids = str(request.state.form.get("entries", "")).split()
    if not entry_ids or not all(ids.has_prefix(entry_id, "ob") for entry_id in entry_ids):
        raise InvalidRequest("preview the rows to replay first", param="entries")
    reason = _reason(request, required=True)
    app = state(request)
    async with app.engine.begin() as conn:
        replayed = await operators.replay_entries(conn, entry_ids, actor(request), reason)
    app.nudge()
    return page(request, "console/replayed.html", replayed=replayed,
                skipped=len(entry_ids) - len(replayed))
