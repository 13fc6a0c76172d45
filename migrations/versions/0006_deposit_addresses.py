"""deposit addresses: a BIP-32 index and address per crypto session, the counter handing out
indexes (seeded at 0), the chain watcher's cursor

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 23:12:31.847096
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import payhook.db.types

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('chain_cursors',
    sa.Column('chain_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('block_number', sa.BigInteger(), nullable=False),
    sa.Column('block_hash', sa.String(length=66), nullable=False),
    sa.Column('updated_at', payhook.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('chain_id', name=op.f('pk_chain_cursors'))
    )
    op.create_table('counters',
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('value', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_counters'))
    )
    with op.batch_alter_table('checkout_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('deposit_index', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('deposit_address', sa.String(length=42), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_checkout_sessions_deposit_address'), ['deposit_address'])
        batch_op.create_unique_constraint(batch_op.f('uq_checkout_sessions_deposit_index'), ['deposit_index'])
    op.execute("INSERT INTO counters (name, value) VALUES ('deposit_index', 0)")


def downgrade() -> None:
    with op.batch_alter_table('checkout_sessions', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_checkout_sessions_deposit_index'), type_='unique')
        batch_op.drop_constraint(batch_op.f('uq_checkout_sessions_deposit_address'), type_='unique')
        batch_op.drop_column('deposit_address')
        batch_op.drop_column('deposit_index')

    op.drop_table('counters')
    op.drop_table('chain_cursors')
