"""A migration's data rewrite in batches (bot.store.migrate.update_in_batches): every row the
condition picks is changed, one UPDATE per batch of ids, and none other."""

import sqlalchemy as sa

from bot.store.migrate import update_in_batches


def test_a_rewrite_changes_every_picked_row_one_batch_at_a_time() -> None:
    engine = sa.create_engine("sqlite://")
    metadata = sa.MetaData()
    rows = sa.Table(
        "rows",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String),
        sa.Column("flag", sa.Boolean),
    )
    metadata.create_all(engine)
    statements: list[str] = []
    sa.event.listen(
        engine, "before_cursor_execute", lambda conn, cursor, statement, *args: statements.append(statement)
    )
    with engine.begin() as connection:
        connection.execute(
            rows.insert(), [{"id": i, "kind": "a" if i % 3 else "b", "flag": False} for i in range(1, 26)]
        )
        statements.clear()
        assert update_in_batches(connection, rows, {"flag": True}, rows.c.kind == "a", batch=10) == 17
        flagged = set(connection.execute(sa.select(rows.c.id).where(rows.c.flag)).scalars())
    assert flagged == {i for i in range(1, 26) if i % 3}
    assert sum(statement.startswith("UPDATE") for statement in statements) == 3  # ids 1-10, 11-20, 21-25


def test_an_empty_table_is_no_rewrite() -> None:
    engine = sa.create_engine("sqlite://")
    metadata = sa.MetaData()
    rows = sa.Table(
        "rows", metadata, sa.Column("id", sa.Integer, primary_key=True), sa.Column("flag", sa.Boolean)
    )
    metadata.create_all(engine)
    with engine.begin() as connection:
        assert update_in_batches(connection, rows, {"flag": True}) == 0
