"""Credentials: merchant API keys (``Bearer sk_…``) and the operators' admin token."""

import hmac

from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request

from payhook.api.state import state
from payhook.errors import Unauthorized
from payhook.services import api_keys
from payhook.services.api_keys import Caller


def bearer(request: Request) -> str:
    scheme, _, credential = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        raise Unauthorized("send your API key as Authorization: Bearer sk_…")
    return credential.strip()


async def merchant(request: Request, conn: AsyncConnection) -> Caller:
    return await api_keys.authenticate(conn, state(request).hasher, bearer(request))


def admin(request: Request) -> None:
    """Operators only; a merchant key (or anything else) is a 401."""
    expected = state(request).settings.require_admin_token()
    if not hmac.compare_digest(bearer(request).encode(), expected.encode()):
        raise Unauthorized("invalid admin token", code="invalid_admin_token")
