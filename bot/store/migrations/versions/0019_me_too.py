"""Me too: residents follow a case reported by someone else (follows of kind "case", no schema
change), the nearby query's indexes, and a case closed as a duplicate of another

Revision ID: 0019
Revises: 0018
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("duplicate_of", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_cases_duplicate_of", "cases", ["duplicate_of"], ["id"])
        batch.create_index("ix_cases_duplicate_of", ["duplicate_of"])
        batch.create_index("ix_cases_category_status_received", ["category_id", "status", "received_at"])
        batch.create_index("ix_cases_latitude_longitude", ["latitude", "longitude"])


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.drop_index("ix_cases_latitude_longitude")
        batch.drop_index("ix_cases_category_status_received")
        batch.drop_index("ix_cases_duplicate_of")
        batch.drop_constraint("fk_cases_duplicate_of", type_="foreignkey")
        batch.drop_column("duplicate_of")
