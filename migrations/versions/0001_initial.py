"""merchants, api keys, sessions, idempotency keys

Revision ID: 0001
Revises:
Create Date: 2026-11-26 07:21:05.905791
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import payhook.db.types

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('merchants',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('created_at', payhook.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_merchants'))
    )
    op.create_table('api_keys',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('merchant_id', sa.String(length=40), nullable=False),
    sa.Column('mode', sa.String(length=4), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('prefix', sa.String(length=20), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=True),
    sa.Column('created_at', payhook.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', payhook.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("mode IN ('test', 'live')", name=op.f('ck_api_keys_mode')),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_api_keys_merchant_id_merchants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_keys')),
    sa.UniqueConstraint('key_hash', name=op.f('uq_api_keys_key_hash'))
    )
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_keys_merchant_id_mode_created_at_id'), ['merchant_id', 'mode', 'created_at', 'id'], unique=False)

    op.create_table('checkout_sessions',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('merchant_id', sa.String(length=40), nullable=False),
    sa.Column('mode', sa.String(length=4), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('amount', payhook.db.types.Amount(precision=40, scale=0), nullable=False),
    sa.Column('currency', sa.String(length=16), nullable=False),
    sa.Column('success_url', sa.Text(), nullable=True),
    sa.Column('cancel_url', sa.Text(), nullable=True),
    sa.Column('customer_email', sa.String(length=254), nullable=True),
    sa.Column('customer_name', sa.String(length=200), nullable=True),
    sa.Column('metadata', payhook.db.types.JSONDocument, nullable=False),
    sa.Column('failure_reason', sa.String(length=20), nullable=True),
    sa.Column('payment_provider', sa.String(length=20), nullable=True),
    sa.Column('provider_reference', sa.String(length=255), nullable=True),
    sa.Column('created_at', payhook.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', payhook.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', payhook.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('paid_at', payhook.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("failure_reason IS NULL OR failure_reason IN ('canceled', 'expired', 'provider_failed')", name=op.f('ck_checkout_sessions_failure_reason')),
    sa.CheckConstraint("mode IN ('test', 'live')", name=op.f('ck_checkout_sessions_mode')),
    sa.CheckConstraint("status IN ('created', 'pending', 'paid', 'failed')", name=op.f('ck_checkout_sessions_status')),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_checkout_sessions_merchant_id_merchants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_checkout_sessions'))
    )
    with op.batch_alter_table('checkout_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_checkout_sessions_merchant_id_mode_created_at_id'), ['merchant_id', 'mode', 'created_at', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_checkout_sessions_status_expires_at'), ['status', 'expires_at'], unique=False)

    op.create_table('idempotency_keys',
    sa.Column('merchant_id', sa.String(length=40), nullable=False),
    sa.Column('mode', sa.String(length=4), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('response_status', sa.Integer(), nullable=False),
    sa.Column('response_body', payhook.db.types.JSONDocument, nullable=False),
    sa.Column('created_at', payhook.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_idempotency_keys_merchant_id_merchants')),
    sa.PrimaryKeyConstraint('merchant_id', 'mode', 'key', name=op.f('pk_idempotency_keys'))
    )


def downgrade() -> None:
    op.drop_table('idempotency_keys')
    with op.batch_alter_table('checkout_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_checkout_sessions_status_expires_at'))
        batch_op.drop_index(batch_op.f('ix_checkout_sessions_merchant_id_mode_created_at_id'))

    op.drop_table('checkout_sessions')
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_keys_merchant_id_mode_created_at_id'))

    op.drop_table('api_keys')
    op.drop_table('merchants')
