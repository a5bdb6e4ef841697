"""telegram queue: drop the index on chat_id over every row

Each new update wrote its chat into four indexes, two of them keyed by chat; with updates from many
chats those are the pages a commit writes all over (py-spy and a batch-insert measurement put this
index at ~35 % of SQLite's CPU for the webhook's inserts and half the commit's time). The claim uses
the partial (chat_id, update_id) index over the active rows (0002); the only other reader, the
consent withdrawal's scrub of one user's done and dead rows, is rare and now scans the table, which
the retention (TELEGRAM_QUEUE_RETENTION_HOURS) keeps to a couple of days of updates.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index('ix_telegram_updates_chat_id', table_name='telegram_updates')


def downgrade() -> None:
    op.create_index('ix_telegram_updates_chat_id', 'telegram_updates', ['chat_id'], unique=False)
