"""Typed data kept as JSON: the residents' intake draft in the FSM storage, broadcast versions and
poll questions in their JSON columns. What the previous version stored (plain dicts) still loads,
and a misspelt field fails at once instead of being stored."""

from zoneinfo import ZoneInfo

import pytest
from aiogram.fsm.context import FSMContext
from aiogram.fsm.storage.base import StorageKey
from pydantic import ValidationError

from bot.limiter import Lanes, RateLimiter
from bot.sandbox.emulator import Emulator
from bot.services.broadcaster import (
    Broadcaster,
    BroadcastFile,
    Button,
    FilesVersion,
    TextVersion,
    version_for,
    versions_of,
)
from bot.services.cases import AttachmentDraft
from bot.services.deadlines import WorkingCalendar
from bot.services.polls import PollText, Question, parse_poll, questions_of
from bot.services.surveys import SurveyService
from bot.store.db import Database
from bot.store.fsm import SQLStorage
from bot.store.models import Broadcast, CaseKind, Delivery, DeliveryStatus, Poll
from bot.telegram import create_bot
from flows import intake
from tests.conftest import SECRET_KEY, TOKEN

KEY = StorageKey(bot_id=123456, chat_id=501, user_id=501)

# What the previous version of flows/intake.py kept in the FSM data at the location step: the
# answers so far at the top level, the files as AttachmentDraft.__dict__.
LEGACY_DRAFT = {
    "files": [
        {
            "kind": "photo",
            "file_id": "AgACAgIAAx0",
            "file_unique_id": "AQADx",
            "caption": "Latarnia",
            "media_group_id": None,
            "file_name": None,
            "mime_type": None,
            "file_size": 81234,
        }
    ],
    "kind": "report",
    "eldership": "avizieniai",
    "category": "lighting",
    "description": "Nie świeci latarnia przy szkole w Awiżeniach",
    "editing": True,
}


async def test_an_intake_draft_stored_by_the_previous_version_still_loads(database: Database) -> None:
    storage = SQLStorage(database)
    await storage.set_state(KEY, intake.Intake.location.state)
    await storage.set_data(KEY, LEGACY_DRAFT)

    # A new storage, as in the upgraded bot process: the resident answers the next step.
    state = FSMContext(SQLStorage(database), KEY)
    draft = await intake.FORM.load(state)
    assert draft.kind is CaseKind.REPORT
    assert (draft.eldership, draft.category) == ("avizieniai", "lighting")
    assert draft.description == "Nie świeci latarnia przy szkole w Awiżeniach"
    assert draft.files == [AttachmentDraft("photo", "AgACAgIAAx0", "AQADx", "Latarnia", file_size=81234)]
    assert draft.editing is True
    assert (draft.latitude, draft.longitude, draft.address, draft.phone) == (
        None,
        None,
        None,
        None,
    )  # not answered yet: defaults

    draft.address = "ul. Szkolna 3"
    await intake.FORM.save(state, draft)
    again = await intake.FORM.load(FSMContext(SQLStorage(database), KEY))
    assert again == draft  # from now on in the new layout, nothing lost on the way
    assert (await state.get_state()) == intake.Intake.location.state


async def test_an_empty_conversation_is_an_empty_draft(database: Database) -> None:
    draft = await intake.FORM.load(FSMContext(SQLStorage(database), KEY))
    assert draft == intake.Draft()
    with pytest.raises(ValueError):
        draft.kidn = CaseKind.REQUEST  # type: ignore[attr-defined]  # a misspelt field fails at once


async def test_polls_stored_as_plain_dicts_still_load(database: Database) -> None:
    surveys = SurveyService(database, WorkingCalendar(ZoneInfo("Europe/Vilnius")), SECRET_KEY)
    stored = [
        {
            "text": {"pl": "Godziny?", "lt": "Valandos?"},
            "options": [{"pl": "Tak", "lt": "Taip"}, {"pl": "Nie", "lt": "Ne"}],
            "multiple": False,
        },
        {
            "text": {"pl": "Usługi?", "lt": "Paslaugos?"},
            "options": [{"pl": "A", "lt": "A"}, {"pl": "B", "lt": "B"}],
            "multiple": True,
        },
    ]
    async with database.write() as session:
        legacy = Poll(questions=stored, audience={}, author_id=900, author_name="Rasa")
        session.add(legacy)
    poll = await surveys.poll(legacy.id)
    assert poll is not None
    questions = questions_of(poll)
    assert questions[1] == Question(
        text=PollText(pl="Usługi?", lt="Paslaugos?"),
        options=[PollText(pl="A", lt="A"), PollText(pl="B", lt="B")],
        multiple=True,
    )
    assert [q.text.get(locale) for q, locale in zip(questions, ("pl", "en"), strict=True)] == [
        "Godziny?",
        "Paslaugos?",
    ]  # English reads Lithuanian

    await surveys.answer_poll(poll.id, 7_770_001_234, "pl", [[1], [0, 1]])
    results = await surveys.results(poll.id)
    assert results is not None and results.counts == [[0, 1], [1, 1]]

    created = await surveys.create_poll(
        parse_poll("Q: Godziny? | Valandos?\n- Tak | Taip\n- Nie | Ne"), {}, (900, "Rasa")
    )
    async with database.read() as session:
        row = await session.get(Poll, created.id)
        assert row is not None
        assert row.questions == [stored[0]]  # the same JSON as before the models


def test_a_misspelt_poll_or_version_field_fails() -> None:
    with pytest.raises(ValidationError):
        Question.model_validate({"text": {"pl": "A?", "lt": "A?"}, "options": [], "mutliple": True})
    with pytest.raises(ValidationError):
        TextVersion.model_validate({"txt": "Ogłoszenie"})
    with pytest.raises(ValidationError):
        FilesVersion(files=[])  # a files version has at least one file


async def test_broadcasts_stored_as_plain_dicts_still_load_and_send(
    database: Database, emulator: Emulator
) -> None:
    emulator.limits.enabled = False
    bot = create_bot(TOKEN, emulator.url, RateLimiter(Lanes(global_per_second=0)))
    resident = emulator.add_user("Anna", "pl")["id"]
    content = {
        "pl": {
            "text": "📊 <b>Ankieta</b>",
            "keyboard": [
                [{"text": "○ Tak", "callback_data": "pv:1::0:t:0"}],
                [{"text": "✅ Potwierdź", "callback_data": "pv:1::0:c:0"}],
            ],
        },
        "lt": {"files": [{"kind": "photo", "file_id": "AgACAgIAAx0"}], "caption": None},
    }
    async with database.write() as session:
        legacy = Broadcast(content=content, audience={})
        session.add(legacy)
    versions = versions_of(legacy)
    assert versions["lt"] == FilesVersion(files=[BroadcastFile(kind="photo", file_id="AgACAgIAAx0")])
    assert version_for(versions, "en") == versions["pl"]  # no English version: the first one
    assert version_for(versions, "pl") == TextVersion(
        text="📊 <b>Ankieta</b>",
        keyboard=[
            [Button(text="○ Tak", callback_data="pv:1::0:t:0")],
            [Button(text="✅ Potwierdź", callback_data="pv:1::0:c:0")],
        ],
    )

    sender = Broadcaster(database, bot)
    try:
        async with database.write() as session:
            session.add(
                Delivery(
                    broadcast_id=legacy.id,
                    chat_id=resident,
                    locale="pl",
                    status=DeliveryStatus.PENDING,
                    attempts=0,
                )
            )
        counts = await sender.run(legacy.id)
    finally:
        await bot.session.close()
    assert counts[DeliveryStatus.SENT] == 1
    message = next(iter(emulator.chats[resident].messages.values()))
    assert message["text"] == "📊 Ankieta"
    assert [[b["text"] for b in row] for row in message["reply_markup"]["inline_keyboard"]] == [
        ["○ Tak"],
        ["✅ Potwierdź"],
    ]
