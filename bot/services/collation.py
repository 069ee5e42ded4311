"""Alphabetical order as each language's readers expect it, for lists of names (elderships, categories,
people) shown in that language.

Python's `sorted` orders by code point, which puts "Šatrininkai" after "Zujūnai" and "Łukasz" after "Żaneta".
ICU (PyICU) knows every language's order, but PyPI has it only as source that must be compiled against the
system's ICU headers (libicu-dev), which `make install` cannot provide on a fresh machine. The orders needed
here are short enough to write down, following the Unicode CLDR collation rules of each language:

- Polish: ą ć ę ł ń ó ś ź ż are letters of their own, each after its base letter (ź before ż).
- Lithuanian: č š ž are letters of their own, each after its base letter; ą ę ė į ų ū and y sort with their
  base letter (a, e, i, u), before it only when two names differ in nothing else.
- Any other language: letters sort by their base letter, accents break ties.

Spaces and punctuation come before digits, digits before letters, letters before other scripts; case only
breaks ties.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")

# Each string is one letter at the first level of comparison; the order within it breaks ties.
_LATIN = [*"abcdefghijklmnopqrstuvwxyz"]
ALPHABETS: dict[str, list[str]] = {
    "pl": [
        "a",
        "ą",
        "b",
        "c",
        "ć",
        "d",
        "e",
        "ę",
        "f",
        "g",
        "h",
        "i",
        "j",
        "k",
        "l",
        "ł",
        "m",
        "n",
        "ń",
        "o",
        "ó",
        "p",
        "q",
        "r",
        "s",
        "ś",
        "t",
        "u",
        "v",
        "w",
        "x",
        "y",
        "z",
        "ź",
        "ż",
    ],
    "lt": [
        "aą",
        "b",
        "c",
        "č",
        "d",
        "eęė",
        "f",
        "g",
        "h",
        "iįy",
        "j",
        "k",
        "l",
        "m",
        "n",
        "o",
        "p",
        "q",
        "r",
        "s",
        "š",
        "t",
        "uųū",
        "v",
        "w",
        "x",
        "z",
        "ž",
    ],
}

_SPACE, _DIGIT, _LETTER, _OTHER = range(4)


def _ranks(alphabet: list[str]) -> dict[str, tuple[int, int]]:
    return {char: (letter, tie) for letter, chars in enumerate(alphabet) for tie, char in enumerate(chars)}


_RANKS = {locale: _ranks(alphabet) for locale, alphabet in ALPHABETS.items()}
_LATIN_RANKS = _ranks(_LATIN)


def collation_key(
    text: str, locale: str
) -> tuple[tuple[tuple[int, int], ...], tuple[int, ...], tuple[int, ...], str]:
    """Sort key for `text` in `locale`'s alphabet: letters first, then accents, then case."""
    ranks = _RANKS.get(locale, _LATIN_RANKS)
    primary: list[tuple[int, int]] = []
    secondary: list[int] = []
    tertiary: list[int] = []
    for char in unicodedata.normalize("NFC", text):
        lower = char.lower()
        if lower in ranks:
            letter, tie = ranks[lower]
            primary.append((_LETTER, letter))
            secondary.append(tie)
        else:
            decomposed = unicodedata.normalize("NFD", lower)
            base, marks = decomposed[0], decomposed[1:]
            if base in ranks:  # a letter with an accent this alphabet does not have: the base letter's place
                letter, tie = ranks[base]
                primary.append((_LETTER, letter))
                secondary.append(tie + 100 + sum(map(ord, marks)))
            elif char.isdigit():
                primary.append((_DIGIT, unicodedata.digit(char, 0)))
                secondary.append(0)
            elif char.isalpha():
                primary.append((_OTHER, ord(lower)))
                secondary.append(0)
            elif unicodedata.category(char) == "Cf":  # zero-width and other invisible characters
                continue
            else:
                primary.append((_SPACE, ord(char)))
                secondary.append(0)
        tertiary.append(0 if char == lower else 1)
    return tuple(primary), tuple(secondary), tuple(tertiary), text


def sorted_by_name(items: Iterable[T], locale: str, name: Callable[[T], str]) -> list[T]:
    """`items` in `locale`'s alphabetical order of `name(item)`."""
    return sorted(items, key=lambda item: collation_key(name(item), locale))
