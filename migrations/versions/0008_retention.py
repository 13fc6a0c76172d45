"""retention: the sweep prunes provider events no anomaly names, asked per event by
``anomalies.event_id`` (a foreign key PostgreSQL does not index by itself)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 00:40:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('anomalies', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_anomalies_event_id'), ['event_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('anomalies', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_anomalies_event_id'))
