"""The Bot API emulator is as strict as Telegram, and aiogram understands its answers."""

import asyncio
from typing import Any

import httpx
import pytest
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import (
    BufferedInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaDocument,
    InputMediaPhoto,
)

from bot.limiter import PACED_METHODS
from bot.sandbox.emulator import Emulator, Limits
from bot.sandbox.html import HTMLParseError, parse_html
from bot.sandbox.spec import load_spec
from bot.telegram import DeliveryMiddleware, create_bot
from tests.conftest import TOKEN


@pytest.fixture
async def bot(emulator: Emulator):
    bot = create_bot(TOKEN, emulator.url)  # raw: no pacing, no retries, to see Telegram's answers
    bot.session.middleware.unregister(
        next(m for m in bot.session.middleware if isinstance(m, DeliveryMiddleware))
    )
    yield bot
    await bot.session.close()


@pytest.fixture
def anna(emulator: Emulator) -> dict[str, Any]:
    return emulator.add_user("Anna", "pl")


async def test_unknown_method_is_404_and_missing_parameter_400(emulator: Emulator) -> None:
    async with httpx.AsyncClient(base_url=emulator.url) as http:
        missing = await http.post(f"/bot{TOKEN}/noSuchMethod", json={})
        assert missing.status_code == 404
        no_text = await http.post(f"/bot{TOKEN}/sendMessage", data={"chat_id": "1"})
        assert no_text.status_code == 400 and '"text" is required' in no_text.json()["description"]
        wrong_token = await http.post("/bot1:wrong/getMe")
        assert wrong_token.status_code == 401


async def test_form_json_and_query_bodies(emulator: Emulator, anna: dict[str, Any]) -> None:
    async with httpx.AsyncClient(base_url=emulator.url) as http:
        for response in (
            await http.post(f"/bot{TOKEN}/sendMessage", data={"chat_id": str(anna["id"]), "text": "form"}),
            await http.post(f"/bot{TOKEN}/sendMessage", json={"chat_id": anna["id"], "text": "json"}),
            await http.get(f"/bot{TOKEN}/sendMessage", params={"chat_id": anna["id"], "text": "query"}),
        ):
            assert response.json()["ok"], response.text


async def test_aiogram_parses_what_the_emulator_returns(bot, anna: dict[str, Any]) -> None:
    me = await bot.get_me()
    assert me.is_bot and me.username == "petent_bot"
    markup = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="Tak", callback_data="yes")]])
    sent = await bot.send_message(anna["id"], "<b>Sprawa</b> VRS-2026-000001 🚧", reply_markup=markup)
    assert sent.text == "Sprawa VRS-2026-000001 🚧"
    assert sent.entities[0].type == "bold" and (sent.entities[0].offset, sent.entities[0].length) == (0, 6)
    edited = await bot.edit_message_text("Gotowe", chat_id=anna["id"], message_id=sent.message_id)
    assert edited.text == "Gotowe" and edited.reply_markup is None
    chat = await bot.get_chat(anna["id"])
    assert chat.type == "private"


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("a < b", "can't parse entities"),
        ("Tom & Jerry", "can't parse entities"),
        ("<b>bold", "can't parse entities"),
        ("<script>x</script>", "unsupported start tag"),
        ("x" * 4097, "message text is too long"),
        ("   ", "message text is empty"),
    ],
)
async def test_bad_text_is_refused(bot, anna: dict[str, Any], text: str, error: str) -> None:
    with pytest.raises(TelegramBadRequest) as exc:
        await bot.send_message(anna["id"], text)
    assert error.lower() in exc.value.message.lower()


async def test_limits_count_after_parsing(bot, anna: dict[str, Any]) -> None:
    text = "&lt;" * 4096  # 16 384 characters of HTML, 4 096 after parsing
    sent = await bot.send_message(anna["id"], text)
    assert sent.text == "<" * 4096


async def test_callback_data_is_limited_to_64_bytes(bot, anna: dict[str, Any]) -> None:
    def keyboard(data: str) -> InlineKeyboardMarkup:
        return InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="x", callback_data=data)]])

    await bot.send_message(anna["id"], "ok", reply_markup=keyboard("ą" * 32))  # 64 bytes
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.send_message(anna["id"], "too long", reply_markup=keyboard("ą" * 33))  # 66 bytes


async def test_editing_to_the_same_content_is_refused(bot, anna: dict[str, Any]) -> None:
    sent = await bot.send_message(anna["id"], "Tekst")
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text("Tekst", chat_id=anna["id"], message_id=sent.message_id)


async def test_group_limit_answers_429_with_retry_after(bot, emulator: Emulator) -> None:
    group = emulator.add_group("Clerks", forum=True)["id"]
    for i in range(20):
        await bot.send_message(group, f"card {i}")
    with pytest.raises(TelegramRetryAfter) as exc:
        await bot.send_message(group, "one too many")
    assert exc.value.retry_after >= 1
    emulator.limits.enabled = False
    await bot.send_message(group, "without limits")


def test_the_paced_methods_are_bot_api_methods() -> None:
    """The one list the bot paces by and the emulator counts by names real Bot API methods (a
    misspelt name would be neither paced nor counted)."""
    methods = {name.lower(): body["name"] for name, body in load_spec().methods.items()}
    assert {methods.get(name.lower()) for name in PACED_METHODS} == set(PACED_METHODS)


async def test_editing_media_counts_in_a_group_not_in_a_private_chat(
    bot, emulator: Emulator, anna: dict[str, Any]
) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"x" * 64
    emulator.limits.global_burst = 100  # the chats' lanes only
    emulator.reset_rate_buckets()
    group = emulator.add_group("Clerks")["id"]
    card = await bot.send_photo(group, BufferedInputFile(png, "0.png"))
    for i in range(1, 20):  # 20 a minute in a group, edits included
        edited = await bot.edit_message_media(
            InputMediaDocument(media=BufferedInputFile(png, f"{i}.png"), caption=f"<b>{i}</b>"),
            chat_id=group,
            message_id=card.message_id,
        )
    assert edited.document.file_name == "19.png" and edited.caption == "19" and edited.photo is None
    with pytest.raises(TelegramRetryAfter):
        await bot.edit_message_media(
            InputMediaPhoto(media=BufferedInputFile(png, "20.png")), chat_id=group, message_id=card.message_id
        )
    photo = await bot.send_photo(anna["id"], BufferedInputFile(png, "0.png"))
    for i in range(1, 15):  # more than the private chat's burst of 10: only new messages count there
        await bot.edit_message_media(
            InputMediaPhoto(media=BufferedInputFile(png, f"{i}.png")),
            chat_id=anna["id"],
            message_id=photo.message_id,
        )
    text = await bot.send_message(anna["id"], "Tekst")
    with pytest.raises(TelegramBadRequest, match="no media in the message"):
        await bot.edit_message_media(
            InputMediaPhoto(media=photo.photo[0].file_id), chat_id=anna["id"], message_id=text.message_id
        )


async def test_forum_topics_and_missing_threads(bot, emulator: Emulator) -> None:
    forum = emulator.add_group("Clerks", forum=True)["id"]
    plain = emulator.add_group("Plain")["id"]
    topic = await bot.create_forum_topic(forum, "VRS-2026-000001 · Drogi · Rzesza", icon_color=7322096)
    sent = await bot.send_message(forum, "card", message_thread_id=topic.message_thread_id)
    assert sent.message_thread_id == topic.message_thread_id
    with pytest.raises(TelegramBadRequest, match="message thread not found"):
        await bot.send_message(forum, "lost", message_thread_id=9999)
    with pytest.raises(TelegramBadRequest, match="not a forum"):
        await bot.create_forum_topic(plain, "x")


async def test_injected_faults(bot, emulator: Emulator, anna: dict[str, Any]) -> None:
    emulator.faults.append({"kind": "forbidden", "chat_id": anna["id"], "count": 1})
    with pytest.raises(TelegramForbiddenError):
        await bot.send_message(anna["id"], "blocked")
    emulator.blocked.add(anna["id"])
    with pytest.raises(TelegramForbiddenError, match="blocked by the user"):
        await bot.send_message(anna["id"], "blocked")
    emulator.faults.append({"kind": "error", "code": 500, "method": "getMe", "count": 1})
    with pytest.raises(TelegramServerError):
        await bot.get_me()
    assert (await bot.get_me()).is_bot  # the fault was used up


async def test_retry_middleware_recovers_from_5xx_and_429(emulator: Emulator, anna: dict[str, Any]) -> None:
    bot = create_bot(TOKEN, emulator.url)
    try:
        emulator.faults.append({"kind": "error", "code": 502, "method": "sendMessage", "count": 2})
        emulator.faults.append({"kind": "retry_after", "retry_after": 1, "method": "sendMessage", "count": 1})
        sent = await bot.send_message(anna["id"], "dotrze mimo błędów")
        assert sent.text == "dotrze mimo błędów"
        statuses = [r["status"] for r in emulator.requests if r["method"] == "sendMessage"]
        assert statuses == [502, 502, 429, 200]
    finally:
        await bot.session.close()


async def test_a_reply_refused_429_again_and_again_still_goes_out(
    emulator: Emulator, anna: dict[str, Any]
) -> None:
    """A 429 is Telegram asking to wait: five in a row (more than the attempts a 5xx gets) are waited out."""
    bot = create_bot(TOKEN, emulator.url)
    try:
        emulator.faults.append({"kind": "retry_after", "retry_after": 1, "method": "sendMessage", "count": 5})
        sent = await bot.send_message(anna["id"], "dotrze mimo kolejki")
        assert sent.text == "dotrze mimo kolejki"
        statuses = [r["status"] for r in emulator.requests if r["method"] == "sendMessage"]
        assert statuses == [429, 429, 429, 429, 429, 200]
    finally:
        await bot.session.close()


async def test_an_edit_in_a_private_chat_told_to_wait_waits_before_it_is_tried_again(
    emulator: Emulator, anna: dict[str, Any]
) -> None:
    """No lane holds such an edit (only new messages count in a private chat): it waits itself."""
    bot = create_bot(TOKEN, emulator.url)
    try:
        sent = await bot.send_message(anna["id"], "Rodzaj: ?")
        emulator.faults.append(
            {"kind": "retry_after", "retry_after": 1, "method": "editMessageText", "count": 2}
        )
        await bot.edit_message_text("Rodzaj: skarga", chat_id=anna["id"], message_id=sent.message_id)
    finally:
        await bot.session.close()
    tries = [r for r in emulator.requests if r["method"] == "editMessageText"]
    assert [r["status"] for r in tries] == [429, 429, 200]
    assert all(
        later["at"] - earlier["at"] >= 0.9 for earlier, later in zip(tries, tries[1:], strict=False)
    ), "tried again at once"
    assert emulator.chats[anna["id"]].messages[sent.message_id]["text"] == "Rodzaj: skarga"


async def test_long_polling_waits_for_updates(emulator: Emulator, anna: dict[str, Any]) -> None:
    import asyncio

    async with httpx.AsyncClient(base_url=emulator.url, timeout=10) as http:
        poll = asyncio.create_task(http.post(f"/bot{TOKEN}/getUpdates", json={"timeout": 5}))
        await asyncio.sleep(0.2)
        assert not poll.done()
        emulator.new_message(emulator.chats[anna["id"]], anna, {"text": "Dzień dobry"})
        emulator.enqueue({"message": emulator.chats[anna["id"]].messages[1]})
        updates = (await poll).json()["result"]
        assert [u["message"]["text"] for u in updates] == ["Dzień dobry"]
        # Confirming with offset removes them.
        again = await http.post(
            f"/bot{TOKEN}/getUpdates", json={"offset": updates[-1]["update_id"] + 1, "timeout": 0}
        )
        assert again.json()["result"] == []


def test_html_entities_use_utf16_offsets() -> None:
    text, entities = parse_html("🚧 <b>Drogi</b> &amp; <i>mosty</i>")
    assert text == "🚧 Drogi & mosty"
    assert entities == [
        {"type": "bold", "offset": 3, "length": 5},
        {"type": "italic", "offset": 11, "length": 5},
    ]
    with pytest.raises(HTMLParseError):
        parse_html("<b><i>crossed</b></i>")


def test_limits_can_be_switched_off() -> None:
    assert Limits(enabled=False).enabled is False


async def test_multipart_uploads_and_file_download(bot, emulator: Emulator, anna: dict[str, Any]) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"x" * 64
    sent = await bot.send_document(
        anna["id"], BufferedInputFile(png, "plan.png"), caption="<b>Plan</b> działki"
    )
    assert sent.document.file_name == "plan.png" and sent.caption == "Plan działki"
    album = await bot.send_media_group(
        anna["id"], [InputMediaPhoto(media=BufferedInputFile(png, f"{i}.png")) for i in range(3)]
    )
    assert len({m.media_group_id for m in album}) == 1
    file = await bot.get_file(sent.document.file_id)
    downloaded = await bot.download_file(file.file_path)
    assert downloaded.read() == png


async def test_a_long_poll_is_answered_when_the_emulator_shuts_down() -> None:
    """Shutting down answers a waiting getUpdates (empty) instead of holding the shutdown for its
    timeout and then cutting the connection: each end-to-end test's teardown took a second more."""
    emulator = Emulator(TOKEN)
    runner = await emulator.serve()
    async with httpx.AsyncClient(base_url=emulator.url, timeout=60) as http:
        poll = asyncio.create_task(http.post(f"/bot{TOKEN}/getUpdates", json={"timeout": 50}))
        assert await emulator.wait_for(lambda: emulator.polls == 1, 10)
        await runner.cleanup()
        answer = await poll
    assert (answer.status_code, answer.json()) == (200, {"ok": True, "result": []})
