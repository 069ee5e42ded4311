"""Nothing left behind: every topic and card a case ever had, in every group (case_traces)

Backfilled from what the store already knows: each case's current topic and card, the cards the
outbox posted before (a case passed between teams left one in each group), and the topics it
closed when a case was passed on.

Revision ID: 0012
Revises: 0010
"""

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

import bot.store.models

revision: str = "0012"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    traces = op.create_table(
        "case_traces",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("topic_id", sa.Integer(), nullable=True),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("created_at", bot.store.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_case_traces_case_id", "case_traces", ["case_id"])
    connection = op.get_bind()
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    seen: set[tuple[Any, ...]] = set()

    def add(case_id: int, kind: str, chat_id: int | None, topic_id: int | None, message_id: int | None) -> None:
        key = (case_id, kind, chat_id, topic_id if kind == "topic" else None, message_id)
        if chat_id is None or key in seen:
            return
        seen.add(key)
        rows.append({"case_id": case_id, "kind": kind, "chat_id": chat_id, "topic_id": topic_id, "message_id": message_id, "created_at": now})

    cases = sa.table("cases", sa.column("id"), sa.column("group_chat_id"), sa.column("topic_id"), sa.column("card_message_id"), sa.column("purged_at"))
    for case_id, chat_id, topic_id, card in connection.execute(
        sa.select(cases.c.id, cases.c.group_chat_id, cases.c.topic_id, cases.c.card_message_id).where(cases.c.purged_at.is_(None))
    ):
        if topic_id is not None:
            add(case_id, "topic", chat_id, topic_id, None)
        if card is not None:
            add(case_id, "card", chat_id, topic_id, card)
    outbox = sa.table(
        "outbox", sa.column("kind"), sa.column("chat_id"), sa.column("case_id"), sa.column("payload"), sa.column("status"),
        sa.column("sent_chat_id"), sa.column("sent_message_id"),
    )
    query = sa.select(outbox.c.kind, outbox.c.chat_id, outbox.c.case_id, outbox.c.payload, outbox.c.sent_chat_id, outbox.c.sent_message_id).where(
        outbox.c.case_id.is_not(None), outbox.c.kind.in_(["card", "close_topic"]), outbox.c.chat_id < 0
    )
    for kind, chat_id, case_id, payload, sent_chat, sent_message in connection.execute(query):
        data = json.loads(payload) if isinstance(payload, str) else payload or {}
        if kind == "card" and sent_message is not None:
            add(case_id, "card", sent_chat or chat_id, None, sent_message)  # its topic is not recorded: deleted by its id
        elif kind == "close_topic" and data.get("topic_id") is not None:
            add(case_id, "topic", chat_id, int(data["topic_id"]), None)
    if rows:
        op.bulk_insert(traces, rows)


def downgrade() -> None:
    op.drop_index("ix_case_traces_case_id", table_name="case_traces")
    op.drop_table("case_traces")
