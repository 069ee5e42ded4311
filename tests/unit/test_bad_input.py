"""Strange input from residents and staff is refused where it arrives, never as an exception:
Unicode digits, numbers beyond what an id can hold, negative pages, hand-made callback data,
and texts of only whitespace or zero-width characters."""

import pytest
from aiogram.filters import CommandObject
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, User

from bot.services.cases import visible_text
from bot.services.numbers import ID_MAX, PAGE_MAX, whole_number
from bot.services.polls import PollTap, decode, encode
from flows.cases import Follow
from flows.comms import _number_given
from flows.feedback import Rate

ODD_NUMBERS = [
    "",
    "abc",
    "-1",
    "+1",
    "1.5",
    "1e3",
    "0x10",
    "1_000",
    "²",
    "１２",
    "٣",
    "12²",
    " 1 2",
    str(ID_MAX + 1),
    "9" * 30,
]


@pytest.mark.parametrize("text", ODD_NUMBERS)
def test_odd_numbers_are_no_numbers(text: str) -> None:
    assert whole_number(text) is None


@pytest.mark.parametrize(
    ("text", "number"), [("0", 0), ("12", 12), (" 12 ", 12), ("007", 7), (str(ID_MAX), ID_MAX)]
)
def test_plain_numbers(text: str, number: int) -> None:
    assert whole_number(text) == number


def test_a_page_number_has_its_own_ceiling() -> None:
    assert (
        whole_number(str(PAGE_MAX), PAGE_MAX) == PAGE_MAX
        and whole_number(str(PAGE_MAX + 1), PAGE_MAX) is None
    )


@pytest.mark.parametrize(
    ("args", "number"),
    [
        ("12", 12),
        ("#12", 12),
        (" #7 ", 7),
        (None, None),
        ("abc", None),
        ("-1", None),
        ("#-1", None),
        ("99999999999999999999999", None),
        ("²", None),
        ("１", None),
        ("##1", None),
    ],
)
def test_the_number_after_stop_results_and_close(args: str | None, number: int | None) -> None:
    assert _number_given(CommandObject(prefix="/", command="stop", args=args)) == number


def _press(data: str) -> CallbackQuery:
    return CallbackQuery(
        id="1", from_user=User(id=501, is_bot=False, first_name="Anna"), chat_instance="x", data=data
    )


@pytest.mark.parametrize(
    ("callback", "data"),
    [
        (Follow, "cs:open:²:0"),
        (Follow, "cs:open:１:0"),
        (Follow, f"cs:open:{2**70}:0"),
        (Follow, f"cs:open:{ID_MAX + 1}:0"),
        (Follow, "cs:open:-5:0"),
        (Follow, "cs:page:0:-1"),
        (Follow, f"cs:page:0:{PAGE_MAX + 1}"),
        (Follow, "cs:page:0:1e3"),
        (Follow, "cs:page:0"),
        (Rate, f"fb:{2**64}:score:5:"),
        (Rate, "fb:²:score:5:"),
        (Rate, "fb:-1:no:0:"),
        (PollTap, f"pv:{2**70}::0:t:0"),
        (PollTap, "pv:1::256:t:0"),  # a choice beyond the 8 options
        (PollTap, "pv:1::0:t:8"),
        (PollTap, "pv:1::0:t:-1"),
    ],
)
async def test_a_hand_made_button_is_not_taken(callback: type[CallbackData], data: str) -> None:
    # Not taken by its flow's handler, so the fallback answers "This button is no longer active".
    assert await callback.filter()(_press(data)) is False


async def test_real_buttons_are_still_taken() -> None:
    for callback in (
        Follow(action="open", case_id=ID_MAX, page=PAGE_MAX),
        Rate(case_id=7, act="score", score=5),
        PollTap(poll_id=3, done="ff.1", sel=255, act="c", opt=7),
    ):
        matched = await type(callback).filter()(_press(callback.pack()))
        assert isinstance(matched, dict)
        assert matched["callback_data"] == callback


@pytest.mark.parametrize("done", ["100", "FF", "１", "f_f", " f", "1..2", ".".join(["1"] * 9), "-1", "²"])
def test_poll_answers_in_a_button_are_only_what_encode_writes(done: str) -> None:
    with pytest.raises(ValueError):
        decode(done)


def test_poll_answers_round_trip() -> None:
    assert decode(encode([1, 255, 16])) == [1, 255, 16] and decode("") == []


@pytest.mark.parametrize(
    ("text", "visible"),
    [
        ("\u200b\u200c\u200d\u2060\ufeff" * 5, ""),
        ("  \u200b \n\t\u2060  ", ""),
        ("\u200bDziura\u200b w drodze\ufeff", "Dziura w drodze"),
        ("👨\u200d👩\u200d👧", "👨👩👧"),  # counted as three, though shown as one
    ],
)
def test_visible_text(text: str, visible: str) -> None:
    assert visible_text(text) == visible
