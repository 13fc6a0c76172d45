"""onchain payments: one row per (chain id, tx hash), ever

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 07:59:21.879030
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import payhook.db.types

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('onchain_payments',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('chain_id', sa.BigInteger(), nullable=False),
    sa.Column('tx_hash', sa.String(length=66), nullable=False),
    sa.Column('session_id', sa.String(length=40), nullable=False),
    sa.Column('currency', sa.String(length=16), nullable=False),
    sa.Column('amount', payhook.db.types.Amount(precision=40, scale=0), nullable=False),
    sa.Column('block_number', sa.BigInteger(), nullable=False),
    sa.Column('block_hash', sa.String(length=66), nullable=False),
    sa.Column('created_at', payhook.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['session_id'], ['checkout_sessions.id'], name=op.f('fk_onchain_payments_session_id_checkout_sessions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_onchain_payments')),
    sa.UniqueConstraint('chain_id', 'tx_hash', name=op.f('uq_onchain_payments_chain_id_tx_hash'))
    )
    with op.batch_alter_table('onchain_payments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_onchain_payments_session_id'), ['session_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('onchain_payments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_onchain_payments_session_id'))

    op.drop_table('onchain_payments')
