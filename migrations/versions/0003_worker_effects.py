"""invoices, endpoints, deliveries, replays

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 07:34:32.340052
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import payhook.db.types

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('outbox_replays',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('entry_ids', payhook.db.types.JSONDocument, nullable=False),
    sa.Column('created_at', payhook.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_replays'))
    )
    with op.batch_alter_table('outbox_replays', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbox_replays_created_at_id'), ['created_at', 'id'], unique=False)

    op.create_table('webhook_endpoints',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('merchant_id', sa.String(length=40), nullable=False),
    sa.Column('mode', sa.String(length=4), nullable=False),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('sealed_secret', sa.LargeBinary(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('disabled_reason', sa.Text(), nullable=True),
    sa.Column('created_at', payhook.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', payhook.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("mode IN ('test', 'live')", name=op.f('ck_webhook_endpoints_mode')),
    sa.CheckConstraint("status IN ('enabled', 'disabled', 'deleted')", name=op.f('ck_webhook_endpoints_status')),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_webhook_endpoints_merchant_id_merchants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_endpoints'))
    )
    with op.batch_alter_table('webhook_endpoints', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_webhook_endpoints_merchant_id_mode_created_at_id'), ['merchant_id', 'mode', 'created_at', 'id'], unique=False)

    op.create_table('deliveries',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('endpoint_id', sa.String(length=40), nullable=False),
    sa.Column('event_id', sa.String(length=40), nullable=False),
    sa.Column('type', sa.String(length=40), nullable=False),
    sa.Column('session_id', sa.String(length=40), nullable=False),
    sa.Column('body', payhook.db.types.JSONDocument, nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', payhook.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('delivered_at', payhook.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['endpoint_id'], ['webhook_endpoints.id'], name=op.f('fk_deliveries_endpoint_id_webhook_endpoints')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deliveries')),
    sa.UniqueConstraint('endpoint_id', 'event_id', name=op.f('uq_deliveries_endpoint_id_event_id'))
    )
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_deliveries_created_at_id'), ['created_at', 'id'], unique=False)

    op.create_table('invoices',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('session_id', sa.String(length=40), nullable=False),
    sa.Column('merchant_id', sa.String(length=40), nullable=False),
    sa.Column('mode', sa.String(length=4), nullable=False),
    sa.Column('amount', payhook.db.types.Amount(precision=40, scale=0), nullable=False),
    sa.Column('currency', sa.String(length=16), nullable=False),
    sa.Column('payment_provider', sa.String(length=20), nullable=True),
    sa.Column('provider_reference', sa.String(length=255), nullable=True),
    sa.Column('created_at', payhook.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_invoices_merchant_id_merchants')),
    sa.ForeignKeyConstraint(['session_id'], ['checkout_sessions.id'], name=op.f('fk_invoices_session_id_checkout_sessions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invoices')),
    sa.UniqueConstraint('session_id', name=op.f('uq_invoices_session_id'))
    )
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_invoices_merchant_id_mode_created_at_id'), ['merchant_id', 'mode', 'created_at', 'id'], unique=False)

    op.create_table('delivery_attempts',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('delivery_id', sa.String(length=40), nullable=False),
    sa.Column('attempted_at', payhook.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('duration_ms', sa.Integer(), nullable=False),
    sa.Column('response_snippet', sa.Text(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['delivery_id'], ['deliveries.id'], name=op.f('fk_delivery_attempts_delivery_id_deliveries')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_delivery_attempts'))
    )
    with op.batch_alter_table('delivery_attempts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_delivery_attempts_delivery_id_attempted_at'), ['delivery_id', 'attempted_at'], unique=False)

    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('provisioned_for', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('sealed_secret', sa.LargeBinary(), nullable=True))
        batch_op.create_index('uq_api_keys_provisioned', ['merchant_id', 'mode'], unique=True, postgresql_where=sa.text('provisioned_for IS NOT NULL'), sqlite_where=sa.text('provisioned_for IS NOT NULL'))

    with op.batch_alter_table('checkout_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('invoice_id', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('customer_access_url', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('customer_access_expires_at', payhook.db.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('email_sent_at', payhook.db.types.UTCDateTime(timezone=True), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('checkout_sessions', schema=None) as batch_op:
        batch_op.drop_column('email_sent_at')
        batch_op.drop_column('customer_access_expires_at')
        batch_op.drop_column('customer_access_url')
        batch_op.drop_column('invoice_id')

    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_index('uq_api_keys_provisioned', postgresql_where=sa.text('provisioned_for IS NOT NULL'), sqlite_where=sa.text('provisioned_for IS NOT NULL'))
        batch_op.drop_column('sealed_secret')
        batch_op.drop_column('provisioned_for')

    with op.batch_alter_table('delivery_attempts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_delivery_attempts_delivery_id_attempted_at'))

    op.drop_table('delivery_attempts')
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_invoices_merchant_id_mode_created_at_id'))

    op.drop_table('invoices')
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_deliveries_created_at_id'))

    op.drop_table('deliveries')
    with op.batch_alter_table('webhook_endpoints', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webhook_endpoints_merchant_id_mode_created_at_id'))

    op.drop_table('webhook_endpoints')
    with op.batch_alter_table('outbox_replays', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_replays_created_at_id'))

    op.drop_table('outbox_replays')
