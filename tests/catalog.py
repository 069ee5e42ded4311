"""Expected texts through the translation catalogs, so that a test names the English msgid and
checks what a Polish or Lithuanian reader gets, instead of pasting a translation that goes stale
when a translator improves it. (tests/unit/test_glossary.py checks the wording itself.)"""

from __future__ import annotations

import functools
import html
import re
import string

from aiogram.utils.i18n import I18n

from bot.settings import LOCALES_DIR

# Msgids several tests check (a case's closing lines).
REOPEN_WITHIN = (
    "The case is closed. If the matter is not settled, you can reopen it under “My cases” within {days} day.",
    "The case is closed. If the matter is not settled, you can reopen it under “My cases” within {days} days.",
)
SURVEY = (
    "How satisfied are you with how case {number} was handled? Please rate it from 1 (not at all) to 5 (very satisfied). "
    "The answer is anonymous: it is stored without your name or the case number."
)


@functools.cache
def _i18n() -> I18n:
    return I18n(path=LOCALES_DIR, default_locale="en", domain="bot")


def tr(locale: str, msgid: str, plural: str | None = None, n: int = 1, **values: object) -> str:
    """`msgid` (or its `plural` for `n`) as the bot renders it in `locale`, `values` filling its
    {placeholders}, as the reader sees it: the template's HTML tags left out and its entities
    decoded (the emulator's `text` is plain text).

    A msgid the catalog does not have fails here, not as a confusing mismatch later."""
    i18n = _i18n()
    if locale != "en":
        catalog = i18n.locales[locale]._catalog  # type: ignore[attr-defined]
        assert (msgid if plural is None else (msgid, 0)) in catalog, (
            f"{msgid!r} is not in the {locale} catalog"
        )
    text = html.unescape(re.sub(r"<[^>]+>", "", i18n.gettext(msgid, plural, n, locale=locale)))
    return text.format(**values) if values else text  # the values as typed: the reader sees them so


def tr_start(
    locale: str, msgid: str, plural: str | None = None, n: int = 1, *, until: str, **values: object
) -> str:
    """The beginning of `tr(...)`, up to the placeholder named `until` (whose value the test does
    not pin down, e.g. a date worded by Babel): for `text.startswith(...)`."""
    cut = "\x00"
    names = {name for _, name, _, _ in string.Formatter().parse(tr(locale, msgid, plural, n)) if name}
    prefix = tr(locale, msgid, plural, n, **{**dict.fromkeys(names, cut), **values, until: cut}).split(cut)[0]
    assert len(prefix.strip()) >= 3, f"{msgid!r} in {locale} starts with {{{until}}}: nothing to compare"
    return prefix
