"""What makes a valid case is one set of rules (CaseDraft), whatever the channel: the residents'
chat, a clerk's /register and Open311 all answer the same input the same way."""

import pytest

from bot.services.cases import CaseDraft, Problem


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("Dziura", Problem.TOO_SHORT),
        ("\u200b" * 12 + "Dziura", Problem.TOO_SHORT),  # invisible characters do not count
        ("Dziura w jezdni", None),
        ("x" * 3000, None),
        ("x" * 3001, Problem.TOO_LONG),
    ],
)
def test_a_description_is_10_to_3000_visible_characters(text: str, problem: Problem | None) -> None:
    assert CaseDraft.DESCRIPTION.problem(text) == problem


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("+370 600 12345", True),
        ("8 (5) 123-45-67", True),
        ("12", False),
        ("call me", False),
        ("+" + "1" * 40, False),
    ],
)
def test_one_phone_rule(value: str, ok: bool) -> None:
    assert (CaseDraft.phone_problem(value) is None) == ok


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("ona@vrsa.lt", True),
        ("ona@vrsa", False),
        ("a b@c.lt", False),
        ("<x>@y.lt", False),
        ("a@" + "b" * 250 + ".lt", False),
    ],
)
def test_one_email_rule(value: str, ok: bool) -> None:
    assert (CaseDraft.email_problem(value) is None) == ok
