"""Indexes for a decade of data (bench/scale.py, docs/performance.md): cases by receipt (Open311's
listing, a period's report) and by closing (the report, retention), events by kind and time (the
report's extensions), the outbox by case (retention and /forget delete or scrub a case's rows).
No data is rewritten.

Revision ID: 0022
Revises: 0021
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_cases_received_at", "cases", ["received_at"])
    op.create_index("ix_cases_closed_at", "cases", ["closed_at"])
    op.create_index("ix_case_events_kind_at", "case_events", ["kind", "at"])
    op.create_index("ix_outbox_case_id", "outbox", ["case_id"])


def downgrade() -> None:
    op.drop_index("ix_outbox_case_id", table_name="outbox")
    op.drop_index("ix_case_events_kind_at", table_name="case_events")
    op.drop_index("ix_cases_closed_at", table_name="cases")
    op.drop_index("ix_cases_received_at", table_name="cases")
