"""Initial schema: residents, cases, case events, attachments, case counters, FSM records

Revision ID: 0001
Revises: 
Create Date: 2026-11-21 08:22:12.332976
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import bot.store.models

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('case_counters',
    sa.Column('year', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('last', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('year')
    )
    op.create_table('fsm_records',
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('updated_at', bot.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('residents',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('locale', sqlmodel.sql.sqltypes.AutoString(length=5), nullable=True),
    sa.Column('display_name', sqlmodel.sql.sqltypes.AutoString(length=256), nullable=False),
    sa.Column('phone', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('consent_at', bot.store.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('blocked_at', bot.store.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', bot.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', bot.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('cases',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('resident_id', sa.BigInteger(), nullable=False),
    sa.Column('locale', sqlmodel.sql.sqltypes.AutoString(length=5), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('category_id', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
    sa.Column('eldership_id', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=True),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('latitude', sa.Float(), nullable=True),
    sa.Column('longitude', sa.Float(), nullable=True),
    sa.Column('address', sqlmodel.sql.sqltypes.AutoString(length=512), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('received_at', bot.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('deadline', sa.Date(), nullable=False),
    sa.Column('extended_until', sa.Date(), nullable=True),
    sa.Column('extension_days', sa.Integer(), nullable=False),
    sa.Column('extension_reason', sa.Text(), nullable=True),
    sa.Column('assignee_id', sa.BigInteger(), nullable=True),
    sa.Column('assignee_name', sqlmodel.sql.sqltypes.AutoString(length=256), nullable=True),
    sa.Column('topic_id', sa.Integer(), nullable=True),
    sa.Column('closed_at', bot.store.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('source_update_id', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['resident_id'], ['residents.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('number'),
    sa.UniqueConstraint('source_update_id'),
    sa.UniqueConstraint('year', 'seq', name='uq_cases_year_seq')
    )
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cases_resident_id'), ['resident_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_cases_status'), ['status'], unique=False)

    op.create_table('case_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('at', bot.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('actor_id', sa.BigInteger(), nullable=True),
    sa.Column('actor_name', sqlmodel.sql.sqltypes.AutoString(length=256), nullable=True),
    sa.Column('text', sa.Text(), nullable=True),
    sa.Column('data', sa.JSON(), nullable=True),
    sa.Column('resident_message_id', sa.Integer(), nullable=True),
    sa.Column('group_message_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('case_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_case_events_case_id'), ['case_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_case_events_group_message_id'), ['group_message_id'], unique=False)

    op.create_table('attachments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=True),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('file_id', sqlmodel.sql.sqltypes.AutoString(length=256), nullable=False),
    sa.Column('file_unique_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('caption', sa.Text(), nullable=True),
    sa.Column('media_group_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('created_at', bot.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], ),
    sa.ForeignKeyConstraint(['event_id'], ['case_events.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('attachments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_attachments_case_id'), ['case_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('attachments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_attachments_case_id'))

    op.drop_table('attachments')
    with op.batch_alter_table('case_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_case_events_group_message_id'))
        batch_op.drop_index(batch_op.f('ix_case_events_case_id'))

    op.drop_table('case_events')
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cases_status'))
        batch_op.drop_index(batch_op.f('ix_cases_resident_id'))

    op.drop_table('cases')
    op.drop_table('residents')
    op.drop_table('fsm_records')
    op.drop_table('case_counters')
