"""console lookups: a session's outbox rows, deliveries and events by its id, its customer by
e-mail (case-insensitive) and its payment by transaction hash, through indexes instead of
whole-table scans

The outbox index is on the expression the story's query writes (``payhook.db.json_members``):
``payload ->> 'session_id'`` on PostgreSQL, ``json_extract(payload, '$."session_id"')`` on
SQLite.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 00:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import payhook.db.types
from payhook.db.json_members import member

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PAYLOAD = sa.column('payload', payhook.db.types.JSONDocument)
ONCHAIN_CHECKS = "kind = 'onchain.check'"


def upgrade() -> None:
    op.create_index('ix_outbox_entries_payload_session_id', 'outbox_entries',
                    [member(PAYLOAD, 'session_id')])
    op.create_index('ix_outbox_entries_payload_tx_hash', 'outbox_entries',
                    [member(PAYLOAD, 'tx_hash')], postgresql_where=sa.text(ONCHAIN_CHECKS),
                    sqlite_where=sa.text(ONCHAIN_CHECKS))
    op.create_index('ix_checkout_sessions_customer_email_lower', 'checkout_sessions',
                    [sa.func.lower(sa.column('customer_email'))])
    op.create_index(op.f('ix_checkout_sessions_provider_reference'), 'checkout_sessions',
                    ['provider_reference'])
    op.create_index(op.f('ix_onchain_payments_tx_hash'), 'onchain_payments', ['tx_hash'])
    op.create_index(op.f('ix_deliveries_session_id'), 'deliveries', ['session_id'])
    op.create_index(op.f('ix_merchant_events_session_id'), 'merchant_events', ['session_id'])


def downgrade() -> None:
    op.drop_index(op.f('ix_onchain_payments_tx_hash'), table_name='onchain_payments')
    op.drop_index(op.f('ix_checkout_sessions_provider_reference'),
                  table_name='checkout_sessions')
    op.drop_index('ix_outbox_entries_payload_tx_hash', table_name='outbox_entries')
    op.drop_index(op.f('ix_merchant_events_session_id'), table_name='merchant_events')
    op.drop_index(op.f('ix_deliveries_session_id'), table_name='deliveries')
    op.drop_index('ix_checkout_sessions_customer_email_lower', table_name='checkout_sessions')
    op.drop_index('ix_outbox_entries_payload_session_id', table_name='outbox_entries')
