"""The quality loop: objectives' period reviews, nonconformities, corrective actions and their trail, internal audits, residents' anonymous proposals

Revision ID: 0018
Revises: 0015
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from bot.store.models import UTCDateTime

revision: str = "0018"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "objective_reviews",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("objective_id", sa.String(length=24), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("figure", sa.Float(), nullable=True),
        sa.Column("met", sa.Boolean(), nullable=True),
        sa.Column("reviewed_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("objective_id", "period", name="uq_objective_reviews_objective_period"),
    )
    op.create_table(
        "nonconformities",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("opened_at", UTCDateTime(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("team_id", sa.String(length=24), nullable=False),
        sa.Column("owner_id", sa.BigInteger(), nullable=True),
        sa.Column("opened_by", sa.BigInteger(), nullable=True),
        sa.Column("case_ids", sa.JSON(), nullable=False),
        sa.Column("objective_id", sa.String(length=24), nullable=True),
        sa.Column("period", sa.String(length=16), nullable=True),
        sa.Column("figure", sa.Float(), nullable=True),
        sa.Column("correction", sa.Text(), nullable=True),
        sa.Column("root_cause", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("check_on", sa.Date(), nullable=True),
        sa.Column("check_posted_on", sa.Date(), nullable=True),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_nonconformities_team_id", "nonconformities", ["team_id"])
    op.create_index("ix_nonconformities_status", "nonconformities", ["status"])
    op.create_table(
        "corrective_actions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("nonconformity_id", sa.Integer(), sa.ForeignKey("nonconformities.id"), nullable=False),
        sa.Column("what", sa.Text(), nullable=False),
        sa.Column("owner_id", sa.BigInteger(), nullable=True),
        sa.Column("owner_name", sa.String(length=256), nullable=True),
        sa.Column("due", sa.Date(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("done_at", UTCDateTime(), nullable=True),
        sa.Column("done_note", sa.Text(), nullable=True),
        sa.Column("overdue_told_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_corrective_actions_nonconformity_id", "corrective_actions", ["nonconformity_id"])
    op.create_table(
        "nc_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("nonconformity_id", sa.Integer(), sa.ForeignKey("nonconformities.id"), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("actor_id", sa.BigInteger(), nullable=True),
        sa.Column("actor_name", sa.String(length=256), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
    )
    op.create_index("ix_nc_events_nonconformity_id", "nc_events", ["nonconformity_id"])
    op.create_table(
        "audits",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("team_id", sa.String(length=24), nullable=False),
        sa.Column("period", sa.String(length=32), nullable=False),
        sa.Column("start", sa.Date(), nullable=False),
        sa.Column("end", sa.Date(), nullable=False),
        sa.Column("auditor_id", sa.BigInteger(), nullable=False),
        sa.Column("auditor_name", sa.String(length=256), nullable=True),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("sample_size", sa.Integer(), nullable=False),
        sa.Column("population", sa.Integer(), nullable=False),
        sa.Column("case_ids", sa.JSON(), nullable=False),
    )


    op.create_table(
        "proposals",
        sa.Column("id", sa.String(length=32), primary_key=True),
        sa.Column("submitted_on", sa.Date(), nullable=False),
        sa.Column("locale", sa.String(length=5), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
    )
    op.create_index("ix_proposals_submitted_on", "proposals", ["submitted_on"])


def downgrade() -> None:
    op.drop_index("ix_proposals_submitted_on", table_name="proposals")
    op.drop_table("proposals")
    op.drop_table("audits")
    op.drop_index("ix_nc_events_nonconformity_id", table_name="nc_events")
    op.drop_table("nc_events")
    op.drop_index("ix_corrective_actions_nonconformity_id", table_name="corrective_actions")
    op.drop_table("corrective_actions")
    op.drop_index("ix_nonconformities_status", table_name="nonconformities")
    op.drop_index("ix_nonconformities_team_id", table_name="nonconformities")
    op.drop_table("nonconformities")
    op.drop_table("objective_reviews")
