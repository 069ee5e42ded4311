"""The municipality's projects: projects, milestones (baseline and current due dates), their trail, updates; what residents follow

Revision ID: 0015
Revises: 0014
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import bot.store.models

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_string = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("external_id", _string(length=32), nullable=False),
        sa.Column("name_pl", _string(length=200), nullable=False),
        sa.Column("name_lt", _string(length=200), nullable=False),
        sa.Column("name_en", _string(length=200), nullable=True),
        sa.Column("summary_pl", sa.Text(), nullable=False),
        sa.Column("summary_lt", sa.Text(), nullable=False),
        sa.Column("summary_en", sa.Text(), nullable=True),
        sa.Column("elderships", sa.JSON(), server_default="[]", nullable=False),
        sa.Column("team_id", _string(length=24), nullable=False),
        sa.Column("status", _string(length=16), nullable=False),
        sa.Column("progress", sa.Integer(), nullable=False),
        sa.Column("budget", sa.Float(), nullable=True),
        sa.Column("funding", _string(length=200), nullable=True),
        sa.Column("starts_on", sa.Date(), nullable=True),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("address", _string(length=300), nullable=True),
        sa.Column("link", _string(length=500), nullable=True),
        sa.Column("created_at", bot.store.models.UTCDateTime(), nullable=False),
        sa.Column("updated_at", bot.store.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("external_id"),
    )
    op.create_index("ix_projects_team_id", "projects", ["team_id"])
    op.create_table(
        "milestones",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("title_pl", _string(length=200), nullable=False),
        sa.Column("title_lt", _string(length=200), nullable=False),
        sa.Column("title_en", _string(length=200), nullable=True),
        sa.Column("baseline_due", sa.Date(), nullable=False),
        sa.Column("current_due", sa.Date(), nullable=False),
        sa.Column("status", _string(length=16), nullable=False),
        sa.Column("met_on", sa.Date(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("project_id", "number", name="uq_milestones_project_number"),
    )
    op.create_index("ix_milestones_project_id", "milestones", ["project_id"])
    op.create_table(
        "project_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("milestone_id", sa.Integer(), nullable=True),
        sa.Column("at", bot.store.models.UTCDateTime(), nullable=False),
        sa.Column("kind", _string(length=16), nullable=False),
        sa.Column("actor_id", sa.BigInteger(), nullable=True),
        sa.Column("actor_name", _string(length=256), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["milestone_id"], ["milestones.id"]),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_project_events_project_id", "project_events", ["project_id"])
    op.create_table(
        "project_updates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("at", bot.store.models.UTCDateTime(), nullable=False),
        sa.Column("text_pl", sa.Text(), nullable=False),
        sa.Column("text_lt", sa.Text(), nullable=False),
        sa.Column("photos", sa.JSON(), server_default="[]", nullable=False),
        sa.Column("author_id", sa.BigInteger(), nullable=True),
        sa.Column("author_name", _string(length=256), nullable=True),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_project_updates_project_id", "project_updates", ["project_id"])
    op.create_table(
        "follows",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("resident_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", _string(length=24), nullable=False),
        sa.Column("target", _string(length=48), nullable=False),
        sa.Column("created_at", bot.store.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["resident_id"], ["residents.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("resident_id", "kind", "target", name="uq_follows_resident_kind_target"),
    )
    op.create_index("ix_follows_resident_id", "follows", ["resident_id"])
    op.create_index("ix_follows_kind_target", "follows", ["kind", "target"])


def downgrade() -> None:
    op.drop_table("follows")
    op.drop_table("project_updates")
    op.drop_table("project_events")
    op.drop_table("milestones")
    op.drop_table("projects")
