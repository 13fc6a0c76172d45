"""What every provider module shares: the normalised event and the signature checks."""

import hashlib
import hmac
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from payhook.domain.events import ProviderEvent
from payhook.errors import InvalidRequest
from payhook.strictjson import parse_strict


class InvalidWebhook(InvalidRequest):
    """A request that must change nothing: bad signature, stale time, not JSON, no event id."""

    code = "invalid_webhook"


@dataclass(frozen=True)
class VerifyContext:
    secrets: tuple[str, ...]
    tolerance: int
    crypto: frozenset[str] = frozenset()


Verifier = Callable[[bytes, Mapping[str, str], VerifyContext], ProviderEvent]


def require_secrets(context: VerifyContext) -> tuple[str, ...]:
    if not context.secrets:
        raise InvalidWebhook("this provider has no webhook secret configured; nothing accepted",
                             code="provider_not_configured")
    return context.secrets


def check_timestamp(raw: str | None, tolerance: int) -> int:
    """A Unix timestamp within ``tolerance`` seconds of now, in either direction."""
    if raw is None or not raw.strip().isdigit():
        raise InvalidWebhook("missing or malformed signature timestamp")
    stamp = int(raw.strip())
    if abs(time.time() - stamp) > tolerance:
        raise InvalidWebhook("signature timestamp outside the tolerance")
    return stamp


def hmac_hex(secret: bytes, message: bytes) -> str:
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def any_signature_matches(expected: Iterable[str], given: Iterable[str]) -> bool:
    """Constant-time comparison of every candidate (no early exit on the first mismatch)."""
    matched = False
    given = list(given)
    for candidate in expected:
        for signature in given:
            matched |= hmac.compare_digest(candidate.encode(), signature.encode())
    return matched


def json_object(raw: bytes) -> dict[str, Any]:
    try:
        document = parse_strict(raw)
    except InvalidRequest as error:
        raise InvalidWebhook(f"the signed body is not valid JSON ({error})") from None
    if not isinstance(document, dict):
        raise InvalidWebhook("the signed body is not a JSON object")
    return document


def text_field(document: Mapping[str, Any], name: str, *, required: bool = False) -> str | None:
    value = document.get(name)
    if isinstance(value, str) and value and len(value) <= 255:
        return value
    if required:
        raise InvalidWebhook(f"the event has no valid {name!r}", param=name)
    return None


def object_field(document: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = document.get(name)
    return value if isinstance(value, dict) else {}


def integer_field(document: Mapping[str, Any], name: str) -> int | None:
    value = document.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def pick_headers(headers: Mapping[str, str], names: Iterable[str]) -> dict[str, str]:
    return {name: headers[name] for name in names if name in headers}
