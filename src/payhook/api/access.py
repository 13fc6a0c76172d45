"""The customer's page behind the e-mailed link, and the one reveal of its API key.

``GET /access/{session_id}?token=…`` shows the session, its invoice and whether a provisioned API
key waits to be revealed — never the key itself: mail scanners and link previews fetch links, and
whoever fetched first would take it. ``POST /access/{session_id}/reveal`` with the token in the
body (a form from the page, or JSON) answers the raw key exactly once and destroys its sealed
copy. Anything but a valid, unexpired token for this very session is one 401. Every answer is
private: ``Cache-Control: no-store`` and ``Referrer-Policy: no-referrer`` (the URL holds the
token).
"""

from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from payhook.api.body import read_object
from payhook.api.pages import for_people, render, wants_page
from payhook.api.params import path_id
from payhook.api.responses import query
from payhook.api.state import state
from payhook.db.engine import reading
from payhook.errors import InvalidRequest
from payhook.schemas import AccessReveal, parse
from payhook.services import access, api_keys
from payhook.services.access import InvalidLink

PRIVATE_HEADERS = {"cache-control": "no-store", "referrer-policy": "no-referrer"}


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


@for_people
async def show(request: Request) -> Response:
    """The page (GET and HEAD alike): it reads, and changes nothing."""
    app = state(request)
    session_id = path_id(request, "cs", "session_id", unknown=InvalidLink)
    token = _token(request)
    app.links.verify(session_id, token)
    async with reading(app.engine) as conn:
        page = await access.read_page(conn, session_id)
    document = access.to_object(page, app.settings)
    if wants_page(request):
        return render(request, "access.html", page=document, token=token)
    return JSONResponse(document)


@for_people
async def reveal(request: Request) -> Response:
    """The provisioned key's raw value, once; then 409 (as for a session that has none)."""
    app = state(request)
    session_id = path_id(request, "cs", "session_id", unknown=InvalidLink)
    token = await _posted_token(request)
    app.links.verify(session_id, token)
    async with app.engine.begin() as conn:
        revealed = await access.reveal(conn, app.sealer, session_id)
    key = api_keys.to_object(revealed.row, revealed.secret)
    if wants_page(request):
        return render(request, "access_revealed.html", key=key)
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


routes = [
    Route("/access/{session_id}", show, methods=["GET"], middleware=[Middleware(Private)]),
    Route("/access/{session_id}/reveal", reveal, methods=["POST"],
          middleware=[Middleware(Private)]),
]
