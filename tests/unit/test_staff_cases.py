"""Cases registered by a clerk (a call, an e-mail, a letter, a visit), on SQLite and PostgreSQL:
the same numbering, deadline, routing and card as a resident's case, the clerk in the trail,
nothing ever queued to a Telegram chat, and how the answer was given recorded when closing.
Retention takes the person's contact with the rest of the personal data; /mydata and /forget of a
resident do not see such cases."""

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select
from sqlmodel import col

from bot.app import Services
from bot.sandbox.emulator import Emulator
from bot.services.case_commands import Action, Clerk, GroupMessage, NotAllowed, NoTelegram, RegisteredBy
from bot.services.cases import AnswerBy, CaseDraft, Contact, ReceivedBy
from bot.services.outbox import Kind
from bot.store.db import Database
from bot.store.models import Case, CaseEvent, CaseStatus, Channel, EventKind, OutboxMessage, Resident
from tests.conftest import ADMIN_CHAT_ID
from tests.factories import services

ONA = Clerk(id=501, name="Ona")
RECEIVED = datetime(2026, 11, 23, 8, tzinfo=UTC)  # a Monday: due Monday 21 December
CONTACT = Contact(name="Jonas <Jonaitis> & sūnus", answer_by=AnswerBy.PHONE, phone="+370 600 12345")


@pytest.fixture
async def wired(database: Database, emulator: Emulator) -> AsyncIterator[Services]:
    emulator.add_group("Clerks", forum=True, chat_id=ADMIN_CHAT_ID)
    wired = services(database, emulator.url)
    yield wired
    await wired.bot.session.close()


def _draft(**changes) -> CaseDraft:
    values = {
        "resident_id": None,
        "locale": "lt",
        "kind": "report",
        "category_id": "roads",
        "description": "Duobė prie mokyklos, skambino telefonu",
        "channel": Channel.STAFF,
        "contact": CONTACT,
    }
    return CaseDraft(**(values | changes))


def _texts(emulator: Emulator, chat_id: int) -> list[str]:
    return [m.get("text") or m.get("caption") or "" for m in emulator.chats[chat_id].messages.values()]


async def _outbox(database: Database) -> list[OutboxMessage]:
    async with database.read() as session:
        return list((await session.execute(select(OutboxMessage).order_by(col(OutboxMessage.id)))).scalars())


async def test_a_registered_case_is_numbered_routed_and_carded_and_closed_with_how_it_was_answered(
    wired: Services, database: Database, emulator: Emulator
) -> None:
    opened = await wired.commands.open(
        _draft(), RECEIVED, update_id=77, registered_by=RegisteredBy(ONA, ReceivedBy.PHONE)
    )
    again = await wired.commands.open(
        _draft(), RECEIVED, update_id=77, registered_by=RegisteredBy(ONA, ReceivedBy.PHONE)
    )
    assert (
        opened.created and not again.created and again.case.id == opened.case.id
    )  # the same button press twice: one case
    case = opened.case
    assert (case.number, case.deadline, case.team_id, case.group_chat_id) == (
        "VRS-2026-000001",
        date(2026, 12, 21),
        "desk",
        ADMIN_CHAT_ID,
    )
    async with database.read() as session:
        stored = await session.get(Case, case.id)
        assert stored is not None
        [created] = (
            (await session.execute(select(CaseEvent).where(col(CaseEvent.case_id) == case.id)))
            .scalars()
            .all()
        )
    assert (stored.resident_id, stored.channel, stored.answered_via) == (None, "staff", None)
    assert stored.contact == {
        "name": "Jonas <Jonaitis> & sūnus",
        "answer_by": "phone",
        "phone": "+370 600 12345",
    }
    assert (created.kind, created.actor_id, created.actor_name) == (EventKind.CREATED, ONA.id, "Ona")
    assert created.data == {"team": "desk", "channel": "staff", "received_by": "phone"}

    await wired.outbox.send_due_now()
    [card] = [text for text in _texts(emulator, ADMIN_CHAT_ID) if text]  # the topic, then the card
    assert "Asmuo: Jonas <Jonaitis> & sūnus (neturi „Telegram“)" in card  # escaped on the way, shown as typed
    assert "Atsakyti telefonu: 📞 +370 600 12345" in card
    assert "Užregistravo Ona, gauta telefonu" in card

    # Nothing can be written to the person in Telegram: the clerk is told, nothing is queued.
    with pytest.raises(NoTelegram):
        await wired.commands.relay(case.id, ONA, [GroupMessage(ADMIN_CHAT_ID, 900, "Sveiki")], "Sveiki")
    with pytest.raises(NoTelegram):
        await wired.commands.send_template(case.id, ONA, "Sveiki", GroupMessage(ADMIN_CHAT_ID, 901))

    # Closing asks how the answer was given; the answer's text is recorded, not sent.
    with pytest.raises(NotAllowed):
        await wired.commands.act(case.id, Action.ANSWER, ONA, text="Duobė bus užtaisyta")
    answer = GroupMessage(ADMIN_CHAT_ID, 902, "Duobė bus užtaisyta iki penktadienio")
    outcome = await wired.commands.act(
        case.id,
        Action.ANSWER,
        ONA,
        text="Duobė bus užtaisyta iki penktadienio",
        answer=answer,
        answered_via=AnswerBy.PHONE,
    )
    assert [e.kind for e in outcome.events] == [EventKind.STATUS]  # no message to anybody
    await wired.outbox.send_due_now()
    async with database.read() as session:
        stored = await session.get(Case, case.id)
        assert stored is not None
        status = (
            await session.execute(select(CaseEvent).where(col(CaseEvent.kind) == EventKind.STATUS))
        ).scalar_one()
    assert (stored.status, stored.answered_via, stored.feedback_asked) == (
        CaseStatus.ANSWERED,
        "phone",
        False,
    )
    assert (
        status.data == {"from": "new", "to": "answered", "answered_via": "phone"}
        and status.text == "Duobė bus užtaisyta iki penktadienio"
    )
    rows = await _outbox(database)
    assert all(
        row.chat_id == ADMIN_CHAT_ID for row in rows
    )  # the group only: no resident, no satisfaction question
    assert Kind.COPY not in {row.kind for row in rows}
    shown = next(
        m for m in emulator.chats[ADMIN_CHAT_ID].messages.values() if "Asmuo:" in (m.get("text") or "")
    )
    assert "Atsakymas pateiktas telefonu" in shown["text"] and "Būsena: Atsakyta" in shown["text"]

    # Reopened, the next closing records its own way.
    await wired.commands.act(case.id, Action.REOPEN, ONA)
    reopened = await wired.queries.get(case.id)
    assert reopened is not None and reopened.answered_via is None
    await wired.commands.act(
        case.id, Action.REJECT, ONA, text="Ne savivaldybės kelias", answered_via=AnswerBy.POST
    )
    rejected = await wired.queries.get(case.id)
    assert rejected is not None and rejected.answered_via == "post"
    history = wired.clerk_texts.trail(case, await wired.queries.history(case.id))
    assert "Ona · kreipimasis užregistruotas, gautas telefonu" in history
    assert "atsakymas pateiktas paštu" in history


async def test_a_staff_case_needs_its_clerk(wired: Services) -> None:
    with pytest.raises(ValueError):
        await wired.commands.open(_draft(), RECEIVED)  # who registered it?
    with pytest.raises(ValueError):
        await wired.commands.open(
            _draft(channel=Channel.TELEGRAM), RECEIVED, registered_by=RegisteredBy(ONA, ReceivedBy.DESK)
        )


async def test_retention_takes_the_contact_and_residents_rights_do_not_see_staff_cases(
    wired: Services, database: Database
) -> None:
    async with database.write() as session:
        session.add(Resident(id=4242, locale="lt", display_name="Rūta", consent_at=RECEIVED))
    old = (
        await wired.commands.open(
            _draft(), datetime(2020, 3, 2, 8, tzinfo=UTC), registered_by=RegisteredBy(ONA, ReceivedBy.POST)
        )
    ).case
    fresh = (
        await wired.commands.open(_draft(), RECEIVED, registered_by=RegisteredBy(ONA, ReceivedBy.EMAIL))
    ).case
    await wired.commands.act(old.id, Action.ANSWER, ONA, text="Atsakyta laišku", answered_via=AnswerBy.POST)
    async with database.write() as session:
        closed = await session.get(Case, old.id)
        assert closed is not None
        closed.closed_at = datetime(2020, 4, 1, 8, tzinfo=UTC)  # closed 6½ years before NOW

    export = await wired.rights.export(4242, RECEIVED)
    assert export["cases"] == []
    assert await wired.rights.forget(4242, RECEIVED) == 0
    purged = await wired.rights.purge_expired(datetime(2026, 11, 23, 3, tzinfo=UTC))
    assert purged.cases == 1
    async with database.read() as session:
        gone, kept = await session.get(Case, old.id), await session.get(Case, fresh.id)
        assert gone is not None and kept is not None
        created = (
            await session.execute(
                select(CaseEvent).where(
                    col(CaseEvent.case_id) == old.id, col(CaseEvent.kind) == EventKind.CREATED
                )
            )
        ).scalar_one()
    assert (gone.contact, gone.description, gone.answered_via, gone.channel) == (
        None,
        "",
        "post",
        "staff",
    )  # what reports count stays
    assert created.actor_name == "Ona"  # the clerk's record, not the person's data
    assert kept.contact == CONTACT.as_json()
