"""``GET /openapi.json``: an OpenAPI 3.1 document of every route.

Request bodies come from the pydantic models that validate them; answers from the schemas
below. A test checks that every mounted route is described here.
"""

import re
from typing import Any

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from payhook import __version__, ids, providers
from payhook.api.params import MAX_QUERY_VALUE
from payhook.api.state import state
from payhook.db.tables import EVENT_OUTCOMES, OUTBOX_STATUSES, SESSION_STATUSES
from payhook.domain import money
from payhook.domain.webhooks import DELIVERY_STATUSES, DISABLED_REASONS, EVENT_TYPES
from payhook.schema_hints import STORABLE, refuse_nul
from payhook.schemas import (
    AccessReveal,
    AdminApiKeyCreate,
    AdminSessionCreate,
    ApiKeyCreate,
    MerchantCreate,
    Recovery,
    ReplayMany,
    ReplayOne,
    SecretRotation,
    SessionCreate,
    WebhookEndpointCreate,
    WebhookEndpointUpdate,
)

_STRING = {"type": "string"}
_NULLABLE_STRING = {"type": ["string", "null"]}
_TIME = {"type": "string", "format": "date-time"}
_NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}
_INTEGER = {"type": "integer"}
_OUTCOME = {"enum": list(EVENT_OUTCOMES)}


def _object(properties: dict[str, Any], optional: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": {**properties, **(optional or {})},
            "required": list(properties)}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


_PROVIDER = _ref("Provider")  # its enum is the registry's, read when the document is built


def _list_of(name: str) -> dict[str, Any]:
    return _object({"object": {"const": "list"}, "data": {"type": "array", "items": _ref(name)},
                    "has_more": {"type": "boolean"}})


# Where a crypto session is paid: its own deposit address (null for a fiat session).
_ADDRESS = {"type": "string", "pattern": "^0x[0-9a-f]{40}$"}
_CRYPTO_PAYMENT: dict[str, Any] = {
    "chain_id": {"type": ["integer", "null"]}, "asset": _STRING,
    "contract": {"oneOf": [{"type": "null"}, _ADDRESS],
                 "description": "the ERC-20 token's contract; null for eth"},
    "address": {**_ADDRESS, "description": "this session's own deposit address: only a "
                                           "transfer to it pays the session"},
    "amount": {"type": "string", "pattern": "^[0-9]+$",
               "description": "in the asset's base units (wei for eth), as a string"},
}
_CRYPTO_PAYMENT_TEXT = "where to pay a crypto session on chain"

RESPONSE_SCHEMAS: dict[str, dict[str, Any]] = {
    "Error": _object({"error": _object({
        "type": _STRING, "code": _STRING, "message": _STRING, "param": _NULLABLE_STRING})}),
    "CheckoutSession": _object({
        "id": _STRING, "object": {"const": "checkout.session"},
        "mode": {"enum": ["test", "live"]},
        "status": {"enum": ["created", "pending", "paid", "failed"]},
        "payment_status": {"enum": ["not_started", "processing", "completed", "failed"]},
        "amount": _INTEGER, "currency": _STRING, "payment_provider": _NULLABLE_STRING,
        "url": _STRING, "success_url": _NULLABLE_STRING, "cancel_url": _NULLABLE_STRING,
        "customer_email": _NULLABLE_STRING, "customer_name": _NULLABLE_STRING,
        "metadata": {"type": "object", "additionalProperties": _STRING},
        "failure_reason": {"enum": [None, "canceled", "expired", "provider_failed"]},
        "created_at": _TIME, "expires_at": _TIME, "paid_at": _NULLABLE_TIME,
        "invoice_id": _NULLABLE_STRING,
        "customer_access": {"oneOf": [{"type": "null"}, _object({"url": _STRING,
                                                                "expires_at": _TIME})]},
        "crypto_payment": {"oneOf": [{"type": "null"}, _ref("CryptoPayment")]},
    }),
    "CryptoPayment": {**_object(_CRYPTO_PAYMENT), "description": _CRYPTO_PAYMENT_TEXT},
    "SessionStatus": _object({
        "session_id": _STRING, "status": _STRING, "payment_status": _STRING,
        "payment_provider": _NULLABLE_STRING, "paid_at": _NULLABLE_TIME, "amount": _INTEGER,
        "currency": _STRING, "created_at": _TIME, "expires_at": _TIME,
        "crypto_payment": {"oneOf": [{"type": "null"}, {
            **_object({**_CRYPTO_PAYMENT, "uri": {
                "type": "string", "description": "EIP-681: what a wallet opens to pay"}}),
            "description": _CRYPTO_PAYMENT_TEXT}]},
    }),
    "CustomerAccess": _object({
        "object": {"const": "customer_access"}, "session": _ref("CheckoutSession"),
        "invoice": {"oneOf": [{"type": "null"}, _ref("Invoice")]},
        "api_key": {"oneOf": [{"type": "null"}, _ref("ProvisionedApiKey")],
                    "description": "the key provisioned for this session (never its secret), "
                                   "or null when none was"},
    }),
    "Invoice": _object({
        "id": _STRING, "object": {"const": "invoice"}, "session_id": _STRING,
        "amount": _INTEGER, "currency": _STRING, "mode": {"enum": ["test", "live"]},
        "status": {"const": "paid"}, "payment_provider": _NULLABLE_STRING,
        "provider_reference": _NULLABLE_STRING, "created_at": _TIME,
    }),
    "ApiKey": _object({
        "id": _STRING, "object": {"const": "api_key"}, "mode": {"enum": ["test", "live"]},
        "prefix": _STRING, "label": _NULLABLE_STRING, "status": {"enum": ["active", "revoked"]},
        "created_at": _TIME, "revoked_at": _NULLABLE_TIME,
    }, optional={"secret": {"type": "string", "description": "the raw key, only on create"}}),
    "ProvisionedApiKey": {"allOf": [_ref("ApiKey"), _object({
        "revealed": {"type": "boolean",
                     "description": "false while the raw key waits to be revealed; true once "
                                    "it is gone (revealed, or destroyed by a revocation)"},
    }, optional={"reveal_url": {
        "type": "string", "description": "while the key waits: POST the token here, in the "
                                         "body, to reveal it once"}})]},
    "Merchant": _object({"id": _STRING, "object": {"const": "merchant"}, "name": _STRING,
                         "created_at": _TIME, "api_key": _ref("ApiKey")}),
    "Health": _object({"status": {"const": "ok"}}),
    "Readiness": _object({
        "status": {"enum": ["ok", "degraded"],
                   "description": "degraded: the database answers, the Web3 node does not "
                                  "(or serves another chain)"},
        "database": {"const": "ok"},
    }, optional={"web3": _object({
        "status": {"enum": ["ok", "unreachable", "wrong_chain"]},
        "chain_id": _INTEGER, "served_chain_id": {"type": ["integer", "null"]},
        "head": {"type": ["integer", "null"]}, "confirmations": _INTEGER,
        "cursor": {"oneOf": [{"type": "null"}, _object({
            "block_number": _INTEGER, "block_hash": _STRING, "updated_at": _TIME})]},
        "behind": {"type": ["integer", "null"]}, "watched_addresses": _INTEGER,
    }, optional={"error": _STRING})}),
    "WebhookEndpoint": _object({
        "id": _STRING, "object": {"const": "webhook_endpoint"}, "url": _STRING,
        "mode": {"enum": ["test", "live"]},
        "enabled_events": {"type": "array", "items": {"enum": ["*", *EVENT_TYPES]}},
        "description": _NULLABLE_STRING,
        "status": {"enum": ["enabled", "disabled", "deleted"],
                   "description": "deleted only in the answer to the delete"},
        "disabled_reason": {"enum": [None, *DISABLED_REASONS],
                            "description": "gone: it answered 410; failing: every try failed "
                                           "for PAYHOOK_ENDPOINT_DISABLE_AFTER_HOURS; merchant"},
        "previous_secret_expires_at": {**_NULLABLE_TIME, "description": (
            "after a rotation: until then deliveries are signed with the old secret too")},
        "created_at": _TIME,
    }, optional={"secret": {"type": "string", "description": "the whsec_… signing secret, "
                                                             "only on create and rotation"}}),
    "Event": {**_object({
        "id": {"type": "string", "description": "evt_…, also sent as webhook-id"},
        "type": {"enum": list(EVENT_TYPES)},
        "created_at": _TIME,
        "data": {"type": "object", "properties": {
            "session": _ref("CheckoutSession"),
            "invoice": {"oneOf": [{"type": "null"}, _ref("Invoice")]},
            "customer_access": {"oneOf": [{"type": "null"}, _object({"url": _STRING,
                                                                    "expires_at": _TIME})]},
            "webhook_endpoint": _object({"id": _STRING, "url": _STRING}),
        }, "description": "checkout.session.*: session, invoice, customer_access; "
                          "webhook_endpoint.test: webhook_endpoint"},
    }), "description": "What a webhook endpoint receives, signed with Standard Webhooks "
                       "headers (webhook-id, webhook-timestamp, webhook-signature); the "
                       "events API answers the same bodies"},
    "Delivery": _object({
        "id": _STRING, "object": {"const": "delivery"}, "endpoint_id": _STRING,
        "event_id": {"type": "string", "description": "the webhook-id of every try"},
        "event_type": {"enum": list(EVENT_TYPES)},
        "status": {"enum": list(DELIVERY_STATUSES),
                   "description": "failed: retrying; dead: no tries left (recover sends it)"},
        "attempts": {"type": "array", "items": _object({
            "at": _TIME, "status_code": {"type": ["integer", "null"]},
            "duration_ms": _INTEGER,
            "response_snippet": {"type": ["string", "null"],
                                 "description": "the first KiB of the answer"},
            "error": _NULLABLE_STRING})},
        "next_attempt_at": _NULLABLE_TIME, "created_at": _TIME, "delivered_at": _NULLABLE_TIME,
    }),
    "RecoveryResult": _object({"object": {"const": "recovery"}, "recovered": _INTEGER}),
    "WebhookEvent": {**_object({
        "id": _STRING, "object": {"const": "webhook_event"}, "provider": _PROVIDER,
        "event_id": {"type": "string", "description": "the provider's own event id"},
        "type": _STRING, "session_id": _NULLABLE_STRING, "outcome": _OUTCOME,
        "received_at": _TIME,
        "headers": {"type": "object", "additionalProperties": _STRING,
                    "description": "the signature headers as received"},
    }, optional={"raw_body": {
        "type": "string",
        "description": "the body exactly as received, as UTF-8 text; only on "
                       "GET /admin/events/{id}, lists leave it out"}}),
        "description": "A provider's event as stored, once per (provider, event_id)"},
    "Anomaly": _object({
        "id": _STRING, "object": {"const": "anomaly"},
        "kind": {"type": "string", "examples": ["amount_mismatch", "currency_mismatch",
                                                "mode_mismatch", "late_payment",
                                                "duplicate_payment"]},
        "session_id": _NULLABLE_STRING,
        "event_id": {"type": ["string", "null"],
                     "description": "the webhook_event (ev_…) that caused it"},
        "provider": {"oneOf": [{"type": "null"}, _PROVIDER]},
        "details": {"type": "object"}, "created_at": _TIME,
    }),
    "ProviderEvent": {"type": "object",
                      "description": "the provider's signed event, verified over the raw bytes"},
    "WebhookReceipt": _object({"received": {"const": True}, "outcome": _OUTCOME}),
    "OutboxEntry": _object({
        "id": _STRING, "object": {"const": "outbox_entry"}, "kind": _STRING,
        "payload": {"type": "object"}, "status": {"enum": list(OUTBOX_STATUSES)},
        "attempts": _INTEGER, "max_attempts": _INTEGER, "next_attempt_at": _TIME,
        "locked_by": _NULLABLE_STRING, "locked_until": _NULLABLE_TIME,
        "last_error": _NULLABLE_STRING,
        "errors": {"type": "array", "items": {"type": "object"},
                   "description": "every failed attempt: attempt, at, error"},
        "created_at": _TIME, "updated_at": _TIME,
    }),
    "ReplayResult": _object({"replayed": _INTEGER,
                             "ids": {"type": "array", "items": _STRING}}),
}

REQUEST_MODELS: list[type[BaseModel]] = [SessionCreate, AdminSessionCreate, MerchantCreate,
                                         ApiKeyCreate, AdminApiKeyCreate, AccessReveal,
                                         WebhookEndpointCreate, ReplayOne, ReplayMany,
                                         WebhookEndpointUpdate, SecretRotation, Recovery]


def _query(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter; a free string is bounded as api/params.py bounds every value."""
    if schema is _STRING:
        schema = {**_STRING, "maxLength": MAX_QUERY_VALUE, "pattern": STORABLE}
    return {"name": name, "in": "query", "schema": schema}


# The id prefix of each collection: the pattern of its path ids and of its list's cursor.
COLLECTIONS = {"/v1/checkout/sessions": "cs", "/session": "cs", "/access": "cs",
               "/v1/invoices": "in", "/v1/api_keys": "key", "/v1/webhook_endpoints": "we",
               "/admin/events": "ev", "/admin/outbox": "ob", "/admin/anomalies": "an",
               "/admin/merchants": "mer", "/v1/deliveries": "dl", "/v1/events": "evt"}


def _id_schema(collection: str) -> dict[str, Any]:
    prefix = COLLECTIONS.get(collection)
    return _STRING if prefix is None else {**_STRING, "pattern": ids.pattern(prefix)}


LIMIT = {"type": "integer", "minimum": 1, "maximum": 100, "default": 10,
         "description": "1 to 100, in ASCII digits; anything else is a 400"}


# Filters of the list operations, besides limit and starting_after.
LIST_FILTERS: dict[str, list[dict[str, Any]]] = {
    "/v1/checkout/sessions": [_query("status", {"enum": list(SESSION_STATUSES)})],
    "/v1/deliveries": [_query("endpoint", {**_STRING, "pattern": ids.pattern("we")}),
                       _query("status", {"enum": list(DELIVERY_STATUSES)})],
    "/v1/events": [_query("type", {"enum": list(EVENT_TYPES)})],
    "/admin/events": [_query("provider", _PROVIDER), _query("outcome", _OUTCOME)],
    "/admin/anomalies": [_query("kind", _STRING), _query("session_id", _STRING)],
    "/admin/outbox": [_query("status", {"enum": list(OUTBOX_STATUSES)}),
                      _query("kind", _STRING)],
}

_ERRORS = {"400": "invalid request", "401": "missing, invalid or revoked credentials",
           "404": "unknown id", "503": "storage unavailable; retry"}
# Operations that also answer 409, and why.
_DISABLED = "the endpoint is disabled (endpoint_disabled): enable it first"
CONFLICTS = {("post", "/access/{session_id}/reveal"):
             "no key to reveal: already revealed (api_key_already_revealed), revoked "
             "(api_key_revoked), or none provisioned for this session (no_api_key)",
             ("post", "/v1/deliveries/{id}/retry"):
             "the delivery is being sent right now (delivery_in_flight), or " + _DISABLED,
             ("post", "/v1/webhook_endpoints/{id}/test"): _DISABLED,
             ("post", "/v1/webhook_endpoints/{id}/recover"): _DISABLED}

# The customer's access page: the link's token, and an HTML page for browsers.
ACCESS_PAGE = ("get", "/access/{session_id}")
SESSION_PAGE = ("get", "/session/{id}/status")  # a session's url: the hosted page for browsers
ACCESS_PARAMETERS = [
    {"name": "session_id", "in": "path", "required": True, "schema": _id_schema("/access")},
    {"name": "token", "in": "query", "required": True, "schema": _STRING,
     "description": "the JWT of the access link; anything but a valid, unexpired token for "
                    "this session is a 401"},
]
# The reveal: the same token, in the body (a form from the page, or JSON), never in the URL.
ACCESS_REVEAL = ("post", "/access/{session_id}/reveal")

# (method, path) → (summary, tag, security, request model, status, response schema)
Operation = tuple[str, str, str | None, str | None, int, dict[str, Any] | None]
OPERATIONS: dict[tuple[str, str], Operation] = {
    ("post", "/v1/checkout/sessions"): (
        "Create a checkout session (honours Idempotency-Key)", "sessions", "merchant",
        "SessionCreate", 201, _ref("CheckoutSession")),
    ("get", "/v1/checkout/sessions"): (
        "List checkout sessions, newest first", "sessions", "merchant", None, 200,
        _list_of("CheckoutSession")),
    ("get", "/v1/checkout/sessions/{id}"): (
        "Retrieve a checkout session", "sessions", "merchant", None, 200,
        _ref("CheckoutSession")),
    ("post", "/v1/checkout/sessions/{id}/cancel"): (
        "Cancel a created or pending session", "sessions", "merchant", None, 200,
        _ref("CheckoutSession")),
    ("get", "/v1/api_keys"): ("List API keys (prefixes only)", "api_keys", "merchant", None,
                              200, _list_of("ApiKey")),
    ("post", "/v1/api_keys"): ("Create an API key (secret shown once)", "api_keys", "merchant",
                               "ApiKeyCreate", 201, _ref("ApiKey")),
    ("delete", "/v1/api_keys/{id}"): ("Revoke an API key", "api_keys", "merchant", None, 200,
                                      _ref("ApiKey")),
    ("get", "/v1/invoices"): ("List invoices, newest first", "invoices", "merchant", None, 200,
                              _list_of("Invoice")),
    ("get", "/v1/invoices/{id}"): ("Retrieve an invoice", "invoices", "merchant", None, 200,
                                   _ref("Invoice")),
    ("get", "/v1/webhook_endpoints"): (
        "List webhook endpoints (without secrets)", "webhook_endpoints", "merchant", None, 200,
        _list_of("WebhookEndpoint")),
    ("post", "/v1/webhook_endpoints"): (
        "Create a webhook endpoint (signing secret shown once); the URL must be http(s) and "
        "public", "webhook_endpoints", "merchant", "WebhookEndpointCreate", 201,
        _ref("WebhookEndpoint")),
    ("get", "/v1/webhook_endpoints/{id}"): (
        "Retrieve a webhook endpoint (without its secret)", "webhook_endpoints", "merchant",
        None, 200, _ref("WebhookEndpoint")),
    ("post", "/v1/webhook_endpoints/{id}"): (
        "Update a webhook endpoint; disabled: false enables it again and sends the "
        "deliveries it held", "webhook_endpoints", "merchant", "WebhookEndpointUpdate", 200,
        _ref("WebhookEndpoint")),
    ("delete", "/v1/webhook_endpoints/{id}"): (
        "Delete a webhook endpoint", "webhook_endpoints", "merchant", None, 200,
        _ref("WebhookEndpoint")),
    ("post", "/v1/webhook_endpoints/{id}/rotate_secret"): (
        "A new signing secret (shown once); the old one keeps signing beside it for "
        "expires_in seconds", "webhook_endpoints", "merchant", "SecretRotation", 200,
        _ref("WebhookEndpoint")),
    ("post", "/v1/webhook_endpoints/{id}/test"): (
        "Queue a signed webhook_endpoint.test delivery to this endpoint alone",
        "webhook_endpoints", "merchant", None, 201, _ref("Delivery")),
    ("post", "/v1/webhook_endpoints/{id}/recover"): (
        "Send again every failed or dead delivery of this endpoint made in [since, until)",
        "webhook_endpoints", "merchant", "Recovery", 200, _ref("RecoveryResult")),
    ("get", "/v1/deliveries"): (
        "List deliveries with their attempts, newest first", "deliveries", "merchant", None,
        200, _list_of("Delivery")),
    ("get", "/v1/deliveries/{id}"): (
        "Retrieve a delivery with every attempt", "deliveries", "merchant", None, 200,
        _ref("Delivery")),
    ("post", "/v1/deliveries/{id}/retry"): (
        "Send a delivery again now (same webhook-id)", "deliveries", "merchant", None, 200,
        _ref("Delivery")),
    ("get", "/v1/events"): (
        "List the events made for you (30 days), newest first, as endpoints received them",
        "events", "merchant", None, 200, _list_of("Event")),
    ("get", "/v1/events/{id}"): (
        "Retrieve an event exactly as endpoints received it", "events", "merchant", None, 200,
        _ref("Event")),
    SESSION_PAGE: ("Public status of a session; the hosted session page when the client "
                   "prefers text/html", "public", None, None, 200, _ref("SessionStatus")),
    ACCESS_PAGE: ("The customer's access page: session, invoice and whether a provisioned API "
                  "key waits to be revealed (never the key); HTML when the client prefers "
                  "text/html", "public", None, None, 200, _ref("CustomerAccess")),
    ACCESS_REVEAL: ("Reveal the session's provisioned API key, once (then 409); the token in "
                    "the body, never in the URL; HTML when the client prefers text/html",
                    "public", None, "AccessReveal", 200, _ref("ApiKey")),
    ("get", "/healthz"): ("The process is up", "public", None, None, 200, _ref("Health")),
    ("get", "/readyz"): ("The database answers (and, with a Web3 node, how the chain watch "
                         "stands)", "public", None, None, 200, _ref("Readiness")),
    ("get", "/metrics"): ("Prometheus metrics (text format)", "public", None, None, 200, None),
    ("get", "/openapi.json"): ("This document", "public", None, None, 200, {"type": "object"}),
    ("post", "/admin/merchants"): ("Create a merchant and its first test key", "admin", "admin",
                                   "MerchantCreate", 201, _ref("Merchant")),
    ("post", "/admin/merchants/{id}/api_keys"): (
        "A new API key for a merchant (secret shown once)", "admin", "admin",
        "AdminApiKeyCreate", 201, _ref("ApiKey")),
    ("post", "/admin/checkout/sessions"): (
        "Create a session for any merchant and mode", "admin", "admin", "AdminSessionCreate",
        201, _ref("CheckoutSession")),
    ("get", "/admin/events"): (
        "List stored provider events, newest first (without raw_body)", "admin", "admin", None,
        200, _list_of("WebhookEvent")),
    ("get", "/admin/events/{id}"): (
        "Retrieve a stored provider event with its raw body and headers", "admin", "admin",
        None, 200, _ref("WebhookEvent")),
    ("get", "/admin/anomalies"): (
        "List anomalies, newest first", "admin", "admin", None, 200, _list_of("Anomaly")),
    ("get", "/admin/outbox"): (
        "List outbox entries (attempts, next attempt, last error)", "admin", "admin", None, 200,
        _list_of("OutboxEntry")),
    ("get", "/admin/outbox/{id}"): ("One outbox entry with its errors", "admin", "admin", None,
                                    200, _ref("OutboxEntry")),
    ("post", "/admin/outbox/{id}/replay"): (
        "A dead entry back to pending with fresh attempts (audited); anything else is a 409",
        "admin", "admin", "ReplayOne", 200, _ref("OutboxEntry")),
    ("post", "/admin/outbox/replay"): (
        "Every dead entry (of one kind) back to pending (audited)", "admin", "admin",
        "ReplayMany", 200, _ref("ReplayResult")),
    ("post", "/webhooks/{provider}"): (
        "Receive a provider's signed event", "webhooks", None,
        "ProviderEvent", 200, _ref("WebhookReceipt")),
}


def _operation(method: str, path: str, spec: Operation) -> dict[str, Any]:
    summary, tag, security, model, status, schema = spec
    content = ({"application/json": {"schema": schema}} if schema is not None
               else {"text/plain": {"schema": _STRING}})
    operation: dict[str, Any] = {
        "operationId": method + "_" + "_".join(
            part.strip("{}") for part in path.strip("/").split("/")),
        "summary": summary,
        "tags": [tag],
        "responses": {str(status): {"description": "success", "content": content}, **{
            code: {"description": text,
                   "content": {"application/json": {"schema": _ref("Error")}}}
            for code, text in _ERRORS.items()}},
    }
    collection = path.split("/{", 1)[0]
    parameters = [{"name": name, "in": "path", "required": True,
                   "schema": _PROVIDER if name == "provider" else _id_schema(collection)}
                  for name in re.findall(r"{(\w+)}", path)]
    if method == "get" and schema is not None and "list" in str(schema):
        parameters += [
            _query("limit", LIMIT),
            _query("starting_after", _id_schema(path)),
            *LIST_FILTERS.get(path, []),
        ]
    if parameters:
        operation["parameters"] = parameters
    if security is not None:
        operation["security"] = [{security: []}]
    if model is not None:
        operation["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": _ref(model)}}}
    if (method, path) in CONFLICTS:
        operation["responses"]["409"] = {
            "description": CONFLICTS[method, path],
            "content": {"application/json": {"schema": _ref("Error")}}}
    if (method, path) == ACCESS_PAGE:
        operation["parameters"] = ACCESS_PARAMETERS
    if (method, path) in (ACCESS_PAGE, ACCESS_REVEAL, SESSION_PAGE):
        operation["responses"][str(status)]["content"]["text/html"] = {"schema": _STRING}
    if (method, path) == ACCESS_REVEAL:
        operation["requestBody"]["content"]["application/x-www-form-urlencoded"] = {
            "schema": _ref("AccessReveal")}
    return operation


def request_schema(model: type[BaseModel], crypto: frozenset[str]) -> dict[str, Any]:
    """A request body's schema: what its validators check, NUL refused in every string, and
    the currencies this configuration accepts."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    refuse_nul(schema)
    if "currency" in schema["properties"]:
        schema["properties"]["currency"]["enum"] = sorted(money.FIAT | crypto)
    return schema


def document(crypto: frozenset[str] = frozenset({"eth"})) -> dict[str, Any]:
    """The document for a configuration whose crypto assets are ``crypto``."""
    paths: dict[str, dict[str, Any]] = {}
    for (method, path), spec in OPERATIONS.items():
        paths.setdefault(path, {})[method] = _operation(method, path, spec)
    schemas = {**RESPONSE_SCHEMAS, "Provider": {"enum": list(providers.names())}}
    for model in REQUEST_MODELS:
        schemas[model.__name__] = request_schema(model, crypto)
    return {
        "openapi": "3.1.0",
        "info": {"title": "payhook", "version": __version__,
                 "description": "Payment sessions, provider webhooks and a transactional outbox"},
        "paths": paths,
        "webhooks": {event: {"post": {
            "summary": f"{event}, POSTed to each of the merchant's enabled endpoints",
            "requestBody": {"required": True, "content": {
                "application/json": {"schema": _ref("Event")}}},
            "responses": {"2XX": {"description": "delivered; 410 disables the endpoint, "
                                                 "anything else is retried with backoff"}},
        }} for event in EVENT_TYPES},
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "merchant": {"type": "http", "scheme": "bearer",
                             "description": "sk_test_… or sk_live_…"},
                "admin": {"type": "http", "scheme": "bearer",
                          "description": "PAYHOOK_ADMIN_TOKEN"},
            },
        },
    }


async def openapi(request: Request) -> Response:
    return JSONResponse(document(state(request).settings.fiat_and_crypto_symbols))


routes = [Route("/openapi.json", openapi, methods=["GET"])]
