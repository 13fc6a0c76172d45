"""Signing in to the console with the admin token, signing out, and the guard every other
console page passes: a valid cookie of this stack, and on every POST the form's CSRF token.

A wrong token costs the client: after ``FAILURES_ALLOWED`` wrong tries within ``WINDOW_SECONDS``
it is refused without a check until the window has passed. Refusals are logged with the client's
address, never with what was typed.
"""

import functools
import hmac
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from payhook import clock, inputs
from payhook.api.body import read_object
from payhook.api.console.cookies import (
    LIFETIME_SECONDS,
    MAX_OPERATOR_NAME,
    SIGN_IN_SECONDS,
    Operator,
    Signer,
    new_nonce,
)
from payhook.api.pages import Endpoint, for_people, render
from payhook.api.state import state
from payhook.db.engine import reading
from payhook.services import console_sessions

log = logging.getLogger("payhook.console")

COOKIE = "payhook_console"
SIGN_IN_COOKIE = "payhook_console_sign_in"
FAILURES_ALLOWED = 5
WINDOW_SECONDS = 60.0
MAX_CLIENTS = 10_000
PRIVATE = {"cache-control": "no-store", "referrer-policy": "no-referrer"}


@dataclass
class Attempts:
    """Wrong sign-ins per client address, in a sliding window (per process: enough to make
    guessing a 24+ character token hopeless)."""

    failures: dict[str, deque[float]] = field(default_factory=dict)

    def wait(self, client: str, now: float) -> float:
        """Seconds until this client may try again (0: now)."""
        recent = self.failures.get(client)
        while recent and recent[0] <= now - WINDOW_SECONDS:
            recent.popleft()
        if not recent or len(recent) < FAILURES_ALLOWED:
            return 0.0
        return recent[0] + WINDOW_SECONDS - now

    def failed(self, client: str, now: float) -> None:
        if client not in self.failures and len(self.failures) >= MAX_CLIENTS:
            self.failures.pop(next(iter(self.failures)))  # the oldest client first
        self.failures.setdefault(client, deque()).append(now)


@dataclass
class Console:
    signer: Signer
    attempts: Attempts


def console(request: Request) -> Console:
    """The console's keys and counters, made once per app on first use."""
    made: Console | None = getattr(request.app.state, "console", None)
    if made is None:
        settings = state(request).settings
        made = Console(Signer(settings.require_secret(), settings.require_admin_token()),
                       Attempts())
        request.app.state.console = made
    return made


def url(request: Request, path: str) -> str:
    """A console path under the public base URL's own path (behind a prefix too)."""
    return f"{urlsplit(state(request).settings.public_base_url).path}/console{path}"


def _cookie(request: Request, response: Response, name: str, value: str, seconds: int) -> None:
    response.set_cookie(name, value, max_age=seconds, path=url(request, ""), httponly=True,
                        samesite="strict",
                        secure=state(request).settings.public_base_url.startswith("https:"))


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@for_people
async def sign_in_page(request: Request) -> Response:
    if await _signed_in_operator(request) is not None:
        return RedirectResponse(url(request, ""), status_code=303)
    return _sign_in_form(request, signed_out="signed_out" in request.query_params)


def _sign_in_form(request: Request, status_code: int = 200, **values: Any) -> Response:
    nonce = new_nonce()
    page = render(request, "console/sign_in.html", status_code=status_code, headers=PRIVATE,
                  csrf=console(request).signer.csrf(nonce), action=url(request, "/sign-in"),
                  **values)
    _cookie(request, page, SIGN_IN_COOKIE, nonce, SIGN_IN_SECONDS)
    return page


@for_people
async def sign_in(request: Request) -> Response:
    made, client, now = console(request), _client(request), time.monotonic()
    form = await read_object(request, forms=True)
    if not made.signer.csrf_ok(request.cookies.get(SIGN_IN_COOKIE, ""), form.get("csrf")):
        return refused(request)
    wait = made.attempts.wait(client, now)
    if wait:
        log.warning("console sign-in refused: too many wrong tokens", extra={"client": client})
        return _sign_in_form(request, 429, problem=f"Too many wrong tokens. Try again in "
                                                    f"{int(wait) + 1} seconds.")
    token = form.get("token")
    expected = state(request).settings.require_admin_token()
    if not isinstance(token, str) or not hmac.compare_digest(token.encode(), expected.encode()):
        made.attempts.failed(client, now)
        log.warning("console sign-in refused: wrong admin token", extra={"client": client})
        return _sign_in_form(request, 401, problem="That is not the admin token.")
    cookie, _ = made.signer.issue(_operator_name(form.get("name")))
    log.info("console sign-in", extra={"client": client})
    answer = RedirectResponse(url(request, ""), status_code=303, headers=PRIVATE)
    _cookie(request, answer, COOKIE, cookie, LIFETIME_SECONDS)
    answer.delete_cookie(SIGN_IN_COOKIE, path=url(request, ""))
    return answer


def _operator_name(value: object) -> str:
    """The name an operator gave for the audit trail: printable, short, else 'operator'."""
    if not isinstance(value, str):
        return "operator"
    name = " ".join(value.split())[:MAX_OPERATOR_NAME]
    return name if name and name.isprintable() and inputs.storable(name) else "operator"


def refused(request: Request) -> Response:
    """A state-changing form without this console's CSRF token: 403, nothing done."""
    log.warning("console form refused: CSRF token missing or wrong",
                extra={"client": _client(request)})
    return render(request, "console/refused.html", status_code=403, headers=PRIVATE,
                  home=url(request, ""))


def signed_in(endpoint: Endpoint) -> Endpoint:
    """Only for a signed-in operator (others go to the sign-in page); a POST must carry the
    form's CSRF token. The operator is ``request.state.operator``, a POST's fields
    ``request.state.form``."""

    @functools.wraps(endpoint)
    async def guarded(request: Request) -> Response:
        operator = await _signed_in_operator(request)
        if operator is None:
            return RedirectResponse(url(request, "/sign-in"), status_code=303, headers=PRIVATE)
        request.state.operator = operator
        if request.method == "POST":
            request.state.form = await read_object(request, forms=True)
            if not console(request).signer.csrf_ok(operator.nonce,
                                                   request.state.form.get("csrf")):
                return refused(request)
        answer = await endpoint(request)
        for name, value in PRIVATE.items():
            answer.headers.setdefault(name, value)
        return answer

    return guarded


async def _signed_in_operator(request: Request) -> Operator | None:
    """The operator of a valid cookie of this stack that was not signed out."""
    operator = console(request).signer.verify(request.cookies.get(COOKIE))
    if operator is None:
        return None
    async with reading(state(request).engine) as conn:
        if await console_sessions.signed_out(conn, operator.nonce):
            return None
    return operator


@for_people
@signed_in
async def sign_out(request: Request) -> Response:
    signed = operator(request)
    async with state(request).engine.begin() as conn:
        await console_sessions.sign_out(conn, signed.nonce,
                                        datetime.fromtimestamp(signed.expires, UTC), clock.now())
    answer = RedirectResponse(url(request, "/sign-in?signed_out"), status_code=303)
    answer.delete_cookie(COOKIE, path=url(request, ""))
    return answer


def operator(request: Request) -> Operator:
    signed: Operator = request.state.operator
    return signed


def actor(request: Request) -> str:
    """The audit trail's actor: the console, the operator's name and their address."""
    return f"console:{operator(request).name}:{_client(request)}"
