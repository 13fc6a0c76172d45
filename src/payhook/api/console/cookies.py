"""The console's signed-in cookie and its CSRF tokens, stateless and bound to this stack.

A cookie is ``<expires>.<nonce>.<operator>.<mac>``: HMAC-SHA256 under a key derived from
``PAYHOOK_SECRET_KEY`` *and* ``PAYHOOK_ADMIN_TOKEN``, so a cookie made by another deployment (or
before the admin token was rotated) verifies nowhere else. The CSRF token of a form is the MAC
of the cookie's nonce under the same key: a page of ours can put it in a form, another site can
neither read nor compute it. The sign-in form, before any cookie, is bound the same way to a
short-lived nonce cookie of its own.
"""

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from payhook.crypto import derive_key

LIFETIME_SECONDS = 8 * 3600
SIGN_IN_SECONDS = 15 * 60
MAX_OPERATOR_NAME = 60


@dataclass(frozen=True)
class Operator:
    """Who is signed in: the name they gave (the audit trail's actor) and their nonce."""

    name: str
    nonce: str
    expires: int


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    def __init__(self, secret_key: str, admin_token: str) -> None:
        self._key = hmac.new(derive_key(secret_key, "console-sessions"), admin_token.encode(),
                             hashlib.sha256).digest()

    def _mac(self, message: str) -> str:
        return _b64(hmac.new(self._key, message.encode(), hashlib.sha256).digest())

    def issue(self, name: str, now: float | None = None) -> tuple[str, Operator]:
        expires = int(now if now is not None else time.time()) + LIFETIME_SECONDS
        operator = Operator(name=name, nonce=secrets.token_urlsafe(18), expires=expires)
        body = f"{expires}.{operator.nonce}.{_b64(name.encode())}"
        return f"{body}.{self._mac(body)}", operator

    def verify(self, cookie: str | None, now: float | None = None) -> Operator | None:
        """The operator of a cookie this stack made and that has not expired; else None."""
        if not cookie or len(cookie) > 512:
            return None
        parts = cookie.split(".")
        if len(parts) != 4 or not parts[0].isascii() or not parts[0].isdigit():
            return None
        body = ".".join(parts[:3])
        if not hmac.compare_digest(parts[3].encode(), self._mac(body).encode()):
            return None
        expires = int(parts[0])
        if expires <= (now if now is not None else time.time()):
            return None
        return Operator(name=_unb64(parts[2]).decode(), nonce=parts[1], expires=expires)

    def csrf(self, nonce: str) -> str:
        return self._mac(f"csrf.{nonce}")

    def csrf_ok(self, nonce: str, token: object) -> bool:
        return isinstance(token, str) and hmac.compare_digest(token.encode(),
                                                             self.csrf(nonce).encode())


def new_nonce() -> str:
    return secrets.token_urlsafe(18)
