"""docs/glossary.md, enforced: one term per concept, the municipality's voice, numbers that agree."""

import re

import pytest
from babel.messages.pofile import read_po
from babel.support import Translations

from bot.municipality import LocalizedName, load_municipality
from bot.settings import DEFAULT_MUNICIPALITY_FILE, LOCALES_DIR

# Checked word by word in every msgstr of the locale (and in the municipality file): (pattern not to use, why).
# Each pattern matches the wrong word itself, so a right word elsewhere in the string does not excuse it.
RULES: dict[str, list[tuple[str, str]]] = {
    "lt": [
        (r"valdinink", "a clerk is specialistas or savivaldybės darbuotojas"),
        (
            r"\bpranešim\w*+(?! apie problem)",
            "pranešimas is only the kind 'pranešimas apie problemą'; an announcement is skelbimas",
        ),
        (r"\bačiū\b", "the municipality thanks with Dėkojame"),
        (r"\batvir\w* kreipim|\batvirų\b", "open cases are nebaigti nagrinėti kreipimaisi"),
        (r"kreipimųsi stalas", "the desk is Kreipimųsi valdymas"),
        (r"kategorij", "a category is sritis"),
        (r"(?<!„)\bTelegram\b(?!“|\.org)", "the name is quoted: „Telegram“"),
        (
            r"\b(galiu|negaliu|laukiu|veikiu|nesupratau|neatpažįstu|nežinau)\b",
            "the bot speaks as the municipality: we",
        ),
        (r"\bpavėluot", "overdue is praleistas terminas or vėluojama (pavėluotas reads as submitted late)"),
        (r"\bnepavėluot", "overdue is praleistas terminas or vėluojama"),
        (r"\beskaluot", "escalated is pranešta vadovybei"),
        (r"\bsutik\w* su informacija", "the privacy notice is read (susipažinkite su), not consented to"),
        (
            r"informacij\w* apie (?!asmens )duomenų apsaug|\bprivatum\w*+(?! politik)",
            "the notice is informacija apie asmens duomenų apsaugą",
        ),
        (
            r"\b(šio |to )?kreipimosi (asmuo|gyventojas)|\bKreipimosi \{number\} gyventojas",
            "the resident who submitted the case (kreipimąsi pateikęs gyventojas)",
        ),
        (r"\bapraš(as|o|ą|e|u)\b", "a description is aprašymas"),
        (r"\bGedimas pašalintas", "the fix of any problem is Problema išspręsta"),
    ],
    "pl": [
        (
            r"\bzgłosze[nń]\w*+(?! problem)",
            "zgłoszenie is only the kind 'zgłoszenie problemu'; a case is sprawa",
        ),
        (r"zadowolony/zadowolona|\w+\(a\)", "phrase around gendered forms"),
        (r"\bdotkn", "residents choose (wybrać), they do not touch"),
        (r"\bzmień coś\b", "the button is Popraw dane"),
        (
            r"\b(mogę|czekam|nie znam|rozumiem|będę|działam|rozpoznaję|przepraszam|odpowiadam)\b",
            "the bot speaks as the municipality: we",
        ),
        (r"\bprzeterminowan", "overdue is po terminie"),
        (r"\bzaległoś", "open cases are otwarte sprawy"),
        (r"\beskal", "escalated is powiadomiono kierownictwo"),
        (r"^(Zapisano|Wypisano)\.$", "a subscription is Subskrypcja włączona / wyłączona"),
        (r"<b>Administrator:", "the controller is Administrator danych"),
        (
            r"\bnumer\w* (Pana/Pani )?konta",
            "a Telegram account has an identyfikator, not a (bank) account number",
        ),
        (
            r"informacj\w* o ochronie danych(?! osobowych)|(?<!polityką )(?<!polityki )\bprywatnoś",
            "the notice is informacja o ochronie danych osobowych",
        ),
        (r"„Telegram\w*”", "Telegram is not quoted in Polish"),
    ],
}

# Where the English says "request" (the kind), Lithuanian may say prašymas; nowhere more often.
KIND_COUNT = {"lt": (r"\bprašym", r"\brequest"), "pl": (r"\bwniosk|\bwniosek", r"\brequest|\bapplication")}

# Where the English says "news", Polish says aktualności; wiadomość is a chat message.
NEWS = {"pl": (r"\bwiadomości\b", r"\bnews\b")}

# Buttons and echoes of the reader's own choice speak in the reader's voice ("I agree", "Not sure").
READERS_VOICE = {
    "No, thank you",
    "✅ Noted",
    "🤷 Not sure / whole district",
    "whole district / not sure",
    "✅ Confirm",
    "🙋 Take",
    "➕ This affects me too",
    "➕ Affects me too ({index})",
}

# A number that varies, followed by a noun that must agree with it: plural forms, or phrase it as "Liczba znaków: {n}".
UNAGREEING = {
    "pl": r"\{(count|days|length)\} (znak|dni|dzie|plik|spraw|pyta|odpowied)",
    "lt": r"\{(count|days|length)\} (darbo |atsakymo )?(dien|simbol|fail|kreipim|klausim|variant)",
}


def _wrong_words(locale: str, string: str, english: str = "") -> list[str]:
    """What in `string` breaks the glossary, word by word (a quoted label is the reader's own voice)."""
    if english in READERS_VOICE:
        return []
    found = []
    for pattern, why in RULES[locale]:
        said = re.sub(r"„[^“”]*[“”]", "", string) if why.endswith(": we") else string
        found += [why for line in said.split("\n") if re.search(pattern, line, re.IGNORECASE | re.MULTILINE)]
    if locale == "lt":  # each atnaujinti names what is renewed: the handling, within three words
        words = re.findall(r"\w+", string)
        for i, w in enumerate(words):
            if w.lower().startswith("atnaujin") and not any(
                x.lower().startswith("nagrinėjim") for x in words[max(0, i - 3) : i + 4]
            ):
                found.append(f"reopen is atnaujinti (kreipimosi) nagrinėjimą, not {w} alone")
    if locale in KIND_COUNT:
        word, kind = KIND_COUNT[locale]
        if locale == "lt" and len(re.findall(word, string, re.IGNORECASE)) > len(
            re.findall(kind, english, re.IGNORECASE)
        ):
            found.append("prašymas is only the kind 'request'; a case is kreipimasis")
    if (
        locale in NEWS
        and english
        and re.search(NEWS[locale][1], english, re.IGNORECASE)
        and re.search(NEWS[locale][0], string, re.IGNORECASE)
    ):
        found.append("news is Aktualności; wiadomość is a chat message")
    return found


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
        problems += [
            f"{why}: {string!r}" for string in strings for why in _wrong_words(locale, string, english)
        ]
        if not isinstance(message.id, tuple):
            problems += [
                f"use plural forms or put the number after a colon: {string!r}"
                for string in strings
                if re.search(UNAGREEING[locale], string)
            ]
    assert not problems, f"{locale}: see docs/glossary.md\n" + "\n".join(problems)


def test_english_texts_speak_as_we() -> None:
    for _, english, _ in _messages("en"):
        if english in READERS_VOICE:
            continue
        said = re.sub(r"“[^”]*”", "", english)  # a quoted button label is the reader's
        assert not re.search(r"\bI\b|\bme\b", said), f"the bot speaks as the municipality: {english!r}"


def test_municipality_file_follows_the_glossary() -> None:
    municipality = load_municipality(DEFAULT_MUNICIPALITY_FILE)
    texts: dict[str, list[str]] = {"pl": [], "lt": []}
    for entry in [
        *municipality.elderships,
        *municipality.categories,
        *municipality.news_topics,
        *municipality.teams,
        *municipality.objectives,
        *municipality.places,
    ]:
        named = entry.name if hasattr(entry, "name") else entry
        assert isinstance(named, LocalizedName)
        texts["pl"].append(named.pl)
        texts["lt"].append(named.lt)
    for template in municipality.templates:
        for locale in ("pl", "lt"):
            texts[locale] += [template.title.get(locale), template.text.get(locale)]
    for locale in RULES:
        problems = [
            f"{why}: {text!r}" for text in texts[locale] if text for why in _wrong_words(locale, text)
        ]
        assert not problems, f"{locale}: see docs/glossary.md\n" + "\n".join(problems)
    assert not [t for t in texts["lt"] if re.search(r"\bprašym", t, re.IGNORECASE)], (
        "prašymas is only the kind 'request'"
    )
    assert not [t for t in texts["pl"] if re.search(r"\bwiadomości\b", t, re.IGNORECASE)], (
        "news is Aktualności"
    )
    assert not [t for t in texts["pl"] if re.search(r"\bzgłosze[nń]", t, re.IGNORECASE)], "a case is sprawa"


def test_elderships_are_named_in_the_nominative_and_told_apart() -> None:
    municipality = load_municipality(DEFAULT_MUNICIPALITY_FILE)
    assert municipality.eldership_by_id["nemencine_town"].lt == "Nemenčinės miestas"
    assert municipality.eldership_by_id["nemencine_town"].pl == "Niemenczyn (miasto)"
    for locale in ("pl", "lt"):
        names = [e.get(locale) for e in municipality.elderships]
        assert len(set(names)) == len(names), f"{locale}: two elderships with one name"
    assert [t.lt for t in municipality.news_topics if t.id == "emergencies"] == ["Ekstremalieji įvykiai"]


@pytest.mark.parametrize(
    ("locale", "singular", "plural", "expected"),
    [
        (
            "lt",
            "{count} working day overdue",
            "{count} working days overdue",
            {
                1: "vėluojama 1 darbo dieną",
                21: "vėluojama 21 darbo dieną",
                2: "vėluojama 2 darbo dienas",
                11: "vėluojama 11 darbo dienų",
            },
        ),
        (
            "lt",
            "Extended by {days} working day: {reason}",
            "Extended by {days} working days: {reason}",
            {
                1: "Pratęsta 1 darbo dieną: …",
                31: "Pratęsta 31 darbo dieną: …",
                5: "Pratęsta 5 darbo dienas: …",
                10: "Pratęsta 10 darbo dienų: …",
            },
        ),
        (
            "pl",
            "Extended by {days} working day: {reason}",
            "Extended by {days} working days: {reason}",
            {
                1: "Przedłużono o 1 dzień roboczy: …",
                2: "Przedłużono o 2 dni robocze: …",
                5: "Przedłużono o 5 dni roboczych: …",
                22: "Przedłużono o 22 dni robocze: …",
                12: "Przedłużono o 12 dni roboczych: …",
            },
        ),
        (
            "pl",
            "A case can be reopened within {days} day of closing.",
            "A case can be reopened within {days} days of closing.",
            {
                1: "Sprawę można wznowić w ciągu 1 dnia od jej zamknięcia.",
                30: "Sprawę można wznowić w ciągu 30 dni od jej zamknięcia.",
            },
        ),
    ],
)
def test_numbers_agree(locale: str, singular: str, plural: str, expected: dict[int, str]) -> None:
    translations = Translations.load(str(LOCALES_DIR), [locale], "bot")
    for n, text in expected.items():
        assert translations.ngettext(singular, plural, n).format(count=n, days=n, reason="…") == text


# A placeholder that holds a number, and the words after it that are not a noun agreeing with it.
NUMBER = r"count|max|min|length|days|hours|minutes|questions|total|\w+_count"
NOT_A_NOUN = r"to|of|or|and|more|min|KB|MB|open|met|overdue|×|·|–"  # "{count} open": an adjective, said as "open: {count}"


def test_every_count_before_a_noun_takes_plural_forms() -> None:
    """A number that a noun follows in English ("{max} characters", "{count} times") must be a plural
    entry: the noun agrees with it in Polish and Lithuanian (1 znak, 2 znaki, 5 znaków). A number
    that stands alone ("Files: {count}") may stay a single form."""
    single = [
        english
        for message, english, _ in _messages("en")
        if not isinstance(message.id, tuple)
        and re.search(rf"\{{({NUMBER})\}} (?!(?:{NOT_A_NOUN})\b)[a-z]", english)
    ]
    assert not single, "use _(singular, plural, n) for these:\n" + "\n".join(single)
