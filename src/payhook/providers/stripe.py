"""Stripe: ``Stripe-Signature: t=<unix>,v1=<hex>[,v1=…]``, HMAC-SHA256 keyed with the whole
``whsec_…`` string over ``"<t>.<raw body>"``. Unlike stripe-python we also reject future ``t``."""

import secrets
import uuid
from collections.abc import Mapping
from typing import Any

from payhook.domain.events import UNSTATED, Intent, ProviderEvent
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

NAME = "stripe"
HEADER = "stripe-signature"

INTENTS = {
    "payment_intent.succeeded": (Intent.PAY, "amount_received"),
    "charge.succeeded": (Intent.PAY, "amount_captured"),
    "payment_intent.processing": (Intent.PEND, None),
    "payment_intent.canceled": (Intent.FAIL, None),
    "payment_intent.payment_failed": (Intent.RECORD, None),
}
API_VERSION = "2024-06-20"  # of the events payhook trigger sends
# What a payment intent's status is when Stripe sends each event.
INTENT_STATUSES = {
    "payment_intent.succeeded": "succeeded",
    "payment_intent.processing": "processing",
    "payment_intent.canceled": "canceled",
    "payment_intent.payment_failed": "requires_payment_method",
}


def _parse_header(header: str | None) -> tuple[str | None, list[str]]:
    if not header:
        raise InvalidWebhook("missing Stripe-Signature header")
    timestamp, signatures = None, []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            timestamp = value
        elif key == "v1":
            signatures.append(value)
    return timestamp, signatures


def verify(raw: bytes, headers: Mapping[str, str], context: VerifyContext) -> ProviderEvent:
    secrets = require_secrets(context)
    timestamp, signatures = _parse_header(headers.get(HEADER))
    stamp = check_timestamp(timestamp, context.tolerance)
    message = f"{stamp}.".encode() + raw
    expected = [hmac_hex(secret.encode(), message) for secret in secrets]
    if not signatures or not any_signature_matches(expected, signatures):
        raise InvalidWebhook("no valid Stripe signature")
    return normalise(json_object(raw), raw, pick_headers(headers, (HEADER, "content-type")))


def normalise(event: dict[str, Any], raw: bytes, headers: dict[str, str]) -> ProviderEvent:
    event_id = text_field(event, "id", required=True)
    assert event_id is not None
    kind = text_field(event, "type", max_length=TYPE_LENGTH) or ""
    obj = object_field(object_field(event, "data"), "object")
    metadata = object_field(obj, "metadata")
    intent, amount_field = INTENTS.get(kind, (Intent.IGNORE, None))
    session_id, named = session_field(metadata, "session_id")
    livemode = event.get("livemode")
    # A charge is known by its PaymentIntent; one made without (``"payment_intent": null``,
    # as the Charges API makes them) by its own id.
    paid_by = text_field(obj, "payment_intent") if obj.get("object") == "charge" else None
    reference = paid_by or text_field(obj, "id")
    return ProviderEvent(
        provider=NAME, event_id=event_id, type=kind,
        intent=intent if named else Intent.IGNORE,
        session_id=session_id, raw=raw, headers=headers,
        amount=integer_field(obj, amount_field) if amount_field else None,
        currency=text_field(obj, "currency"),
        mode=("live" if livemode else "test") if isinstance(livemode, bool) else UNSTATED,
        reference=reference,
    )


def sign(raw: bytes, secret: str, timestamp: int) -> dict[str, str]:
    """The ``Stripe-Signature`` header Stripe would send for ``raw`` (``payhook trigger``)."""
    signature = hmac_hex(secret.encode(), f"{timestamp}.".encode() + raw)
    return {"Stripe-Signature": f"t={timestamp},v1={signature}"}


def sample(session: Session, event_type: str, stamp: int, _tx_hash: str | None) -> dict[str, Any]:
    """The event Stripe would send about ``session`` (``payhook trigger``): a charge for
    ``charge.*`` types, else a payment intent in the status that type implies."""
    intent_id = f"pi_{uuid.uuid4().hex}"
    metadata = {"session_id": session.id}
    if event_type.startswith("charge."):
        obj: dict[str, Any] = {
            "id": f"ch_{uuid.uuid4().hex}", "object": "charge", "amount": session.amount,
            "amount_captured": session.amount, "currency": session.currency,
            "payment_intent": intent_id, "paid": True, "status": "succeeded",
            "metadata": metadata,
        }
    else:
        status = INTENT_STATUSES.get(event_type, "succeeded")
        obj = {
            "id": intent_id, "object": "payment_intent", "amount": session.amount,
            "amount_received": session.amount if status == "succeeded" else 0,
            "currency": session.currency, "status": status, "metadata": metadata,
        }
    return {"id": f"evt_{uuid.uuid4().hex}", "object": "event", "api_version": API_VERSION,
            "created": stamp, "livemode": session.mode == "live", "type": event_type,
            "data": {"object": obj}}


PROVIDER = ProviderSpec(
    name=NAME, verify=verify, secrets_setting="stripe_webhook_secrets",
    generate_secret=lambda: "whsec_" + secrets.token_urlsafe(32),
    sign=sign, sample=sample, default_event="payment_intent.succeeded",
)
