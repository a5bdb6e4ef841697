"""consent events: a consent record says whether it grants, refuses or withdraws consent, so a
withdrawal (152-ФЗ) is a record of its own next to the grant it ends

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('consent_records') as batch:
        batch.add_column(sa.Column('event', sa.String(length=16), nullable=False, server_default='granted'))
    # Before this revision a refusal was the only record with granted = false.
    op.execute("UPDATE consent_records SET event = 'refused' WHERE NOT granted")
    op.create_index('ix_consent_records_created_at', 'consent_records', ['created_at'])


def downgrade() -> None:
    op.drop_index('ix_consent_records_created_at', table_name='consent_records')
    with op.batch_alter_table('consent_records') as batch:
        batch.drop_column('event')
