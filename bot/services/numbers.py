"""Numbers from outside: typed after a command, or carried in a button's callback data.

Only ASCII digits count: int() takes "１２" and str.isdigit() is true even for "²". And only what
a database id can hold: a bigger number is refused where it arrives, with the usage or "this
button is no longer active", instead of failing later in a query.

Callback data fields typed `RowId` or `Page` make aiogram's CallbackData filter reject an
out-of-range or unreadable value (pydantic's ValidationError is a ValueError, which the filter
treats as "not this button"), so the press reaches the fallback's "no longer active" answer.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field

ID_MAX = 2**31 - 1  # ids are INTEGER columns: 32 bits on PostgreSQL
PAGE_MAX = 10_000  # far beyond any list anyone pages through

RowId = Annotated[int, Field(ge=0, le=ID_MAX)]
Page = Annotated[int, Field(ge=0, le=PAGE_MAX)]
UserId = Annotated[int, Field(gt=0, lt=2**63)]  # a Telegram user id (BIGINT)

_DIGITS = re.compile(r"[0-9]{1,12}")


def whole_number(text: str | None, maximum: int = ID_MAX) -> int | None:
    """ "12" → 12; None for "", "-1", "1.5", "１２", "²", or anything above `maximum`."""
    value = (text or "").strip()
    if not _DIGITS.fullmatch(value):
        return None
    number = int(value)
    return number if number <= maximum else None
