"""Web3 notifier: Standard Webhooks (``webhook-id``, ``webhook-timestamp``, ``webhook-signature:
v1,<base64>``), signed with the ``standardwebhooks`` package's own signer. The notification is
only a hint: it asks the worker to check the transaction on chain."""

import base64
import re
import secrets
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from standardwebhooks.webhooks import Webhook

from payhook import inputs
from payhook.domain.events import Intent, ProviderEvent
from payhook.providers.base import (
    TYPE_LENGTH,
    InvalidWebhook,
    ProviderSpec,
    Session,
    VerifyContext,
    any_signature_matches,
    check_timestamp,
    json_object,
    pick_headers,
    require_secrets,
    session_field,
    text_field,
)

NAME = "web3"
ID, TIMESTAMP, SIGNATURE = "webhook-id", "webhook-timestamp", "webhook-signature"
EVENTS = frozenset({"payment.detected", "payment.confirmed", "transfer.confirmed"})
TX_HASH = re.compile(r"0x[0-9a-fA-F]{64}")
NETWORK = "ethereum"  # of the events payhook trigger sends


def _expected(secret: str, message_id: str, stamp: int, body: str) -> str:
    try:
        return Webhook(secret).sign(message_id, datetime.fromtimestamp(stamp, UTC), body)
    except Exception:  # noqa: BLE001 - a malformed configured secret must not verify anything
        return ""


def verify(raw: bytes, headers: Mapping[str, str], context: VerifyContext) -> ProviderEvent:
    secrets = require_secrets(context)
    message_id = headers.get(ID)
    if not message_id or len(message_id) > 255 or not inputs.storable(message_id):
        raise InvalidWebhook("missing or malformed webhook-id")
    stamp = check_timestamp(headers.get(TIMESTAMP), context.tolerance)
    try:
        body_text = raw.decode()
    except UnicodeDecodeError:
        raise InvalidWebhook("the body is not UTF-8 JSON") from None
    expected = [sig for sig in (_expected(s, message_id, stamp, body_text) for s in secrets) if sig]
    given = [entry for entry in (headers.get(SIGNATURE) or "").split(" ")
             if entry.startswith("v1,")]
    if not given or not any_signature_matches(expected, given):
        raise InvalidWebhook("no valid webhook-signature")
    body = json_object(raw)
    kind = text_field(body, "event", max_length=TYPE_LENGTH) or ""
    session_id, named = session_field(body, "session_id")
    tx_hash = body.get("blockchain_tx_id")
    handled = kind in EVENTS and named
    if handled and (not isinstance(tx_hash, str) or not TX_HASH.fullmatch(tx_hash)):
        raise InvalidWebhook("blockchain_tx_id must be 0x and 64 hex digits",
                             param="blockchain_tx_id")
    return ProviderEvent(
        provider=NAME, event_id=message_id, type=kind,
        intent=Intent.CHECK if handled else Intent.IGNORE, session_id=session_id, raw=raw,
        headers=pick_headers(headers, (ID, TIMESTAMP, SIGNATURE, "content-type")),
        reference=tx_hash.lower() if handled and isinstance(tx_hash, str) else None,
        details={"network": text_field(body, "network")} if "network" in body else {},
    )


def sign(raw: bytes, secret: str, timestamp: int, message_id: str | None = None) -> dict[str, str]:
    """Standard Webhooks headers for ``raw`` (``payhook trigger``); a fresh ``msg_…`` id unless
    one is given, since the id is what deduplicates."""
    message_id = message_id or f"msg_{uuid.uuid4().hex}"
    signature = Webhook(secret).sign(message_id, datetime.fromtimestamp(timestamp, UTC),
                                     raw.decode())
    return {"webhook-id": message_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": signature}


def sample(session: Session, event_type: str, _stamp: int, tx_hash: str | None) -> dict[str, Any]:
    """The notification the Web3 notifier would send about ``session`` (``payhook trigger``),
    naming ``tx_hash`` or a random transaction."""
    return {"event": event_type, "session_id": session.id,
            "blockchain_tx_id": tx_hash or "0x" + secrets.token_hex(32), "network": NETWORK}


PROVIDER = ProviderSpec(
    name=NAME, verify=verify, secrets_setting="web3_webhook_secrets",
    generate_secret=lambda: "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode(),
    sign=sign,  # a fresh msg_… webhook-id each time
    sample=sample, default_event="payment.detected", tx_hash=TX_HASH,
)
