"""outbox claim indexes: the (status, kind) index gives way to partial indexes no claim can
read, so the claim's partial index (ix_outbox_entries_due) is its only ordered path whatever the
statistics say

A claim filters ``status = 'pending'`` without a kind: on statistics from before a backlog the
planner read ``ix_outbox_entries_status_kind`` and sorted every pending row. The operators'
dead and retrying rows and retention's unfinished on-chain checks, its other readers, get
indexes whose predicates a claim does not imply.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 03:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEAD = "status = 'dead'"
RETRYING = "status = 'pending' AND attempts > 0"
ONCHAIN_CHECKS = "kind = 'onchain.check'"


def upgrade() -> None:
    op.create_index('ix_outbox_entries_dead', 'outbox_entries', ['created_at', 'id', 'kind'],
                    postgresql_where=sa.text(DEAD), sqlite_where=sa.text(DEAD))
    op.create_index('ix_outbox_entries_retrying', 'outbox_entries', ['created_at', 'id', 'kind'],
                    postgresql_where=sa.text(RETRYING), sqlite_where=sa.text(RETRYING))
    op.create_index('ix_outbox_entries_onchain_checks', 'outbox_entries', ['status'],
                    postgresql_where=sa.text(ONCHAIN_CHECKS),
                    sqlite_where=sa.text(ONCHAIN_CHECKS))
    op.drop_index('ix_outbox_entries_status_kind', table_name='outbox_entries')


def downgrade() -> None:
    op.create_index('ix_outbox_entries_status_kind', 'outbox_entries', ['status', 'kind'])
    op.drop_index('ix_outbox_entries_onchain_checks', table_name='outbox_entries')
    op.drop_index('ix_outbox_entries_retrying', table_name='outbox_entries')
    op.drop_index('ix_outbox_entries_dead', table_name='outbox_entries')
