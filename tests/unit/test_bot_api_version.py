"""The emulator speaks the Bot API of the aiogram that uv.lock holds. When a newer aiogram makes a
field required, an answer without it fails aiogram's validation and the bot's handler with it (a
group administrator could not act in `make demo` with aiogram 3.31 against a 10.1 emulator)."""

import json

import aiogram
import pytest
from aiogram import types

from bot.sandbox.emulator import Emulator
from bot.sandbox.spec import NEWER_REQUIRED_FIELDS, SPEC_FILE, SPOKEN_VERSION
from bot.telegram import create_bot
from tests.conftest import ADMIN_CHAT_ID, TOKEN


def test_the_emulator_speaks_the_bot_api_of_the_locked_aiogram() -> None:
    assert aiogram.__api_version__ == SPOKEN_VERSION, (
        f"aiogram {aiogram.__version__} speaks Bot API {aiogram.__api_version__}, the emulator {SPOKEN_VERSION}: "
        "add the fields the newer version requires to NEWER_REQUIRED_FIELDS (bot/sandbox/spec.py), then the version"
    )


def _required_by_aiogram(name: str) -> set[str]:
    model = getattr(types, name)
    return {field.alias or attr for attr, field in model.model_fields.items() if field.is_required()}


def test_every_field_aiogram_requires_is_in_the_description_or_given_by_the_emulator() -> None:
    described = json.loads(SPEC_FILE.read_text(encoding="utf-8"))["types"]
    missing = {}
    for name, spec in described.items():
        if (
            not hasattr(types, name)
            or not hasattr(getattr(types, name), "model_fields")
            or "subtypes" in spec
        ):
            continue
        required_here = {f["name"] for f in spec.get("fields", []) if f.get("required")} | set(
            NEWER_REQUIRED_FIELDS.get(name, {})
        )
        if lacking := _required_by_aiogram(name) - required_here:
            missing[name] = sorted(lacking)
    assert not missing, f"aiogram requires fields the emulator does not give: {missing}"


@pytest.mark.parametrize("status", ["administrator", "member", "left", "bot"])
async def test_aiogram_reads_every_chat_member_the_emulator_answers(emulator: Emulator, status: str) -> None:
    user = emulator.add_user("Ona", "lt")
    emulator.add_group("Clerks", forum=True, chat_id=ADMIN_CHAT_ID)
    chat = emulator.chats[ADMIN_CHAT_ID]
    if status == "administrator":
        chat.admins.add(user["id"])
    elif status == "member":
        chat.members.add(user["id"])
    bot = create_bot(TOKEN, emulator.url)
    try:
        user_id = emulator.bot_user["id"] if status == "bot" else user["id"]
        assert isinstance(user_id, int)
        member = await bot.get_chat_member(ADMIN_CHAT_ID, user_id)
    finally:
        await bot.session.close()
    assert member.status == ("administrator" if status == "bot" else status)
