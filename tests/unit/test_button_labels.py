"""Inline buttons that fit: at most 24 visible characters in every language (two share a row, and
Telegram cuts a longer label). Checked for the catalog texts the code puts on inline buttons and for
the names the municipality file puts there (elderships, categories)."""

import ast
import unicodedata

import pytest
from babel.messages.pofile import read_po

from bot.config import DEFAULT_MUNICIPALITY_FILE, LOCALES_DIR, PROJECT_DIR, load_municipality
from bot.services.texts import LANGUAGE_NAMES

LIMIT = 24
LOCALES = ("pl", "lt", "en")
_GETTEXT = {"_", "__"}

# Put on inline buttons by a helper the keyboard calls (texts.kind_label), where the scan below does not look.
INDIRECT = {"Request", "Complaint", "Report of a problem"}

# Labels with a row of their own (Telegram shows about 32 characters there): checked against that.
ONE_A_ROW = {"🤷 Not sure / whole district": 32}

# Filled in before measuring. A label with another placeholder ({name}: an eldership) has a row of its own.
SAMPLES = {"language": max(LANGUAGE_NAMES.values(), key=len), "count": "9999"}


def visible_length(label: str) -> int:
    """Characters as a reader counts them: an emoji with its variation selector is one."""
    return sum(1 for c in label if unicodedata.category(c) not in ("Mn", "Cf") and c not in "\ufe0e\ufe0f")


def _literals(node: ast.AST) -> set[str]:
    """The msgids of _("…") and __("…") calls under `node`."""
    found = set()
    for n in ast.walk(node):
        gettext_call = isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in _GETTEXT and n.args
        if gettext_call and isinstance(n.args[0], ast.Constant) and isinstance(n.args[0].value, str):
            found.add(n.args[0].value)
    return found


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def inline_label_msgids() -> set[str]:
    """What the code puts on inline buttons: the texts in `.button(text=…)` of a function that builds an
    InlineKeyboardBuilder, the variables and loops that text is taken from, module-level lazy texts it
    names (SKIP, ACTION_LABELS), and the `extra=[(label, data)]` buttons passed to a keyboard helper."""
    found: set[str] = set(INDIRECT)
    for folder in ("bot", "flows"):
        for path in sorted((PROJECT_DIR / folder).rglob("*.py")):
            if "sandbox" in path.parts:
                continue
            tree = ast.parse(path.read_text())
            constants = {
                statement.targets[0].id: _literals(statement.value)
                for statement in tree.body
                if isinstance(statement, ast.Assign) and len(statement.targets) == 1 and isinstance(statement.targets[0], ast.Name)
            }
            for call in ast.walk(tree):
                if isinstance(call, ast.Call):
                    found |= {t for k in call.keywords if k.arg == "extra" for t in _literals(k.value)}
            for function in ast.walk(tree):
                if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                nodes = list(ast.walk(function))
                if "InlineKeyboardBuilder" not in _names(function):
                    continue
                texts = [
                    k.value
                    for n in nodes
                    if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "button"
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
    for expected in ("✖ Cancel", "↩ Reopen", "🔀 Pass to another team", "⏭ Skip", "✏️ Change something", "↩ Reopen the case", "Partly", "Description"):
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
            try:
                shown = label.format(**SAMPLES)
            except KeyError:
                continue  # a name of its own, in a row of its own
            if visible_length(shown) > ONE_A_ROW.get(msgid, LIMIT):
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
    assert visible_length("↩ Atnaujinti nagrinėjimą") == 24
