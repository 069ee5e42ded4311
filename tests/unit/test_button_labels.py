"""Inline buttons that fit: at most 24 visible characters in every language (two share a row, and
Telegram cuts a longer label). Checked for the catalog texts the code puts on inline buttons, with
their placeholders filled in by the longest names (an eldership, a team), for the reply keyboards (the
main menu, the intake's buttons) and for the names the municipality file puts on buttons (elderships,
categories, news topics, with the mark that shows a chosen one)."""

import ast
import unicodedata

import pytest
from babel.messages.pofile import read_po

from bot.municipality import load_municipality
from bot.services.texts import LANGUAGE_NAMES
from bot.settings import DEFAULT_MUNICIPALITY_FILE, LOCALES_DIR, PROJECT_DIR

LIMIT = 24
LOCALES = ("pl", "lt", "en")
_GETTEXT = {"_", "__"}

# Put on inline buttons by a helper the keyboard calls (texts.kind_label), where the scan below does not look.
INDIRECT = {"Request", "Complaint", "Report of a problem"}

# Labels with a row of their own (Telegram shows about 32 characters there): checked against that.
ONE_A_ROW = {
    "🤷 Not sure / whole district": 32,
    "🔕 Stop following my eldership": 32,
    "🔔 Follow my eldership's projects": 32,
}

# A label with a name filled in ({name}, {eldership}: the longest eldership) has a row of its own.
ROW = 32


def samples(locale: str) -> dict[str, str]:
    """What fills a label's placeholders before it is measured: the longest of each kind of name."""
    municipality = load_municipality(DEFAULT_MUNICIPALITY_FILE)
    longest = max((e.get(locale) for e in municipality.elderships), key=len)
    team = max((t.name.get(locale) for t in municipality.teams), key=len, default="")
    return {
        "language": max(LANGUAGE_NAMES.values(), key=len),
        "count": "9999",
        "name": longest,
        "eldership": longest,
        "team": team,
    }


class _Filled(dict[str, str]):
    """Any other placeholder is a number: two digits."""

    def __missing__(self, key: str) -> str:
        return "99"


# Reply keyboards (under the input field): two to a row in the main menu, the rest a row each.
REPLY_ONE_A_ROW = {
    "💡 Suggest an improvement",
    "⏭ Skip",
    "📍 Send my location",
    "📞 Share my phone number",
    "💬 Answer here in Telegram",
}

# Marks put before a news topic's name: "✅"/"➕" for a resident (a row each), "● " for the staff's audience (two to a row when they fit).
TOPIC_MARKS = ("✅ ", "➕ ")


def visible_length(label: str) -> int:
    """Characters as a reader counts them: an emoji with its variation selector is one."""
    return sum(1 for c in label if unicodedata.category(c) not in ("Mn", "Cf") and c not in "\ufe0e\ufe0f")


def _literals(node: ast.AST) -> set[str]:
    """The msgids of _("…") and __("…") calls under `node`."""
    found: set[str] = set()
    for n in ast.walk(node):
        if (
            isinstance(n, ast.Call)
            and isinstance(n.func, ast.Name)
            and n.func.id in _GETTEXT
            and n.args
            and isinstance(n.args[0], ast.Constant)
            and isinstance(n.args[0].value, str)
        ):
            found.add(n.args[0].value)
    return found


def _names(node: ast.AST) -> set[str]:
    """The names a label may come from; not those only counted (`len(CHECKLIST)` numbers the buttons)."""
    counted = {
        id(arg)
        for n in ast.walk(node)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "len"
        for arg in n.args
    }
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and id(n) not in counted}


# Keywords whose texts are buttons: a keyboard helper's `extra=[(label, data)]`, and a form's labels
# (flows/forms.py: a step's `label=`, the summary's `submit_label=`, the eldership step's `whole_district=`).
BUTTON_KEYWORDS = {"extra", "label", "submit_label", "whole_district"}


def inline_label_msgids() -> set[str]:
    """What the code puts on inline buttons: the texts in `.button(text=…)` of a function that builds an
    InlineKeyboardBuilder, the variables and loops that text is taken from, module-level lazy texts it
    names (SKIP, ACTION_LABELS), and the texts of `BUTTON_KEYWORDS` in any call."""
    found: set[str] = set(INDIRECT)
    for folder in ("bot", "flows"):
        for path in sorted((PROJECT_DIR / folder).rglob("*.py")):
            if "sandbox" in path.parts:
                continue
            tree = ast.parse(path.read_text())
            constants = {
                statement.targets[0].id: _literals(statement.value)
                for statement in tree.body
                if isinstance(statement, ast.Assign)
                and len(statement.targets) == 1
                and isinstance(statement.targets[0], ast.Name)
            }
            for call in ast.walk(tree):
                if isinstance(call, ast.Call):
                    found |= {
                        t for k in call.keywords if k.arg in BUTTON_KEYWORDS for t in _literals(k.value)
                    }
            for function in ast.walk(tree):
                if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                nodes = list(ast.walk(function))
                if "InlineKeyboardBuilder" not in _names(function):
                    continue
                texts = [
                    k.value
                    for n in nodes
                    if isinstance(n, ast.Call)
                    and isinstance(n.func, ast.Attribute)
                    and n.func.attr == "button"
                    for k in n.keywords
                    if k.arg == "text"
                ]
                sources: list[ast.AST] = list(texts)
                used = set().union(*map(_names, texts)) if texts else set()
                for _ in range(2):  # label = …; for value, label in (…); for name in names, names = […]
                    for n in nodes:
                        if isinstance(n, ast.Assign) and any(_names(t) & used for t in n.targets):
                            sources.append(n.value)
                            used |= _names(n.value)
                        if isinstance(n, ast.For) and _names(n.target) & used:
                            sources.append(n.iter)
                            used |= _names(n.iter)
                for source in sources:
                    found |= _literals(source)
                found |= {t for name in used if name in constants for t in constants[name]}
    return found


def _catalog(locale: str):
    with (LOCALES_DIR / locale / "LC_MESSAGES" / "bot.po").open("rb") as fh:
        return read_po(fh, locale=locale)


def test_the_scan_finds_the_keyboards() -> None:
    labels = inline_label_msgids()
    for expected in (
        "✖️ Cancel",
        "↩️ Reopen",
        "🔀 Pass to another team",
        "⏭ Skip",
        "✏️ Change something",
        "↩️ Reopen the case",
        "Partly",
        "Description",
        "✅ Submit",
        "🗺 Whole district",
    ):
        assert expected in labels


@pytest.mark.parametrize("locale", LOCALES)
def test_catalog_button_labels_fit(locale: str) -> None:
    catalog = _catalog(locale)
    too_long = []
    for msgid in sorted(inline_label_msgids()):
        message = catalog.get(msgid)
        assert message is not None, f"{msgid!r} is not in the {locale} catalog"
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        for label in [s for s in strings if s] or ids:  # English: the msgid itself
            shown = label.format_map(_Filled(samples(locale)))
            named = shown != label.format_map(
                _Filled({**samples(locale), "name": "", "eldership": "", "team": ""})
            )
            if visible_length(shown) > ONE_A_ROW.get(msgid, ROW if named else LIMIT):
                too_long.append(f"{shown!r} ({visible_length(shown)})")
    assert not too_long, f"{locale}: inline button labels over {LIMIT} characters: {too_long}"


@pytest.mark.parametrize("locale", LOCALES)
def test_municipality_names_on_buttons_fit(locale: str) -> None:
    municipality = load_municipality(DEFAULT_MUNICIPALITY_FILE)
    names = [e.get(locale) for e in (*municipality.elderships, *municipality.categories)]
    too_long = [f"{name!r} ({visible_length(name)})" for name in names if visible_length(name) > LIMIT]
    assert not too_long, f"{locale}: shorten in {DEFAULT_MUNICIPALITY_FILE.name}: {too_long}"


def test_visible_length_counts_an_emoji_once() -> None:
    assert visible_length("⚙️ W toku") == 8
    assert visible_length("↩️ Atnaujinti nagrinėjimą") == 24


def reply_label_msgids() -> set[str]:
    """What the code puts on reply keyboards: the module-level lazy texts (and tuples of them, MAIN_MENU)
    that a function building a ReplyKeyboardMarkup names."""
    found: set[str] = set()
    for folder in ("bot", "flows"):
        for path in sorted((PROJECT_DIR / folder).rglob("*.py")):
            if "sandbox" in path.parts:
                continue
            tree = ast.parse(path.read_text())
            constants: dict[str, set[str]] = {}
            for statement in tree.body:
                if (
                    isinstance(statement, ast.Assign)
                    and len(statement.targets) == 1
                    and isinstance(statement.targets[0], ast.Name)
                ):
                    constants[statement.targets[0].id] = _literals(statement.value) | {
                        t for name in _names(statement.value) for t in constants.get(name, set())
                    }
            for function in ast.walk(tree):
                if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef) and _names(function) & {
                    "ReplyKeyboardMarkup",
                    "ReplyKeyboardBuilder",
                }:
                    found |= {t for name in _names(function) for t in constants.get(name, set())} | _literals(
                        function
                    )
    return found


def test_the_scan_finds_the_reply_keyboards() -> None:
    labels = reply_label_msgids()
    for expected in (
        "📝 New case",
        "💡 Suggest an improvement",
        "💬 Answer here in Telegram",
        "📍 Send my location",
    ):
        assert expected in labels


@pytest.mark.parametrize("locale", LOCALES)
def test_reply_keyboard_labels_fit(locale: str) -> None:
    catalog = _catalog(locale)
    too_long = []
    for msgid in sorted(reply_label_msgids()):
        message = catalog.get(msgid)
        assert message is not None, f"{msgid!r} is not in the {locale} catalog"
        label = message.string or msgid
        if visible_length(label) > (ROW if msgid in REPLY_ONE_A_ROW else LIMIT):
            too_long.append(f"{label!r} ({visible_length(label)})")
    assert not too_long, f"{locale}: reply keyboard labels too long: {too_long}"


@pytest.mark.parametrize("locale", LOCALES)
def test_news_topics_fit(locale: str) -> None:
    municipality = load_municipality(DEFAULT_MUNICIPALITY_FILE)
    names = [t.get(locale) for t in municipality.news_topics]
    too_long = [f"{name!r} ({visible_length(name)})" for name in names if visible_length(name) > LIMIT]
    assert not too_long, f"{locale}: shorten the news topics in {DEFAULT_MUNICIPALITY_FILE.name}: {too_long}"
    marked = [mark + name for name in names for mark in TOPIC_MARKS if visible_length(mark + name) > ROW]
    assert not marked, marked


# Symbols that show as grey text unless a variation selector asks for the colour emoji (U+FE0F).
TEXT_STYLE = "↩↪✍✖➡⬅✔✏⚙⚠"


@pytest.mark.parametrize("locale", LOCALES)
def test_button_emoji_are_all_colour(locale: str) -> None:
    """One row, one style: "↪️" beside "↩" or "✖" beside "✅" looks like two fonts."""
    catalog = _catalog(locale)
    grey = []
    for msgid in sorted(inline_label_msgids() | reply_label_msgids()):
        message = catalog.get(msgid)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        grey += [
            label
            for label in [*ids, *strings]
            if label
            and any(c in TEXT_STYLE and label[i + 1 : i + 2] != "\ufe0f" for i, c in enumerate(label))
        ]
    assert not grey, f"{locale}: add U+FE0F after the symbol: {grey}"
