"""What an operator must fix before residents notice: `petent check` and the ops listener's
`/healthz?full`. One line per problem, each naming what is wrong and where; none: all is well.

- the schema behind (or ahead of) the code: the database's Alembic revision against the code's head;
- a team's group (or the communications group) the bot cannot reach (getChat fails);
- a team's forum group where the bot is not an administrator allowed to manage topics (its cases'
  topics cannot be made; cards would go to the main chat);
- Redis configured (REDIS_URL: the replicas' shared conversations, lanes and leader lock) but not
  answering;
- the files' disk nearly full (FILES_MIN_FREE_BYTES, the disk guard's own words).

Texts are English, like the command line and the logs: operators read them, not residents.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import Bot
from aiogram.enums import ChatMemberStatus
from aiogram.exceptions import TelegramAPIError

from bot.services.files import DiskGuard
from bot.services.teams import TeamDirectory
from bot.store.db import Database
from bot.store.migrate import revisions
from bot.telegram import single_attempt

CHECK_TIMEOUT = 10.0  # seconds for each look (a group, Redis): a hung one is a problem, not a hang


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TelegramAPIError):
        return exc.message
    if isinstance(exc, TimeoutError):
        return f"no answer within {CHECK_TIMEOUT:.0f} s"
    return " ".join(str(exc).split()) or type(exc).__name__


async def schema_problem(database: Database) -> str | None:
    current, head, known = await revisions(database)
    if current == head:
        return None
    if current is None:
        return f"schema: the database has no schema, the code needs revision {head} (run `petent migrate`)"
    if known:
        return (
            f"schema: the database is at revision {current}, behind the code's {head} (run `petent migrate`)"
        )
    return f"schema: the database is at revision {current}, which this code (head {head}) does not know: an older version of Petent runs on a newer schema"


async def group_problems(bot: Bot, teams: TeamDirectory) -> list[str]:
    """Each team group (once however many teams share it) and the communications group: reachable,
    and in a forum the bot may make topics."""
    chats: dict[int, list[str]] = {}
    for team in teams.teams:
        chats.setdefault(teams.chat_of(team), []).append(team.id)
    found: list[str] = []
    with single_attempt():  # a look, not a delivery: one try each
        for chat_id, team_ids in chats.items():
            found.extend(await _group_problem(bot, chat_id, team_ids))
        if teams.comms not in chats:
            try:
                async with asyncio.timeout(CHECK_TIMEOUT):
                    await bot.get_chat(teams.comms)
            except (TelegramAPIError, TimeoutError, OSError) as exc:
                found.append(
                    f"telegram: the communications group ({teams.comms}) is unreachable: {_reason(exc)}"
                )
    return found


async def _group_problem(bot: Bot, chat_id: int, team_ids: list[str]) -> list[str]:
    where = f"the group of team{'s' if len(team_ids) > 1 else ''} {', '.join(team_ids)} ({chat_id})"
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            chat = await bot.get_chat(chat_id)
            member = await bot.get_chat_member(chat_id, bot.id) if chat.is_forum else None
    except (TelegramAPIError, TimeoutError, OSError) as exc:
        return [f"telegram: {where} is unreachable: {_reason(exc)}"]
    if member is None or member.status == ChatMemberStatus.CREATOR:
        return []
    if member.status != ChatMemberStatus.ADMINISTRATOR or not getattr(member, "can_manage_topics", False):
        return [
            f"telegram: {where} is a forum, but the bot is not an administrator allowed to manage topics: cases' topics cannot be made"
        ]
    return []


async def redis_problem(redis: Any | None, redis_url: str | None) -> str | None:
    """REDIS_URL set (replicas share conversations, sending lanes and the leader's lock through it) but no answer."""
    if not redis_url or redis is None:
        return None
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            await redis.ping()
    except Exception as exc:  # redis-py's errors, OSError, a timeout: Redis is missing all the same
        return (
            f"redis: REDIS_URL is set (the replicas' shared store) but Redis does not answer: {_reason(exc)}"
        )
    return None


async def disk_problem(disk: DiskGuard | None) -> str | None:
    problem = await disk.problem() if disk is not None else None
    return f"files: {problem}" if problem else None


async def problems(
    database: Database,
    bot: Bot,
    teams: TeamDirectory,
    *,
    redis: Any | None,
    redis_url: str | None,
    disk: DiskGuard | None,
) -> list[str]:
    """Every problem found, one line each (empty: none)."""
    found: list[str] = []
    checks: list[tuple[str, Callable[[], Awaitable[str | list[str] | None]]]] = [
        ("database", lambda: schema_problem(database)),
        ("telegram", lambda: group_problems(bot, teams)),
        ("redis", lambda: redis_problem(redis, redis_url)),
        ("files", lambda: disk_problem(disk)),
    ]
    for what, check in checks:
        try:
            result = await check()
        except Exception as exc:  # a check that cannot run is itself a problem (e.g. the database is down)
            result = f"{what}: cannot be checked: {_reason(exc)}"
        if isinstance(result, list):
            found.extend(result)
        elif result:
            found.append(result)
    return found
