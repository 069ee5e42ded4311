"""Teams on cases, chat ids beside message ids, the outbox of messages that matter

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bot.store.models

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch_op:
        batch_op.add_column(sa.Column("team_id", sa.String(length=24), nullable=True))
        batch_op.add_column(sa.Column("group_chat_id", sa.BigInteger(), nullable=True))
        batch_op.create_index("ix_cases_team_id", ["team_id"])
    with op.batch_alter_table("case_events") as batch_op:
        batch_op.add_column(sa.Column("group_chat_id", sa.BigInteger(), nullable=True))
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", bot.store.models.UTCDateTime(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=48), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("due_at", bot.store.models.UTCDateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("claimed_at", bot.store.models.UTCDateTime(), nullable=True),
        sa.Column("sent_chat_id", sa.BigInteger(), nullable=True),
        sa.Column("sent_message_id", sa.Integer(), nullable=True),
        sa.Column("sent_at", bot.store.models.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_outbox_status_due", "outbox", ["status", "due_at"])
    op.create_index("ix_outbox_key_id", "outbox", ["key", "id"])
    # Cards and relays before this version were all in the one clerks' group; its id is in the
    # settings, not here, so they keep group_chat_id NULL and are read as that group's.


def downgrade() -> None:
    op.drop_index("ix_outbox_key_id", table_name="outbox")
    op.drop_index("ix_outbox_status_due", table_name="outbox")
    op.drop_table("outbox")
    with op.batch_alter_table("case_events") as batch_op:
        batch_op.drop_column("group_chat_id")
    with op.batch_alter_table("cases") as batch_op:
        batch_op.drop_index("ix_cases_team_id")
        batch_op.drop_column("group_chat_id")
        batch_op.drop_column("team_id")
