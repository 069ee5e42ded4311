"""Projects in the chat, over the sandbox's teams (`desk`) and the sample register: a Polish and
a Lithuanian resident follow a project, the roads department's head moves a milestone's date
with a reason, and each follower is told once, in their language; someone outside the project's
team is refused; a spreadsheet sent to the communications group is tried first, then applied."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from sqlmodel import col

from bot.app import App
from bot.sandbox.emulator import Emulator
from bot.services.project_import import SAMPLE, apply, read_table
from bot.services.projects import Actor
from bot.store.db import Database
from bot.store.models import Delivery, Milestone, Project, ProjectEvent, ProjectEventKind, ProjectUpdate
from tests.catalog import tr, tr_start
from tests.support.driver import Person, Received, Telegram
from tests.support.helpers import ROADS, Desk, onboard, staff

STREET = "VRS-2025-014"
STREET_PL = "Przebudowa ulicy Szkolnej w Awiżeniach"
STREET_LT = "Mokyklos gatvės rekonstrukcija Avižieniuose"
REASON = "Rangovas vėluoja: LED šviestuvai & <atramos>"  # as typed: escaped, shown as is


@pytest.fixture
async def register(desk: Desk, bot: App) -> App:
    with bot.i18n.context(), bot.i18n.use_locale("en"):
        result = await apply(bot.projects, read_table(SAMPLE.read_bytes(), SAMPLE.name), Actor(None, "test"))
    assert not result.errors
    return bot


def button(message: Received, start: str) -> str:
    return next(label for label in message.buttons if label.startswith(start))


async def follow_the_street(person: Person, locale: str) -> None:
    """From /projects: every project of the district, the street's page, "Follow"."""
    await person.send("/projects")
    listing = await person.receive_one()
    await person.click(tr(locale, "📋 All projects"), listing)
    everything = await person.receive_one()
    await person.click(button(everything, "🏗 " + (STREET_PL if locale == "pl" else STREET_LT)), everything)
    page = await person.receive_one()
    assert tr(locale, "<b>Milestones</b>") in page.text
    await person.click(tr(locale, "🔔 Follow"), page)
    assert (await person.answer())["text"] == tr(locale, "You will be told when this project changes.")
    assert (await person.edited()).buttons == [tr(locale, "🔕 Stop following"), tr(locale, "◀ Projects")]


async def open_the_card(clerk: Person) -> Received:
    await clerk.send("/projects")
    listing = await clerk.receive_one()
    await clerk.click(button(listing, STREET), listing)
    return await clerk.receive_one()


async def test_followers_are_told_once_in_their_language_when_a_clerk_moves_a_date(
    register: App, desk: Desk, telegram: Telegram, store: Database
) -> None:
    anna = await telegram.resident("Anna", language_code="pl")
    jonas = await telegram.resident("Jonas", language_code="lt")
    await onboard(anna, "pl")
    await onboard(jonas, "lt")
    await follow_the_street(anna, "pl")
    await follow_the_street(jonas, "lt")

    rimas = desk.head  # head of roads, the street's team
    card = await open_the_card(rimas)
    assert card.buttons[3] == "📅 Perkelti terminą"
    await rimas.click("📅 Perkelti terminą", card)
    picker = await rimas.receive_one()
    assert picker.buttons == ["4. Darbų priėmimas · 2027-03-31", "✖️ Atšaukti"]
    await rimas.click("4. Darbų priėmimas · 2027-03-31", picker)
    _due, question = await rimas.receive(2)
    assert question.text == tr("lt", "📅 The new due date (YYYY-MM-DD or DD.MM.YYYY):")
    await rimas.send("31.06.2027")  # no such day: asked again, nothing stored
    assert (await rimas.receive_one()).text == tr(
        "lt", "That is not a date. Please write it as YYYY-MM-DD or DD.MM.YYYY, e.g. 2027-06-30."
    )
    await rimas.send("30.06.2027")
    assert (await rimas.receive_one()).text == tr(
        "lt", "Why does it move? Residents following the project are told this reason:"
    )
    await rimas.send(REASON)
    done = await rimas.receive_one()
    assert done.text.startswith(
        tr_start(
            "lt",
            "📅 “{title}” now due {date}: {slip}. Followers are being told.",
            title="Darbų priėmimas",
            date="2027 m. birželio 30 d.",
            until="slip",
        )
    )

    told_anna, told_jonas = await anna.receive_one(), await jonas.receive_one()
    assert told_anna.text == (
        f"📅 {STREET_PL}: termin etapu „Odbiór robót” przesunięto z 31 marca 2027 na 30 czerwca 2027 (+3 miesiące). Powód: {REASON}"
    )
    assert told_jonas.text == (
        f"📅 {STREET_LT}: etapo „Darbų priėmimas“ terminas perkeltas iš 2027 m. kovo 31 d. į 2027 m. birželio 30 d. (+3 mėnesiai). Priežastis: {REASON}"
    )
    assert told_anna.buttons == ["🏗 Otwórz projekt"] and told_jonas.buttons == ["🏗 Atverti projektą"]
    await anna.nothing_more()
    await jonas.nothing_more()
    async with store.read() as session:
        milestone = (
            await session.execute(
                select(Milestone)
                .join(Project)
                .where(col(Project.external_id) == STREET, col(Milestone.number) == 4)
            )
        ).scalar_one()
        moved = (
            await session.execute(
                select(ProjectEvent).where(col(ProjectEvent.kind) == ProjectEventKind.MOVED)
            )
        ).scalar_one()
    assert (str(milestone.current_due), str(milestone.baseline_due), milestone.reason) == (
        "2027-06-30",
        "2026-10-31",
        REASON,
    )
    assert (moved.actor_id, moved.text, moved.data) == (
        rimas.user["id"],
        REASON,
        {"milestone": 4, "from": "2027-03-31", "to": "2027-06-30"},
    )


async def test_a_button_pressed_by_someone_outside_the_projects_team_is_refused(
    register: App, desk: Desk, telegram: Telegram, emulator: Emulator, store: Database
) -> None:
    tomas = await telegram.person("Tomas")  # in the roads group, but not listed in the roads team
    emulator.chats[ROADS].members.add(tomas.user["id"])
    tomas = tomas.in_chat(ROADS)
    card = await open_the_card(tomas)
    for label in ("📅 Perkelti terminą", "🔄 Keisti būseną", "📝 Paskelbti informaciją"):
        await tomas.click(label, card)
        answer = await tomas.answer()
        assert (answer["text"], answer["show_alert"]) == (
            tr("lt", "Only the project's team, in its group, or the communications staff can do this."),
            True,
        )
    await tomas.nothing_more()
    async with store.read() as session:
        assert (
            await session.execute(
                select(func.count())
                .select_from(ProjectEvent)
                .where(col(ProjectEvent.kind) != ProjectEventKind.CREATED)
            )
        ).scalar_one() == 0
        assert (await session.execute(select(func.count()).select_from(Delivery))).scalar_one() == 0


async def test_a_spreadsheet_in_the_communications_group_is_tried_then_applied(
    desk: Desk, bot: App, telegram: Telegram, emulator: Emulator, store: Database
) -> None:
    rasa = await staff(telegram, emulator)
    await rasa.send_document(
        b"record,external_id,name_pl,name_lt,team\nproject,X-1,Droga,,roads\n",
        "projekty.csv",
        mime="text/csv",
    )
    tried = await rasa.receive_one()
    assert tried.text.endswith(
        "\n\n"
        + tr(
            "lt",
            "❌ {count} error: nothing will be applied.",
            "❌ {count} errors: nothing will be applied.",
            1,
            count=1,
        )
        + "\n"
        + tr(
            "lt",
            "row {row}, {column}: {why}",
            row=2,
            column="name_lt",
            why=tr("lt", "the Lithuanian name is missing"),
        )
    )
    assert tried.buttons == []
    await rasa.send_document(SAMPLE.read_bytes(), "projektai.csv", mime="text/csv")
    tried = await rasa.receive_one()
    assert "41 pakeitimas" in tried.text or "41 pakeitimų" in tried.text or "41 pakeitimai" in tried.text
    async with store.read() as session:
        assert (
            await session.execute(select(func.count()).select_from(Project))
        ).scalar_one() == 0  # a dry run only
    await rasa.click("✅ Taikyti", tried)
    applied = await rasa.edited()
    assert applied.text == tr(
        "lt", "✅ Applied: {count} change.", "✅ Applied: {count} changes.", 41, count=41
    )
    async with store.read() as session:
        assert (await session.execute(select(func.count()).select_from(Project))).scalar_one() == 12
        creators = set(
            (
                await session.execute(
                    select(col(ProjectEvent.actor_id)).where(
                        col(ProjectEvent.kind) == ProjectEventKind.CREATED
                    )
                )
            ).scalars()
        )
    assert creators == {rasa.user["id"]}


async def test_an_update_with_a_photo_reaches_a_follower_and_the_photo_is_kept(
    register: App, desk: Desk, telegram: Telegram, store: Database
) -> None:
    from tests.factories import FILES_DIR
    from tests.support.helpers import PHOTO, wait_until

    anna = await telegram.resident("Anna", language_code="pl")
    await onboard(anna, "pl")
    await follow_the_street(anna, "pl")
    rimas = desk.head
    await rimas.click("📝 Paskelbti informaciją", await open_the_card(rimas))
    assert (await rimas.receive_one()).text == tr(
        "lt", "📝 The update for residents, <b>in Polish</b> (one message):"
    )
    await rimas.send("Asfalt & krawężniki <gotowe>.")
    assert (await rimas.receive_one()).text == tr("lt", "Now the same <b>in Lithuanian</b>:")
    await rimas.send("Asfaltas ir bordiūrai paklota.")
    question = await rimas.receive_one()
    assert question.buttons == ["✅ Paskelbti informaciją", "✖️ Atšaukti"]
    await rimas.send_photo(PHOTO)
    added = await rimas.receive_one()
    assert added.text == tr("lt", "{count} photo added.", "{count} photos added.", 1, count=1)
    await rimas.click("✅ Paskelbti informaciją", added)
    assert (await rimas.edited()).text == tr(
        "lt", "📰 The update of {name} is posted. Followers are being told.", name=STREET_LT
    )

    told = await anna.receive_one()
    assert told.raw.get("photo") and told.text == f"📰 {STREET_PL}: Asfalt & krawężniki <gotowe>."
    await anna.nothing_more()

    async def kept() -> dict[str, Any] | None:
        async with store.read() as session:
            update = (await session.execute(select(ProjectUpdate))).scalar_one()
            return update.photos[0] if update.photos[0].get("stored_at") else None

    photo = await wait_until(kept, what="the photo kept in the municipality's storage")
    assert (
        photo["storage_key"].startswith(f"projects/{STREET}/")
        and (FILES_DIR / photo["storage_key"]).read_bytes() == PHOTO
    )


async def test_the_staff_list_filters_and_puts_the_most_slipped_first(register: App, desk: Desk) -> None:
    rimas = desk.head
    await rimas.send("/projects")  # the roads department's own projects
    own = await rimas.receive_one()
    assert own.text.splitlines()[0] == tr(
        "lt", "🏗 <b>Projects</b> ({count}), the most slipped first:", count=4
    )
    assert own.text.splitlines()[1].startswith(
        "VRS-2025-014 · vykdomas · Mokyklos gatvės rekonstrukcija Avižieniuose · 55% ⚠️ +5 mėnesiai"
    )
    await rimas.send("/projects all suspended")
    suspended = await rimas.receive_one()
    assert suspended.buttons == ["VRS-2025-040 · Mickūnų kultūros namų remontas"]
    await rimas.send(
        "/projects avizieniai"
    )  # the roads department's projects in Avižieniai, and the district's
    assert [b.split(" · ")[0] for b in (await rimas.receive_one()).buttons] == [
        "VRS-2025-014",
        "VRS-2026-011",
    ]
    await rimas.send("/projects kosmos")
    assert (await rimas.receive_one()).text.startswith(
        tr_start(
            "lt",
            "Unknown filter: {values}. Use team ids ({teams}), eldership ids, statuses ({statuses}), or all.",
            values="kosmos",
            until="teams",
        )
    )
    await rimas.send("/projects team:avizieniai")
    assert [b.split(" · ")[0] for b in (await rimas.receive_one()).buttons] == [
        "VRS-2026-022",
        "VRS-2026-019",
    ]
