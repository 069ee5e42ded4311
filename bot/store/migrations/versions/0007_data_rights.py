"""Residents' data rights: an erased profile, /mydata counted per day, cases purged after retention

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bot.store.models

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("residents") as batch_op:
        batch_op.add_column(sa.Column("erased_at", bot.store.models.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("exports_on", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("exports_that_day", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("cases") as batch_op:
        batch_op.add_column(sa.Column("purged_at", bot.store.models.UTCDateTime(), nullable=True))
        batch_op.alter_column("resident_id", existing_type=sa.BigInteger(), nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch_op:
        batch_op.alter_column("resident_id", existing_type=sa.BigInteger(), nullable=False)
        batch_op.drop_column("purged_at")
    with op.batch_alter_table("residents") as batch_op:
        batch_op.drop_column("exports_that_day")
        batch_op.drop_column("exports_on")
        batch_op.drop_column("erased_at")
