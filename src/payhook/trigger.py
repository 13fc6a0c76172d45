"""``payhook trigger``: a provider's event for an existing session, signed the way that provider
signs it (like ``stripe trigger``), so the whole webhook path can be tried without the provider.

The body says what the session says (amount, currency, mode), and every event gets a fresh id:
triggering twice sends two events, not a duplicate.
"""

import json
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from payhook.providers import onecom, stripe, web3

DEFAULT_EVENTS = {
    stripe.NAME: "payment_intent.succeeded",
    onecom.NAME: "payment.completed",
    web3.NAME: "payment.detected",
}
STRIPE_API_VERSION = "2024-06-20"
# What a payment intent's status is when Stripe sends each event.
INTENT_STATUSES = {
    "payment_intent.succeeded": "succeeded",
    "payment_intent.processing": "processing",
    "payment_intent.canceled": "canceled",
    "payment_intent.payment_failed": "requires_payment_method",
}
NETWORK = "ethereum"


@dataclass(frozen=True)
class Session:
    """What an event is built from."""

    id: str
    amount: int
    currency: str
    mode: str


@dataclass(frozen=True)
class Signed:
    raw: bytes
    headers: dict[str, str]


def build(provider: str, session: Session, secret: str, *, event_type: str | None = None,
          tx_hash: str | None = None, now: int | None = None) -> Signed:
    """The raw body and headers of ``event_type`` (the provider's default if not given),
    signed with ``secret`` at ``now``."""
    event_type = event_type or DEFAULT_EVENTS[provider]
    stamp = int(time.time()) if now is None else now
    if provider == web3.NAME:
        body = web3_body(session, event_type, tx_hash or "0x" + secrets.token_hex(32))
    else:
        body = BODIES[provider](session, event_type, stamp)
    raw = json.dumps(body).encode()
    headers = SIGNERS[provider](raw, secret, stamp)
    return Signed(raw=raw, headers={**headers, "Content-Type": "application/json"})


def stripe_body(session: Session, event_type: str, stamp: int) -> dict[str, Any]:
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
    return {"id": f"evt_{uuid.uuid4().hex}", "object": "event",
            "api_version": STRIPE_API_VERSION, "created": stamp,
            "livemode": session.mode == "live", "type": event_type, "data": {"object": obj}}


def onecom_body(session: Session, event_type: str, _stamp: int) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "event": event_type, "reference": session.id,
            "amount": session.amount, "currency": session.currency,
            "payload": {"txn_id": f"txn_{uuid.uuid4().hex}"}}


def web3_body(session: Session, event_type: str, tx_hash: str) -> dict[str, Any]:
    return {"event": event_type, "session_id": session.id, "blockchain_tx_id": tx_hash,
            "network": NETWORK}


BODIES: dict[str, Callable[[Session, str, int], dict[str, Any]]] = {
    stripe.NAME: stripe_body,
    onecom.NAME: onecom_body,
}
SIGNERS: dict[str, Callable[[bytes, str, int], dict[str, str]]] = {
    stripe.NAME: stripe.sign,
    onecom.NAME: onecom.sign,
    web3.NAME: web3.sign,  # a fresh msg_… webhook-id each time
}
