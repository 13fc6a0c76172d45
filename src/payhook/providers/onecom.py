"""One.com: ``X-Onecom-Timestamp: <unix>`` and ``X-Onecom-Signature: sha256=<hex>`` of
HMAC-SHA256(secret, ``"<timestamp>.<raw body>"``). Body ``{id, event, reference, amount,
currency, payload: {txn_id}}``."""

import secrets
import uuid
from collections.abc import Mapping
from typing import Any

from payhook.domain.events import Intent, ProviderEvent
from payhook.providers.base import (
    TYPE_LENGTH,
    InvalidWebhook,
    ProviderSpec,
    Session,
    VerifyContext,
    any_signature_matches,
    check_timestamp,
    hmac_hex,
    integer_field,
    json_object,
    object_field,
    pick_headers,
    require_secrets,
    session_field,
    text_field,
)

NAME = "onecom"
TIMESTAMP = "x-onecom-timestamp"
SIGNATURE = "x-onecom-signature"

INTENTS = {
    "payment.completed": Intent.PAY,
    "payment.pending": Intent.PEND,
    "payment.failed": Intent.FAIL,
}


def verify(raw: bytes, headers: Mapping[str, str], context: VerifyContext) -> ProviderEvent:
    secrets = require_secrets(context)
    stamp = check_timestamp(headers.get(TIMESTAMP), context.tolerance)
    scheme, _, signature = (headers.get(SIGNATURE) or "").partition("=")
    if scheme != "sha256" or not signature:
        raise InvalidWebhook("missing or malformed X-Onecom-Signature")
    message = f"{stamp}.".encode() + raw
    expected = [hmac_hex(secret.encode(), message) for secret in secrets]
    if not any_signature_matches(expected, [signature]):
        raise InvalidWebhook("no valid One.com signature")
    body = json_object(raw)
    event_id = text_field(body, "id", required=True)
    assert event_id is not None
    kind = text_field(body, "event", max_length=TYPE_LENGTH) or ""
    payload = object_field(body, "payload")
    session_id, named = session_field(body, "reference")
    return ProviderEvent(
        provider=NAME, event_id=event_id, type=kind,
        intent=INTENTS.get(kind, Intent.IGNORE) if named else Intent.IGNORE,
        session_id=session_id, raw=raw,
        headers=pick_headers(headers, (TIMESTAMP, SIGNATURE, "content-type")),
        amount=integer_field(body, "amount"), currency=text_field(body, "currency"),
        reference=text_field(payload, "txn_id"),
    )


def sign(raw: bytes, secret: str, timestamp: int) -> dict[str, str]:
    """The headers One.com would send for ``raw`` (``payhook trigger``)."""
    signature = hmac_hex(secret.encode(), f"{timestamp}.".encode() + raw)
    return {"X-Onecom-Timestamp": str(timestamp), "X-Onecom-Signature": f"sha256={signature}"}


def sample(session: Session, event_type: str, _stamp: int, _tx_hash: str | None) -> dict[str, Any]:
    """The event One.com would send about ``session`` (``payhook trigger``)."""
    return {"id": str(uuid.uuid4()), "event": event_type, "reference": session.id,
            "amount": session.amount, "currency": session.currency,
            "payload": {"txn_id": f"txn_{uuid.uuid4().hex}"}}


PROVIDER = ProviderSpec(
    name=NAME, verify=verify, secrets_setting="onecom_webhook_secrets",
    generate_secret=lambda: secrets.token_urlsafe(32),
    sign=sign, sample=sample, default_event="payment.completed",
)
