"""Polls for residents: the text format staff write them in, and the message residents answer.

The format (typed in the communications group or uploaded as a UTF-8 .txt file; docs/polls.md):

    # a comment
    Q: Jak ocenia Pan/Pani godziny pracy urzędu? | Kaip vertinate savivaldybės darbo laiką?
    - Dobrze | Gerai
    - Źle | Blogai
    Q+: Które usługi chciał(a)by Pan/Pani załatwiać przez internet? | Kokias paslaugas norėtumėte tvarkyti internetu?
    - Zaświadczenia | Pažymos
    - Zgłoszenia | Pranešimai

`Q:` is a question with one answer, `Q+:` one where several may be chosen; each question and
option gives the Polish text, `|`, the Lithuanian one. Residents who chose English see the
Lithuanian text with English buttons.

`parse_poll` gives `Question`s; a poll keeps them in its JSON column (Poll.questions) as their
`model_dump`, read back with `questions_of` (rows stored before these models load unchanged).

The answer travels in the buttons' callback data (the answers so far and the current choice),
so nothing about an unfinished answer is stored, and the stored answer has no link to anyone.
"""

from __future__ import annotations

import re
from html import escape
from typing import Annotated, Any

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from bot.keyboards import InlineKeyboardBuilder
from bot.services.numbers import RowId
from bot.store.models import Poll

QUESTIONS_MAX = 8  # with OPTIONS_MAX, the answers fit in Telegram's 64-byte callback data
OPTIONS_MIN, OPTIONS_MAX = 2, 8
QUESTION_MAX_CHARS, OPTION_MAX_CHARS = 300, 60
POLL_FILE_MAX_BYTES = 64 * 1024


class PollFormatError(ValueError):
    """A line of a poll definition that cannot be read; the message is for the staff member."""


class PollText(BaseModel):
    """A question or an option, in Polish and Lithuanian; residents who chose English read the Lithuanian."""

    model_config = ConfigDict(extra="forbid")

    pl: str
    lt: str

    def get(self, locale: str) -> str:
        return self.pl if locale == "pl" else self.lt


class Question(BaseModel):
    """One question of a poll, as stored in Poll.questions (see `questions_of`)."""

    model_config = ConfigDict(extra="forbid")

    text: PollText
    options: list[PollText]
    multiple: bool = False  # several options may be chosen (Q+:)


_QUESTIONS = TypeAdapter(list[Question])


def questions_of(poll: Poll) -> list[Question]:
    """The poll's questions, read from its JSON column."""
    return questions_from_json(poll.questions)


def questions_from_json(stored: list[dict[str, Any]]) -> list[Question]:
    return _QUESTIONS.validate_python(stored)


def questions_to_json(questions: list[Question]) -> list[dict[str, Any]]:
    """What Poll.questions (and a draft poll in the FSM data) holds."""
    dumped: list[dict[str, Any]] = _QUESTIONS.dump_python(questions, mode="json")
    return dumped


class PollTap(CallbackData, prefix="pv"):
    poll_id: RowId
    done: str = ""  # confirmed answers: a hexadecimal bit mask per question, joined by "."
    sel: Annotated[int, Field(ge=0, lt=1 << OPTIONS_MAX)] = 0  # the current question's choice, a bit mask
    act: str = "t"  # t: toggle an option · c: confirm the question · s: send · r: start again
    opt: Annotated[int, Field(ge=0, lt=OPTIONS_MAX)] = 0


def parse_poll(source: str) -> list[Question]:
    """The questions of a poll definition; PollFormatError names the first line that is wrong."""
    questions: list[Question] = []
    for number, raw in enumerate(source.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line[:3].upper() == "Q+:" or line[:2].upper() == "Q:":
            multiple = line[1] == "+"
            text = _pair(line[3 if multiple else 2 :], number, QUESTION_MAX_CHARS)
            questions.append(Question(text=text, options=[], multiple=multiple))
            if len(questions) > QUESTIONS_MAX:
                raise PollFormatError(
                    _(
                        "Line {line}: a poll can have at most {max} question.",
                        "Line {line}: a poll can have at most {max} questions.",
                        QUESTIONS_MAX,
                    ).format(line=number, max=QUESTIONS_MAX)
                )
        elif line.startswith("-"):
            if not questions:
                raise PollFormatError(
                    _("Line {line}: an option comes after its question (a line starting with Q:).").format(
                        line=number
                    )
                )
            questions[-1].options.append(_pair(line[1:], number, OPTION_MAX_CHARS))
            if len(questions[-1].options) > OPTIONS_MAX:
                raise PollFormatError(
                    _(
                        "Line {line}: a question can have at most {max} option.",
                        "Line {line}: a question can have at most {max} options.",
                        OPTIONS_MAX,
                    ).format(line=number, max=OPTIONS_MAX)
                )
        else:
            raise PollFormatError(
                _(
                    "Line {line}: start it with Q: (a question), Q+: (several answers allowed) or - (an option)."
                ).format(line=number)
            )
    if not questions:
        raise PollFormatError(_("There is no question: start one with Q:"))
    for index, question in enumerate(questions, start=1):
        if len(question.options) < OPTIONS_MIN:
            raise PollFormatError(
                _(
                    "Question {number} needs at least {min} option.",
                    "Question {number} needs at least {min} options.",
                    OPTIONS_MIN,
                ).format(number=index, min=OPTIONS_MIN)
            )
    return questions


def _pair(part: str, line: int, limit: int) -> PollText:
    bars = part.count("|")
    if bars > 1:  # most often several questions or options typed on one line
        raise PollFormatError(
            _(
                "Line {line} has {count} × |: put each question and each option on a line of its own, the Polish text | the Lithuanian text."
            ).format(line=line, count=bars)
        )
    pl, sep, lt = (text.strip() for text in part.partition("|"))
    if not sep:
        raise PollFormatError(
            _("Line {line}: write the Polish text, then |, then the Lithuanian text.").format(line=line)
        )
    if not pl:
        raise PollFormatError(_("Line {line}: the Polish text before | is missing.").format(line=line))
    if not lt:
        raise PollFormatError(_("Line {line}: the Lithuanian text after | is missing.").format(line=line))
    if len(pl) > limit or len(lt) > limit:
        raise PollFormatError(
            _(
                "Line {line}: at most {max} character in each language.",
                "Line {line}: at most {max} characters in each language.",
                limit,
            ).format(line=line, max=limit)
        )
    return PollText(pl=pl, lt=lt)


# --- the encoding of answers in the buttons ---


def encode(done: list[int]) -> str:
    return ".".join(format(mask, "x") for mask in done)


_MASK = re.compile(r"[0-9a-f]{1,2}")  # what encode writes for a mask below 1 << OPTIONS_MAX


def decode(done: str) -> list[int]:
    """The masks `encode` wrote; ValueError for anything else (an old or hand-made button)."""
    parts = done.split(".") if done else []
    if len(parts) > QUESTIONS_MAX or not all(_MASK.fullmatch(part) for part in parts):
        raise ValueError(f"not poll answers: {done[:64]}")
    return [int(part, 16) for part in parts]


def as_choices(masks: list[int]) -> list[list[int]]:
    return [[i for i in range(OPTIONS_MAX) if mask >> i & 1] for mask in masks]


# --- what residents see (gettext in the current locale) ---


def question_view(
    poll_id: int, questions: list[Question], locale: str, done: str = "", sel: int = 0
) -> tuple[str, InlineKeyboardMarkup]:
    index = len(decode(done))
    question = questions[index]
    hint = (
        _("Choose one or more answers, then confirm.")
        if question.multiple
        else _("Choose one answer, then confirm.")
    )
    text = "\n\n".join(
        [
            _("📊 <b>Poll</b> · question {number} of {total}").format(number=index + 1, total=len(questions)),
            f"<b>{escape(question.text.get(locale))}</b>",
            f"<i>{hint}</i>",
        ]
    )
    marks = ("☑ ", "☐ ") if question.multiple else ("● ", "○ ")
    builder = InlineKeyboardBuilder()
    for i, option in enumerate(question.options):
        mark = marks[0] if sel >> i & 1 else marks[1]
        builder.button(
            text=mark + option.get(locale),
            callback_data=PollTap(poll_id=poll_id, done=done, sel=sel, act="t", opt=i),
        )
    builder.button(text=_("✅ Confirm"), callback_data=PollTap(poll_id=poll_id, done=done, sel=sel, act="c"))
    builder.adjust(1)
    return text, builder.as_markup()


def summary_view(
    poll_id: int, questions: list[Question], locale: str, done: str, sent: bool = False
) -> tuple[str, InlineKeyboardMarkup | None]:
    lines = [_("📊 <b>Your answers</b>")]
    for number, (question, chosen) in enumerate(
        zip(questions, as_choices(decode(done)), strict=True), start=1
    ):
        options = ", ".join(escape(question.options[i].get(locale)) for i in chosen)
        lines.append(f"{number}. {escape(question.text.get(locale))}\n→ {options}")
    if sent:
        lines.append(_("Thank you! Your answers have been recorded anonymously."))
        return "\n\n".join(lines), None
    lines.append(_("Answers are anonymous, so they cannot be changed once sent."))
    builder = InlineKeyboardBuilder()
    builder.button(text=_("📨 Send my answers"), callback_data=PollTap(poll_id=poll_id, done=done, act="s"))
    builder.button(text=_("↩️ Start again"), callback_data=PollTap(poll_id=poll_id, act="r"))
    builder.adjust(1)
    return "\n\n".join(lines), builder.as_markup()
