"""HTML pages for people: the customer's access page, the hosted session page and the console.

One Jinja environment (Starlette's :class:`Jinja2Templates`) over the templates packaged in
``payhook/templates``, autoescaping everything — provider bodies, customer names and metadata
are attacker-controlled — and one set of headers: a Content-Security-Policy that lets a page
load only this service's own style sheet and scripts (``/static``), so no injected markup could
run even if escaping failed, posts forms only back here, and is framed nowhere.
"""

import functools
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import jinja2
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from payhook import display
from payhook.api.state import state
from payhook.domain import webhooks
from payhook.errors import PayhookError

Endpoint = Callable[[Request], Awaitable[Response]]

POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
          "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
HEADERS = {"content-security-policy": POLICY, "x-content-type-options": "nosniff",
           "x-frame-options": "DENY"}


@jinja2.pass_context
def _amount(context: Mapping[str, Any], value: int, currency: str) -> str:
    return display.amount(value, currency, context.get("token_decimals"))


def _text(raw: bytes | memoryview) -> str:
    """Stored bytes (a provider's raw body) as text; never fails on one that is not UTF-8."""
    return bytes(raw).decode("utf-8", errors="replace")


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(loader=jinja2.PackageLoader("payhook", "templates"),
                                     autoescape=True)
    environment.filters["amount"] = _amount
    environment.filters["moment"] = display.moment
    environment.filters["text"] = _text
    environment.filters["pretty"] = _pretty
    environment.filters["wire"] = webhooks.wire
    return environment


templates = Jinja2Templates(env=_environment())


def render(request: Request, name: str, status_code: int = 200,
           headers: Mapping[str, str] | None = None, **values: Any) -> Response:
    """The page ``name`` with ``values``, the strict headers, and what every page needs."""
    settings = state(request).settings
    context = {"static": f"{urlsplit(settings.public_base_url).path}/static",
               "token_decimals": display.token_decimals(settings.web3_tokens), **values}
    return templates.TemplateResponse(request, name, context, status_code=status_code,
                                      headers={**HEADERS, **(headers or {})})


def for_people(endpoint: Endpoint) -> Endpoint:
    """An endpoint whose errors a browser gets as a page (same status, the error's code in
    ``data-code``), while API clients keep the contract's JSON error."""

    @functools.wraps(endpoint)
    async def answer(request: Request) -> Response:
        try:
            return await endpoint(request)
        except PayhookError as error:
            if not wants_page(request):
                raise
            return render(request, "error.html", status_code=error.status, error=error)

    return answer


def wants_page(request: Request) -> bool:
    return prefers_html(request.headers.get("accept", ""))


def prefers_html(accept: str) -> bool:
    """Whether the Accept header ranks ``text/html`` above ``application/json`` (JSON on ties,
    so ``*/*`` and a missing header get JSON, a browser gets the page)."""
    return _quality(accept, "text/html") > _quality(accept, "application/json")


def _quality(accept: str, media_type: str) -> float:
    """The q of the most specific range in ``accept`` that matches ``media_type`` (RFC 9110)."""
    kind, subtype = media_type.split("/")
    best, quality = -1, 0.0
    for item in accept.split(","):
        media_range, *params = (part.strip() for part in item.split(";"))
        range_kind, _, range_subtype = media_range.lower().partition("/")
        if (range_kind, range_subtype) == (kind, subtype):
            specificity = 2
        elif (range_kind, range_subtype) in ((kind, "*"), ("*", "*")):
            specificity = 1 if range_kind == kind else 0
        else:
            continue
        if specificity > best:
            best, quality = specificity, _q(params)
    return quality


def _q(params: list[str]) -> float:
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                return min(max(float(value), 0.0), 1.0)
            except ValueError:
                return 0.0
    return 1.0


# The pages' style sheet and scripts, from the package (the CSP's 'self').
static = Mount("/static", StaticFiles(packages=[("payhook", "static")]), name="static")
