"""Visit surveys: anonymous answers about a place where people are served, and their receipts

Revision ID: 0014
Revises: 0012
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "visit_answers",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("place_id", sa.String(length=40), nullable=False),
        sa.Column("answered_on", sa.Date(), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("waited", sa.String(length=8), nullable=True),
        sa.Column("settled", sa.String(length=8), nullable=True),
        sa.Column("courtesy", sa.Integer(), nullable=True),
        sa.Column("proposal", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_visit_answers_answered_on", "visit_answers", ["answered_on"])
    op.create_table(
        "visit_receipts",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("digest"),
    )
    op.create_index("ix_visit_receipts_day", "visit_receipts", ["day"])


def downgrade() -> None:
    op.drop_index("ix_visit_receipts_day", table_name="visit_receipts")
    op.drop_table("visit_receipts")
    op.drop_index("ix_visit_answers_answered_on", table_name="visit_answers")
    op.drop_table("visit_answers")
