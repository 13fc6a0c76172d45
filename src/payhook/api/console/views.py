"""The console's pages that read: the overview, the search, one session's story and the lists
(outbox rows, deliveries, anomalies, provider events, the replay audit trail)."""

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import func, select
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from payhook.api.console.auth import console, operator, signed_in, url
from payhook.api.pages import for_people, render
from payhook.api.params import path_id
from payhook.api.responses import page_request, query
from payhook.api.state import state
from payhook.db.engine import reading
from payhook.db.pagination import Page
from payhook.db.tables import anomalies, deliveries, outbox_entries
from payhook.services import anomalies as anomaly_service
from payhook.services import events, story, triage


def page(request: Request, name: str, status_code: int = 200, **values: Any) -> Response:
    """A console page: the operator, the sign-out form's CSRF token and the console's links."""
    signed = operator(request)
    return render(request, name, status_code=status_code, operator=signed,
                  csrf=console(request).signer.csrf(signed.nonce), root=url(request, ""),
                  **values)


@for_people
@signed_in
async def home(request: Request) -> Response:
    query(request)
    async with reading(state(request).engine) as conn:
        counts = {
            "dead": await _count(conn, outbox_entries, *triage.outbox_filters("dead")),
            "retrying": await _count(conn, outbox_entries, *triage.outbox_filters("retrying")),
            "failing": await _count(conn, deliveries, deliveries.c.status.in_(triage.FAILING)),
            "anomalies": await _count(conn, anomalies),
        }
    return page(request, "console/home.html", counts=counts)


async def _count(conn: Any, table: Any, *where: Any) -> int:
    return int((await conn.execute(select(func.count()).select_from(table).where(*where)))
               .scalar_one())


@for_people
@signed_in
async def search(request: Request) -> Response:
    text = query(request, ("q",)).get("q", "")
    async with reading(state(request).engine) as conn:
        found = await story.find(conn, text)
    if len(found) == 1:
        return RedirectResponse(url(request, f"/sessions/{found[0].id}"), status_code=303)
    return page(request, "console/search.html", q=text, found=found)


DONE = ("replayed", "retried", "resent")  # what an action just did, to say so on the story


@for_people
@signed_in
async def session(request: Request) -> Response:
    done: dict[str, Any] = dict(query(request, DONE))
    return await story_page(request, path_id(request, "cs"), **done)


async def story_page(request: Request, session_id: str, status_code: int = 200,
                     **values: Any) -> Response:
    """One session's story, with what was just done (or refused) said on top."""
    async with reading(state(request).engine) as conn:
        told = await story.read(conn, session_id)
    return page(request, "console/session.html", status_code=status_code, story=told,
                **{**dict.fromkeys(DONE), **values})


def _listing(name: str, filters: tuple[str, ...],
             fetch: Callable[..., Awaitable[Page]]) -> Callable[[Request], Awaitable[Response]]:
    """A paginated, filterable list page: ``?limit&starting_after`` and the filters."""

    @for_people
    @signed_in
    async def listed(request: Request) -> Response:
        paging, params = page_request(request, filters=filters)
        chosen = {filter_: params.get(filter_) or None for filter_ in filters}
        async with reading(state(request).engine) as conn:
            found = await fetch(conn, paging, **chosen)
        return page(request, f"console/{name}.html", rows=found.rows, has_more=found.has_more,
                    chosen=chosen, next_after=found.rows[-1].id if found.has_more else None)

    return listed


outbox = _listing("outbox", ("status", "kind"), lambda conn, paging, status, kind:
                  triage.outbox_rows(conn, paging, status, kind))


@for_people
@signed_in
async def delivery_list(request: Request) -> Response:
    """Deliveries by status ("failing": failed or dead), endpoint and merchant, each with its
    endpoint's address and whether it is disabled."""
    paging, params = page_request(request, filters=DELIVERY_FILTERS)
    chosen = {name: params.get(name) or None for name in DELIVERY_FILTERS}
    async with reading(state(request).engine) as conn:
        found = await triage.delivery_rows(conn, paging, **chosen)
        endpoints = await triage.endpoints_of(conn, found.rows)
    return page(request, "console/deliveries.html", rows=found.rows, endpoints=endpoints,
                chosen=chosen, views=triage.DELIVERY_VIEWS,
                next_after=found.rows[-1].id if found.has_more else None)


DELIVERY_FILTERS = ("status", "endpoint", "merchant")
anomaly_list = _listing("anomalies", ("kind",), lambda conn, paging, kind:
                        anomaly_service.list_anomalies(conn, paging, kind=kind))
event_list = _listing("events", ("provider", "outcome"), lambda conn, paging, provider, outcome:
                      events.list_events(conn, paging, provider=provider, outcome=outcome))
replay_list = _listing("replays", (), lambda conn, paging: triage.replays(conn, paging))
