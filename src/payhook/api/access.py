"""The customer's page behind the e-mailed link, and the one reveal of its API key.

``GET /access/{session_id}?token=…`` shows the session, its invoice and whether a provisioned API
key waits to be revealed — never the key itself: mail scanners and link previews fetch links, and
whoever fetched first would take it. ``POST /access/{session_id}/reveal`` with the token in the
body (a form from the page, or JSON) answers the raw key exactly once and destroys its sealed
copy. Anything but a valid, unexpired token for this very session is one 401. Every answer is
private: ``Cache-Control: no-store`` and ``Referrer-Policy: no-referrer`` (the URL holds the
token).
"""

from html import escape
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from payhook.api.body import read_object
from payhook.api.params import path_id
from payhook.api.responses import query
from payhook.api.state import state
from payhook.db.engine import reading
from payhook.errors import InvalidRequest
from payhook.schemas import AccessReveal, parse
from payhook.services import access, api_keys
from payhook.services.access import InvalidLink

PRIVATE_HEADERS = {"cache-control": "no-store", "referrer-policy": "no-referrer"}
# The page loads nothing, runs nothing, is framed nowhere, and its one form posts back here.
PAGE_POLICY = ("default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
               "base-uri 'none'; frame-ancestors 'none'")


class Private:
    """Route middleware: the private headers on every answer, error answers included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_private(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in PRIVATE_HEADERS.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_private)


async def show(request: Request) -> Response:
    """The page (GET and HEAD alike): it reads, and changes nothing."""
    app = state(request)
    session_id = path_id(request, "cs", "session_id", unknown=InvalidLink)
    token = _token(request)
    app.links.verify(session_id, token)
    async with reading(app.engine) as conn:
        page = await access.read_page(conn, session_id)
    document = access.to_object(page, app.settings)
    if prefers_html(request.headers.get("accept", "")):
        return HTMLResponse(render(document, token),
                            headers={"content-security-policy": PAGE_POLICY})
    return JSONResponse(document)


async def reveal(request: Request) -> Response:
    """The provisioned key's raw value, once; then 409 (as for a session that has none)."""
    app = state(request)
    session_id = path_id(request, "cs", "session_id", unknown=InvalidLink)
    token = await _posted_token(request)
    app.links.verify(session_id, token)
    async with app.engine.begin() as conn:
        revealed = await access.reveal(conn, app.sealer, session_id)
    key = api_keys.to_object(revealed.row, revealed.secret)
    if prefers_html(request.headers.get("accept", "")):
        return HTMLResponse(render_revealed(key),
                            headers={"content-security-policy": PAGE_POLICY})
    return JSONResponse(key)


def _token(request: Request) -> str:
    """The link's one query parameter, exactly: ``?token=<jwt>`` and nothing else."""
    params = request.query_params.multi_items()
    if len(params) != 1 or params[0][0] != "token":
        raise InvalidLink()
    return params[0][1]


async def _posted_token(request: Request) -> str:
    """The token from the body of a reveal. In the URL it would land where URLs go (logs,
    history, proxies) while the key is answered: refused before anything is read."""
    if "token" in request.query_params:
        raise InvalidRequest("send the token in the request body, never in the URL",
                             param="token", code="token_in_url")
    query(request)
    body = parse(AccessReveal, await read_object(request, forms=True))
    if not body.token:
        raise InvalidLink()
    return body.token


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


def render(document: dict[str, Any], token: str) -> str:
    """The page; every value is escaped. A waiting key gets a button that posts the token back
    (in the body) to reveal it."""
    session, invoice = document["session"], document["invoice"]
    rows = [("Payment", session["id"]), ("Status", session["status"]),
            ("Amount", f"{session['amount']} {session['currency']} (smallest unit)"),
            ("Paid at", session["paid_at"] or "—"),
            ("Invoice", invoice["id"] if invoice else "being prepared")]
    if session["customer_name"]:
        rows.insert(0, ("Customer", session["customer_name"]))
    table = "".join(f"<tr><th>{escape(label)}</th><td>{escape(str(value))}</td></tr>"
                    for label, value in rows)
    key_section = _key_section(document["api_key"], session["id"], token)
    return _page("Your payment", f"<table>{table}</table>{key_section}")


def render_revealed(key: dict[str, Any]) -> str:
    """The one page that shows the raw key."""
    return _page(f"Your API key ({key['mode']} mode)",
                 f"<p><code>{escape(key['secret'])}</code></p>"
                 "<p><strong>It will not be shown again: copy it now and keep it somewhere "
                 "safe.</strong></p>")


def _key_section(key: dict[str, Any] | None, session_id: str, token: str) -> str:
    if key is None:
        return ""
    heading = f"<h2>Your API key ({escape(key['mode'])} mode)</h2>"
    if key["status"] == "revoked":
        return f"{heading}<p>The key <code>{escape(key['prefix'])}…</code> was revoked.</p>"
    if key["revealed"]:
        return (f"{heading}<p>The key <code>{escape(key['prefix'])}…</code> was revealed "
                "already; it is never shown again.</p>")
    # Relative to this page (/access/<id>), so it also holds behind a path prefix; "./" so
    # that no id could ever read as a scheme.
    return (f"{heading}<p>An API key was created for you. It can be shown only once.</p>"
            f"<form method=\"post\" action=\"./{escape(session_id)}/reveal\">"
            f"<input type=\"hidden\" name=\"token\" value=\"{escape(token)}\">"
            "<button type=\"submit\">Reveal your API key</button></form>")


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"referrer\" content=\"no-referrer\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{escape(title)}</title><style>body{{font-family:sans-serif;max-width:40em;"
        "margin:2em auto;padding:0 1em}th{text-align:left;padding-right:1em}"
        "code{background:#eee;padding:.2em;word-break:break-all}</style></head><body>"
        f"<h1>{escape(title)}</h1>{body}</body></html>")


routes = [
    Route("/access/{session_id}", show, methods=["GET"], middleware=[Middleware(Private)]),
    Route("/access/{session_id}/reveal", reveal, methods=["POST"],
          middleware=[Middleware(Private)]),
]
