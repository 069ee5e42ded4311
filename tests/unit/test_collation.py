"""Names sort in each language's alphabet (bot/services/collation.py), and the eldership picker uses it."""

import random

import pytest

from bot.municipality import load_municipality
from bot.services.collation import collation_key, sorted_by_name
from bot.settings import DEFAULT_MUNICIPALITY_FILE
from flows.common import ELDERSHIPS_PER_PAGE, eldership_keyboard


def _sorted(names: list[str], locale: str) -> list[str]:
    shuffled = names[:]
    random.Random(15).shuffle(shuffled)
    return sorted_by_name(shuffled, locale, name=str)


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        # Lithuanian: Š is a letter after S, Ž after Z, Č after C; ą ę ė į ų ū y go with their base letter.
        ("lt", ["Sudervė", "Sužionys", "Šatrininkai"]),
        ("lt", ["Zujūnai", "Žemė"]),
        ("lt", ["Cirkliškis", "Čekoniškės"]),
        ("lt", ["Dūkštai", "Duobė"]),  # ū sorts as u: "dūk" before "duo"
        ("lt", ["Ąselė", "Avižieniai", "Bezdonys"]),  # ą is not a letter after a
        ("lt", ["Nemenčinė", "Nemenčinės miestas", "Nemėžis"]),
        ("lt", ["ydos", "ižas"]),  # y sorts with i
        # Polish: ą ć ę ł ń ó ś ź ż each after its base letter, ź before ż.
        ("pl", ["Lipniszki", "Ławaryszki", "Mariampol"]),
        ("pl", ["Suderwa", "Sużany", "Szatryniki", "Ściana"]),
        ("pl", ["Zujuny", "Źródło", "Żagiel"]),
        ("pl", ["Cyprian", "Ćma"]),
        ("pl", ["Oziębłe", "Ósemka"]),
        ("pl", ["Niemenczyn (miasto)", "Niemenczyn (okolice)", "Niemież"]),
        # Other languages: accents only break ties.
        ("en", ["Avižieniai", "Awiżenie", "Šatrininkai", "Zujūnai"]),
    ],
)
def test_names_sort_in_the_readers_alphabet(locale: str, expected: list[str]) -> None:
    assert _sorted(expected, locale) == expected


def test_case_and_accents_only_break_ties() -> None:
    assert _sorted(["ąb", "aa", "Ab", "ab"], "lt") == ["aa", "ab", "Ab", "ąb"]
    assert _sorted(["b", "B", "a"], "pl") == ["a", "b", "B"]
    assert collation_key("Rudamina", "lt") != collation_key("rudamina", "lt")


def test_spaces_and_digits_before_letters() -> None:
    assert _sorted(["Aa", "A 2", "A1", "A b"], "pl") == ["A 2", "A b", "A1", "Aa"]


@pytest.mark.parametrize(
    ("locale", "first_page", "last"),
    [
        (
            "lt",
            [
                "Avižieniai",
                "Bezdonys",
                "Buivydžiai",
                "Dūkštai",
                "Juodšiliai",
                "Kalveliai",
                "Lavoriškės",
                "Maišiagala",
            ],
            ["Sudervė", "Sužionys", "Šatrininkai", "Zujūnai"],
        ),
        (
            "pl",
            [
                "Awiżenie",
                "Bezdany",
                "Bujwidze",
                "Czarny Bór",
                "Dukszty",
                "Kowalczuki",
                "Ławaryszki",
                "Mariampol",
            ],
            ["Suderwa", "Sużany", "Szatryniki", "Zujuny"],
        ),
    ],
)
def test_the_eldership_picker_is_in_alphabetical_order(
    locale: str, first_page: list[str], last: list[str]
) -> None:
    class Config:
        municipality = load_municipality(DEFAULT_MUNICIPALITY_FILE)

    pages = []
    for page in range(3):
        # Stand-ins on purpose: a bare config, and plain strings for the buttons' data.
        markup = eldership_keyboard(Config(), locale, page, pick=lambda _: "x", turn=lambda _: "y", extra=[])  # type: ignore[arg-type, return-value]
        pages.append([b.text for row in markup.inline_keyboard for b in row if b.callback_data == "x"])
    assert pages[0] == first_page and len(pages[0]) == ELDERSHIPS_PER_PAGE
    assert pages[2][-len(last) :] == last
    everything = [name for page in pages for name in page]
    assert everything == sorted_by_name(everything, locale, name=str) and len(everything) == 23
