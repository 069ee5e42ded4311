"""The clerks' desk through a real bot process: a plain group, forged buttons, a burst of cards
and the digest on start, canned answers, a deleted topic, a moved group, albums and a blocked
resident. (A case's course in a forum topic, one behaviour a test, is in tests/inprocess/test_desk.py.)"""

import asyncio
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from bot.sandbox.emulator import Emulator
from bot.store.db import Database
from bot.store.models import Case, CaseEvent, CaseStatus, EventKind, Resident
from tests.catalog import tr
from tests.conftest import ADMIN_CHAT_ID
from tests.support.driver import Person, Telegram
from tests.support.helpers import PHOTO, onboard, submit_case

NUMBER = "VRS-2026-000001"
MUNICIPALITY = {"pl": "Samorząd Rejonu Wileńskiego", "lt": "Vilniaus rajono savivaldybė"}  # its names, from its .toml
NO_TOPICS = (
    "A topic per case cannot be opened here ({reason}). Cards go to this chat; reply to a card to write to the resident. "
    "To have topics, turn on Topics and give the bot the right to manage them."
)
MOVED = "This group became a supergroup with a new id. The bot follows it now; please put {chat_id} in the configuration instead of {old}."


def to_resident(locale: str, *paragraphs: str) -> str:
    """A message about the case as the resident reads it: the heading, then the paragraphs."""
    return "\n\n".join([tr(locale, "<b>{municipality}</b> · case {number}", municipality=MUNICIPALITY[locale], number=NUMBER), *paragraphs])


async def test_plain_group_routes_by_reply(emulator: Emulator, telegram: Telegram, settings_env, tmp_path, store: Database) -> None:
    from tests.e2e.conftest import BotProcess

    emulator.chats[ADMIN_CHAT_ID].info.pop("is_forum")  # a group without topics
    clerk = await telegram.person("Petras", language_code="lt")
    emulator.chats[ADMIN_CHAT_ID].members.add(clerk.user["id"])
    clerk = clerk.in_chat(ADMIN_CHAT_ID)
    process = BotProcess(emulator, settings_env, tmp_path / "bot.log")
    await process.start()
    try:
        jonas = await telegram.resident("Jonas", language_code="lt")
        await onboard(jonas, "lt")
        await submit_case(jonas, "lt", "📄 Prašymas", "Kiti klausimai", "Prašau pažymos apie gyvenamąją vietą")
        notice, card = await clerk.receive(2)
        assert notice.text == tr("lt", NO_TOPICS, reason="Bad Request: the chat is not a forum")
        assert card.thread_id is None and card.text.splitlines()[0] == "📄 VRS-2026-000001 · Prašymas"
        await clerk.send("Pažymą galite atsiimti seniūnijoje.", reply_to=card.id)
        assert (await jonas.receive_one()).text == to_resident("lt", tr("lt", "Message from the clerk:") + "\nPažymą galite atsiimti seniūnijoje.")
        await clerk.send("Kolegos, kas šiandien budi?")  # not a reply: stays among the clerks
        await jonas.nothing_more(1.0)
    finally:
        await process.stop()


async def test_forged_and_impossible_actions_are_refused(bot, telegram: Telegram, store: Database, clerks: Person) -> None:
    anna = await telegram.resident("Anna", language_code="pl")
    await onboard(anna, "pl")
    confirmation = await submit_case(anna, "pl", "📄 Wniosek", "Inne sprawy", "Proszę o informację")
    card = await clerks.receive_one()

    await anna.forge_button("dk:take:1", confirmation)  # from a private chat
    assert (await anna.answer())["text"] == "Niedozwolone w tym miejscu."
    await clerks.forge_button("dk:reopen:1", card)  # not closed: cannot be reopened
    assert (await clerks.answer())["text"] == "Šiuo metu to su kreipimusi padaryti negalima."
    await clerks.forge_button("dk:take:999", card)  # no such case
    assert (await clerks.answer())["text"] == "Šiuo metu to su kreipimusi padaryti negalima."
    async with store.read() as session:
        case = (await session.execute(select(Case))).scalar_one()
    assert (case.status, case.assignee_id) == (CaseStatus.NEW, None)
    assert "desk button pressed outside a team group" in bot.log()


async def test_a_burst_of_50_cases_reaches_the_group_within_its_limit(emulator: Emulator, telegram: Telegram, settings_env, tmp_path, store: Database) -> None:
    from bot.services.cases import CaseDraft
    from bot.store.migrate import upgrade
    from tests.e2e.conftest import BotProcess
    from tests.factories import services

    # 50 cases stored while the bot was down; on start they all go to the group at once.
    await upgrade(store)
    async with store.write() as session:
        session.add(Resident(id=4242, locale="lt", display_name="Jonas"))
    commands = services(store).commands
    received = datetime(2026, 11, 23, 7, tzinfo=UTC)
    await asyncio.gather(*(commands.open(CaseDraft(4242, "lt", "report", "roads", f"Duobė nr. {i}"), received) for i in range(50)))

    # A faster group lane than Telegram's (240 a minute, enforced by the emulator) keeps the test short.
    emulator.limits.group_per_minute = 240
    emulator.reset_rate_buckets()
    process = BotProcess(emulator, {**settings_env, "GROUP_MESSAGES_PER_MINUTE": "240"}, tmp_path / "bot.log")
    await process.start()
    try:
        clerk = (await telegram.person("Ona")).in_chat(ADMIN_CHAT_ID)
        cards = await clerk.receive(50, timeout=120)
    finally:
        await process.stop()
    assert sorted(c.text.split(" · ")[0][-15:] for c in cards) == [f"VRS-2026-{i:06d}" for i in range(1, 51)]
    chat = await telegram.chat(ADMIN_CHAT_ID)
    assert len(chat["topics"]) == 50
    limited = [r for r in emulator.requests if r["status"] == 429]
    assert len(limited) <= 2, "the bot kept to the group's limit (a stray 429 is retried)"
    async with store.read() as session:
        assert all(c.card_message_id for c in (await session.execute(select(Case))).scalars())


@pytest.mark.parametrize("when", ["2026-12-17T07:59:58+02:00"])
async def test_daily_digest_on_a_frozen_clock(when: str, emulator: Emulator, telegram: Telegram, settings_env, tmp_path, store: Database) -> None:
    from bot.store.migrate import upgrade
    from tests.e2e.conftest import BotProcess

    await upgrade(store)
    async with store.write() as session:
        session.add(Resident(id=4242, locale="lt", display_name="Jonas"))
        await session.flush()
        for seq, (deadline, assignee) in enumerate([(date(2026, 12, 21), "Ona"), (date(2026, 12, 15), None), (date(2027, 1, 20), "Ona")], 1):
            session.add(Case(
                number=f"VRS-2026-{seq:06d}", year=2026, seq=seq, resident_id=4242, locale="lt", kind="request",
                category_id="other", description="x", received_at=datetime(2026, 11, 20, tzinfo=UTC), deadline=deadline,
                assignee_name=assignee, card_message_id=1000 + seq,
            ))  # fmt: skip
    process = BotProcess(emulator, {**settings_env, "PETENT_FROZEN_TIME": when, "DIGEST_TIME": "08:00"}, tmp_path / "bot.log")
    await process.start()
    try:
        clerk = (await telegram.person("Ona")).in_chat(ADMIN_CHAT_ID)
        received = await clerk.receive(4, timeout=20)
    finally:
        await process.stop()
    digest = next(m for m in received if m.text.startswith("📋"))
    reminders = [m for m in received if m.text.startswith("⏰")]
    [escalation] = [m for m in received if "🚨" in m.text]
    overdue_by = tr("lt", "{count} working day overdue", "{count} working days overdue", n=2, count=2)
    late = f"2026 m. gruodžio 15 d. ({overdue_by})"
    overdue = tr("lt", "🚨 {number} of {team} is overdue: the deadline was {due}; responsible: {who}.",
                 number="VRS-2026-000002", team="Specialistai", due=late, who=tr("lt", "nobody responsible"))  # fmt: skip
    assert escalation.text == tr("lt", "the team's head") + ": " + overdue  # the team has no heads named: to all of it
    nobody = tr("lt", "nobody responsible")
    assert digest.text.splitlines() == [
        tr("lt", "📋 <b>Daily digest</b> of {team}, {date}", team="Specialistai", date="2026 m. gruodžio 17 d."), "",
        tr("lt", "Overdue") + " (1)", f"👤 {nobody}: VRS-2026-000002 (2026 m. gruodžio 15 d.)", "",
        tr("lt", "Due within 3 working days") + " (1)", "👤 Ona: VRS-2026-000001 (2026 m. gruodžio 21 d.)",
    ]  # fmt: skip
    left = tr("lt", "{count} working day left", "{count} working days left", n=2, count=2)
    assert sorted(r.text for r in reminders) == [
        tr("lt", "⏰ Reminder: the deadline is {date} ({left}).", date="2026 m. gruodžio 15 d.", left=overdue_by),
        tr("lt", "⏰ Reminder: the deadline is {date} ({left}).", date="2026 m. gruodžio 21 d.", left=left),
    ]
    async with store.read() as session:
        assert len((await session.execute(select(CaseEvent).where(CaseEvent.kind == EventKind.REMINDED))).all()) == 2


async def test_canned_answer_in_the_residents_language(bot, telegram: Telegram, clerks: Person, store: Database) -> None:
    anna = await telegram.resident("Anna", language_code="pl")
    await onboard(anna, "pl")
    await submit_case(anna, "pl", "🚧 Zgłoszenie problemu", "Oświetlenie ulic", "Nie świeci latarnia")
    card = await clerks.receive_one()
    await clerks.send("/templates", thread_id=card.thread_id)
    menu = await clerks.receive_one()
    assert menu.buttons == ["Gauta, nagrinėjama", "Papildyti informaciją", "Problema išspręsta", "Ne savivaldybės kompetencija", "✖️ Atšaukti"]
    await clerks.click("Problema išspręsta", menu)
    preview = await clerks.edited()
    canned = "Zgłoszony problem został usunięty. Dziękujemy, że pomaga Pan/Pani dbać o nasz rejon."  # the template's text, from the .toml
    assert preview.text == tr("lt", "Preview ({language}):", language="pl") + "\n\n" + canned
    assert preview.buttons == [tr("lt", "📨 Send to the resident"), tr("lt", "✖️ Cancel")]
    await clerks.click("📨 Siųsti gyventojui", preview)
    assert (await anna.receive_one()).text == to_resident("pl", tr("pl", "Message from the clerk:"), canned)  # a paragraph apart, unlike a relayed line
    async with store.read() as session:
        sent = (await session.execute(select(CaseEvent).where(CaseEvent.kind == EventKind.MESSAGE_OUT))).scalar_one()
    assert (sent.actor_name, sent.text) == ("Ona", canned)


async def test_a_deleted_topic_is_replaced(bot, telegram: Telegram, emulator: Emulator, clerks: Person, store: Database) -> None:
    jonas = await telegram.resident("Jonas", language_code="lt")
    await onboard(jonas, "lt")
    await submit_case(jonas, "lt", "📄 Prašymas", "Kiti klausimai", "Prašau informacijos")
    card = await clerks.receive_one()
    emulator.chats[ADMIN_CHAT_ID].topics.pop(card.thread_id)  # a clerk deleted the topic
    bot.expected_errors.append("message thread not found")

    await jonas.send("VRS-2026-000001")
    await jonas.receive_one()
    await jonas.click("➕ Papildyti informaciją")
    await jonas.receive_one()
    await jonas.send("Dar vienas klausimas dėl pažymos")
    new_card, notice, added = await clerks.receive(3)
    assert new_card.thread_id != card.thread_id and new_card.text.startswith("📄 VRS-2026-000001")
    assert notice.text == tr("lt", "The previous topic of this case was deleted; the case continues here.")
    assert added.thread_id == new_card.thread_id
    assert added.text == tr("lt", "➕ <b>{number}</b>: the resident added information", number=NUMBER) + "\n\nDar vienas klausimas dėl pažymos"
    async with store.read() as session:
        assert (await session.execute(select(Case))).scalar_one().topic_id == new_card.thread_id


async def test_the_group_upgraded_to_a_supergroup_is_followed(bot, telegram: Telegram, emulator: Emulator) -> None:
    new_id = -1009999999999
    emulator.migrate(ADMIN_CHAT_ID, new_id)
    bot.expected_errors.append("upgraded to a supergroup")
    anna = await telegram.resident("Anna", language_code="pl")
    await onboard(anna, "pl")
    await submit_case(anna, "pl", "📄 Wniosek", "Inne sprawy", "Proszę o informację")
    reader = (await telegram.person("Ona")).in_chat(new_id)
    notice, card = await reader.receive(2)
    assert notice.text == tr("lt", MOVED, chat_id=new_id, old=ADMIN_CHAT_ID)
    assert card.text.startswith("📄 VRS-2026-000001")
    assert "a team group moved" in bot.log()


async def test_albums_relay_together_and_a_blocked_resident_is_reported(bot, telegram: Telegram, emulator: Emulator, clerks: Person, store: Database) -> None:
    anna = await telegram.resident("Anna", language_code="pl")
    await onboard(anna, "pl")
    await submit_case(anna, "pl", "📄 Wniosek", "Inne sprawy", "Proszę o kopie dokumentów")
    card = await clerks.receive_one()
    await clerks.send_album([PHOTO, PHOTO], caption="Kopie", thread_id=card.thread_id)
    header, *album = await anna.receive(3)
    assert header.text == to_resident("pl", tr("pl", "Message from the clerk:"))
    assert [m.text for m in album] == ["Kopie", ""] and len({m.raw["media_group_id"] for m in album}) == 1

    await clerks.send("/open")
    listing = await clerks.receive_one()
    case_line = " · ".join(["📄 VRS-2026-000001", tr("lt", "Received"), "2026 m. gruodžio 21 d. (liko 20 darbo dienų)", tr("lt", "nobody")])
    assert listing.text == tr("lt", "<b>Open cases</b>, nearest deadline first:") + "\n" + case_line

    await anna.block_bot()
    bot.expected_errors.append("blocked by the user")
    await clerks.send("Czy dokumenty dotarły?", thread_id=card.thread_id)
    warning = await clerks.receive_one()
    assert warning.text == "⚠️ Nepristatyta: gyventojas užblokavo botą."
    async with store.read() as session:
        assert (await session.get(Resident, anna.user["id"])).blocked_at is not None
