"""Small helpers every endpoint uses to read queries and write answers."""

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from payhook import inputs
from payhook.api import auth
from payhook.api.params import path_id, query_value
from payhook.api.state import AppState, state
from payhook.db.engine import reading
from payhook.db.pagination import Page, PageRequest
from payhook.errors import InvalidRequest
from payhook.services.api_keys import Caller

PAGE_PARAMS = frozenset({"limit", "starting_after"})


def query(request: Request, allowed: Iterable[str] = ()) -> dict[str, str]:
    """The query string as a dict; unknown or repeated parameters, and values no database
    could hold, are a 400."""
    allowed = frozenset(allowed)
    params: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        if name not in allowed:
            shown = inputs.shown(name)
            raise InvalidRequest(f"unknown query parameter: {shown}",
                                 param=name if shown == name else None,
                                 code="parameter_unknown")
        if name in params:
            raise InvalidRequest(f"repeated query parameter: {name}", param=name)
        params[name] = query_value(name, value)
    return params


async def addressed(request: Request, prefix: str) -> tuple[AppState, Caller, str]:
    """A merchant's state-changing request on one object: the caller, then the query, then
    the path id — each checked before the body is read, a stranger answered 401 first."""
    app = state(request)
    async with reading(app.engine) as conn:
        caller = await auth.merchant(request, conn)
    query(request)
    return app, caller, path_id(request, prefix)


def page_request(
    request: Request, filters: Iterable[str] = ()
) -> tuple[PageRequest, dict[str, str]]:
    params = query(request, PAGE_PARAMS | frozenset(filters))
    return PageRequest.from_query(params), params


def listing(page: Page, render: Callable[[Any], dict[str, Any]]) -> JSONResponse:
    return JSONResponse(page.to_list(render))


async def merchant_list(request: Request, fetch: Callable[..., Awaitable[Page]],
                        render: Callable[[Any], dict[str, Any]],
                        filters: Iterable[str] = ()) -> JSONResponse:
    """A merchant's list: the key's merchant and mode, paging, and the filters as keywords."""
    filters = tuple(filters)
    async with reading(state(request).engine) as conn:
        caller = await auth.merchant(request, conn)  # before the query: a stranger gets a 401
        page, params = page_request(request, filters=filters)
        found = await fetch(conn, caller, page, **{name: params.get(name) for name in filters})
    return listing(found, render)


async def merchant_get(request: Request, prefix: str,
                       fetch: Callable[[Any, Caller, str], Awaitable[Any]],
                       render: Callable[[Any], dict[str, Any]]) -> JSONResponse:
    """One of a merchant's objects by its path id: the key first (a stranger gets a 401), then
    the query (none is taken), then the id; another merchant's or mode's id is a 404."""
    async with reading(state(request).engine) as conn:
        caller = await auth.merchant(request, conn)
        query(request)
        row = await fetch(conn, caller, path_id(request, prefix))
    return JSONResponse(render(row))
