"""The case commands' checks: one transition table for clerks and residents alike, each refusal
with its reason (what the desk and the resident's chat render); a prompt's expiry; a team's load."""

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from bot.services.case_commands import Action, CaseCommands, NotAllowed, Refusal, allowed_actions
from bot.services.case_queries import ClerkLoad, load_per_clerk
from bot.services.prompts import prompt_expired, prompt_expiry
from bot.store.db import Database
from bot.store.models import Case, CaseKind, CaseStatus
from tests import factories

NOW = datetime(2026, 11, 23, 9, tzinfo=UTC)
ANNA = 501


@pytest.fixture
async def commands(database: Database) -> AsyncIterator[CaseCommands]:
    wired = factories.services(database)
    yield wired.commands
    await wired.bot.session.close()


def case(status: CaseStatus = CaseStatus.NEW, **values: Any) -> Case:
    return Case(
        **{
            "id": 1,
            "status": status,
            "kind": CaseKind.REPORT,
            "resident_id": ANNA,
            "team_id": None,
            "extension_days": 0,
            **values,
        }
    )


def refusal(check: object, *args: object) -> Refusal:
    with pytest.raises(NotAllowed) as refused:
        check(*args)  # type: ignore[operator]
    return refused.value.reason


def test_a_clerks_action_is_refused_with_its_reason(commands: CaseCommands) -> None:
    closed = case(CaseStatus.ANSWERED, closed_at=NOW)
    assert refusal(commands.check_action, closed, Action.TAKE) is Refusal.STATUS
    assert refusal(commands.check_action, None, Action.TAKE) is Refusal.NO_CASE
    assert refusal(commands.check_action, case(purged_at=NOW), Action.TAKE) is Refusal.NO_CASE
    assert (
        refusal(commands.check_action, case(kind=CaseKind.COMPLAINT), Action.PUBLISH) is Refusal.STATUS
    )  # only reports are public
    used_up = case(extension_days=commands.config.municipality.kinds[CaseKind.REPORT].max_extension_days)
    assert refusal(commands.check_action, used_up, Action.EXTEND) is Refusal.NO_EXTENSION_LEFT
    assert refusal(commands.check_extension, case(), 0) is Refusal.EXTENSION
    assert refusal(commands.check_pass, case(), commands.teams.default.id) is Refusal.SAME_TEAM
    assert refusal(commands.check_pass, case(), "no-such-team") is Refusal.SAME_TEAM
    assert commands.check_action(case(), Action.TAKE).status == CaseStatus.NEW
    assert Action.REOPEN in allowed_actions(closed) and Action.TAKE not in allowed_actions(closed)


def test_the_resident_reopens_through_the_same_table_within_the_reopen_days(commands: CaseCommands) -> None:
    days = commands.config.settings.reopen_days
    closed = case(CaseStatus.ANSWERED, closed_at=NOW - timedelta(days=days - 1))
    assert commands.check_reopen_by_resident(closed, ANNA, NOW) is closed
    assert commands.resident_may_reopen(closed, NOW)
    assert refusal(commands.check_reopen_by_resident, closed, ANNA + 1, NOW) is Refusal.NOT_THEIRS
    assert (
        refusal(commands.check_reopen_by_resident, closed, ANNA, NOW + timedelta(days=2)) is Refusal.TOO_LATE
    )
    duplicate = case(
        CaseStatus.DUPLICATE, closed_at=NOW
    )  # reopened through its original, by clerks and residents alike
    assert refusal(commands.check_reopen_by_resident, duplicate, ANNA, NOW) is Refusal.STATUS
    assert Action.REOPEN not in allowed_actions(duplicate)
    assert refusal(commands.check_reopen_by_resident, case(), ANNA, NOW) is Refusal.STATUS  # still open
    assert not commands.resident_may_reopen(case(), NOW)


def test_information_is_added_only_to_the_residents_open_case(commands: CaseCommands) -> None:
    assert commands.check_add_information(case(), ANNA).status == CaseStatus.NEW
    assert refusal(commands.check_add_information, case(), ANNA + 1) is Refusal.NOT_THEIRS
    assert (
        refusal(commands.check_add_information, case(CaseStatus.REJECTED, closed_at=NOW), ANNA)
        is Refusal.STATUS
    )


def test_a_prompt_waits_its_minutes_and_not_a_second_longer() -> None:
    expiry = prompt_expiry(10, NOW)
    assert not prompt_expired(expiry, NOW + timedelta(minutes=10))
    assert prompt_expired(expiry, NOW + timedelta(minutes=10, seconds=1))
    # Compared as times, not as text: another offset for the same instant is the same expiry.
    vilnius = (NOW + timedelta(minutes=10)).astimezone(timezone(timedelta(hours=2))).isoformat()
    later = NOW + timedelta(minutes=15)
    assert later.isoformat() < vilnius and prompt_expired(vilnius, later)  # as text, it would still wait


def test_a_teams_load_is_per_responsible_clerk_busiest_first() -> None:
    today = date(2026, 11, 23)
    cases = [
        case(assignee_name="Ona", deadline=date(2026, 11, 20)),
        case(assignee_name=None, deadline=date(2026, 12, 1)),
        case(assignee_name="Petras", deadline=date(2026, 12, 1)),
        case(assignee_name="Petras", deadline=date(2026, 11, 1)),
        case(
            assignee_name="", deadline=date(2026, 11, 1)
        ),  # no name recorded: nobody's, as the digest counts it
    ]
    assert load_per_clerk(cases, today) == [
        ClerkLoad(None, 2, 1),
        ClerkLoad("Petras", 2, 1),
        ClerkLoad("Ona", 1, 1),
    ]
