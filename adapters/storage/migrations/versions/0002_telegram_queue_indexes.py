"""telegram queue: partial indexes over the active rows

The claim walks the active updates in update_id order and stops at its limit; with these partial
indexes that costs the same whatever the backlog and however many done rows the retention keeps
(the (status, next_attempt_at) index made it sort every queued row on each claim).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

ACTIVE = sa.text("status IN ('queued', 'retry', 'processing')")


def upgrade() -> None:
    with op.batch_alter_table('telegram_updates', schema=None) as batch_op:
        batch_op.drop_index('ix_telegram_updates_claim')
        batch_op.create_index(
            'ix_telegram_updates_active', ['update_id'], unique=False, sqlite_where=ACTIVE, postgresql_where=ACTIVE
        )
        batch_op.create_index(
            'ix_telegram_updates_active_chat',
            ['chat_id', 'update_id'],
            unique=False,
            sqlite_where=ACTIVE,
            postgresql_where=ACTIVE,
        )


def downgrade() -> None:
    with op.batch_alter_table('telegram_updates', schema=None) as batch_op:
        batch_op.drop_index('ix_telegram_updates_active_chat')
        batch_op.drop_index('ix_telegram_updates_active')
        batch_op.create_index('ix_telegram_updates_claim', ['status', 'next_attempt_at'], unique=False)
