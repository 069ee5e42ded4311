"""The quality loop completed: audit findings and checklist answers, nonconformities' cards
edited in place (where each was posted), and the weekly nonconformities from the cases' rules

Revision ID: 0020
Revises: 0019
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from bot.store.models import UTCDateTime

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audits") as batch:
        batch.add_column(sa.Column("checklist", sa.JSON(), nullable=False, server_default="{}"))
    with op.batch_alter_table("nonconformities") as batch:
        batch.add_column(sa.Column("low_ratings", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "audit_findings",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("audit_id", sa.Integer(), sa.ForeignKey("audits.id"), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("nonconformity_id", sa.Integer(), sa.ForeignKey("nonconformities.id"), nullable=True),
        sa.Column("author_id", sa.BigInteger(), nullable=False),
        sa.Column("author_name", sa.String(length=256), nullable=True),
    )
    op.create_index("ix_audit_findings_audit_id", "audit_findings", ["audit_id"])
    op.create_table(
        "nc_cards",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("nonconformity_id", sa.Integer(), sa.ForeignKey("nonconformities.id"), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.UniqueConstraint("nonconformity_id", "chat_id", name="uq_nc_cards_nonconformity_chat"),
    )
    op.create_index("ix_nc_cards_nonconformity_id", "nc_cards", ["nonconformity_id"])


def downgrade() -> None:
    op.drop_index("ix_nc_cards_nonconformity_id", table_name="nc_cards")
    op.drop_table("nc_cards")
    op.drop_index("ix_audit_findings_audit_id", table_name="audit_findings")
    op.drop_table("audit_findings")
    with op.batch_alter_table("nonconformities") as batch:
        batch.drop_column("low_ratings")
    with op.batch_alter_table("audits") as batch:
        batch.drop_column("checklist")
