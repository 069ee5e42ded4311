"""What residents are told when their case changes, in their language, escaped, and what
happens when they have blocked the bot. The clerks' desk calls this service."""

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.app import load_i18n
from bot.config import Config, load_config
from bot.sandbox.emulator import Emulator
from bot.services.deadlines import WorkingCalendar
from bot.services.notifications import ResidentNotifier
from bot.store.db import Database
from bot.store.models import Attachment, Case, CaseEvent, CaseStatus, EventKind, Resident
from bot.telegram import create_bot
from tests.conftest import ADMIN_CHAT_ID, COMMS_CHAT_ID, SECRET_KEY, TOKEN


@pytest.fixture
def config(database_url: str, emulator: Emulator) -> Config:
    return load_config(
        bot_token=TOKEN, admin_chat_id=ADMIN_CHAT_ID, comms_chat_id=COMMS_CHAT_ID, secret_key=SECRET_KEY,
        database_url=database_url, telegram_api_url=emulator.url,
    )  # fmt: skip


@pytest.fixture
async def notifier(config: Config, database: Database, emulator: Emulator) -> AsyncIterator[ResidentNotifier]:
    bot = create_bot(TOKEN, emulator.url)
    yield ResidentNotifier(bot, load_i18n("pl"), database, WorkingCalendar(ZoneInfo("Europe/Vilnius")), config)
    await bot.session.close()


async def _case(database: Database, emulator: Emulator, locale: str, **changes) -> Case:
    user = emulator.add_user("Anna" if locale == "pl" else "Jonas", locale)
    async with database.write() as session:
        session.add(Resident(id=user["id"], locale=locale, display_name=user["first_name"]))
        await session.flush()
        case = Case(
            number="VRS-2026-000007", year=2026, seq=7, resident_id=user["id"], locale=locale, kind="complaint",
            category_id="roads", description="x", received_at=datetime(2026, 11, 23, 8, tzinfo=UTC),
            deadline=date(2026, 12, 21), **changes,
        )  # fmt: skip
        session.add(case)
    return case


def _texts(emulator: Emulator, chat_id: int) -> list[str]:
    return [m.get("text") or m.get("caption") or "" for m in emulator.chats[chat_id].messages.values()]


async def test_extension_with_reason_in_polish(notifier: ResidentNotifier, database: Database, emulator: Emulator) -> None:
    case = await _case(database, emulator, "pl", extended_until=date(2027, 1, 7), extension_days=10)
    event = CaseEvent(case_id=case.id, kind=EventKind.EXTENDED, text="Potrzebna opinia <zarządcy> drogi & policji")
    assert await notifier.case_changed(case, event) is not None
    [text] = _texts(emulator, case.resident_id)
    assert text.startswith("Samorząd Rejonu Wileńskiego · sprawa VRS-2026-000007")
    assert "Termin odpowiedzi został przedłużony do 7 stycznia 2027" in text
    assert "Powód: Potrzebna opinia <zarządcy> drogi & policji" in text


async def test_answer_and_closing_in_lithuanian_with_files(notifier: ResidentNotifier, database: Database, emulator: Emulator) -> None:
    case = await _case(database, emulator, "lt", status=CaseStatus.ANSWERED)
    file_id, _ = emulator.store_file(b"%PDF-1.4", "atsakymas.pdf", "application/pdf", "document")
    answer = CaseEvent(case_id=case.id, kind=EventKind.MESSAGE_OUT, text="Duobė bus užtaisyta iki gruodžio 5 d.")
    await notifier.case_changed(case, answer, [Attachment(case_id=case.id, kind="document", file_id=file_id, file_unique_id="u")])
    closed = CaseEvent(case_id=case.id, kind=EventKind.STATUS, data={"from": "in_progress", "to": "answered"})
    await notifier.case_changed(case, closed)
    message, document, status = _texts(emulator, case.resident_id)
    assert "Valdininko žinutė:" in message and "iki gruodžio 5 d." in message
    assert emulator.chats[case.resident_id].messages[2]["document"]["file_name"] == "atsakymas.pdf"
    assert "Būsena: Atsakyta" in status
    assert "per 14 d. galite jį atnaujinti" in status


async def test_a_resident_who_blocked_the_bot_is_marked(notifier: ResidentNotifier, database: Database, emulator: Emulator) -> None:
    case = await _case(database, emulator, "pl")
    emulator.blocked.add(case.resident_id)
    event = CaseEvent(case_id=case.id, kind=EventKind.STATUS, data={"from": "new", "to": "in_progress"})
    assert await notifier.case_changed(case, event) is None
    async with database.read() as session:
        assert (await session.get(Resident, case.resident_id)).blocked_at is not None
