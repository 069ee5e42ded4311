"""What residents write stays out of error messages and the DEBUG log (see tests/e2e/test_logs.py
for the whole bot)."""

import logging

import pytest
from sqlalchemy.exc import IntegrityError

from bot.logs import setup_logging
from bot.store.db import Database
from bot.store.models import FsmRecord

PHONE = "+37069917733"


async def test_sql_errors_do_not_show_the_parameters(database: Database) -> None:
    async with database.write() as session:
        session.add(FsmRecord(key="k", state="Intake:contact", data={"phone": PHONE}))
    with pytest.raises(IntegrityError) as error:
        async with database.write() as session:
            session.add(FsmRecord(key="k", state="Intake:contact", data={"phone": PHONE}))
    assert "hide_parameters" in str(error.value)
    assert PHONE not in str(error.value)


def test_the_sqlite_driver_does_not_log_statements_at_debug() -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        setup_logging("DEBUG")
        assert logging.getLogger("bot").isEnabledFor(logging.DEBUG)
        assert not logging.getLogger("aiosqlite").isEnabledFor(
            logging.DEBUG
        )  # it logs every statement with its values
    finally:
        root.handlers[:], root.level = handlers, level
