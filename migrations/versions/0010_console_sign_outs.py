"""console sign-outs: the nonces of console cookies signed out before they expired

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 01:03:19.844789
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import payhook.db.types

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('console_sign_outs',
    sa.Column('nonce', sa.String(length=40), nullable=False),
    sa.Column('expires_at', payhook.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('nonce', name=op.f('pk_console_sign_outs'))
    )
    with op.batch_alter_table('console_sign_outs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_console_sign_outs_expires_at'), ['expires_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('console_sign_outs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_console_sign_outs_expires_at'))

    op.drop_table('console_sign_outs')
