"""aiogram's keyboard builders without their deep copies.

aiogram's builders deep-copy the whole keyboard built so far on every button added (`add()`
calls `export()`, which is `copy.deepcopy`), so a keyboard of n buttons costs n² copies of
pydantic models: the categories' keyboard alone took a few milliseconds of CPU, a tenth of
what the bot spent per update. The buttons are built here and never changed afterwards, so a
copy of the rows (not of the buttons) keeps the builders' behaviour. Use these, not aiogram's
(tests/unit/test_hot_path.py checks).
"""

from __future__ import annotations

from aiogram.types import InlineKeyboardButton, KeyboardButton
from aiogram.utils import keyboard


class InlineKeyboardBuilder(keyboard.InlineKeyboardBuilder):
    def export(self) -> list[list[InlineKeyboardButton]]:
        return [list(row) for row in self._markup]


class ReplyKeyboardBuilder(keyboard.ReplyKeyboardBuilder):
    def export(self) -> list[list[KeyboardButton]]:
        return [list(row) for row in self._markup]
