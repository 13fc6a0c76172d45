"""``GET /access/{session_id}?token=…``: the customer's page behind the e-mailed link.

The session, its invoice and, on the first visit only, the API key provisioned for it. Anything
but a valid, unexpired token for this very session is one 401. Every answer is private:
``Cache-Control: no-store`` and ``Referrer-Policy: no-referrer`` (the URL holds the token).
"""

from html import escape
from typing import Any

from sqlalchemy import select
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from payhook.api.params import path_id
from payhook.api.state import state
from payhook.crypto import Sealer
from payhook.db.tables import checkout_sessions, invoices
from payhook.effects import invoices as invoice_effect
from payhook.effects.access_links import AccessLinks, InvalidLink
from payhook.effects.api_keys import reveal_once
from payhook.services import api_keys, sessions

PRIVATE_HEADERS = {"cache-control": "no-store", "referrer-policy": "no-referrer"}
# The page loads nothing, runs nothing and is framed nowhere.
PAGE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"


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
    app = state(request)
    session_id = path_id(request, "cs", "session_id", unknown=InvalidLink)
    AccessLinks.from_settings(app.settings).verify(session_id, _token(request))
    async with app.engine.begin() as conn:
        session = (await conn.execute(select(checkout_sessions).where(
            checkout_sessions.c.id == session_id))).first()
        if session is None:
            raise InvalidLink()
        invoice = (await conn.execute(select(invoices).where(
            invoices.c.session_id == session_id))).first()
        # A HEAD (a link checker, a preview) must not consume the one reveal.
        key = (None if request.method == "HEAD"
               else await reveal_once(conn, Sealer(app.settings.require_secret()), session_id))
    document = {
        "object": "customer_access",
        "session": sessions.to_object(session, app.settings.public_base_url),
        "invoice": invoice_effect.to_object(invoice) if invoice is not None else None,
        "api_key": api_keys.to_object(key.row, key.secret) if key is not None else None,
    }
    if prefers_html(request.headers.get("accept", "")):
        return HTMLResponse(render(document), headers={"content-security-policy": PAGE_POLICY})
    return JSONResponse(document)


def _token(request: Request) -> str:
    """The link's one query parameter, exactly: ``?token=<jwt>`` and nothing else."""
    params = request.query_params.multi_items()
    if len(params) != 1 or params[0][0] != "token":
        raise InvalidLink()
    return params[0][1]


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


def render(document: dict[str, Any]) -> str:
    """The page; every value is escaped."""
    session, invoice, key = document["session"], document["invoice"], document["api_key"]
    rows = [("Payment", session["id"]), ("Status", session["status"]),
            ("Amount", f"{session['amount']} {session['currency']} (smallest unit)"),
            ("Paid at", session["paid_at"] or "—"),
            ("Invoice", invoice["id"] if invoice else "being prepared")]
    if session["customer_name"]:
        rows.insert(0, ("Customer", session["customer_name"]))
    table = "".join(f"<tr><th>{escape(label)}</th><td>{escape(str(value))}</td></tr>"
                    for label, value in rows)
    return (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"referrer\" content=\"no-referrer\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        "<title>Your payment</title><style>body{font-family:sans-serif;max-width:40em;"
        "margin:2em auto;padding:0 1em}th{text-align:left;padding-right:1em}"
        "code{background:#eee;padding:.2em;word-break:break-all}</style></head><body>"
        f"<h1>Your payment</h1><table>{table}</table>{_key_section(key)}</body></html>")


def _key_section(key: dict[str, Any] | None) -> str:
    if key is None or "secret" not in key:
        return ""
    return (f"<h2>Your API key ({escape(key['mode'])} mode)</h2>"
            f"<p><code>{escape(key['secret'])}</code></p>"
            "<p><strong>It is shown only this once: copy it now.</strong></p>")


routes = [
    Route("/access/{session_id}", show, methods=["GET"], middleware=[Middleware(Private)]),
]
