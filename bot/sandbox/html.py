"""Telegram's HTML parse mode, as strictly as Telegram: text + entities, or a 400-style error.

Only the tags Telegram documents are allowed; `<`, `>` and `&` in plain text must be written as
`&lt;`, `&gt;` and `&amp;`. Entity offsets and lengths are in UTF-16 code units, like Telegram's.
"""

from __future__ import annotations

import re
from typing import Any

_SIMPLE = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "code": "code",
    "pre": "pre",
    "tg-spoiler": "spoiler",
    "blockquote": "blockquote",
}
_WITH_ATTRIBUTES = {"a", "span", "tg-emoji"}
_ENTITY = re.compile(r"&(lt|gt|amp|quot|#[0-9]{1,7}|#x[0-9a-fA-F]{1,6});")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_ATTRIBUTE = re.compile(r"""\s*([a-zA-Z-]+)\s*(?:=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?""")


class HTMLParseError(ValueError):
    """The text is not valid Telegram HTML; str() is Telegram's description."""


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def parse_html(source: str) -> tuple[str, list[dict[str, Any]]]:
    """Return (plain text, entities) or raise HTMLParseError."""
    out: list[str] = []
    length = 0  # of the output so far, in UTF-16 units
    stack: list[tuple[str, int, dict[str, Any]]] = []
    entities: list[dict[str, Any]] = []
    i = 0
    while i < len(source):
        char = source[i]
        if char == "<":
            end = source.find(">", i)
            if end < 0:
                raise HTMLParseError(
                    f"Can't parse entities: unclosed start tag at byte offset {_offset(source, i)}"
                )
            tag = source[i + 1 : end]
            if tag.startswith("/"):
                name = tag[1:].strip().lower()
                if not stack or stack[-1][0] != name:
                    expected = f'"</{stack[-1][0]}>"' if stack else "nothing"
                    raise HTMLParseError(
                        f'Can\'t parse entities: unmatched end tag at byte offset {_offset(source, i)}, expected {expected}, found "</{name}>"'
                    )
                name, start, entity = stack.pop()
                if length > start:
                    entities.append({**entity, "offset": start, "length": length - start})
            else:
                name, _, rest = tag.partition(" ")
                name = name.strip().lower()
                entity = _open_tag(name, rest, source, i)
                stack.append((name, length, entity))
            i = end + 1
            continue
        if char == "&":
            match = _ENTITY.match(source, i)
            if not match:
                raise HTMLParseError(
                    f"Can't parse entities: character '&' is reserved and must be escaped (byte offset {_offset(source, i)})"
                )
            code = match.group(1)
            char = _NAMED.get(code) or chr(int(code[2:], 16) if code.startswith("#x") else int(code[1:]))
            i = match.end()
        elif char == ">":
            raise HTMLParseError(
                f"Can't parse entities: character '>' is reserved and must be escaped (byte offset {_offset(source, i)})"
            )
        else:
            i += 1
        out.append(char)
        length += utf16_len(char)
    if stack:
        raise HTMLParseError(
            f"Can't parse entities: can't find end tag corresponding to start tag \"{stack[-1][0]}\""
        )
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


def _open_tag(name: str, rest: str, source: str, position: int) -> dict[str, Any]:
    if name in _SIMPLE:
        if name == "blockquote" and "expandable" in rest:
            return {"type": "expandable_blockquote"}
        if name == "pre":
            return {"type": "pre"}
        return {"type": _SIMPLE[name]}
    if name not in _WITH_ATTRIBUTES:
        raise HTMLParseError(
            f'Can\'t parse entities: unsupported start tag "{name}" at byte offset {_offset(source, position)}'
        )
    attributes = {
        m.group(1).lower(): m.group(2) or m.group(3) or m.group(4) or "" for m in _ATTRIBUTE.finditer(rest)
    }
    if name == "a":
        href = attributes.get("href", "")
        if not href:
            raise HTMLParseError("Can't parse entities: a tag without href")
        return {"type": "text_link", "url": href}
    if name == "span":
        if attributes.get("class") != "tg-spoiler":
            raise HTMLParseError(
                f'Can\'t parse entities: unsupported start tag "span" at byte offset {_offset(source, position)}'
            )
        return {"type": "spoiler"}
    emoji = attributes.get("emoji-id", "")
    if not emoji:
        raise HTMLParseError("Can't parse entities: tg-emoji without emoji-id")
    return {"type": "custom_emoji", "custom_emoji_id": emoji}


def _offset(source: str, index: int) -> int:
    return len(source[:index].encode("utf-8"))
