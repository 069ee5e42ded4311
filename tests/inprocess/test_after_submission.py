"""After a case is submitted, in process: the resident adds information and the clerks get it,
reopens a recently closed case, and meets the day's limit. (Moved from tests/e2e/test_intake.py:
none needs a real process.)"""

from datetime import timedelta

from sqlalchemy import select
from sqlmodel import col

from bot.app import App
from bot.store.db import Database
from bot.store.models import Attachment, Case, CaseEvent, CaseStatus, EventKind, utcnow
from tests.catalog import tr
from tests.support.driver import Person, Telegram
from tests.support.helpers import LABELS, PHOTO, onboard, submit_case

NUMBER = "VRS-2026-000001"


async def test_adding_information_reaches_the_clerks(
    bot, telegram: Telegram, store: Database, clerks: Person
) -> None:
    anna = await telegram.resident("Anna", language_code="pl")
    await onboard(anna, "pl")
    await submit_case(anna, "pl", "⚠️ Skarga", "Inne sprawy", "Skarga na brak odpowiedzi na pismo")
    await clerks.receive_one()  # the card

    await anna.send(NUMBER)
    await anna.receive_one()
    await anna.click(tr("pl", "➕ Add information"))
    assert (await anna.receive_one()).text == tr(
        "pl",
        "Send what you would like to add to case {number}: text, photos or documents. Press “Done” when finished.",
        number=NUMBER,
    )
    await anna.send("Pismo wysłałam 3 listopada & nadal <brak> odpowiedzi")
    assert (await anna.receive_one()).text == tr(
        "pl", "Added to case {number}. Send more, or press “Done”.", number=NUMBER
    )
    await anna.send_photo(PHOTO)
    await anna.receive_one()
    await anna.click(tr("pl", "✅ Done"))
    assert (await anna.receive_one()).text == tr("pl", "Thank you. The clerk handling your case will see it.")

    relayed = await clerks.receive_one()
    assert relayed.text.startswith(
        tr("lt", "➕ <b>{number}</b>: the resident added information", number=NUMBER)
    )
    assert "nadal <brak> odpowiedzi" in relayed.text  # escaped on the way, shown as written
    async with store.read() as session:
        events = (
            (await session.execute(select(CaseEvent).where(col(CaseEvent.kind) == EventKind.MESSAGE_IN)))
            .scalars()
            .all()
        )
        photos = (await session.execute(select(Attachment))).scalars().all()
    assert [e.text for e in events] == ["Pismo wysłałam 3 listopada & nadal <brak> odpowiedzi", None]
    assert len(photos) == 1 and photos[0].event_id == events[1].id


async def test_reopening_a_recently_closed_case(
    bot, telegram: Telegram, store: Database, clerks: Person
) -> None:
    jonas = await telegram.resident("Jonas", language_code="lt")
    await onboard(jonas, "lt")
    await submit_case(jonas, "lt", "📄 Prašymas", "Kiti klausimai", "Prašau informacijos apie mokesčius")
    await clerks.receive_one()
    async with store.write() as session:  # the clerks' desk answered and closed it
        case = (await session.execute(select(Case))).scalar_one()
        case.status, case.closed_at = CaseStatus.ANSWERED, utcnow() - timedelta(days=2)

    await jonas.send(NUMBER)
    details = await jonas.receive_one()
    assert details.buttons == [tr("lt", "↩️ Reopen the case"), tr("lt", "⬅️ My cases")]
    await jonas.click(tr("lt", "↩️ Reopen the case"))
    await jonas.receive_one()
    await jonas.send("Atsakymas neišsamus")
    assert (await jonas.receive_one()).text.startswith(
        tr("lt", "Case {number} has been reopened. A clerk will look at it again.", number=NUMBER)
    )
    assert (await clerks.receive_one()).text.startswith(
        tr("lt", "↩️ <b>{number}</b>: the resident reopened the case", number=NUMBER)
    )
    async with store.read() as session:
        case = (await session.execute(select(Case))).scalar_one()
    assert (case.status, case.closed_at) == (CaseStatus.REOPENED, None)


async def test_daily_limit(bot: App, telegram: Telegram, store: Database) -> None:
    bot.config.settings.max_cases_per_day = 1
    ona = await telegram.resident("Ona", language_code="lt")
    await onboard(ona, "lt")
    await submit_case(ona, "lt", "📄 Prašymas", "Kiti klausimai", "Pirmas prašymas šiandien")
    await ona.send(LABELS["lt"]["new"])
    refusal = await ona.receive_one()
    assert refusal.text == tr(
        "lt",
        "You have already submitted {count} case today, the most we accept in one day. Please write again tomorrow; "
        "you can add information to an open case under “My cases”.",
        "You have already submitted {count} cases today, the most we accept in one day. Please write again tomorrow; "
        "you can add information to an open case under “My cases”.",
        1,
        count=1,
    )
    async with store.read() as session:
        assert len((await session.execute(select(Case))).scalars().all()) == 1
