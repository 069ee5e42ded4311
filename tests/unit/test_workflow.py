"""The case workflow: each change is stored with what must be sent (the outbox), and the outbox
delivers it — in the resident's language, escaped — to the emulator; a blocked resident is marked
and the clerks are told."""

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import col

from bot.app import Services
from bot.sandbox.emulator import Emulator
from bot.services.case_commands import Action, Clerk, NotAllowed
from bot.store.db import Database
from bot.store.models import Case, OutboxMessage, OutboxStatus, Resident
from tests.catalog import REOPEN_WITHIN, SURVEY, tr
from tests.conftest import ADMIN_CHAT_ID
from tests.factories import services

ONA = Clerk(id=501, name="Ona")
MUNICIPALITY = {
    "pl": "Samorząd Rejonu Wileńskiego",
    "lt": "Vilniaus rajono savivaldybė",
}  # its names, from its .toml


def to_resident(locale: str, *paragraphs: str) -> str:
    """A message about case VRS-2026-000007 as the resident reads it: the heading, then the paragraphs."""
    heading = tr(
        locale,
        "<b>{municipality}</b> · case {number}",
        municipality=MUNICIPALITY[locale],
        number="VRS-2026-000007",
    )
    return "\n\n".join([heading, *paragraphs])


@pytest.fixture
async def wired(database: Database, emulator: Emulator) -> AsyncIterator[Services]:
    emulator.add_group("Clerks", forum=True, chat_id=ADMIN_CHAT_ID)
    wired = services(database, emulator.url)
    yield wired
    await wired.bot.session.close()


async def _case(database: Database, emulator: Emulator, locale: str, **changes: Any) -> Case:
    user = emulator.add_user("Anna" if locale == "pl" else "Jonas", locale)
    async with database.write() as session:
        session.add(Resident(id=user["id"], locale=locale, display_name=user["first_name"]))
        await session.flush()
        case = Case(
            number="VRS-2026-000007",
            year=2026,
            seq=7,
            resident_id=user["id"],
            locale=locale,
            kind="complaint",
            category_id="roads",
            description="x",
            received_at=datetime(2026, 11, 23, 8, tzinfo=UTC),
            deadline=date(2026, 12, 21),
            team_id="desk",
            group_chat_id=ADMIN_CHAT_ID,
            **changes,
        )
        session.add(case)
    return case


def _texts(emulator: Emulator, chat_id: int) -> list[str]:
    return [m.get("text") or m.get("caption") or "" for m in emulator.chats[chat_id].messages.values()]


async def test_extension_with_reason_in_polish(
    wired: Services, database: Database, emulator: Emulator
) -> None:
    case = await _case(database, emulator, "pl")
    await wired.commands.act(
        case.id, Action.EXTEND, ONA, text="Potrzebna opinia <zarządcy> drogi & policji", days=10
    )
    await wired.outbox.send_due_now()
    assert case.resident_id is not None
    [text] = _texts(emulator, case.resident_id)
    assert text.startswith(
        tr(
            "pl",
            "<b>{municipality}</b> · case {number}",
            municipality="Samorząd Rejonu Wileńskiego",
            number="VRS-2026-000007",
        )
    )
    assert "Termin odpowiedzi został przedłużony do 7 stycznia 2027" in text
    assert "Potrzebna opinia <zarządcy> drogi & policji" in text  # escaped on the way, shown as typed


async def test_closing_in_lithuanian_asks_for_satisfaction_once(
    wired: Services, database: Database, emulator: Emulator
) -> None:
    case = await _case(database, emulator, "lt")
    await wired.commands.act(case.id, Action.REJECT, ONA, text="Ne savivaldybės kompetencija")
    await wired.commands.act(case.id, Action.REOPEN, ONA)
    await wired.commands.act(case.id, Action.REJECT, ONA, text="Vis dar ne mūsų")
    await wired.outbox.send_due_now()
    assert case.resident_id is not None
    texts = _texts(emulator, case.resident_id)
    assert len(texts) == 4  # rejected, the question, reopened, rejected again: the question only once
    assert texts == [
        rejected := to_resident(
            "lt",
            tr("lt", "Status: {status}", status=tr("lt", "Rejected")),
            tr("lt", "Reason: {reason}", reason="Ne savivaldybės kompetencija"),
            tr("lt", *REOPEN_WITHIN, n=14, days=14),
        ),
        tr("lt", SURVEY, number=case.number),
        to_resident("lt", tr("lt", "Status: {status}", status=tr("lt", "Reopened"))),
        rejected.replace("Ne savivaldybės kompetencija", "Vis dar ne mūsų"),
    ]
    with pytest.raises(NotAllowed):
        await wired.commands.act(case.id, Action.REJECT, ONA, text="again")


async def test_a_blocked_resident_is_marked_and_the_clerks_told(
    wired: Services, database: Database, emulator: Emulator
) -> None:
    case = await _case(database, emulator, "pl")
    assert case.resident_id is not None
    emulator.blocked.add(case.resident_id)
    await wired.commands.act(case.id, Action.PROGRESS, ONA)
    await wired.outbox.send_due_now()
    async with database.read() as session:
        resident = await session.get(Resident, case.resident_id)
        assert resident is not None and resident.blocked_at is not None
        rows = (
            (
                await session.execute(
                    select(OutboxMessage).where(col(OutboxMessage.chat_id) == case.resident_id)
                )
            )
            .scalars()
            .all()
        )
    assert [row.status for row in rows] == [OutboxStatus.FAILED]
    assert _texts(emulator, ADMIN_CHAT_ID) == [
        tr("lt", "⚠️ Not delivered: the resident has blocked the bot.")
    ]  # in ADMIN_LOCALE, once
