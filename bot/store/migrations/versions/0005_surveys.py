"""Anonymous surveys: satisfaction answers, polls, poll answers and receipts

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bot.store.models

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch_op:
        batch_op.add_column(sa.Column("feedback_asked", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        "satisfaction_answers",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("answered_on", sa.Date(), nullable=False),
        sa.Column("locale", sa.String(length=5), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("category_id", sa.String(length=24), nullable=False),
        sa.Column("eldership_id", sa.String(length=24), nullable=True),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("resolved", sa.String(length=8), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_satisfaction_answers_answered_on", "satisfaction_answers", ["answered_on"])
    op.create_table(
        "polls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", bot.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("author_id", sa.BigInteger(), nullable=True),
        sa.Column("author_name", sa.String(length=256), nullable=True),
        sa.Column("questions", sa.JSON(), nullable=False),
        sa.Column("audience", sa.JSON(), nullable=False),
        sa.Column("broadcast_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("closed_at", bot.store.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["broadcast_id"], ["broadcasts.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "poll_answers",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("poll_id", sa.Integer(), nullable=False),
        sa.Column("answered_on", sa.Date(), nullable=False),
        sa.Column("locale", sa.String(length=5), nullable=False),
        sa.Column("choices", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["poll_id"], ["polls.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_poll_answers_poll_id", "poll_answers", ["poll_id"])
    op.create_table(
        "survey_receipts",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("digest"),
    )


def downgrade() -> None:
    op.drop_table("survey_receipts")
    op.drop_index("ix_poll_answers_poll_id", table_name="poll_answers")
    op.drop_table("poll_answers")
    op.drop_table("polls")
    op.drop_index("ix_satisfaction_answers_answered_on", table_name="satisfaction_answers")
    op.drop_table("satisfaction_answers")
    with op.batch_alter_table("cases") as batch_op:
        batch_op.drop_column("feedback_asked")
