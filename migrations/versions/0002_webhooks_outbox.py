"""webhook events, anomalies, outbox

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 07:28:56.462345
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import payhook.db.types

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('outbox_entries',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('payload', payhook.db.types.JSONDocument, nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('max_attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', payhook.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('locked_by', sa.String(length=100), nullable=True),
    sa.Column('locked_until', payhook.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('errors', payhook.db.types.JSONDocument, nullable=False),
    sa.Column('created_at', payhook.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', payhook.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('pending', 'running', 'done', 'dead')", name=op.f('ck_outbox_entries_status')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_entries'))
    )
    with op.batch_alter_table('outbox_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbox_entries_created_at_id'), ['created_at', 'id'], unique=False)
        batch_op.create_index('ix_outbox_entries_due', ['next_attempt_at'], unique=False, postgresql_where=sa.text("status = 'pending'"), sqlite_where=sa.text("status = 'pending'"))
        batch_op.create_index('ix_outbox_entries_leased', ['locked_until'], unique=False, postgresql_where=sa.text("status = 'running'"), sqlite_where=sa.text("status = 'running'"))
        batch_op.create_index(batch_op.f('ix_outbox_entries_status_kind'), ['status', 'kind'], unique=False)

    op.create_table('webhook_events',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('provider', sa.String(length=20), nullable=False),
    sa.Column('event_id', sa.String(length=255), nullable=False),
    sa.Column('type', sa.String(length=100), nullable=False),
    sa.Column('session_id', sa.String(length=255), nullable=True),
    sa.Column('outcome', sa.String(length=10), nullable=False),
    sa.Column('raw_body', sa.LargeBinary(), nullable=False),
    sa.Column('headers', payhook.db.types.JSONDocument, nullable=False),
    sa.Column('created_at', payhook.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("outcome IN ('applied', 'recorded', 'duplicate', 'ignored', 'unmatched')", name=op.f('ck_webhook_events_outcome')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_events')),
    sa.UniqueConstraint('provider', 'event_id', name=op.f('uq_webhook_events_provider_event_id'))
    )
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_webhook_events_created_at_id'), ['created_at', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_webhook_events_session_id'), ['session_id'], unique=False)

    op.create_table('anomalies',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('session_id', sa.String(length=255), nullable=True),
    sa.Column('event_id', sa.String(length=40), nullable=True),
    sa.Column('provider', sa.String(length=20), nullable=True),
    sa.Column('details', payhook.db.types.JSONDocument, nullable=False),
    sa.Column('created_at', payhook.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['event_id'], ['webhook_events.id'], name=op.f('fk_anomalies_event_id_webhook_events')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_anomalies'))
    )
    with op.batch_alter_table('anomalies', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_anomalies_created_at_id'), ['created_at', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_anomalies_kind_created_at'), ['kind', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_anomalies_session_id'), ['session_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('anomalies', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_anomalies_session_id'))
        batch_op.drop_index(batch_op.f('ix_anomalies_kind_created_at'))
        batch_op.drop_index(batch_op.f('ix_anomalies_created_at_id'))

    op.drop_table('anomalies')
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webhook_events_session_id'))
        batch_op.drop_index(batch_op.f('ix_webhook_events_created_at_id'))

    op.drop_table('webhook_events')
    with op.batch_alter_table('outbox_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_entries_status_kind'))
        batch_op.drop_index('ix_outbox_entries_leased', postgresql_where=sa.text("status = 'running'"), sqlite_where=sa.text("status = 'running'"))
        batch_op.drop_index('ix_outbox_entries_due', postgresql_where=sa.text("status = 'pending'"), sqlite_where=sa.text("status = 'pending'"))
        batch_op.drop_index(batch_op.f('ix_outbox_entries_created_at_id'))

    op.drop_table('outbox_entries')
