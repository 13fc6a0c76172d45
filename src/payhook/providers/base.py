"""What every provider module shares: the :class:`ProviderSpec` it exposes as ``PROVIDER``,
the normalised event and the signature checks."""

import hashlib
import hmac
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from payhook import ids, inputs
from payhook.domain.events import ProviderEvent
from payhook.errors import InvalidRequest
from payhook.strictjson import parse_strict

SESSION_PREFIX = "cs"
TIMESTAMP_DIGITS = 12  # Unix seconds have 10 digits until the year 2286
TYPE_LENGTH = 100  # webhook_events.type


class InvalidWebhook(InvalidRequest):
    """A request that must change nothing: bad signature, stale time, not JSON, no event id."""

    code = "invalid_webhook"


@dataclass(frozen=True)
class VerifyContext:
    secrets: tuple[str, ...]
    tolerance: int
    crypto: frozenset[str] = frozenset()


Verifier = Callable[[bytes, Mapping[str, str], VerifyContext], ProviderEvent]


@dataclass(frozen=True)
class Session:
    """What ``payhook trigger`` builds an event from: the session it pays."""

    id: str
    amount: int
    currency: str
    mode: str


# (raw body, secret, Unix time) -> the headers the provider would send with it
Signer = Callable[[bytes, str, int], dict[str, str]]
# (session, event type, Unix time, on-chain transaction hash or None) -> the body it would send
Sampler = Callable[[Session, str, int, str | None], dict[str, Any]]


@dataclass(frozen=True)
class ProviderSpec:
    """One provider, whole: its module's ``PROVIDER``, registered by one line in
    :data:`payhook.providers.REGISTRY`. The webhook route, ``/openapi.json``, ``payhook
    trigger`` and the settings (the embedded default's generated secrets) all read it there."""

    name: str  # POST /webhooks/<name>; the provider of its stored events
    verify: Verifier
    secrets_setting: str  # the Settings field of PAYHOOK_<NAME>_WEBHOOK_SECRETS
    generate_secret: Callable[[], str]  # the embedded default's webhook secret, made once
    sign: Signer  # for payhook trigger
    sample: Sampler  # for payhook trigger
    default_event: str  # what payhook trigger sends unless told: a successful payment
    tx_hash: re.Pattern[str] | None = None  # what payhook trigger --tx takes; None: no --tx


def require_secrets(context: VerifyContext) -> tuple[str, ...]:
    if not context.secrets:
        raise InvalidWebhook("this provider has no webhook secret configured; nothing accepted",
                             code="provider_not_configured")
    return context.secrets


def check_timestamp(raw: str | None, tolerance: int) -> int:
    """A Unix timestamp within ``tolerance`` seconds of now, in either direction: ASCII digits,
    a bounded number of them (``"²"``, ``"３"`` and 5000 nines are malformed, not a crash)."""
    stamp = inputs.unsigned((raw or "").strip(), TIMESTAMP_DIGITS)
    if stamp is None:
        raise InvalidWebhook("missing or malformed signature timestamp")
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


def text_field(document: Mapping[str, Any], name: str, *, required: bool = False,
               max_length: int = 255) -> str | None:
    """A string we can store as it is (no NUL, at most ``max_length``), else None — or, for a
    ``required`` one such as the event id that deduplicates, a 400."""
    value = document.get(name)
    if isinstance(value, str) and value and len(value) <= max_length and inputs.storable(value):
        return value
    if required:
        raise InvalidWebhook(f"the event has no valid {name!r}", param=name)
    return None


def session_field(document: Mapping[str, Any], name: str) -> tuple[str | None, bool]:
    """The session an event names, and whether it names one at all.

    A reference without the form of a session id (a NUL, 10 kB, another prefix) names a
    session that cannot exist: the event is unmatched, stored with no session id, and the
    reference is never looked up."""
    value = document.get(name)
    if not isinstance(value, str) or not value:
        return None, False
    return (value if ids.has_prefix(value, SESSION_PREFIX) else None), True


def object_field(document: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = document.get(name)
    return value if isinstance(value, dict) else {}


def integer_field(document: Mapping[str, Any], name: str) -> int | None:
    value = document.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def pick_headers(headers: Mapping[str, str], names: Iterable[str]) -> dict[str, str]:
    """The headers worth keeping with the event, those a jsonb document can hold."""
    return {name: headers[name] for name in names
            if name in headers and inputs.storable(headers[name])}
