"""Scripted people for the emulator, so that tests read as conversations.

anna = await telegram.resident("Anna", language_code="pl")
await anna.send("/start")
hello, picker = await anna.receive(2)
await anna.click("Lietuvių")
"""

from __future__ import annotations

import base64
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

from bot.sandbox.control import control_headers
from bot.sandbox.emulator import Emulator

_T = TypeVar("_T")


class NothingReceived(AssertionError):
    """The bot did not answer in time."""


@dataclass
class Received:
    """A message (or its edited version) as the person sees it."""

    raw: dict[str, Any]
    html: str | None = None
    keyboard: dict[str, Any] | None = None

    @property
    def id(self) -> int:
        message_id: int = self.raw["message_id"]
        return message_id

    @property
    def text(self) -> str:
        return self.raw.get("text") or self.raw.get("caption") or ""

    @property
    def buttons(self) -> list[str]:
        rows = (self.raw.get("reply_markup") or {}).get("inline_keyboard", [])
        return [button["text"] for row in rows for button in row]

    @property
    def keyboard_buttons(self) -> list[str]:
        rows = (self.keyboard or {}).get("keyboard", [])
        return [button if isinstance(button, str) else button["text"] for row in rows for button in row]

    @property
    def thread_id(self) -> int | None:
        return self.raw.get("message_thread_id")

    def __repr__(self) -> str:  # short, for assertion messages
        return f"Received(id={self.id}, text={self.text[:80]!r}, buttons={self.buttons})"


@dataclass
class _Inbox:
    cursor: int = 0
    messages: deque[Received] = field(default_factory=deque)
    edits: deque[Received] = field(default_factory=deque)
    answers: deque[dict[str, Any]] = field(default_factory=deque)


class Telegram:
    """The emulator seen from outside: create people and groups, inject faults, read requests."""

    def __init__(self, emulator: Emulator, timeout: float = 15.0) -> None:
        self.http = httpx.AsyncClient(
            base_url=emulator.url, timeout=timeout + 15, headers=control_headers(emulator)
        )
        self.timeout = timeout
        # Returns once the bot is idle (every update handled, nothing due to be sent): set by the
        # in-process `bot` fixture (tests/inprocess/conftest.py `settled`); None end to end.
        self.settle: Callable[[], Awaitable[None]] | None = None

    async def close(self) -> None:
        await self.http.aclose()

    async def post(self, path: str, body: dict[str, Any]) -> Any:
        """A call to the control API; anything but 200 fails the test."""
        response = await self.http.post(path, json=body)
        if response.status_code != 200:
            raise AssertionError(f"{path}: {response.status_code} {response.text}")
        return response.json()

    async def resident(
        self, first_name: str, language_code: str | None = "pl", last_name: str | None = None
    ) -> Person:
        user = await self.post(
            "/_emu/users", {"first_name": first_name, "language_code": language_code, "last_name": last_name}
        )
        return Person(self, user, user["id"])

    async def group(
        self,
        title: str,
        *,
        forum: bool = False,
        members: Sequence[Person] = (),
        admins: Sequence[Person] = (),
        chat_id: int | None = None,
    ) -> int:
        info = await self.post(
            "/_emu/groups",
            {
                "title": title,
                "forum": forum,
                "id": chat_id,
                "members": [m.user["id"] for m in members],
                "admins": [a.user["id"] for a in admins],
            },
        )
        group_id: int = info["id"]
        return group_id

    async def standing(
        self, chat_id: int, person: Person, status: str, *, can_send_messages: bool = False
    ) -> None:
        """`person` becomes a member, an administrator, a restricted member (who may send messages,
        or not) of the group, or leaves it."""
        await self.post(
            "/_emu/members",
            {
                "chat_id": chat_id,
                "user_id": person.user["id"],
                "status": status,
                "can_send_messages": can_send_messages,
            },
        )

    async def person(self, first_name: str, language_code: str | None = "lt") -> Person:
        """Someone (a clerk, staff) who will act in groups; see Person.in_chat."""
        return await self.resident(first_name, language_code)

    async def requests(self, method: str | None = None) -> list[dict[str, Any]]:
        response = await self.http.get("/_emu/requests", params={"method": method} if method else None)
        requests: list[dict[str, Any]] = response.json()["requests"]
        return requests

    async def unknown_parameters(self) -> list[list[str]]:
        unknown: list[list[str]] = (await self.http.get("/_emu/requests")).json()["unknown_parameters"]
        return unknown

    async def commands(self) -> list[dict[str, Any]]:
        commands: list[dict[str, Any]] = (await self.http.get("/_emu/commands")).json()
        return commands

    async def fault(self, kind: str, **where: Any) -> None:
        await self.post("/_emu/faults", {"kind": kind, **where})

    async def redeliver(self, update_id: int) -> None:
        await self.post("/_emu/redeliver", {"update_id": update_id})

    async def limits(self, **values: Any) -> dict[str, Any]:
        response = await self.http.put("/_emu/limits", json=values)
        limits: dict[str, Any] = response.json()
        return limits

    async def chat(self, chat_id: int) -> dict[str, Any]:
        chat: dict[str, Any] = (await self.http.get(f"/_emu/chats/{chat_id}")).json()
        return chat


class Person:
    """A Telegram user; by default acting in their private chat with the bot."""

    def __init__(self, telegram: Telegram, user: dict[str, Any], chat_id: int) -> None:
        self.telegram = telegram
        self.user = user
        self.chat_id = chat_id
        self._inbox = _Inbox()
        self._last_query: str | None = None

    def in_chat(self, chat_id: int) -> Person:
        """The same user, acting (and reading) in another chat, e.g. the clerks' group."""
        return Person(self.telegram, self.user, chat_id)

    # --- acting ---

    async def _send(
        self, body: dict[str, Any], thread_id: int | None = None, reply_to: int | None = None
    ) -> list[dict[str, Any]]:
        payload = {"user_id": self.user["id"], "chat_id": self.chat_id, **body}
        if thread_id is not None:
            payload["thread_id"] = thread_id
        if reply_to is not None:
            payload["reply_to"] = reply_to
        sent: list[dict[str, Any]] = await self.telegram.post("/_emu/messages", payload)
        return sent

    async def send(
        self, text: str, *, thread_id: int | None = None, reply_to: int | None = None
    ) -> dict[str, Any]:
        return (await self._send({"text": text}, thread_id, reply_to))[0]

    async def send_anonymously(
        self, text: str, *, thread_id: int | None = None, reply_to: int | None = None
    ) -> dict[str, Any]:
        """As a group's administrator posting as the group (sender_chat), not as themselves."""
        return (await self._send({"text": text, "anonymous": True}, thread_id, reply_to))[0]

    async def send_photo(self, data: bytes, caption: str | None = None, **where: Any) -> dict[str, Any]:
        return (await self._send({"files": [_file("photo", data, caption=caption)]}, **where))[0]

    async def send_document(
        self,
        data: bytes,
        name: str,
        mime: str = "application/pdf",
        caption: str | None = None,
        size: int | None = None,
        **where: Any,
    ) -> dict[str, Any]:
        """`size`: the document is `data` followed by zero bytes up to this many (a large file, cheaply)."""
        return (
            await self._send(
                {"files": [_file("document", data, name=name, mime=mime, caption=caption, size=size)]},
                **where,
            )
        )[0]

    async def send_album(
        self, photos: list[bytes], caption: str | None = None, **where: Any
    ) -> list[dict[str, Any]]:
        files = [_file("photo", data, caption=caption if i == 0 else None) for i, data in enumerate(photos)]
        return await self._send({"files": files}, **where)

    async def share_location(self, latitude: float, longitude: float) -> dict[str, Any]:
        return (await self._send({"location": [latitude, longitude]}))[0]

    async def share_contact(self, phone: str) -> dict[str, Any]:
        return (await self._send({"contact": phone}))[0]

    async def send_sticker(self) -> dict[str, Any]:
        return (await self._send({"sticker": True}))[0]

    async def send_voice(self) -> dict[str, Any]:
        return (await self._send({"voice": True}))[0]

    async def click(self, text: str, message: Received | None = None) -> int:
        """Press an inline button by its label (in `message`, else the newest that has it).

        Returns the update_id of the button press."""
        body: dict[str, Any] = {"user_id": self.user["id"], "chat_id": self.chat_id, "text": text}
        if message is not None:
            body["message_id"] = message.id
        pressed = await self.telegram.post("/_emu/click", body)
        self._last_query = pressed["callback_query_id"]
        update_id: int = pressed["update_id"]
        return update_id

    async def forge_button(self, data: str, message: Received) -> int:
        """Send a button press with arbitrary callback_data, as a crafted client could."""
        body = {"user_id": self.user["id"], "chat_id": self.chat_id, "message_id": message.id, "data": data}
        pressed = await self.telegram.post("/_emu/callback", body)
        self._last_query = pressed["callback_query_id"]
        update_id: int = pressed["update_id"]
        return update_id

    async def block_bot(self, blocked: bool = True) -> None:
        await self.telegram.post("/_emu/block", {"user_id": self.user["id"], "blocked": blocked})

    # --- reading ---

    async def _pull(self, timeout: float) -> bool:
        response = await self.telegram.http.get(
            "/_emu/events", params={"after": self._inbox.cursor, "chat_id": self.chat_id, "timeout": timeout}
        )
        body = response.json()
        self._inbox.cursor = body["last"]
        for event in body["events"]:
            if (
                event["type"] == "message"
                and event.get("outgoing")
                and "forum_topic_created" not in event["message"]
            ):
                self._inbox.messages.append(
                    Received(event["message"], event.get("html"), event.get("keyboard"))
                )
            elif event["type"] == "edit":
                self._inbox.edits.append(Received(event["message"], event.get("html")))
            elif event["type"] == "callback_answer":
                self._inbox.answers.append(event)
        return bool(body["events"])

    async def _wait(self, queue: deque[_T], count: int, timeout: float | None, what: str) -> list[_T]:
        timeout = self.telegram.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while len(queue) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise NothingReceived(f"expected {count} {what}, got {list(queue)}")
            await self._pull(min(remaining, 10.0))  # within the HTTP client's timeout
        return [queue.popleft() for _ in range(count)]

    async def receive(self, count: int = 1, timeout: float | None = None) -> list[Received]:
        """The next `count` messages the bot sent to this chat."""
        return await self._wait(self._inbox.messages, count, timeout, "message(s)")

    async def receive_one(self, timeout: float | None = None) -> Received:
        return (await self.receive(1, timeout))[0]

    async def edited(self, timeout: float | None = None) -> Received:
        """The next message the bot edited in this chat."""
        return (await self._wait(self._inbox.edits, 1, timeout, "edit"))[0]

    async def seen(self, wanted: Callable[[Received], bool], timeout: float | None = None) -> Received:
        """The first message or edit in this chat that `wanted` accepts (a card posted, or edited in
        place); the others stay queued."""
        deadline = time.monotonic() + (self.telegram.timeout if timeout is None else timeout)
        while True:
            for queue in (self._inbox.messages, self._inbox.edits):
                for received in list(queue):
                    if wanted(received):
                        queue.remove(received)
                        return received
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise NothingReceived(f"nothing wanted came: {[*self._inbox.messages, *self._inbox.edits]}")
            await self._pull(min(remaining, 10.0))

    async def answer(self, timeout: float | None = None) -> dict[str, Any]:
        """The bot's answer (the toast or alert) to the last button this person pressed."""
        while True:
            answer = (await self._wait(self._inbox.answers, 1, timeout, "callback answer"))[0]
            if answer["callback_query_id"] == self._last_query:
                return answer

    async def drain(self) -> list[Received]:
        """Everything new in this chat (messages and edits, in order), without waiting."""
        await self._pull(0)
        seen = [*self._inbox.messages, *self._inbox.edits]
        self._inbox.messages.clear()
        self._inbox.edits.clear()
        self._inbox.answers.clear()
        return seen

    async def nothing_more(self, wait: float = 0.5) -> None:
        """Assert that the bot has sent this chat no further message. In process, once the bot has
        settled (`Telegram.settle`: every update handled, nothing due in the outbox), without
        sleeping; end to end, where the bot is another process, after waiting `wait` seconds."""
        if self.telegram.settle is not None:
            await self.telegram.settle()
            await self._pull(0)
        else:
            await self._pull(wait)
        if self._inbox.messages:
            raise AssertionError(f"unexpected messages: {list(self._inbox.messages)}")


def _file(kind: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        "data": base64.b64encode(data).decode(),
        **{k: v for k, v in extra.items() if v is not None},
    }
