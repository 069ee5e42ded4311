"""Open311: the client that sent a case, and the token that finds it

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch_op:
        batch_op.add_column(sa.Column("open311_client", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("open311_token", sa.String(length=32), nullable=True))
        batch_op.create_index("ix_cases_open311_token", ["open311_token"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch_op:
        batch_op.drop_index("ix_cases_open311_token")
        batch_op.drop_column("open311_token")
        batch_op.drop_column("open311_client")
