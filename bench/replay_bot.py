"""The second baseline: a bare aiogram bot that makes exactly the requests Petent made for a
resident's submission, and nothing else (no database, no conversation state, no texts to build).

REPLAY_SCRIPT=script.json BOT_TOKEN=... TELEGRAM_API_URL=http://127.0.0.1:PORT python bench/replay_bot.py

The script (written by bench/flow.py from a Petent run) holds, per language, the requests that
answered each update of the submission in order (a button is answered first, as Petent does), and the requests made in the clerks' group for
the case (its forum topic and its card). The n-th update of a person is answered with the n-th
step's requests; the button pressed, the message edited and the topic are this run's own.
It sends as a bare aiogram bot does (a form per request); sending as Petent does (one JSON body,
bot.telegram.JsonSession) made no difference measured here (1.89 against 1.91 ms per update).
"""

import asyncio
import json
import os
from pathlib import Path
from typing import Any

from aiogram import Bot, Dispatcher, methods
from aiogram.types import CallbackQuery, Message, User
from echo_bot import poll  # bench/, the script's own directory

SCRIPT: dict[str, Any] = json.loads(Path(os.environ["REPLAY_SCRIPT"]).read_text())
dispatcher = Dispatcher()
steps_taken: dict[int, int] = {}


def _method(request: dict[str, Any], **values: Any) -> Any:
    name = request["method"]
    return getattr(methods, name[0].upper() + name[1:])(**{**request["params"], **values})


async def _replay(bot: Bot, user: User, query: CallbackQuery | None) -> None:
    script = SCRIPT[user.language_code or "pl"]
    step = steps_taken.get(user.id, 0)
    steps_taken[user.id] = step + 1
    if query is not None:
        await query.answer()  # as Petent answers every button first
    for request in script["steps"][step]:
        if request["method"].startswith("edit"):
            assert query is not None and query.message is not None
            await bot(_method(request, chat_id=user.id, message_id=query.message.message_id))
        else:
            await bot(_method(request, chat_id=user.id))
    if step + 1 == len(script["steps"]):
        topic = None
        for request in script["group"]:
            if request["method"] == "createForumTopic":
                topic = (await bot(_method(request))).message_thread_id
            else:
                await bot(_method(request, message_thread_id=topic))


@dispatcher.message()
async def on_message(message: Message, bot: Bot) -> None:
    assert message.from_user is not None
    await _replay(bot, message.from_user, None)


@dispatcher.callback_query()
async def on_button(query: CallbackQuery, bot: Bot) -> None:
    await _replay(bot, query.from_user, query)


if __name__ == "__main__":
    asyncio.run(poll(dispatcher))
