"""Request checking against the machine-readable Bot API (botapi/api.min.json) and its prose limits."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from bot.sandbox.html import HTMLParseError, parse_html, utf16_len

SPEC_FILE = Path(__file__).resolve().parent / "botapi" / "api.min.json"

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
CALLBACK_DATA_LIMIT = 64

# The Bot API the emulator answers as: the description in botapi/ (10.1), plus every field that a
# newer version made required in an object the emulator returns. It must be the version of the
# aiogram that uv.lock holds (tests/unit/test_bot_api_version.py fails when they part): aiogram
# rejects an answer that lacks a field its Bot API requires.
SPOKEN_VERSION = "10.3"
NEWER_REQUIRED_FIELDS: dict[str, dict[str, Any]] = {
    "ChatMemberAdministrator": {"can_send_welcome_messages": False},  # Bot API 10.3
    "ChatAdministratorRights": {"can_send_welcome_messages": False},  # Bot API 10.3
}


class BadRequest(Exception):
    """Answered as Telegram does: HTTP `code` with a description."""

    def __init__(self, description: str, code: int = 400, parameters: dict[str, Any] | None = None) -> None:
        super().__init__(description)
        self.description = description
        self.code = code
        self.parameters = parameters


@dataclass
class Spec:
    methods: dict[str, dict[str, Any]]
    version: str
    unknown_parameters: list[tuple[str, str]] = field(default_factory=list)

    def method(self, name: str) -> dict[str, Any]:
        spec = self.methods.get(name.lower())
        if spec is None:
            raise BadRequest("Not Found", code=404)
        return spec

    def coerce(self, method_name: str, raw: dict[str, Any]) -> dict[str, Any]:
        """Check required parameters and convert form strings to the documented types."""
        spec = self.method(method_name)
        fields = {f["name"]: f for f in spec.get("fields", [])}
        params: dict[str, Any] = {}
        for name, value in raw.items():
            info = fields.get(name)
            if info is None:
                # Reported, not rejected: aiogram may know a newer Bot API than the file.
                self.unknown_parameters.append((spec["name"], name))
                params[name] = value
                continue
            params[name] = _coerce(name, value, info["types"])
        for name, info in fields.items():
            if info["required"] and params.get(name) in (None, ""):
                raise BadRequest(f'Bad Request: parameter "{name}" is required')
        return params


@cache
def load_spec() -> Spec:
    data = json.loads(SPEC_FILE.read_text(encoding="utf-8"))
    return Spec(
        methods={name.lower(): body for name, body in data["methods"].items()}, version=data["version"]
    )


def _coerce(name: str, value: Any, types: list[str]) -> Any:
    if not isinstance(value, str):
        return value  # JSON bodies arrive typed; uploaded files arrive as FileField
    if "Integer" in types:
        try:
            return int(value)
        except ValueError:
            if "String" in types:
                return value
            raise BadRequest(f"Bad Request: invalid {name} specified") from None
    if types == ["Float"] or types == ["Float number"]:
        try:
            return float(value)
        except ValueError:
            raise BadRequest(f"Bad Request: invalid {name} specified") from None
    if types == ["Boolean"]:
        if value.lower() in ("true", "1"):
            return True
        if value.lower() in ("false", "0"):
            return False
        raise BadRequest(f"Bad Request: invalid {name} specified")
    if types == ["String"] or "InputFile" in types:
        return value
    # Objects and arrays travel JSON-serialised in form bodies.
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        raise BadRequest(f"Bad Request: can't parse {name} JSON object") from None


def formatted(
    text: str, parse_mode: str | None, limit: int, *, what: str = "message text", allow_empty: bool = False
) -> tuple[str, list[dict[str, Any]]]:
    """Parse `text` as Telegram would and check its length after parsing."""
    entities: list[dict[str, Any]] = []
    if parse_mode and parse_mode.upper() == "HTML":
        try:
            text, entities = parse_html(text)
        except HTMLParseError as exc:
            raise BadRequest(f"Bad Request: {exc}") from None
    elif parse_mode and parse_mode not in ("MarkdownV2", "Markdown"):
        raise BadRequest(f"Bad Request: unsupported parse_mode {parse_mode}")
    size = utf16_len(text.strip())
    if size == 0 and not allow_empty:
        raise BadRequest(f"Bad Request: {what} is empty")
    if size > limit:
        raise BadRequest(f"Bad Request: {what} is too long")
    return text, entities


def check_reply_markup(markup: Any) -> None:
    if markup is None:
        return
    if not isinstance(markup, dict):
        raise BadRequest("Bad Request: can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in markup:
        for row in markup["inline_keyboard"]:
            for button in row:
                if not button.get("text"):
                    raise BadRequest("Bad Request: text buttons are unallowed in the inline keyboard")
                data = button.get("callback_data")
                if data is not None and not 1 <= len(data.encode("utf-8")) <= CALLBACK_DATA_LIMIT:
                    raise BadRequest("Bad Request: BUTTON_DATA_INVALID")
    elif "keyboard" in markup:
        for row in markup["keyboard"]:
            for button in row:
                text = button if isinstance(button, str) else button.get("text")
                if not text:
                    raise BadRequest("Bad Request: keyboard button text is empty")
