""" "📣 Notify the area" on a report's card, over the sandbox's teams (`desk`): a street lamp report
in Avižieniai, its resident, three followers ("me too") and the 200 subscribers of the
eldership's news; the clerk writes the notice in both languages, picks the audience, sees the
preview and sends it; everyone gets it once, in their language; the card and /broadcasts list it.
And what is refused: another team's member, a notice without text, a cancel, a stale button."""

from __future__ import annotations

from collections import Counter
from datetime import date

from babel.dates import format_date
from sqlalchemy import func, select
from sqlmodel import col

from bot.app import App
from bot.sandbox.emulator import Emulator
from bot.store.db import Database
from bot.store.models import Broadcast, Case, Delivery, DeliveryStatus, Follow, FollowKind, Resident, utcnow
from tests.catalog import tr
from tests.support.driver import Person, Received, Telegram
from tests.support.helpers import Desk, onboard, staff, submit_case, wait_until

LAMP = {"pl": "Oświetlenie ulic", "lt": "Gatvių apšvietimas"}
REPORT = {"pl": "🚧 Zgłoszenie problemu", "lt": "🚧 Pranešimas apie problemą"}
ELDERSHIP = "avizieniai"
NOTIFY = tr("lt", "📣 Notify the area")
SKIP = tr("lt", "⏭ Skip")
CANCEL = tr("lt", "✖️ Cancel")
POLISH = "Jutro od <b>9:00</b> do 14:00 nie będzie wody & prądu przy ul. Szkolnej."
LITHUANIAN = "Rytoj nuo 9:00 iki 14:00 Mokyklos g. nebus vandens."
TODAY = date(2026, 11, 23)  # the in-process tier's frozen clock


async def reported(telegram: Telegram, desk: Desk) -> tuple[Person, Received]:
    """Anna reports a broken lamp in Avižieniai: the card in the roads department's topic."""
    anna = await telegram.resident("Anna", language_code="pl")
    await onboard(anna, "pl")
    await submit_case(anna, "pl", REPORT["pl"], LAMP["pl"], "Latarnia nie świeci", eldership="Awiżenie")
    card = await desk.member.receive_one()
    await desk.member.nothing_more(0.2)
    assert NOTIFY in card.buttons
    return anna, card


async def residents(emulator: Emulator, store: Database, case_id: int) -> dict[str, list[tuple[int, str]]]:
    """Residents made straight in the store (and in the emulator, to be written to): the case's
    three followers, the eldership's 200 subscribers (one follower among them, a few reading
    English), and those who must get nothing."""
    made: dict[str, list[tuple[int, str]]] = {"followers": [], "subscribers": [], "none": []}

    def person(group: str, locale: str) -> int:
        uid: int = emulator.add_user(f"R{len(emulator.users)}", locale)["id"]
        made[group].append((uid, locale))
        return uid

    now = utcnow()
    rows: list[Resident] = []
    follows: list[Follow] = []
    for locale in ("pl", "lt", "lt"):
        uid = person("followers", locale)
        follows.append(Follow(resident_id=uid, kind=FollowKind.CASE, target=str(case_id)))
        subscribed = len(follows) == 3  # the third follower also reads the eldership's news
        rows.append(
            Resident(
                id=uid,
                locale=locale,
                consent_at=now,
                eldership_id=ELDERSHIP if subscribed else None,
                news_topics=["eldership"] if subscribed else [],
            )
        )
    made["subscribers"].append(made["followers"][2])
    for n in range(199):
        locale = ("pl", "lt", "pl", "lt", "en")[n % 5]
        rows.append(
            Resident(
                id=person("subscribers", locale),
                locale=locale,
                consent_at=now,
                eldership_id=ELDERSHIP,
                news_topics=["eldership", "general"],
            )
        )
    rows += [
        Resident(
            id=person("none", "lt"),
            locale="lt",
            consent_at=now,
            blocked_at=now,
            eldership_id=ELDERSHIP,
            news_topics=["eldership"],
        ),  # stopped the bot
        Resident(
            id=person("none", "pl"),
            locale=None,
            consent_at=None,
            erased_at=now,
            eldership_id=ELDERSHIP,
            news_topics=["eldership"],
        ),  # erased (/forget)
        Resident(
            id=person("none", "pl"),
            locale="pl",
            consent_at=now,
            eldership_id="rudamina",
            news_topics=["eldership"],
        ),  # another eldership
        Resident(
            id=person("none", "lt"),
            locale="lt",
            consent_at=now,
            eldership_id=ELDERSHIP,
            news_topics=["general"],
        ),  # not its news
    ]
    blocked_follower = person("none", "pl")
    rows.append(Resident(id=blocked_follower, locale="pl", consent_at=now, blocked_at=now))
    follows.append(Follow(resident_id=blocked_follower, kind=FollowKind.CASE, target=str(case_id)))
    async with store.write() as session:
        session.add_all(rows)
        await session.flush()
        session.add_all(follows)
    return made


async def write_notice(clerk: Person, card: Received, polish: str | None, lithuanian: str | None) -> Received:
    """ "📣 Notify the area", then each language (or its skip): the question that follows."""
    number = card.text.split()[1]
    await clerk.click(NOTIFY, card)
    asked = await clerk.receive_one()
    assert asked.text.startswith(
        tr(
            "lt",
            "{number}: write the notice to the residents in Polish (a water outage, a closed road, a storm). “⏭ Skip” if it goes only in Lithuanian.",
            number=number,
        )
    )
    for text, language in ((polish, "pl"), (lithuanian, "lt")):
        if text is None:
            await clerk.click(SKIP, asked)
            await clerk.edited()
        else:
            await clerk.send(text, thread_id=card.thread_id)
        following = await clerk.receive_one()
        if language == "pl":
            assert following.text.startswith(
                tr(
                    "lt",
                    "{number}: now the notice in Lithuanian. “⏭ Skip” if it goes only in Polish: then everyone gets the Polish one.",
                    number=number,
                )
            )
        asked = following
    return asked


def notices_to(emulator: Emulator) -> Counter[int]:
    """Private chats that got a message of the notice (its heading), and how many times."""
    heads = tuple(
        tr(locale, "📣 <b>Announcement</b> · {category} · {place}", category="", place="").split("·")[0]
        for locale in ("pl", "lt")
    )
    return Counter(
        e["chat_id"]
        for e in emulator.events
        if e["type"] == "message"
        and e.get("outgoing")
        and e["chat_id"] > 0
        and e["message"].get("text", "").startswith(heads)
    )


async def test_a_notice_reaches_followers_and_subscribers_once_each_in_their_language(
    desk: Desk, bot: App, telegram: Telegram, emulator: Emulator, store: Database
) -> None:
    anna, card = await reported(telegram, desk)
    async with store.read() as session:
        case = (await session.execute(select(Case))).scalar_one()
    made = await residents(emulator, store, case.id)

    reach = await write_notice(desk.member, card, POLISH, LITHUANIAN)
    assert reach.text.split("\n") == [
        tr("lt", "<b>{number}: who should get the notice?</b>", number=case.number),
        tr(
            "lt", "👥 Residents the case affects: {count}", count=4
        ),  # Anna and three followers (one blocked the bot)
        tr("lt", "🏘 Subscribers of the news of {eldership}: {count}", eldership="Avižieniai", count=200),
        tr("lt", "👥🏘 Both, each resident once: {count}", count=203),
        tr("lt", "Residents who stopped the bot or erased their profile are not counted."),
    ]
    await desk.member.click(tr("lt", "👥🏘 Both"), reach)
    await desk.member.edited()  # the question's buttons go
    label, polish, label_lt, lithuanian, confirm = await desk.member.receive(5)
    assert label.text == tr("lt", "Preview, {language}:", language="Polski") and label_lt.text == tr(
        "lt", "Preview, {language}:", language="Lietuvių"
    )
    heading_pl = tr(
        "pl", "📣 <b>Announcement</b> · {category} · {place}", category=LAMP["pl"], place="Awiżenie"
    )
    assert polish.text == heading_pl + "\n\n" + POLISH  # the clerk's words escaped: shown as typed, no bold
    assert lithuanian.text.endswith("\n\n" + LITHUANIAN) and lithuanian.thread_id == card.thread_id
    assert confirm.text == tr("lt", "This is exactly what residents will see. Send it?")
    await desk.member.click(
        tr("lt", "✅ Send to {count} resident", "✅ Send to {count} residents", n=203, count=203), confirm
    )
    progress = await desk.member.receive_one()
    assert progress.text.startswith(tr("lt", "📣 Announcement #{id}: sending…", id=1))

    async def all_sent() -> bool:
        async with store.read() as session:
            return (
                await session.scalar(
                    select(func.count())
                    .select_from(Delivery)
                    .where(col(Delivery.status) == DeliveryStatus.SENT)
                )
                == 203
            )

    await wait_until(all_sent, what="the notice delivered to all 203")
    expected = dict(made["followers"] + made["subscribers"]) | {anna.user["id"]: "pl"}
    counts = notices_to(emulator)
    assert dict(counts) == dict.fromkeys(expected, 1), "each once, and nobody else"
    texts = {
        e["chat_id"]: e["message"]["text"]
        for e in emulator.events
        if e["type"] == "message" and e["chat_id"] in counts
    }
    for uid, locale in expected.items():
        assert texts[uid] == (polish.text if locale in ("pl", "en") else lithuanian.text), (
            uid,
            locale,
        )  # English readers get the first one given

    async with store.read() as session:
        broadcast = (await session.execute(select(Broadcast))).scalar_one()
    assert broadcast.case_id == case.id and broadcast.author_name == desk.member.user["first_name"]
    edited = await desk.member.edited()
    while edited.id != card.id:  # the progress message's edits come too
        edited = await desk.member.edited()
    day = format_date(TODAY, format="long", locale="lt")
    assert tr("lt", "📣 Area notices: {count} (the latest on {date})", count=1, date=day) in edited.text
    assert (
        tr("lt", "👥 Affected residents: {count}", count=5) in edited.text
    )  # Anna and four followers (the count of the card keeps the blocked one)

    rasa = await staff(telegram, emulator)
    await rasa.send("/broadcasts")
    listing = await rasa.receive_one()
    assert tr("lt", "📣 area notice of {number}", number=case.number) in listing.text


async def test_only_the_eldership_or_only_the_affected_and_a_notice_in_one_language(
    desk: Desk, bot: App, telegram: Telegram, emulator: Emulator, store: Database
) -> None:
    anna, card = await reported(telegram, desk)
    async with store.read() as session:
        case = (await session.execute(select(Case))).scalar_one()
    made = await residents(emulator, store, case.id)
    reach = await write_notice(desk.member, card, None, LITHUANIAN)  # Lithuanian only: everyone gets it
    await desk.member.click(tr("lt", "👥 Affected residents"), reach)
    await desk.member.edited()
    label, lithuanian, confirm = await desk.member.receive(3)
    assert label.text == tr("lt", "Preview, {language}:", language="Lietuvių")
    await desk.member.click(
        tr("lt", "✅ Send to {count} resident", "✅ Send to {count} residents", n=4, count=4), confirm
    )
    await desk.member.receive_one()
    expected = {uid for uid, _locale in made["followers"]} | {anna.user["id"]}
    await wait_until(
        lambda: set(notices_to(emulator)) == expected, what="the notice delivered to the affected residents"
    )
    assert all(
        e["message"]["text"] == lithuanian.text
        for e in emulator.events
        if e["type"] == "message"
        and e["chat_id"] in expected
        and e["message"].get("text", "").startswith("📣")
    )


async def test_a_member_of_another_team_cannot_press_it(
    desk: Desk, bot: App, telegram: Telegram, emulator: Emulator, store: Database
) -> None:
    _anna, card = await reported(telegram, desk)
    emulator.chats[card.raw["chat"]["id"]].members.add(
        desk.eldership.user["id"]
    )  # Aldona, of the eldership's team, reads the roads group too
    aldona = desk.eldership.in_chat(card.raw["chat"]["id"])
    await aldona.drain()  # what the group holds already
    await aldona.click(NOTIFY, card)
    answer = await aldona.answer()
    assert answer["text"] == tr("lt", "Only the team handling this case can do this.")
    await aldona.nothing_more(0.3)
    async with store.read() as session:
        assert (await session.execute(select(Broadcast))).first() is None


async def test_a_notice_without_text_is_refused_and_nothing_is_stored(
    desk: Desk, bot: App, telegram: Telegram, store: Database
) -> None:
    _anna, card = await reported(telegram, desk)
    await desk.member.click(NOTIFY, card)
    asked = await desk.member.receive_one()
    await desk.member.send("ok", thread_id=card.thread_id)  # too short: asked again
    assert (await desk.member.receive_one()).text == tr(
        "lt",
        "Please write {min} to {max} character.",
        "Please write {min} to {max} characters.",
        n=3500,
        min=3,
        max=3500,
    )
    await desk.member.click(SKIP, asked)
    await desk.member.edited()
    asked = await desk.member.receive_one()
    await desk.member.click(SKIP, asked)
    await desk.member.edited()
    told = await desk.member.receive_one()
    start_again = tr("lt", "Press “{button}” on the card to start again.", button=NOTIFY)
    assert (
        told.text
        == tr("lt", "Nothing to send: the notice has no text in either language.") + " " + start_again
    )
    async with store.read() as session:
        assert (await session.execute(select(Broadcast))).first() is None


async def test_cancel_stores_nothing_and_a_stale_button_says_so(
    desk: Desk, bot: App, telegram: Telegram, emulator: Emulator, store: Database
) -> None:
    anna, card = await reported(telegram, desk)
    async with store.read() as session:
        case = (await session.execute(select(Case))).scalar_one()
    await residents(emulator, store, case.id)
    reach = await write_notice(desk.member, card, POLISH, None)
    await desk.member.click(tr("lt", "🏘 Eldership subscribers"), reach)
    await desk.member.edited()
    *_preview, confirm = await desk.member.receive(3)
    assert (
        tr("lt", "✅ Send to {count} resident", "✅ Send to {count} residents", n=200, count=200)
        in confirm.buttons
    )
    await desk.member.click(CANCEL, confirm)
    assert (await desk.member.answer())["text"] == tr("lt", "Cancelled.")
    assert (await desk.member.edited()).buttons == []

    # A question left with its buttons, after /cancel: its buttons no longer act.
    await desk.member.click(NOTIFY, card)
    asked = await desk.member.receive_one()
    await desk.member.send("/cancel", thread_id=card.thread_id)
    assert (await desk.member.receive_one()).text == tr("lt", "Cancelled.")
    await desk.member.click(SKIP, asked)
    answer = await desk.member.answer()
    assert answer["text"] == tr("lt", "This question no longer waits for your answer.") + " " + tr(
        "lt", "Press “{button}” on the card to start again.", button=NOTIFY
    )
    async with store.read() as session:
        assert (await session.execute(select(Broadcast))).first() is None
    assert not notices_to(emulator)
    await anna.nothing_more(0.2)


async def test_a_case_of_the_whole_district_notifies_only_its_affected_residents(
    desk: Desk, bot: App, telegram: Telegram, emulator: Emulator
) -> None:
    anna = await telegram.resident("Anna", language_code="pl")
    await onboard(anna, "pl")
    await submit_case(
        anna, "pl", REPORT["pl"], LAMP["pl"], "Latarnia nie świeci"
    )  # the whole district: no eldership
    card = await desk.member.receive_one()
    reach = await write_notice(desk.member, card, POLISH, None)
    number = card.text.split()[1]
    assert reach.text.split("\n") == [
        tr("lt", "<b>{number}: who should get the notice?</b>", number=number),
        tr("lt", "👥 Residents the case affects: {count}", count=1),
        tr("lt", "The case has no eldership, so there are no eldership news subscribers to notify."),
        tr("lt", "Residents who stopped the bot or erased their profile are not counted."),
    ]
    assert reach.buttons == [tr("lt", "👥 Affected residents"), CANCEL]
    await desk.member.click(tr("lt", "👥 Affected residents"), reach)
    await desk.member.edited()
    *_preview, confirm = await desk.member.receive(3)
    await desk.member.click(
        tr("lt", "✅ Send to {count} resident", "✅ Send to {count} residents", n=1, count=1), confirm
    )
    told = await anna.receive_one()
    whole = tr(
        "pl",
        "📣 <b>Announcement</b> · {category} · {place}",
        category=LAMP["pl"],
        place=tr("pl", "whole district"),
    )
    assert told.text == whole + "\n\n" + POLISH


async def test_another_clerks_press_leaves_the_form_and_its_buttons_to_the_clerk_writing_it(
    desk: Desk, bot: App, telegram: Telegram, store: Database
) -> None:
    _anna, card = await reported(telegram, desk)
    async with store.read() as session:
        case = (await session.execute(select(Case))).scalar_one()
    await desk.member.click(NOTIFY, card)
    asked = await desk.member.receive_one()
    rimas = desk.head.in_chat(card.raw["chat"]["id"])  # of the same team, but the form is Petras's
    await rimas.drain()
    await rimas.click(SKIP, asked)
    assert (await rimas.answer())["text"] == tr("lt", "This question waits for another clerk's answer.")
    await desk.member.nothing_more(0.2)  # the question kept its buttons: nothing was edited
    await desk.member.click(SKIP, asked)  # and Petras goes on, to the Lithuanian text
    assert (await desk.member.edited()).buttons == []
    lithuanian = await desk.member.receive_one()
    assert lithuanian.text.startswith(
        tr(
            "lt",
            "{number}: now the notice in Lithuanian. “⏭ Skip” if it goes only in Polish: then everyone gets the Polish one.",
            number=case.number,
        )
    )
    assert SKIP in lithuanian.buttons
