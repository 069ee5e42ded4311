"""docs/glossary.md, enforced: one term per concept, the municipality's voice, numbers that agree."""

import re

import pytest
from babel.messages.pofile import read_po
from babel.support import Translations

from bot.config import DEFAULT_MUNICIPALITY_FILE, LOCALES_DIR, load_municipality

# (pattern not to use, where the English msgid matches this (None: anywhere), why): checked in every msgstr of the locale.
RULES: dict[str, list[tuple[str, str | None, str]]] = {
    "lt": [
        (r"valdinink", None, "a clerk is specialistas or savivaldybės darbuotojas"),
        (r"\bprašym", r"^(?![\s\S]*\brequest)", "prašymas is only the kind 'request'; a case is kreipimasis"),
        (r"\bpranešim", r"^(?![\s\S]*\breport\b)", "pranešimas is only the kind 'report of a problem'; an announcement is skelbimas"),
        (r"\bačiū\b", None, "the municipality thanks with Dėkojame"),
        (r"\batvir\w* kreipim|\batvirų\b", None, "open cases are nebaigti nagrinėti kreipimaisi"),
        (r"kreipimųsi stalas", None, "the desk is Kreipimųsi valdymas"),
        (r"kategorij", None, "a category is sritis"),
        (r"(?<!„)\bTelegram\b(?!“)", None, "the name is quoted: „Telegram“"),
        (r"\b(galiu|negaliu|laukiu|veikiu|nesupratau|neatpažįstu|nežinau)\b", None, "the bot speaks as the municipality: we"),
    ],
    "pl": [
        (r"\bzgłosze[nń]", r"^(?![\s\S]*\breport\b)", "zgłoszenie is only the kind 'Zgłoszenie problemu'; a case is sprawa"),
        (r"\bwiadomości\b", r"\bnews\b", "news is Aktualności; wiadomość is a chat message"),
        (r"zadowolony/zadowolona|\w+\(a\)", None, "phrase around gendered forms"),
        (r"\bdotkn", None, "residents choose (wybrać), they do not touch"),
        (r"\bzmień coś\b", None, "the button is Popraw dane"),
        (r"\b(mogę|czekam|nie znam|rozumiem|będę|działam|rozpoznaję|przepraszam|odpowiadam)\b", None, "the bot speaks as the municipality: we"),
    ],
}

# Where a reopened case is meant, Lithuanian says what is renewed: the handling (nagrinėjimas).
REOPEN = (r"\breopen", r"nagrinėjim")

# Buttons and echoes of the reader's own choice speak in the reader's voice ("I agree", "Not sure").
READERS_VOICE = {"No, thank you", "✅ Noted", "🤷 Not sure / whole district", "whole district / not sure", "✅ Confirm", "🙋 Take",
                 "➕ This affects me too", "➕ This affects me too ({index})"}  # fmt: skip

# A number that varies, followed by a noun that must agree with it: plural forms, or phrase it as "Liczba znaków: {n}".
UNAGREEING = {
    "pl": r"\{(count|days|length)\} (znak|dni|dzie|plik|spraw|pyta|odpowied)",
    "lt": r"\{(count|days|length)\} (darbo |atsakymo )?(dien|simbol|fail|kreipim|klausim|variant)",
}


def _messages(locale: str):
    with (LOCALES_DIR / locale / "LC_MESSAGES" / "bot.po").open("rb") as fh:
        catalog = read_po(fh, locale=locale)
    for message in catalog:
        if message.id:
            english = message.id if isinstance(message.id, str) else message.id[-1]
            strings = message.string if isinstance(message.string, tuple) else (message.string,)
            yield message, english, strings


@pytest.mark.parametrize("locale", ["pl", "lt"])
def test_terms_follow_the_glossary(locale: str) -> None:
    problems = []
    for message, english, strings in _messages(locale):
        for pattern, where, why in RULES[locale]:
            if english in READERS_VOICE or (where and not re.search(where, english, re.IGNORECASE)):
                continue
            said = strings if not why.endswith(": we") else [re.sub(r"„[^“”]*[“”]", "", string) for string in strings]  # a quoted label is the reader's
            problems += [f"{why}: {string!r}" for string in said if re.search(pattern, string, re.IGNORECASE)]
        if locale == "lt" and re.search(REOPEN[0], english, re.IGNORECASE):
            problems += [f"reopen is atnaujinti nagrinėjimą: {string!r}" for string in strings if not re.search(REOPEN[1], string, re.IGNORECASE)]
        if not isinstance(message.id, tuple):
            problems += [f"use plural forms or put the number after a colon: {string!r}" for string in strings if re.search(UNAGREEING[locale], string)]
    assert not problems, f"{locale}: see docs/glossary.md\n" + "\n".join(problems)


def test_english_texts_speak_as_we() -> None:
    for _, english, _ in _messages("en"):
        if english in READERS_VOICE:
            continue
        said = re.sub(r"“[^”]*”", "", english)  # a quoted button label is the reader's
        assert not re.search(r"\bI\b|\bme\b", said), f"the bot speaks as the municipality: {english!r}"


def test_municipality_file_follows_the_glossary() -> None:
    municipality = load_municipality(DEFAULT_MUNICIPALITY_FILE)
    texts = {"pl": [], "lt": []}
    for entry in [*municipality.elderships, *municipality.categories, *municipality.news_topics, *municipality.teams]:
        named = entry.name if hasattr(entry, "name") else entry
        texts["pl"].append(named.pl)
        texts["lt"].append(named.lt)
    for template in municipality.templates:
        for locale in ("pl", "lt"):
            texts[locale] += [template.title.get(locale), template.text.get(locale)]
    for locale, rules in RULES.items():
        for pattern, where, why in rules:
            if where is None:
                assert not [t for t in texts[locale] if re.search(pattern, t, re.IGNORECASE)], why
    assert not [t for t in texts["lt"] if re.search(r"\bprašym", t, re.IGNORECASE)], "prašymas is only the kind 'request'"
    assert not [t for t in texts["pl"] if re.search(r"\bwiadomości\b", t, re.IGNORECASE)], "news is Aktualności"
    assert not [t for t in texts["pl"] if re.search(r"\bzgłosze[nń]", t, re.IGNORECASE)], "a case is sprawa"


def test_elderships_are_named_in_the_nominative_and_told_apart() -> None:
    municipality = load_municipality(DEFAULT_MUNICIPALITY_FILE)
    assert municipality.eldership_by_id["nemencine_town"].lt == "Nemenčinės miestas"
    assert municipality.eldership_by_id["nemencine_town"].pl == "Niemenczyn (miasto)"
    for locale in ("pl", "lt"):
        names = [e.get(locale) for e in municipality.elderships]
        assert len(set(names)) == len(names), f"{locale}: two elderships with one name"
    assert [t.lt for t in municipality.news_topics if t.id == "emergencies"] == ["Ekstremaliosios situacijos"]


@pytest.mark.parametrize(
    ("locale", "singular", "plural", "expected"),
    [
        ("lt", "{count} working day overdue", "{count} working days overdue",
         {1: "vėluojama 1 darbo dieną", 21: "vėluojama 21 darbo dieną", 2: "vėluojama 2 darbo dienas", 11: "vėluojama 11 darbo dienų"}),
        ("lt", "Extended by {days} working day: {reason}", "Extended by {days} working days: {reason}",
         {1: "Pratęsta 1 darbo dieną: …", 31: "Pratęsta 31 darbo dieną: …", 5: "Pratęsta 5 darbo dienas: …", 10: "Pratęsta 10 darbo dienų: …"}),
        ("pl", "Extended by {days} working day: {reason}", "Extended by {days} working days: {reason}",
         {1: "Przedłużono o 1 dzień roboczy: …", 2: "Przedłużono o 2 dni robocze: …", 5: "Przedłużono o 5 dni roboczych: …",
          22: "Przedłużono o 22 dni robocze: …", 12: "Przedłużono o 12 dni roboczych: …"}),
        ("pl", "A case can be reopened within {days} day of closing.", "A case can be reopened within {days} days of closing.",
         {1: "Sprawę można wznowić w ciągu 1 dnia od jej zamknięcia.", 30: "Sprawę można wznowić w ciągu 30 dni od jej zamknięcia."}),
    ],
)  # fmt: skip
def test_numbers_agree(locale: str, singular: str, plural: str, expected: dict[int, str]) -> None:
    translations = Translations.load(str(LOCALES_DIR), [locale], "bot")
    for n, text in expected.items():
        assert translations.ngettext(singular, plural, n).format(count=n, days=n, reason="…") == text
