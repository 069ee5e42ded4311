"""Area notices: a broadcast sent from a case's card ("📣 Notify the area") names its case

Revision ID: 0021
Revises: 0020
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("broadcasts") as batch:
        batch.add_column(sa.Column("case_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_broadcasts_case_id", "cases", ["case_id"], ["id"])
        batch.create_index("ix_broadcasts_case_id", ["case_id"])


def downgrade() -> None:
    with op.batch_alter_table("broadcasts") as batch:
        batch.drop_index("ix_broadcasts_case_id")
        batch.drop_constraint("fk_broadcasts_case_id", type_="foreignkey")
        batch.drop_column("case_id")
