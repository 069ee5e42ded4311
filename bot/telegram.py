"""The Telegram client: the Bot, pointed at TELEGRAM_API_URL, paced and with bounded retries.

Every request that puts something into a chat waits for its slot in the rate limiter first.
429 (retry_after) pauses the lane and is retried; 5xx and network errors are retried with
backoff, a bounded number of times. A network error after Telegram received a request can,
rarely, deliver a message twice: accepted here, as losing a reply to a resident is worse.

An edit that would change nothing (a button pressed twice, a page already shown) and a second
answer to a button press are refused by Telegram; both are success here, and return True.

Inside `single_attempt()` (the outbox's sends) a request is tried once, still paced and still
pausing the lane on a 429: the outbox keeps the row and decides when to try again.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramConflictError,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods import TelegramMethod
from aiogram.methods.base import Response, TelegramType
from aiohttp import ClientError, ClientTimeout

from bot import metrics
from bot.limiter import PACED_METHODS, RateLimiter, background_traffic, is_edit, traffic_kind

log = logging.getLogger(__name__)


class Verdict(StrEnum):
    """What an answer from Telegram means for a message that is still to be delivered."""

    PACED = "paced"  # 429: wait `retry_after`; Telegram's pacing, never a failure
    MOVED = "moved"  # the group became a supergroup: the same message goes to `chat_id`
    TRANSIENT = "transient"  # 5xx, timeouts, network errors: try again, with backoff
    BLOCKED = "blocked"  # 403: the person blocked the bot, or the bot left the group
    PERMANENT = "permanent"  # 400, 404, 413…: it can never be sent as it is
    UNEXPECTED = "unexpected"  # not Telegram's answer (a bug, the database): keep it, try later, say so


@dataclass(frozen=True)
class Outcome:
    verdict: Verdict
    error: str
    retry_after: float = 0.0
    chat_id: int | None = None  # MOVED: the new chat


# In the manner of httpx's exception map: the most specific class first. Every sender (the
# outbox, the broadcaster, the request middleware) decides by this one table.
_VERDICTS: tuple[tuple[type[BaseException], Verdict], ...] = (
    (TelegramRetryAfter, Verdict.PACED),
    (TelegramMigrateToChat, Verdict.MOVED),
    (TelegramEntityTooLarge, Verdict.PERMANENT),  # aiogram makes it a network error: it never goes as it is
    (TelegramServerError, Verdict.TRANSIENT),
    (TelegramNetworkError, Verdict.TRANSIENT),
    (TelegramForbiddenError, Verdict.BLOCKED),
    (TelegramBadRequest, Verdict.PERMANENT),
    (TelegramNotFound, Verdict.PERMANENT),
    (TelegramConflictError, Verdict.PERMANENT),
    (TelegramUnauthorizedError, Verdict.PERMANENT),
    (TelegramAPIError, Verdict.PERMANENT),  # any other answer Telegram gave
)


def classify(exc: BaseException) -> Outcome:
    """What to do with a message whose sending raised `exc`."""
    verdict = next((verdict for kind, verdict in _VERDICTS if isinstance(exc, kind)), Verdict.UNEXPECTED)
    if verdict is Verdict.PACED:
        assert isinstance(exc, TelegramRetryAfter)
        return Outcome(verdict, "429", retry_after=float(exc.retry_after))
    if verdict is Verdict.MOVED:
        assert isinstance(exc, TelegramMigrateToChat)
        return Outcome(verdict, f"moved to {exc.migrate_to_chat_id}", chat_id=exc.migrate_to_chat_id)
    if verdict in (Verdict.TRANSIENT, Verdict.UNEXPECTED):
        return Outcome(verdict, type(exc).__name__)
    return Outcome(verdict, getattr(exc, "message", None) or str(exc))


_single_attempt: ContextVar[bool] = ContextVar("petent_single_attempt", default=False)

# aiogram reads every answer into `Response[method.__returning__]`, a class pydantic builds on
# first use and caches only weakly: each garbage collection dropped them, and the next answer
# built them again (milliseconds of CPU each, a few times a second). Held here, they are built
# once per kind of answer.
_RESPONSE_TYPES: dict[Any, Any] = {}


@contextmanager
def single_attempt() -> Iterator[None]:
    """Requests inside are tried once and queue behind interactive ones in their chat's lane."""
    token = _single_attempt.set(True)
    try:
        with background_traffic():
            yield
    finally:
        _single_attempt.reset(token)


class DeliveryMiddleware(BaseRequestMiddleware):
    def __init__(
        self, limiter: RateLimiter, attempts: int = 4, backoff: float = 0.5, max_wait: float = 60.0
    ) -> None:
        self.limiter = limiter
        self.attempts = attempts
        self.backoff = backoff
        self.max_wait = max_wait

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        if (returning := method.__returning__) not in _RESPONSE_TYPES:
            _RESPONSE_TYPES[returning] = Response[returning]  # type: ignore[valid-type]
        paced = method.__api_method__ in PACED_METHODS
        chat_id = getattr(method, "chat_id", None)
        attempts = 1 if _single_attempt.get() else self.attempts
        failures, waited = 0, 0.0
        while True:
            try:
                if paced:
                    await self.limiter.acquire(chat_id, edit=is_edit(method.__api_method__))
                result = await make_request(bot, method)
                if paced:
                    metrics.SENT.labels(traffic_kind()).inc()
                return result
            except TelegramAPIError as exc:
                outcome = classify(exc)
                if outcome.verdict is Verdict.PERMANENT and _already_done(
                    method.__api_method__, outcome.error
                ):
                    return True  # type: ignore[return-value]  # these methods' documented result
                if outcome.verdict is Verdict.PACED:
                    metrics.RETRY_AFTER.inc()
                    log.warning(
                        "rate limited",
                        extra={"method": method.__api_method__, "retry_after": outcome.retry_after},
                    )
                    paused = paced and self.limiter.retry_after(
                        chat_id, outcome.retry_after, edit=is_edit(method.__api_method__)
                    )
                    # Telegram asks to wait, nothing failed: tried again while the waits add up to
                    # max_wait, however many there are (a reply refused four times was lost before).
                    waited += outcome.retry_after
                    if attempts == 1 or waited > self.max_wait:
                        raise
                    if not paused:
                        await asyncio.sleep(outcome.retry_after)
                elif outcome.verdict is Verdict.TRANSIENT:
                    failures += 1
                    if failures == attempts:
                        raise
                    delay = self.backoff * 2 ** (failures - 1)
                    metrics.RETRIES.labels(outcome.error).inc()
                    log.warning(
                        "telegram error, retrying",
                        extra={"method": method.__api_method__, "error": outcome.error, "delay": delay},
                    )
                    await asyncio.sleep(delay)
                else:
                    raise


def _already_done(method: str, error: str) -> bool:
    """Telegram refuses to do twice what is done: an edit to the same content, a second answer to
    a button press (an update delivered again after a replica died). Both are success."""
    if method.startswith("editMessage"):
        return "message is not modified" in error
    return method == "answerCallbackQuery" and "query is too old" in error


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {key: _without_nul(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    return value


def loads_without_nul(content: str) -> Any:
    """Telegram's JSON as read by the bot (polling and webhook), with U+0000 dropped from every
    string: PostgreSQL's text cannot hold it, and nobody types it to mean something."""
    data = json.loads(content)
    return _without_nul(data) if "\\u0000" in content else data


class JsonSession(AiohttpSession):
    """A request without files goes as one JSON body, which the Bot API takes as it takes a form.

    aiogram sends a form: each field serialised to JSON on its own, then URL-encoded as a whole,
    through aiohttp's multipart writer (a random boundary per request included). That took more of
    the bot's CPU per request than the request itself; the bytes are all that differ. Uploads still
    go as aiogram's multipart form."""

    async def make_request(
        self, bot: Bot, method: TelegramMethod[TelegramType], timeout: int | None = None
    ) -> TelegramType:
        files: dict[str, Any] = {}
        fields = self.prepare_value(
            method.model_dump(warnings=False), bot=bot, files=files, _dumps_json=False
        )
        if files:
            return await super().make_request(bot, method, timeout)
        session = await self.create_session()
        url = self.api.api_url(token=bot.token, method=method.__api_method__)
        try:
            async with session.post(
                url,
                data=self.json_dumps(fields),
                headers=_JSON,
                timeout=ClientTimeout(total=self.timeout if timeout is None else timeout),
            ) as response:
                content = await response.text()
        except TimeoutError as exc:
            raise TelegramNetworkError(method=method, message="Request timeout error") from exc
        except ClientError as exc:
            raise TelegramNetworkError(method=method, message=f"{type(exc).__name__}: {exc}") from exc
        return self.check_response(
            bot=bot, method=method, status_code=response.status, content=content
        ).result  # type: ignore[return-value]


_JSON = {"Content-Type": "application/json"}


def create_bot(token: str, api_url: str, limiter: RateLimiter | None = None, **session_kwargs: Any) -> Bot:
    session = JsonSession(
        api=TelegramAPIServer.from_base(api_url), json_loads=loads_without_nul, **session_kwargs
    )
    session.middleware(DeliveryMiddleware(limiter or RateLimiter()))
    return Bot(token=token, session=session, default=DefaultBotProperties(parse_mode=ParseMode.HTML))
