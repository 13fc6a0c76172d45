"""merchant webhooks: endpoint filters, descriptions, secret rotation and failure tracking;
deliveries scoped to their merchant and mode (test events have no session); merchant events

Existing rows are carried over: every endpoint receives every type (``["*"]``), a disabled
endpoint was disabled by a 410 (``gone``), a delivery that ended ``failed`` is ``dead`` and one
still retrying (``pending`` with tries) is ``failed``; a delivery row in the outbox gets the dedup
key that keeps one unfinished row per delivery; the events already sent are listed.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 23:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import payhook.db.types

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('merchant_events',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('merchant_id', sa.String(length=40), nullable=False),
    sa.Column('mode', sa.String(length=4), nullable=False),
    sa.Column('type', sa.String(length=40), nullable=False),
    sa.Column('session_id', sa.String(length=40), nullable=True),
    sa.Column('body', payhook.db.types.JSONDocument, nullable=False),
    sa.Column('created_at', payhook.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_merchant_events'))
    )
    with op.batch_alter_table('merchant_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_merchant_events_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_merchant_events_merchant_id_mode_created_at_id'), ['merchant_id', 'mode', 'created_at', 'id'], unique=False)

    with op.batch_alter_table('webhook_endpoints', schema=None) as batch_op:
        batch_op.add_column(sa.Column('previous_secret', sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column('previous_secret_expires_at', payhook.db.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('enabled_events', payhook.db.types.JSONDocument, nullable=False, server_default=sa.text("'[\"*\"]'")))
        batch_op.add_column(sa.Column('description', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('failing_since', payhook.db.types.UTCDateTime(timezone=True), nullable=True))
    op.execute("UPDATE webhook_endpoints SET disabled_reason = CASE WHEN status = 'disabled' "
               "THEN 'gone' ELSE NULL END")

    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('merchant_id', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('mode', sa.String(length=4), nullable=True))
    op.execute("UPDATE deliveries SET "
               "merchant_id = (SELECT merchant_id FROM webhook_endpoints e WHERE e.id = deliveries.endpoint_id), "
               "mode = (SELECT mode FROM webhook_endpoints e WHERE e.id = deliveries.endpoint_id)")
    op.execute("UPDATE deliveries SET status = 'dead' WHERE status = 'failed'")
    op.execute("UPDATE deliveries SET status = 'failed' WHERE status = 'pending' AND attempts > 0")
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.alter_column('merchant_id', existing_type=sa.String(length=40), nullable=False)
        batch_op.alter_column('mode', existing_type=sa.String(length=4), nullable=False)
        batch_op.alter_column('session_id', existing_type=sa.String(length=40), nullable=True)
        batch_op.create_index(batch_op.f('ix_deliveries_endpoint_id_created_at'), ['endpoint_id', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_deliveries_merchant_id_mode_created_at_id'), ['merchant_id', 'mode', 'created_at', 'id'], unique=False)

    delivery_id = ("(payload->>'delivery_id')" if op.get_bind().dialect.name == "postgresql"
                   else "json_extract(payload, '$.delivery_id')")
    op.execute(f"UPDATE outbox_entries SET dedup_key = 'delivery.send:' || {delivery_id} "
               "WHERE kind = 'delivery.send' AND dedup_key IS NULL")
    op.execute("INSERT INTO merchant_events (id, merchant_id, mode, type, session_id, body, created_at) "
               "SELECT event_id, merchant_id, mode, type, session_id, body, created_at FROM deliveries "
               "WHERE id IN (SELECT MIN(id) FROM deliveries GROUP BY event_id)")


def downgrade() -> None:
    op.execute("UPDATE outbox_entries SET dedup_key = NULL WHERE kind = 'delivery.send'")
    op.execute("DELETE FROM delivery_attempts WHERE delivery_id IN "
               "(SELECT id FROM deliveries WHERE session_id IS NULL)")
    op.execute("DELETE FROM deliveries WHERE session_id IS NULL")
    op.execute("UPDATE deliveries SET status = 'pending' WHERE status = 'failed'")
    op.execute("UPDATE deliveries SET status = 'failed' WHERE status = 'dead'")
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_deliveries_merchant_id_mode_created_at_id'))
        batch_op.drop_index(batch_op.f('ix_deliveries_endpoint_id_created_at'))
        batch_op.alter_column('session_id', existing_type=sa.String(length=40), nullable=False)
        batch_op.drop_column('mode')
        batch_op.drop_column('merchant_id')

    with op.batch_alter_table('webhook_endpoints', schema=None) as batch_op:
        batch_op.drop_column('failing_since')
        batch_op.drop_column('description')
        batch_op.drop_column('enabled_events')
        batch_op.drop_column('previous_secret_expires_at')
        batch_op.drop_column('previous_secret')

    with op.batch_alter_table('merchant_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_merchant_events_merchant_id_mode_created_at_id'))
        batch_op.drop_index(batch_op.f('ix_merchant_events_created_at'))
    op.drop_table('merchant_events')
