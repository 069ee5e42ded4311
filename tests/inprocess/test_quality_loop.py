"""Nonconformities in the staff groups, in process, over the sandbox's teams with the director's
office marked as the quality team (Vida its head, the quality manager): /nc in a case's topic puts
the card in the quality group and the roads group; a stranger's press is refused and changes
nothing; the analysis and a corrective action step by step, a past due date refused."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select
from sqlmodel import col

from bot.app import App
from bot.sandbox.control import control_headers
from bot.sandbox.emulator import Emulator
from bot.services.audits import draw
from bot.services.case_commands import Clerk
from bot.services.nonconformities import NcError
from bot.services.quality import Period
from bot.store.db import Database
from bot.store.models import Audit, AuditFinding, CorrectiveAction, NcEvent, NcSource, NcStatus, Nonconformity
from tests.catalog import tr
from tests.support.driver import Person, Received, Telegram
from tests.support.helpers import ROADS, Desk, onboard, submit_case

NUMBER = "VRS-2026-000001"


def lt(msgid: str, **values: Any) -> str:
    return tr("lt", msgid, **values)


@pytest.fixture
async def quality(teams: Desk, tmp_path: Path) -> Desk:
    """The sandbox's teams, the director's office marked `quality = true` (before the bot reads the file)."""
    path = tmp_path / "municipality.toml"
    path.write_text(
        path.read_text(encoding="utf-8").replace('id = "director"\n', 'id = "director"\nquality = true\n'),
        encoding="utf-8",
    )
    return teams


@pytest.fixture
async def pothole_card(quality: Desk, bot: App, telegram: Telegram) -> Received:
    anna = await telegram.resident("Anna", language_code="pl")
    await onboard(anna, "pl")
    await submit_case(anna, "pl", "🚧 Zgłoszenie problemu", "Drogi, ulice i transport", "Dziura w jezdni")
    return await quality.head.receive_one()


async def until(person: Person, wanted: Callable[[Received], bool], tries: int = 6) -> Received:
    """The next message to this person's chat that is `wanted` (the bot's replies and the cards
    from the outbox may come in either order)."""
    for _ in range(tries):
        message = await person.receive_one()
        if wanted(message):
            return message
    raise AssertionError("the message did not come")


def card_of(number: int, status: str) -> Callable[[Received], bool]:
    return lambda m: m.text.startswith(f"⚠️ Neatitiktis #{number} · {lt(status)}")


async def count(store: Database, model: type) -> int:
    async with store.read() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def test_nc_in_a_case_topic_posts_the_card_and_a_stranger_cannot_press(
    quality: Desk, pothole_card: Received, store: Database
) -> None:
    await quality.head.send("/nc Atsakymas išsiųstas po termino", thread_id=pothole_card.thread_id)
    reply = await until(quality.head, lambda m: m.text.startswith("Atidaryta"))
    assert reply.text == lt(
        "Nonconformity #{id} opened; its card is in the quality group and the team's group.", id=1
    )
    card = await quality.director.receive_one()  # the quality group
    assert card.text.splitlines()[0] == "⚠️ Neatitiktis #1 · " + lt("open")
    assert lt("Cases: {cases}", cases=NUMBER) in card.text
    assert "Atsakymas išsiųstas po termino" in card.text
    assert card.buttons == ["🔎 Analizuoti"]
    in_roads = await until(quality.head, card_of(1, "open"))
    assert in_roads.text == card.text

    stranger = quality.eldership.in_chat(ROADS)  # Aldona: neither roads nor quality staff
    await stranger.forge_button("nc:1:analyse:0", in_roads)
    assert (await stranger.answer())["text"] == lt(
        "Only the nonconformity's team or the quality staff can do this."
    )
    await quality.head.forge_button("nc:1:effective:0", in_roads)  # Rimas is not the quality manager
    assert (await quality.head.answer())["text"] == lt("Only the quality manager can decide this.")
    async with store.read() as session:
        nc = (await session.execute(select(Nonconformity))).scalar_one()
    assert (nc.status, nc.case_ids, nc.team_id, nc.correction) == (NcStatus.OPEN, [1], "roads", None)


async def test_analysis_and_an_action_step_by_step_a_past_due_date_refused(
    quality: Desk, pothole_card: Received, store: Database
) -> None:
    rimas = quality.head
    await rimas.send("/nc Atsakymas išsiųstas po termino", thread_id=pothole_card.thread_id)
    card = await until(rimas, card_of(1, "open"))

    await rimas.click("🔎 Analizuoti", card)
    prompt = await until(rimas, lambda m: m.text.startswith("#1"))
    assert prompt.text == lt(
        "#{id}: write the immediate correction: what was done at once to contain the problem.", id=1
    )
    await rimas.send("Gyventojui atsiprašyta ir atsakyta tą pačią dieną")
    assert (await until(rimas, lambda m: m.text.startswith("#1"))).text == lt(
        "#{id}: now the root cause: why did it happen?", id=1
    )
    await rimas.send("Atostogų metu niekas nesekė terminų")
    analysed = await rimas.seen(card_of(1, "analysed"))
    assert analysed.id == card.id  # the card edited in place, not posted again
    assert lt("<b>Root cause</b>: {text}", text="Atostogų metu niekas nesekė terminų") in analysed.text
    assert analysed.buttons == ["➕ Pridėti veiksmą"]

    await rimas.click("➕ Pridėti veiksmą", analysed)
    await until(rimas, lambda m: m.text.startswith("#1"))
    await rimas.send("Kiekvienam specialistui paskirti pavaduotoją")
    assert (await until(rimas, lambda m: m.text.startswith("#1"))).text == lt(
        "#{id}: by when? Write the due date as YYYY-MM-DD, e.g. {example}.", id=1, example="2026-12-07"
    )
    await rimas.send("2026-11-01")  # before today (23 November)
    refused = await until(rimas, lambda m: m.text.startswith("Terminas"))
    assert refused.text == lt(
        "The due date {date} is in the past; choose today or a later day.", date="2026-11-01"
    )
    assert await count(store, CorrectiveAction) == 0
    await rimas.send("2026-12-15")
    who = await until(rimas, lambda m: m.text.startswith("#1"))
    assert who.text == lt("#{id}: who is responsible for the action?", id=1)
    assert who.buttons == ["Rimas", "Petras", "✖️ Atšaukti"]
    await rimas.click("Petras", who)
    assert (await rimas.seen(card_of(1, "actions under way"))).id == card.id
    async with store.read() as session:
        action = (await session.execute(select(CorrectiveAction))).scalar_one()
        nc = (await session.execute(select(Nonconformity))).scalar_one()
    assert (action.what, action.owner_name, action.due.isoformat(), action.done_at) == (
        "Kiekvienam specialistui paskirti pavaduotoją",
        "Petras",
        "2026-12-15",
        None,
    )
    assert (nc.status, nc.correction) == (
        NcStatus.ACTIONS,
        "Gyventojui atsiprašyta ir atsakyta tą pačią dieną",
    )


async def test_the_last_action_done_then_the_manager_finds_it_not_effective(
    quality: Desk, bot: App, store: Database
) -> None:
    """Set up through the service (as /nc, the analysis and an action would); then Petras marks the
    action done with buttons, the check comes due, and Vida, the quality manager, reopens it."""
    ncs = bot.dispatcher["nonconformities"]
    petras_id = quality.member.user["id"]
    nc = await ncs.open(NcSource.QUALITY, "Atsakymai be teisinio pagrindo", "roads", Clerk(1, "Vida"))
    await ncs.analyse(nc.id, Clerk(2, "Rimas"), "Atsakymai papildyti", "Nėra šablono")
    await ncs.add_action(
        nc.id, Clerk(2, "Rimas"), "Parengti atsakymo šabloną", date(2026, 12, 1), Clerk(petras_id, "Petras")
    )
    petras = quality.member
    card = await petras.seen(card_of(nc.id, "actions under way"))
    assert card.buttons == ["➕ Pridėti veiksmą", "✔️ Veiksmas atliktas"]

    await petras.click("✔️ Veiksmas atliktas", card)
    which = await until(petras, lambda m: m.text.startswith(f"#{nc.id}"))
    await petras.click("1. Parengti atsakymo šabloną", which)
    await until(petras, lambda m: m.text.startswith(f"#{nc.id}"))
    await petras.send("Šablonas patvirtintas")
    when = await until(petras, lambda m: m.text.startswith(f"#{nc.id}"))
    assert when.buttons == ["po 30 dienų", "po 60 dienų", "po 90 dienų", "✖️ Atšaukti"]
    await petras.click("po 30 dienų", when)
    done = await until(petras, lambda m: m.text.startswith("Visi"))
    assert done.text == lt(
        "All actions of nonconformity #{id} are done; the effectiveness check is on {date}.",
        id=nc.id,
        date="2026 m. gruodžio 23 d.",
    )

    vida = quality.director
    await ncs.checks_due(date(2026, 12, 23))  # as the day's quality loop does
    check = await until(vida, lambda m: m.text.startswith("🔍"))
    assert (
        lt("The quality manager decides whether the actions were effective.") in check.text
    )  # not from an objective
    rimas = quality.head.in_chat(vida.chat_id)  # a head of roads is no quality manager
    await rimas.forge_button(f"nc:{nc.id}:not_effective:0", check)
    assert (await rimas.answer())["text"] == lt("Only the quality manager can decide this.")
    await vida.click("❌ Neveiksminga", check)
    assert (await vida.answer())["text"] == lt("Not effective: reopened for new actions.")
    reopened = await vida.seen(card_of(nc.id, "reopened, not effective"))
    assert reopened.buttons == ["🔎 Analizuoti", "➕ Pridėti veiksmą"]
    async with store.read() as session:
        stored = await session.get(Nonconformity, nc.id)
        kinds = [
            e.kind
            for e in (
                await session.execute(
                    select(NcEvent).where(col(NcEvent.nonconformity_id) == nc.id).order_by(col(NcEvent.id))
                )
            ).scalars()
        ]
    assert stored is not None and stored.status == NcStatus.REOPENED
    assert kinds[-4:] == ["action_done", "check_set", "check_due", "not_effective"]


async def test_who_shows_the_responsibility_matrix_and_the_review_has_it_as_a_sheet(
    quality: Desk, pothole_card: Received, bot: App
) -> None:
    await quality.head.send("/who")
    matrix = (await until(quality.head, lambda m: m.text.startswith("👥"))).text.split("\n\n")
    assert matrix[0] == tr("lt", "👥 <b>Who is responsible</b>")
    roads = matrix[2].splitlines()
    assert roads == [
        "Kelių skyrius",
        lt("Handles: {what}", what="Keliai ir transportas, Gatvių apšvietimas"),
        lt("Heads: {heads} · members: {members}", heads="Rimas", members="Petras"),
        lt("Open cases: {count}", count=1) + " · " + lt("nobody responsible") + " 1 (0 ⏰)",  # the pothole
    ]
    assert matrix[1].splitlines()[1] == lt(
        "Handles: {what}", what=lt("everything no rule names")
    )  # the front office, the default team
    assert matrix[4].splitlines()[0] == "Direktoriaus kabinetas · " + lt("quality team")

    tables = await bot.dispatcher["review"].tables(Period(date(2026, 11, 1), date(2026, 11, 30)))
    _title, headers, rows = next(table for table in tables if table[0] == lt("Responsibility"))
    sheet = {row[0]: dict(zip(headers, row, strict=True)) for row in rows}
    assert sheet["Kelių skyrius"] == {
        lt("Team"): "Kelių skyrius",
        lt("Quality team"): "",
        lt("Handles"): "Keliai ir transportas, Gatvių apšvietimas",
        lt("Heads"): "Rimas",
        lt("Members"): "Petras",
        lt("Open cases"): 1,
        lt("Responsible"): lt("nobody responsible"),
        lt("Open"): 1,
        lt("Overdue"): 0,
    }
    assert (
        sheet["Direktoriaus kabinetas"][lt("Quality team")] == lt("yes")
        and sheet["Direktoriaus kabinetas"][lt("Open cases")] == 0
    )
    assert sheet["Gyventojų aptarnavimo skyrius"][lt("Handles")] == lt("everything no rule names")


async def test_an_audit_draws_a_sample_again_from_its_seed_and_an_auditor_is_refused_on_their_own_team(
    quality: Desk, pothole_card: Received, store: Database, bot: App
) -> None:
    vida = quality.director  # head of the quality team (the director's office)
    await vida.send("/audit director 2026-11")
    assert (await vida.receive_one()).text == lt(
        "An auditor never audits their own team; please ask another member of the quality staff."
    )
    assert await count(store, Audit) == 0

    await vida.send("/audit roads 2026-11")
    heading, trail = await vida.receive(2)
    async with store.read() as session:
        audit = (await session.execute(select(Audit))).scalar_one()
    assert heading.text == tr(
        "lt",
        "🧾 <b>Internal audit #{id}</b> of {team}, {period}: {sample} of {population} cases drawn (seed {seed}). Auditor: {auditor}.",
        id=audit.id,
        team="Kelių skyrius",
        period="2026-11",
        sample=1,
        population=1,
        seed=audit.seed,
        auditor="Vida",
    )
    assert trail.text.startswith(f"Istorija {NUMBER}") or NUMBER in trail.text.splitlines()[0]
    assert trail.text.endswith(
        "\n".join(
            f"☐ {number}. {lt(item)}"
            for number, item in enumerate(
                (
                    "answered within the legal deadline",
                    "the answer addresses the request",
                    "the reasons for extensions were given",
                    "the resident was told of each change",
                ),
                start=1,
            )
        )
    )
    assert (audit.team_id, audit.case_ids, audit.auditor_id) == ("roads", [1], vida.user["id"])
    assert draw([1], audit.seed, audit.sample_size) == audit.case_ids
    tables = await bot.dispatcher["review"].tables(Period(date(2026, 11, 1), date(2026, 11, 30)))
    title, _headers, rows = next(table for table in tables if table[0] == lt("Internal audits"))
    assert (title, rows) == (
        lt("Internal audits"),
        [[audit.id, "Kelių skyrius", "2026-11", "Vida", 1, 1, str(audit.seed)]],
    )  # in the management review


async def download(emulator: Emulator, message: Received) -> bytes:
    async with httpx.AsyncClient(base_url=emulator.url, headers=control_headers(emulator)) as http:
        return (await http.get(f"/_emu/files/{message.raw['document']['file_id']}")).content


async def test_the_checklist_findings_and_the_audit_report(
    quality: Desk, pothole_card: Received, store: Database, emulator: Emulator
) -> None:
    vida = quality.director
    await vida.send("/audit nosuch 2026-11")  # bad input: an unknown team, a period that does not parse
    assert (await vida.receive_one()).text == lt(
        "There is no team {team}. Teams: {teams}.", team="nosuch", teams="front, roads, avizieniai, director"
    )
    await vida.send("/audit roads 2026-13")
    assert (await vida.receive_one()).text.endswith(
        lt("Usage: /audit TEAM PERIOD, e.g. /audit roads 2026-11 or /audit roads 2026-Q4.")
    )
    assert await count(store, Audit) == 0

    await vida.send("/audit roads 2026-11")
    _heading, trail = await vida.receive(2)
    assert trail.buttons == ["1 ✅", "1 ❌", "2 ✅", "2 ❌", "3 ✅", "3 ❌", "4 ✅", "4 ❌"]
    await vida.click("1 ✅", trail)
    assert (await vida.answer())["text"] == lt("Recorded.")
    assert (await vida.edited()).buttons[:2] == ["● 1 ✅", "1 ❌"]
    await vida.click("2 ❌", trail)
    await vida.answer()
    rimas = quality.head.in_chat(vida.chat_id)  # a head of roads, not of the quality staff
    await rimas.forge_button("au:1:1:3:1", trail)
    assert (await rimas.answer())["text"] == lt("Only the quality staff can do this.")
    async with store.read() as session:
        assert (await session.execute(select(Audit))).scalar_one().checklist == {"1": {"1": True, "2": False}}

    for bad, reply in (
        (
            "/finding x nc Atsakymas neatitinka",
            lt(
                "Usage: /finding AUDIT KIND [CASE] text; KIND is nc, obs or ofi, e.g. /finding 3 obs Templates differ between clerks."
            ),
        ),
        (
            "/finding 1 zz Atsakymas neatitinka",
            lt(
                "The kind of a finding is nc (nonconformity), obs (observation) or ofi (opportunity for improvement)."
            ),
        ),
        ("/finding 7 obs Atsakymas neatitinka", lt("There is no internal audit #{id}.", id=7)),
        (
            "/finding 1 nc VRS-2026-000099 Atsakymas neatitinka",
            lt("Case {number} is not in the sample of audit #{id}.", number="VRS-2026-000099", id=1),
        ),
    ):
        await vida.send(bad)
        assert (await vida.receive_one()).text == reply
    assert await count(store, AuditFinding) == 0 and await count(store, Nonconformity) == 0

    await vida.send("/finding 1 obs Šablonai skiriasi tarp specialistų")
    assert (await vida.receive_one()).text == lt(
        "Finding #{id} ({kind}) recorded on internal audit #{audit}.", id=1, kind=lt("observation"), audit=1
    )
    await vida.send(f"/finding 1 nc {NUMBER} Atsakymas neatitinka prašymo")
    assert (
        await until(
            vida,
            lambda m: m.text.startswith(
                lt("Finding #{id} ({kind}) recorded on internal audit #{audit}.", id=2, kind="x", audit=1)[:6]
            ),
        )
    ).text == (
        lt(
            "Finding #{id} ({kind}) recorded on internal audit #{audit}.",
            id=2,
            kind=lt("nonconformity"),
            audit=1,
        )
        + "\n"
        + lt("Nonconformity #{id} opened; its card is in the quality group and the team's group.", id=1)
    )
    card = await vida.seen(card_of(1, "open"))
    assert (
        lt("Source: {source} · opened {date}", source=lt("internal audit"), date="2026 m. lapkričio 23 d.")
        in card.text
    )
    assert lt("Cases: {cases}", cases=NUMBER) in card.text
    async with store.read() as session:
        nc = (await session.execute(select(Nonconformity))).scalar_one()
        findings = list(
            (await session.execute(select(AuditFinding).order_by(col(AuditFinding.id)))).scalars()
        )
    assert (nc.source, nc.case_ids, nc.team_id) == (NcSource.AUDIT, [1], "roads")
    assert [(f.kind, f.case_id, f.nonconformity_id) for f in findings] == [
        ("obs", None, None),
        ("nc", 1, nc.id),
    ]

    await vida.send("/auditreport 1")
    report = await until(vida, lambda m: "document" in m.raw)
    assert report.raw["document"]["file_name"] == "internal-audit-1.xlsx"
    book = load_workbook(io.BytesIO(await download(emulator, report)))
    sample = [list(row) for row in book[lt("Sample")].iter_rows(min_row=2, values_only=True)]
    assert [(row[0], row[5], *row[9:]) for row in sample] == [
        (NUMBER, lt("not closed"), "taip", "ne", None, None)
    ]
    rows = [list(row) for row in book[lt("Findings")].iter_rows(min_row=2, values_only=True)]
    assert [(r[1], r[2], r[3], r[4]) for r in rows] == [
        (lt("observation"), None, "Šablonai skiriasi tarp specialistų", None),
        (lt("nonconformity"), NUMBER, "Atsakymas neatitinka prašymo", nc.id),
    ]


@pytest.fixture
async def programmed(quality: Desk, tmp_path: Path) -> Desk:
    """The audit programme: roads in November by Vida, the front office in November by Rimas (of roads)."""
    path = tmp_path / "municipality.toml"
    vida, rimas = quality.director.user["id"], quality.head.user["id"]
    plan = f"\n[[audit_programme]]\nteam = 'roads'\nperiod = '2026-11'\nauditor = {vida}\n[[audit_programme]]\nteam = 'front'\nperiod = '2026-11'\nauditor = {rimas}\n"
    path.write_text(path.read_text(encoding="utf-8") + plan, encoding="utf-8")
    return quality


async def test_the_audit_programme_is_listed_and_only_the_planned_auditor_audits(
    programmed: Desk, pothole_card: Received, store: Database
) -> None:
    vida = programmed.director
    await vida.send("/audit front 2026-11")
    assert (await vida.receive_one()).text == lt(
        "The audit programme names another auditor for this audit: {auditor}.", auditor="Rimas"
    )
    assert await count(store, Audit) == 0
    await vida.send("/audit roads 2026-11")
    await vida.receive(2)
    await vida.send("/audit")
    assert (await vida.receive_one()).text.split("\n\n")[0].splitlines() == [
        tr("lt", "🗓 <b>Audit programme</b>"),
        "Kelių skyrius · 2026-11 · Vida · " + lt("done: audit #{id}", id=1),
        "Gyventojų aptarnavimo skyrius · 2026-11 · Rimas · " + lt("planned"),
    ]


async def test_a_member_of_the_audited_team_neither_answers_the_checklist_nor_adds_findings(
    quality: Desk, pothole_card: Received, store: Database, bot: App
) -> None:
    vida = quality.director  # quality staff, and of the director's office
    async with store.write() as session:  # an audit of her own team, as if another auditor had started it
        audit = Audit(
            team_id="director",
            period="2026-11",
            start=date(2026, 11, 1),
            end=date(2026, 11, 30),
            auditor_id=1,
            seed=7,
            sample_size=1,
            population=1,
            case_ids=[1],
        )
        session.add(audit)
    audits = bot.dispatcher["audits"]
    own_team = lt("An auditor never audits their own team; please ask another member of the quality staff.")
    for attempt in (
        audits.answer(audit.id, 1, 1, True, Clerk(vida.user["id"], "Vida")),
        audits.add_finding(audit.id, "obs", "Šablonai skiriasi", Clerk(vida.user["id"], "Vida")),
    ):
        with pytest.raises(NcError) as refused:
            await attempt
        with bot.i18n.context(), bot.i18n.use_locale("lt"):
            assert str(refused.value) == own_team
    async with store.read() as session:
        stored = await session.get(Audit, audit.id)
        assert stored is not None and stored.checklist == {}
        assert (await session.execute(select(AuditFinding))).first() is None
