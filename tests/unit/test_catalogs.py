"""Translations are part of every feature: complete, consistent, compiled, and in sync with code."""

import re

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_keywords
from babel.messages.mofile import read_mo
from babel.messages.plurals import get_plural
from babel.messages.pofile import read_po

from bot.settings import LOCALES_DIR, PROJECT_DIR

# The same keywords as `make extract` (see the Makefile): _("text") and _("one", "many", n).
KEYWORDS = parse_keywords(["_:1,1t", "_:1,2", "__:1,1t", "__:1,2"])
_PLACEHOLDER = re.compile(r"\{[a-z_]+\}|%\([a-z_]+\)[sd]|%[sd]")
_TAG = re.compile(r"</?[a-z-]+[^>]*>")


def _catalog(locale: str):
    with (LOCALES_DIR / locale / "LC_MESSAGES" / "bot.po").open("rb") as fh:
        return read_po(fh, locale=locale)


def _source_msgids() -> set[str | tuple[str, ...]]:
    found: set[str | tuple[str, ...]] = set()
    for folder in ("bot", "flows"):
        for _, _, message, _, _ in extract_from_dir(
            PROJECT_DIR / folder, method_map=[("**.py", "python")], keywords=KEYWORDS
        ):
            found.add(message if isinstance(message, str) else tuple(message[:2]))
    return found


@pytest.mark.parametrize("locale", ["pl", "lt"])
def test_every_message_is_translated(locale: str) -> None:
    catalog = _catalog(locale)
    missing = [
        m.id
        for m in catalog
        if m.id and (not m.string or (isinstance(m.string, tuple) and not all(m.string)))
    ]
    fuzzy = [m.id for m in catalog if m.id and m.fuzzy]
    assert not missing, f"{locale}: untranslated {missing[:5]}"
    assert not fuzzy, f"{locale}: fuzzy {fuzzy[:5]}"


def test_catalogs_hold_every_string_of_the_code() -> None:
    in_code = _source_msgids()
    for locale in ("pl", "lt", "en"):
        in_catalog = {m.id if isinstance(m.id, str) else tuple(m.id) for m in _catalog(locale) if m.id}
        assert not in_code - in_catalog, (
            f"{locale}: run `make update` and translate: {sorted(map(str, in_code - in_catalog))[:5]}"
        )


@pytest.mark.parametrize("locale", ["pl", "lt"])
def test_placeholders_and_tags_are_preserved(locale: str) -> None:
    for message in _catalog(locale):
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        expected = sorted(set(_PLACEHOLDER.findall(ids[-1])))
        for string in strings:
            assert sorted(set(_PLACEHOLDER.findall(string))) == expected, f"{locale}: {message.id!r}"
            assert sorted(_TAG.findall(string)) == sorted(_TAG.findall(ids[0])), f"{locale}: {message.id!r}"


@pytest.mark.parametrize("locale", ["pl", "lt"])
def test_plural_forms_match_the_language(locale: str) -> None:
    catalog = _catalog(locale)
    expected = get_plural(locale)
    assert catalog.num_plurals == expected.num_plurals
    for message in catalog:
        if message.id and isinstance(message.id, tuple):
            assert len(message.string) == expected.num_plurals, f"{locale}: {message.id!r}"


@pytest.mark.parametrize("locale", ["pl", "lt", "en"])
def test_compiled_catalog_matches_its_source(locale: str) -> None:
    mo_path = LOCALES_DIR / locale / "LC_MESSAGES" / "bot.mo"
    assert mo_path.exists(), "run `make compile`"
    with mo_path.open("rb") as fh:
        # Babel writes an untranslated plural with the English forms; those are not translations.
        compiled = {_key(m.id): _key(m.string) for m in read_mo(fh) if m.id and _key(m.string) != _key(m.id)}
    source = {
        _key(m.id): _key(m.string)
        for m in _catalog(locale)
        if m.id
        and (m.string if isinstance(m.string, str) else all(m.string))
        and _key(m.string) != _key(m.id)
    }
    assert compiled == source, "the .mo is stale: run `make compile`"


def _key(value):  # plural ids and strings come back as lists from .mo and tuples from .po
    return tuple(value) if isinstance(value, list | tuple) else value
