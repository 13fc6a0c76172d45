"""outbox dedup key: one unfinished row per key (one on-chain check per session and transaction)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 20:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNFINISHED_KEYED = "dedup_key IS NOT NULL AND status <> 'done'"


def upgrade() -> None:
    with op.batch_alter_table('outbox_entries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('dedup_key', sa.String(length=200), nullable=True))
        batch_op.create_index('uq_outbox_entries_dedup_key', ['dedup_key'], unique=True,
                              postgresql_where=sa.text(UNFINISHED_KEYED),
                              sqlite_where=sa.text(UNFINISHED_KEYED))


def downgrade() -> None:
    with op.batch_alter_table('outbox_entries', schema=None) as batch_op:
        batch_op.drop_index('uq_outbox_entries_dedup_key',
                            postgresql_where=sa.text(UNFINISHED_KEYED),
                            sqlite_where=sa.text(UNFINISHED_KEYED))
        batch_op.drop_column('dedup_key')
