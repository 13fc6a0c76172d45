"""The schema, as SQLAlchemy 2 models. Alembic migrations must equal this (a test checks)."""

from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from payhook.db.json_members import member
from payhook.db.types import Amount, JSONDocument, UTCDateTime

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

MODES = ("test", "live")
SESSION_STATUSES = ("created", "pending", "paid", "failed")
FAILURE_REASONS = ("canceled", "expired", "provider_failed")
EVENT_OUTCOMES = ("applied", "recorded", "duplicate", "ignored", "unmatched")
OUTBOX_STATUSES = ("pending", "running", "done", "dead")
UNFINISHED_KEYED = "dedup_key IS NOT NULL AND status <> 'done'"
ONCHAIN_CHECKS = "kind = 'onchain.check'"  # the only rows whose payload has a tx_hash
PENDING = "status = 'pending'"
RUNNING = "status = 'running'"
DEAD = "status = 'dead'"
RETRYING = "status = 'pending' AND attempts > 0"  # pending again after a failed attempt


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Merchant(Base):
    __tablename__ = "merchants"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ApiKey(Base):
    __tablename__ = "api_keys"
    __table_args__ = (
        CheckConstraint(_one_of("mode", MODES), name="mode"),
        Index(None, "merchant_id", "mode", "created_at", "id"),
        # One auto-provisioned key per (merchant, mode), however many workers race.
        Index("uq_api_keys_provisioned", "merchant_id", "mode", unique=True,
              postgresql_where=text("provisioned_for IS NOT NULL"),
              sqlite_where=text("provisioned_for IS NOT NULL")),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    mode: Mapped[str] = mapped_column(String(4))
    # HMAC-SHA256 of the raw key under a key derived from PAYHOOK_SECRET_KEY; never the raw key.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(20))
    label: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Auto-provisioned for a paid session: the raw key waits sealed (encrypted) until the
    # customer's access page reveals it once, then the sealed copy is destroyed.
    provisioned_for: Mapped[str | None] = mapped_column(String(40))
    sealed_secret: Mapped[bytes | None] = mapped_column(LargeBinary)


class CheckoutSession(Base):
    __tablename__ = "checkout_sessions"
    __table_args__ = (
        CheckConstraint(_one_of("mode", MODES), name="mode"),
        CheckConstraint(_one_of("status", SESSION_STATUSES), name="status"),
        CheckConstraint(
            f"failure_reason IS NULL OR {_one_of('failure_reason', FAILURE_REASONS)}",
            name="failure_reason",
        ),
        Index(None, "merchant_id", "mode", "created_at", "id"),
        Index(None, "status", "expires_at"),
        Index(None, "provider_reference"),  # a search by transaction hash
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    mode: Mapped[str] = mapped_column(String(4))
    status: Mapped[str] = mapped_column(String(10))
    amount: Mapped[int] = mapped_column(Amount)
    currency: Mapped[str] = mapped_column(String(16))
    success_url: Mapped[str | None] = mapped_column(Text)
    cancel_url: Mapped[str | None] = mapped_column(Text)
    customer_email: Mapped[str | None] = mapped_column(String(254))
    customer_name: Mapped[str | None] = mapped_column(String(200))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONDocument)
    failure_reason: Mapped[str | None] = mapped_column(String(20))
    payment_provider: Mapped[str | None] = mapped_column(String(20))
    provider_reference: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    invoice_id: Mapped[str | None] = mapped_column(String(40))
    customer_access_url: Mapped[str | None] = mapped_column(Text)
    customer_access_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    email_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A crypto session's deposit address (docs/api.md, "Deposit addresses"): BIP-32 child
    # ``…/0/<deposit_index>`` of PAYHOOK_WEB3_XPUB, the index allocated once, never reused.
    deposit_index: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    deposit_address: Mapped[str | None] = mapped_column(String(42), unique=True)  # lowercase


class IdempotencyKey(Base):
    """The first answer to a create request, replayed for the same (merchant, mode, key)."""

    __tablename__ = "idempotency_keys"

    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), primary_key=True)
    mode: Mapped[str] = mapped_column(String(4), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    response_status: Mapped[int]
    response_body: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WebhookEvent(Base):
    """A provider's event exactly as received: one row per (provider, event id), ever."""

    __tablename__ = "webhook_events"
    __table_args__ = (
        UniqueConstraint("provider", "event_id"),
        CheckConstraint(_one_of("outcome", EVENT_OUTCOMES), name="outcome"),
        Index(None, "created_at", "id"),
        Index(None, "session_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    provider: Mapped[str] = mapped_column(String(20))
    event_id: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(100))
    session_id: Mapped[str | None] = mapped_column(String(255))
    outcome: Mapped[str] = mapped_column(String(10))
    raw_body: Mapped[bytes] = mapped_column(LargeBinary)
    headers: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)  # when it was received


class Anomaly(Base):
    """Something an operator should look at: late payments, mismatches, failed on-chain checks."""

    __tablename__ = "anomalies"
    __table_args__ = (
        Index(None, "created_at", "id"),
        Index(None, "kind", "created_at"),
        Index(None, "session_id"),
        Index(None, "event_id"),  # retention keeps the events anomalies name: asked per event
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    session_id: Mapped[str | None] = mapped_column(String(255))
    event_id: Mapped[str | None] = mapped_column(ForeignKey("webhook_events.id"))
    provider: Mapped[str | None] = mapped_column(String(20))
    details: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class OutboxEntry(Base):
    """Work the worker owes: written in the transaction that caused it, drained with retries."""

    __tablename__ = "outbox_entries"
    __table_args__ = (
        CheckConstraint(_one_of("status", OUTBOX_STATUSES), name="status"),
        # The drain's only question: which pending rows are due? (and whose lease ran out?)
        # A claim writes its status out (db/statements.py::written), so every plan can read
        # these in order; no other index leads with status or has a predicate a claim
        # implies, so whatever the statistics, any other plan reads more and sorts it. (A
        # (status, kind) index let stale statistics pick it and sort every pending row.)
        Index("ix_outbox_entries_due", "next_attempt_at",
              postgresql_where=text(PENDING), sqlite_where=text(PENDING)),
        Index("ix_outbox_entries_leased", "locked_until",
              postgresql_where=text(RUNNING), sqlite_where=text(RUNNING)),
        Index(None, "created_at", "id"),
        # Operators' lists and counts, newest first, of one kind if asked (checked inside the
        # index): predicates no claim implies.
        Index("ix_outbox_entries_dead", "created_at", "id", "kind",
              postgresql_where=text(DEAD), sqlite_where=text(DEAD)),
        Index("ix_outbox_entries_retrying", "created_at", "id", "kind",
              postgresql_where=text(RETRYING), sqlite_where=text(RETRYING)),
        # Retention keeps the provider events that unfinished on-chain checks carry.
        Index("ix_outbox_entries_onchain_checks", "status",
              postgresql_where=text(ONCHAIN_CHECKS), sqlite_where=text(ONCHAIN_CHECKS)),
        # Rows of one key are one piece of work: at most one not yet done (a dead one waits
        # for its replay), whichever writer races — twenty notices of a transaction, one check.
        Index("uq_outbox_entries_dedup_key", "dedup_key", unique=True,
              postgresql_where=text(UNFINISHED_KEYED), sqlite_where=text(UNFINISHED_KEYED)),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    dedup_key: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(10))
    attempts: Mapped[int]
    max_attempts: Mapped[int]
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    locked_by: Mapped[str | None] = mapped_column(String(100))
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSONDocument)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)



class Invoice(Base):
    __tablename__ = "invoices"
    __table_args__ = (Index(None, "merchant_id", "mode", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("checkout_sessions.id"), unique=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    mode: Mapped[str] = mapped_column(String(4))
    amount: Mapped[int] = mapped_column(Amount)
    currency: Mapped[str] = mapped_column(String(16))
    payment_provider: Mapped[str | None] = mapped_column(String(20))
    provider_reference: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WebhookEndpoint(Base):
    """Where a merchant receives its events, signed Standard Webhooks style."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = (
        CheckConstraint(_one_of("mode", MODES), name="mode"),
        CheckConstraint(_one_of("status", ("enabled", "disabled", "deleted")), name="status"),
        Index(None, "merchant_id", "mode", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    mode: Mapped[str] = mapped_column(String(4))
    url: Mapped[str] = mapped_column(Text)
    sealed_secret: Mapped[bytes] = mapped_column(LargeBinary)  # the whsec_…, encrypted
    # After a rotation, the secret it replaced, until it expires (then destroyed by the sweep):
    # meanwhile every delivery carries both signatures.
    previous_secret: Mapped[bytes | None] = mapped_column(LargeBinary)
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    enabled_events: Mapped[list[str]] = mapped_column(JSONDocument)  # ["*"]: every type
    description: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10))
    disabled_reason: Mapped[str | None] = mapped_column(Text)  # gone | failing | merchant
    # The first failed try since the last delivered one: continuous failure since then.
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Delivery(Base):
    """One event for one endpoint: exactly one row per (endpoint, event), however many tries.
    ``merchant_id`` and ``mode`` are the endpoint's, kept here for the merchant's own list."""

    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("endpoint_id", "event_id"),
                      Index(None, "created_at", "id"),
                      Index(None, "merchant_id", "mode", "created_at", "id"),
                      Index(None, "endpoint_id", "created_at"),
                      Index(None, "session_id"))  # the console's story of one session

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id"))
    merchant_id: Mapped[str] = mapped_column(String(40))
    mode: Mapped[str] = mapped_column(String(4))
    event_id: Mapped[str] = mapped_column(String(40))
    type: Mapped[str] = mapped_column(String(40))
    session_id: Mapped[str | None] = mapped_column(String(40))  # None for a test event
    body: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    status: Mapped[str] = mapped_column(String(10))  # pending | delivered | failed | dead
    attempts: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class DeliveryAttempt(Base):
    __tablename__ = "delivery_attempts"
    __table_args__ = (Index(None, "delivery_id", "attempted_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    delivery_id: Mapped[str] = mapped_column(ForeignKey("deliveries.id"))
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status_code: Mapped[int | None]
    duration_ms: Mapped[int]
    response_snippet: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)


class MerchantEvent(Base):
    """An event made for a merchant, exactly as its endpoints receive it (``body``), whether or
    not it has any: what the merchant reconciles against. Kept 30 days, then pruned."""

    __tablename__ = "merchant_events"
    __table_args__ = (Index(None, "merchant_id", "mode", "created_at", "id"),
                      Index(None, "created_at"),
                      Index(None, "session_id"))

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # evt_…, the webhook-id
    merchant_id: Mapped[str] = mapped_column(String(40))
    mode: Mapped[str] = mapped_column(String(4))
    type: Mapped[str] = mapped_column(String(40))
    session_id: Mapped[str | None] = mapped_column(String(40))
    body: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class OutboxReplay(Base):
    """The audit trail of operators' replays: who, when, why, which rows."""

    __tablename__ = "outbox_replays"
    __table_args__ = (Index(None, "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    actor: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(Text)
    entry_ids: Mapped[list[str]] = mapped_column(JSONDocument)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ConsoleSignOut(Base):
    """A console cookie signed out before it expired: refused from then on (the cookie itself
    is stateless; this is its revocation list, each row kept only until the cookie's expiry)."""

    __tablename__ = "console_sign_outs"

    nonce: Mapped[str] = mapped_column(String(40), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class OnchainPayment(Base):
    """A transaction verified on chain as a session's payment (a late one too: the claim stays
    for the operator). One row per (chain id, tx hash), ever, whichever session or merchant
    claims it: a transaction never pays twice."""

    __tablename__ = "onchain_payments"
    __table_args__ = (UniqueConstraint("chain_id", "tx_hash"), Index(None, "session_id"),
                      Index(None, "tx_hash"))  # a search by hash alone, whatever the chain

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    tx_hash: Mapped[str] = mapped_column(String(66))  # 0x + 64 lowercase hex
    session_id: Mapped[str] = mapped_column(ForeignKey("checkout_sessions.id"))
    currency: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(Amount)  # what the chain shows was received
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(String(66))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Counter(Base):
    """A named counter moved by compare-and-set (``UPDATE … SET value = value + 1 RETURNING``):
    ``deposit_index`` hands out deposit-address indexes in order, each once."""

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)


class ChainCursor(Base):
    """How far the worker has watched a chain: the last block read, and its hash (a reorg
    below it shows as a different hash at that height, and is read again)."""

    __tablename__ = "chain_cursors"

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(String(66))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


merchants = cast(Table, Merchant.__table__)
api_keys = cast(Table, ApiKey.__table__)
checkout_sessions = cast(Table, CheckoutSession.__table__)
idempotency_keys = cast(Table, IdempotencyKey.__table__)
webhook_events = cast(Table, WebhookEvent.__table__)
anomalies = cast(Table, Anomaly.__table__)
outbox_entries = cast(Table, OutboxEntry.__table__)
invoices = cast(Table, Invoice.__table__)
webhook_endpoints = cast(Table, WebhookEndpoint.__table__)
deliveries = cast(Table, Delivery.__table__)
delivery_attempts = cast(Table, DeliveryAttempt.__table__)
merchant_events = cast(Table, MerchantEvent.__table__)
outbox_replays = cast(Table, OutboxReplay.__table__)
onchain_payments = cast(Table, OnchainPayment.__table__)
console_sign_outs = cast(Table, ConsoleSignOut.__table__)
counters = cast(Table, Counter.__table__)
chain_cursors = cast(Table, ChainCursor.__table__)

# What the console looks a session up by, written as its queries write it: the session id
# every outbox payload carries (one story reads all its rows), an on-chain check's
# transaction hash, and the customer's e-mail, which a search matches case-insensitively.
Index("ix_outbox_entries_payload_session_id", member(outbox_entries.c.payload, "session_id"))
Index("ix_outbox_entries_payload_tx_hash", member(outbox_entries.c.payload, "tx_hash"),
      postgresql_where=text(ONCHAIN_CHECKS), sqlite_where=text(ONCHAIN_CHECKS))
Index("ix_checkout_sessions_customer_email_lower", func.lower(checkout_sessions.c.customer_email))
