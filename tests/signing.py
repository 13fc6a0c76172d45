"""Signed provider requests for tests, made with independent code: the `stripe` package for
Stripe, the `standardwebhooks` package for web3, and plain hmac for One.com."""

import base64
import hashlib
import hmac
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import stripe
from standardwebhooks.webhooks import Webhook

STRIPE_SECRET = "whsec_stripe_test_secret"
ONECOM_SECRET = "onecom-test-secret"
WEB3_SECRET = "whsec_" + base64.b64encode(b"web3-test-secret-bytes").decode()

SECRETS = {"stripe_webhook_secrets": STRIPE_SECRET, "onecom_webhook_secrets": ONECOM_SECRET,
           "web3_webhook_secrets": WEB3_SECRET}


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


def stripe_headers(raw: bytes, secret: str = STRIPE_SECRET,
                   timestamp: int | None = None) -> dict[str, str]:
    header = stripe.WebhookSignature.generate_signature_header(
        raw.decode(), secret, timestamp=timestamp if timestamp is not None else int(time.time()))
    return {"Stripe-Signature": header, "Content-Type": "application/json"}


def onecom_headers(raw: bytes, secret: str = ONECOM_SECRET,
                   timestamp: int | None = None) -> dict[str, str]:
    stamp = str(timestamp if timestamp is not None else int(time.time()))
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + raw, hashlib.sha256).hexdigest()
    return {"X-Onecom-Timestamp": stamp, "X-Onecom-Signature": f"sha256={digest}",
            "Content-Type": "application/json"}


def web3_headers(raw: bytes, secret: str = WEB3_SECRET, timestamp: int | None = None,
                 message_id: str | None = None) -> dict[str, str]:
    stamp = timestamp if timestamp is not None else int(time.time())
    message_id = message_id or f"msg_{uuid.uuid4().hex}"
    signature = Webhook(secret).sign(message_id, datetime.fromtimestamp(stamp, UTC),
                                     raw.decode())
    return {"webhook-id": message_id, "webhook-timestamp": str(stamp),
            "webhook-signature": signature, "Content-Type": "application/json"}


def stripe_event(session_id: str | None, kind: str = "payment_intent.succeeded",
                 amount: int = 1999, currency: str = "usd", livemode: bool = False,
                 event_id: str | None = None) -> dict[str, Any]:
    charge = kind.startswith("charge.")
    obj: dict[str, Any] = {
        "id": f"ch_{uuid.uuid4().hex}" if charge else f"pi_{uuid.uuid4().hex}",
        "object": "charge" if charge else "payment_intent",
        "currency": currency,
        "metadata": {"session_id": session_id} if session_id else {},
    }
    obj["amount_captured" if charge else "amount_received"] = amount
    if charge:
        obj["payment_intent"] = f"pi_{uuid.uuid4().hex}"
    return {"id": event_id or f"evt_{uuid.uuid4().hex}", "object": "event", "type": kind,
            "livemode": livemode, "data": {"object": obj}}


def onecom_event(session_id: str, kind: str = "payment.completed", amount: int = 1999,
                 currency: str = "usd", event_id: str | None = None) -> dict[str, Any]:
    return {"id": event_id or f"oc_{uuid.uuid4().hex}", "event": kind, "reference": session_id,
            "amount": amount, "currency": currency,
            "payload": {"txn_id": f"txn_{uuid.uuid4().hex}"}}


def web3_event(session_id: str, kind: str = "payment.detected",
               tx_hash: str | None = None) -> dict[str, Any]:
    return {"event": kind, "session_id": session_id,
            "blockchain_tx_id": tx_hash or "0x" + uuid.uuid4().hex * 2, "network": "mainnet"}


def signed(provider: str, body: dict[str, Any], **options: Any) -> tuple[bytes, dict[str, str]]:
    raw = encode(body)
    sign = {"stripe": stripe_headers, "onecom": onecom_headers, "web3": web3_headers}[provider]
    return raw, sign(raw, **options)
