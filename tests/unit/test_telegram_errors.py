"""One table decides what Telegram's answer means for a message still to be delivered: the
outbox, the broadcaster and the request middleware all read it (bot.telegram.classify)."""

import pytest
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import SendMessage

from bot.telegram import Outcome, Verdict, classify

METHOD = SendMessage(chat_id=1, text="x")


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            TelegramRetryAfter(METHOD, "Too Many Requests", retry_after=7),
            Outcome(Verdict.PACED, "429", retry_after=7.0),
        ),
        (
            TelegramMigrateToChat(METHOD, "moved", migrate_to_chat_id=-1002),
            Outcome(Verdict.MOVED, "moved to -1002", chat_id=-1002),
        ),
        (TelegramServerError(METHOD, "Bad Gateway"), Outcome(Verdict.TRANSIENT, "TelegramServerError")),
        (
            TelegramNetworkError(METHOD, "Request timeout error"),
            Outcome(Verdict.TRANSIENT, "TelegramNetworkError"),
        ),
        (
            TelegramForbiddenError(METHOD, "Forbidden: bot was blocked by the user"),
            Outcome(Verdict.BLOCKED, "Forbidden: bot was blocked by the user"),
        ),
        (
            TelegramBadRequest(METHOD, "Bad Request: chat not found"),
            Outcome(Verdict.PERMANENT, "Bad Request: chat not found"),
        ),
        (TelegramNotFound(METHOD, "Not Found"), Outcome(Verdict.PERMANENT, "Not Found")),
        (
            TelegramEntityTooLarge(METHOD, "Request Entity Too Large"),
            Outcome(Verdict.PERMANENT, "Request Entity Too Large"),
        ),
        (RuntimeError("a bug"), Outcome(Verdict.UNEXPECTED, "RuntimeError")),
    ],
)
def test_each_answer_has_one_meaning(error: BaseException, expected: Outcome) -> None:
    assert classify(error) == expected
