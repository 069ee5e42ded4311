"""Cutting Telegram HTML to a length as Telegram counts it (the visible text, in UTF-16 units):
the result always parses (the emulator's parser, as strict as Telegram's) and fits."""

import random

import pytest

from bot.sandbox.html import parse_html, utf16_len
from bot.sandbox.spec import TEXT_LIMIT, formatted
from bot.services.html_text import truncate_html, visible_length

NESTED = '<b>Bold <i>and italic <a href="https://vilnius-r.lt/?a=1&amp;b=2">a link</a> more</i> end</b> tail'


def _visible(html: str) -> str:
    return parse_html(html)[0]


def test_what_fits_is_unchanged() -> None:
    assert truncate_html(NESTED, 100) == NESTED
    assert truncate_html("a &amp; b", 5) == "a &amp; b"  # "a & b": 5, though the source has 9 characters
    assert visible_length("<b>😀</b> &lt;") == utf16_len("😀 <") == 4


def test_nested_tags_are_closed_in_order() -> None:
    cut = truncate_html(NESTED, 22)
    # "Bold and italic a lin" fits 21 + "…": back to the space, not inside "link".
    assert cut == '<b>Bold <i>and italic <a href="https://vilnius-r.lt/?a=1&amp;b=2">a…</a></i></b>'
    text, entities = parse_html(cut)
    assert text == "Bold and italic a…"
    assert [e["type"] for e in entities] == ["bold", "italic", "text_link"]


def test_a_link_cut_in_its_text_stays_a_link() -> None:
    cut = truncate_html('<a href="https://x.lt/?q=1&amp;r=2">abcdefghijklmnop</a>', 10)
    assert cut == '<a href="https://x.lt/?q=1&amp;r=2">abcdefghi…</a>'
    assert parse_html(cut)[1] == [
        {"type": "text_link", "url": "https://x.lt/?q=1&amp;r=2", "offset": 0, "length": 10}
    ]


def test_entities_are_never_split() -> None:
    source = "&amp;" * 10  # ten visible characters
    for limit in range(1, 10):
        cut = truncate_html(source, limit)
        assert cut == "&amp;" * (limit - 1) + "…"
        assert _visible(cut) == "&" * (limit - 1) + "…"
    assert _visible(truncate_html("x &#128512; &#x1F600; &lt;tag&gt;", 5)) == "x 😀…"


def test_emoji_count_two_and_are_never_halved() -> None:
    source = "😀" * 10  # 20 UTF-16 units
    cut = truncate_html(source, 8)
    assert cut == "😀" * 3 + "…" and utf16_len(_visible(cut)) == 7  # a fourth would make 9
    # Sequences stay whole: a skin tone with its hand, a family with its joiners.
    assert truncate_html("ab 👍🏽 cd", 6) == "ab…"  # not "ab 👍…"
    assert truncate_html("ab 👍🏽 cd", 9) == "ab 👍🏽…"
    assert truncate_html("ab 👨‍👩‍👧 cd", 9) == "ab…"
    assert truncate_html('<tg-emoji emoji-id="5368324170671202286">👍</tg-emoji> custom', 2) == "…"


def test_tags_left_empty_by_the_cut_are_dropped() -> None:
    assert truncate_html("abcdef <b><i>ghijkl</i></b>", 7) == "abcdef…"
    assert (
        truncate_html("<blockquote>line one\nline two</blockquote>", 10)
        == "<blockquote>line one…</blockquote>"
    )


@pytest.mark.parametrize("seed", range(40))
def test_random_announcements_always_parse_and_fit(seed: int) -> None:
    rng = random.Random(seed)
    words = [
        "Zebranie",
        "mieszkańców",
        "&amp;",
        "&lt;b&gt;",
        "😀",
        "👨‍👩‍👧",
        "ąčęėįšųūž",
        "e\u0301",
        "\n",
        "2026-12-01",
    ]
    tags = [
        ("<b>", "</b>"),
        ("<i>", "</i>"),
        ("<u>", "</u>"),
        ("<s>", "</s>"),
        ("<code>", "</code>"),
        ("<tg-spoiler>", "</tg-spoiler>"),
        ('<a href="https://vilnius-r.lt/?a=1&amp;b=2">', "</a>"),
        ('<span class="tg-spoiler">', "</span>"),
        ("<blockquote expandable>", "</blockquote>"),
    ]

    def fragment(depth: int) -> str:
        parts = []
        for _ in range(rng.randint(1, 6)):
            if depth < 3 and rng.random() < 0.3:
                opening, closing = rng.choice(tags)
                parts.append(opening + fragment(depth + 1) + closing)
            else:
                parts.append(rng.choice(words))
        return " ".join(parts)

    source = "\n\n".join(fragment(0) for _ in range(rng.randint(20, 200)))
    parse_html(source)  # the material is valid to begin with
    for limit in (TEXT_LIMIT, 1024, rng.randint(2, 400)):
        cut = truncate_html(source, limit)
        text, _ = parse_html(cut)  # raises if the HTML were broken
        assert utf16_len(text) <= limit
        if visible_length(source) > limit:
            assert text.endswith("…")
            formatted(cut, "HTML", limit)  # the emulator's length check, as for sendMessage
        else:
            assert cut == source
