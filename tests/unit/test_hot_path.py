"""The bot's CPU per update: keyboards built without aiogram's deep copies, and aiogram's answer
types built once (bench/flow.py measures the effect; these keep it from coming back)."""

import asyncio
import gc
import weakref
from pathlib import Path

from aiogram.methods.base import Response
from aiogram.types import Message
from aiogram.utils import keyboard as aiogram_keyboard

from bot.keyboards import InlineKeyboardBuilder, ReplyKeyboardBuilder
from bot.sandbox.emulator import Emulator
from bot.store.db import Database
from bot.store.migrate import upgrade
from bot.store.models import CaseCounter, Resident
from bot.telegram import create_bot
from tests.conftest import TOKEN

ROOT = Path(__file__).resolve().parents[2]


def test_keyboards_are_the_same_as_aiograms() -> None:
    ours, theirs = InlineKeyboardBuilder(), aiogram_keyboard.InlineKeyboardBuilder()
    for builder in (ours, theirs):
        for i in range(7):
            builder.button(text=f"option {i}", callback_data=f"pick:{i}")
        builder.row(aiogram_keyboard.InlineKeyboardButton(text="✖ Cancel", callback_data="cancel"))
        builder.adjust(2, 3, 1)
    assert ours.as_markup() == theirs.as_markup()
    reply, aiograms_reply = ReplyKeyboardBuilder(), aiogram_keyboard.ReplyKeyboardBuilder()
    for builder in (reply, aiograms_reply):
        for i in range(5):
            builder.button(text=f"menu {i}")
        builder.adjust(2, 3)
    assert reply.as_markup(resize_keyboard=True) == aiograms_reply.as_markup(resize_keyboard=True)


def test_a_markup_does_not_change_with_its_builder() -> None:
    builder = InlineKeyboardBuilder()
    builder.button(text="a", callback_data="a")
    first = builder.as_markup()
    builder.button(text="b", callback_data="b")
    builder.adjust(1)
    assert [[b.text for b in row] for row in first.inline_keyboard] == [["a"]]
    assert [[b.text for b in row] for row in builder.as_markup().inline_keyboard] == [["a"], ["b"]]


def test_no_code_uses_aiogram_s_deep_copying_builders() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for folder in ("bot", "flows")
        for path in (ROOT / folder).rglob("*.py")
        if path.name != "keyboards.py" and "aiogram.utils.keyboard import" in path.read_text(encoding="utf-8")
    ]
    assert offenders == []


async def test_answer_types_are_not_rebuilt_after_a_garbage_collection(emulator: Emulator) -> None:
    user = emulator.add_user("Resident", "pl")
    bot = create_bot(TOKEN, emulator.url)
    try:
        await bot.send_message(user["id"], "first")
        built = weakref.ref(Response[Message])  # what aiogram read the answer with
        gc.collect()
        await bot.send_message(user["id"], "second")
        assert built() is not None and built() is Response[Message]
    finally:
        await bot.session.close()


async def test_a_sqlite_connection_given_back_inside_a_transaction_is_rolled_back(tmp_path: Path) -> None:
    """The pool rolls back only connections still in a transaction (not after each COMMIT): one
    left holding SQLite's write lock must still lose it, or the next writer would wait 30 s."""
    database = Database(f"sqlite+aiosqlite:///{tmp_path}/petent.db")
    try:
        await upgrade(database)
        async with database.engine.connect() as connection:
            raw = await connection.get_raw_connection()
            await raw.driver_connection.execute("BEGIN IMMEDIATE")  # behind SQLAlchemy's back
            await raw.driver_connection.execute("INSERT INTO case_counters (year, last) VALUES (1999, 5)")
        async with asyncio.timeout(5):
            async with database.write() as session:
                session.add(Resident(id=8, locale="lt", display_name="Ona"))
        async with database.read() as session:
            assert await session.get(CaseCounter, 1999) is None  # rolled back
            assert (await session.get_one(Resident, 8)).display_name == "Ona"
    finally:
        await database.dispose()
