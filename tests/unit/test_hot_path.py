"""The bot's CPU per update: keyboards built without aiogram's deep copies, aiogram's answer
types built once, requests sent as JSON, filters run on the event loop and SQLite's connections
kept (bench/flow.py measures the effect; these keep it from coming back)."""

import asyncio
import gc
import json
import weakref
from datetime import UTC, datetime
from pathlib import Path

from aiogram.methods.base import Response
from aiogram.types import BufferedInputFile, Chat, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils import keyboard as aiogram_keyboard
from aiohttp import web
from sqlalchemy import event, text

from bot.keyboards import InlineKeyboardBuilder, ReplyKeyboardBuilder
from bot.sandbox.emulator import Emulator
from bot.store.db import Database
from bot.store.migrate import upgrade
from bot.store.models import CaseCounter, Resident
from bot.telegram import create_bot
from flows import filters_of, intake, routers
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
    for reply_builder in (reply, aiograms_reply):
        for i in range(5):
            reply_builder.button(text=f"menu {i}")
        reply_builder.adjust(2, 3)
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


async def test_requests_go_as_one_json_body_and_uploads_as_a_form() -> None:
    received: list[tuple[str, str, bytes]] = []

    async def answer(request: web.Request) -> web.Response:
        received.append((request.match_info["method"], request.content_type, await request.read()))
        message = {"message_id": 1, "date": 0, "chat": {"id": 5, "type": "private"}}
        return web.json_response({"ok": True, "result": message})

    app = web.Application()
    app.router.add_post("/bot{token}/{method}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    bot = create_bot(TOKEN, f"http://127.0.0.1:{port}")
    try:
        keyboard = InlineKeyboardMarkup(
            inline_keyboard=[[InlineKeyboardButton(text="Tak", callback_data="yes")]]
        )
        sent = await bot.send_message(5, "<b>Sprawa</b> ąę", reply_markup=keyboard)
        await bot.send_document(5, BufferedInputFile(b"%PDF-1.4", filename="wniosek.pdf"), caption="Plik")
    finally:
        await bot.session.close()
        await runner.cleanup()
    assert sent.message_id == 1
    (method, kind, body), (upload, upload_kind, upload_body) = received
    assert (method, kind) == ("sendMessage", "application/json")
    assert json.loads(body) == {
        "chat_id": 5,
        "text": "<b>Sprawa</b> ąę",
        "parse_mode": "HTML",  # the bot's default, resolved
        "reply_markup": {"inline_keyboard": [[{"text": "Tak", "callback_data": "yes"}]]},
    }
    assert (upload, upload_kind) == ("sendDocument", "multipart/form-data")
    assert b"%PDF-1.4" in upload_body and b'filename="wniosek.pdf"' in upload_body


def test_no_filter_waits_for_a_worker_thread() -> None:
    """aiogram runs a plain-function filter (every `F.…`) in a worker thread; ours run on the loop."""
    assert [check for router in routers() for check in filters_of(router) if not check.awaitable] == []


async def test_a_filter_on_the_loop_still_filters() -> None:
    routers()
    (private_only,) = intake.router.message._handler.filters or []  # F.chat.type == ChatType.PRIVATE
    epoch = datetime.fromtimestamp(0, UTC)  # what Telegram's date 0 is read as
    private = Message(message_id=1, date=epoch, chat=Chat(id=5, type="private"), text="x")
    group = Message(message_id=1, date=epoch, chat=Chat(id=-5, type="supergroup"), text="x")
    assert (await private_only.call(private), await private_only.call(group)) == (True, False)


async def test_sqlite_keeps_its_connections_through_a_burst(tmp_path: Path) -> None:
    """Opening one costs a thread and four PRAGMAs: 20 readers at once open 20, and no more later."""
    database = Database(f"sqlite+aiosqlite:///{tmp_path}/burst.db")
    opened = 0

    @event.listens_for(database.engine.sync_engine, "connect")
    def _count(*_: object) -> None:
        nonlocal opened
        opened += 1

    async def read(held: asyncio.Event) -> None:
        async with database.read() as session:
            await session.execute(text("SELECT 1"))
            await held.wait()

    try:
        for _ in range(3):
            held = asyncio.Event()
            readers = [asyncio.create_task(read(held)) for _ in range(20)]
            await asyncio.sleep(0.2)
            held.set()
            await asyncio.gather(*readers)
    finally:
        await database.dispose()
    assert opened == 20


async def test_a_sqlite_connection_given_back_inside_a_transaction_is_rolled_back(tmp_path: Path) -> None:
    """The pool rolls back only connections still in a transaction (not after each COMMIT): one
    left holding SQLite's write lock must still lose it, or the next writer would wait 30 s."""
    database = Database(f"sqlite+aiosqlite:///{tmp_path}/petent.db")
    try:
        await upgrade(database)
        async with database.engine.connect() as connection:
            raw = await connection.get_raw_connection()
            assert raw.driver_connection is not None
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
