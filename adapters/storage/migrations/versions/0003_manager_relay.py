"""manager relay: the topic (or card) of each handed-off conversation and the staff-chat messages
that speak for it

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'relay_topics',
        sa.Column('conversation_id', sa.Integer(), nullable=False),
        sa.Column('chat_id', sa.BigInteger(), nullable=False),
        sa.Column('thread_id', sa.BigInteger(), nullable=True),
        sa.Column('card_message_id', sa.BigInteger(), nullable=True),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('closed', sa.Boolean(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id']),
        sa.PrimaryKeyConstraint('conversation_id'),
        sa.UniqueConstraint('chat_id', 'thread_id', name='uq_relay_topics_thread'),
    )
    op.create_table(
        'relay_links',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('chat_id', sa.BigInteger(), nullable=False),
        sa.Column('message_id', sa.BigInteger(), nullable=False),
        sa.Column('conversation_id', sa.Integer(), nullable=False),
        sa.Column('source_key', sa.String(length=128), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('chat_id', 'message_id', name='uq_relay_links_message'),
        sa.UniqueConstraint('source_key'),
    )
    with op.batch_alter_table('relay_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_relay_links_conversation_id'), ['conversation_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('relay_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_relay_links_conversation_id'))
    op.drop_table('relay_links')
    op.drop_table('relay_topics')
