"""Telegram HTML (parse_mode="HTML") measured and cut as Telegram measures it.

Telegram's limits (4096 for a message, 1024 for a caption) count the text after entity parsing,
in UTF-16 code units: tags count nothing, "&amp;" counts one, an emoji outside the BMP counts two.
Cutting the HTML source with a slice can split a tag or an entity, or leave a tag open, and
Telegram then refuses the whole message ("can't parse entities").
"""

from __future__ import annotations

import re
import unicodedata
from html import unescape

MESSAGE_LIMIT = 4096
ELLIPSIS = "…"
WORD_BACKOFF = 30  # characters given up at most to cut between words

# The pieces Telegram's parser reads: a tag (up to the next ">"), an entity, or one character.
_PIECE = re.compile(r"<[^>]*>|&(?:lt|gt|amp|quot|#[0-9]{1,7}|#x[0-9a-fA-F]{1,6});|.", re.DOTALL)


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _visible(piece: str) -> str:
    if _is_tag(piece):
        return ""
    return unescape(piece) if piece.startswith("&") and len(piece) > 1 else piece


def visible_length(source: str) -> int:
    """The length Telegram counts for `source`: its text after entity parsing, in UTF-16 units."""
    return sum(utf16_len(_visible(piece)) for piece in _PIECE.findall(source))


def truncate_html(source: str, limit: int = MESSAGE_LIMIT, ellipsis: str = ELLIPSIS) -> str:
    """`source` unchanged if its visible length is within `limit`; else cut so that it is, with
    `ellipsis` at the end. Cuts only between characters (never inside a tag, an entity, a
    surrogate pair or an emoji sequence), drops tags the cut leaves empty, closes those left open."""
    pieces = _PIECE.findall(source)
    if sum(utf16_len(_visible(piece)) for piece in pieces) <= limit:
        return source
    budget = limit - utf16_len(ellipsis)
    kept: list[str] = []
    open_tags: list[tuple[str, int]] = []  # (name, its index in kept), innermost last
    cut_before = ""  # the first piece left out
    for piece in pieces:
        if _is_tag(piece):
            if piece.startswith("</"):
                if open_tags:
                    open_tags.pop()
            else:
                open_tags.append((_tag_name(piece), len(kept)))
            kept.append(piece)
            continue
        size = utf16_len(_visible(piece))
        if size > budget:
            cut_before = piece
            break
        budget -= size
        kept.append(piece)
    # A custom emoji is whole or not at all; so is a sequence such as 👍🏽 or 👨‍👩‍👧.
    for depth, (name, index) in enumerate(open_tags):
        if name == "tg-emoji":
            del kept[index:], open_tags[depth:]
            break
    while kept and not _is_tag(kept[-1]) and (kept[-1] == _ZWJ or _joins(cut_before)):
        cut_before = kept.pop()
    # Between words if a space is near (within this run of text), rather than inside one.
    if cut_before and not cut_before.isspace():
        for back in range(1, min(WORD_BACKOFF, len(kept)) + 1):
            if _is_tag(kept[-back]):
                break
            if kept[-back].isspace():
                del kept[-back:]
                break
    # Tags opened right at the cut would stay empty, and whitespace before "…" looks odd.
    while kept and (kept[-1].isspace() or (_is_tag(kept[-1]) and not kept[-1].startswith("</"))):
        if not kept.pop().isspace() and open_tags:
            open_tags.pop()
    return "".join(kept) + ellipsis + "".join(f"</{name}>" for name, _ in reversed(open_tags))


_ZWJ = "\u200d"


def _joins(piece: str) -> bool:
    """A character that belongs to the one before it: a combining mark, a variation selector,
    a skin tone, or the joiner of an emoji sequence."""
    return len(piece) == 1 and (
        piece in (_ZWJ, "\ufe0e", "\ufe0f")
        or 0x1F3FB <= ord(piece) <= 0x1F3FF
        or unicodedata.combining(piece) > 0
    )


def _is_tag(piece: str) -> bool:
    return piece.startswith("<") and piece.endswith(">")


def _tag_name(tag: str) -> str:
    inside = tag[1:-1].strip()
    return inside.split(maxsplit=1)[0].lower() if inside else ""
