"""A local Bot API server, strict like Telegram, for tests and the sandbox.

The bot talks to it over real HTTP (`/bot<token>/<method>`, form, JSON and multipart bodies);
scripted people (residents, clerks, staff) act through the control API under `/_emu/`
(`bot.sandbox.control`, which the sandbox page and the tests' driver use). Every request is checked against the Bot API description
(unknown method → 404, missing parameter → 400) and the documented prose limits (text length,
callback_data bytes, HTML entities). Rate limits answer 429 with retry_after, and faults (5xx,
timeouts, 403 for a chat) can be injected.

Updates are fetched with getUpdates, or, once setWebhook is called, posted to the bot's URL as
Telegram does: with the secret token header, several at a time but one at a time per chat, and
again (after a second) until the bot answers 2xx. getUpdates then answers 409.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import re
import secrets
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from aiohttp.web_request import FileField

from bot.limiter import PACED_METHODS, is_edit
from bot.sandbox.spec import (
    CAPTION_LIMIT,
    NEWER_REQUIRED_FIELDS,
    TEXT_LIMIT,
    BadRequest,
    check_reply_markup,
    formatted,
    load_spec,
)

log = logging.getLogger(__name__)

# What counts against Telegram's rate limits: the list the bot paces by (method names are case-insensitive).
_COUNTED = frozenset(method.lower() for method in PACED_METHODS)
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024  # getFile: "bots can download files of up to 20MB in size"
_FORUM_ICON_COLORS = {7322096, 16766590, 13338331, 9367192, 16749490, 16478047}
_CONTENT_KEYS = (
    "text",
    "entities",
    "photo",
    "document",
    "caption",
    "caption_entities",
    "location",
    "contact",
    "poll",
    "sticker",
    "voice",
)


@dataclass
class Limits:
    """Telegram's limits; `enabled=False` measures the bot without them."""

    enabled: bool = True
    global_per_second: float = 30.0
    global_burst: int = 30
    private_per_second: float = 1.0
    private_burst: int = 10
    group_per_minute: int = 20


class _Bucket:
    def __init__(self, rate: float, capacity: float) -> None:
        self.rate = rate
        self.capacity = capacity
        self.tokens = capacity
        self.stamp = time.monotonic()

    def wait_needed(self) -> float:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate

    def take(self) -> None:
        self.tokens -= 1


@dataclass
class StoredFile:
    data: bytes
    unique_id: str
    name: str | None
    mime: str | None
    path: str


@dataclass
class Chat:
    info: dict[str, Any]
    messages: dict[int, dict[str, Any]] = field(default_factory=dict)
    message_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    topics: dict[int, dict[str, Any]] = field(default_factory=dict)
    members: set[int] = field(default_factory=set)
    admins: set[int] = field(default_factory=set)
    restricted: dict[int, bool] = field(default_factory=dict)  # member -> may still send messages
    bot_rights: dict[str, bool] = field(
        default_factory=dict
    )  # the bot's administrator rights withheld here (False); "admin": False, a member only

    @property
    def is_private(self) -> bool:
        return bool(self.info["type"] == "private")


class Emulator:
    def __init__(self, token: str, limits: Limits | None = None, username: str = "petent_bot") -> None:
        self.token = token
        self.control_token = ""  # the control API's, for this run (bot.sandbox.control sets it)
        self.limits = limits or Limits()
        self.spec = load_spec()
        self.bot_user = {
            "id": int(token.split(":")[0]),
            "is_bot": True,
            "first_name": "Petent",
            "username": username,
        }
        self.users: dict[int, dict[str, Any]] = {}
        self.chats: dict[int, Chat] = {}
        self.blocked: set[int] = set()
        self.migrated: dict[int, int] = {}  # a group upgraded to a supergroup: old id -> new id
        self.files: dict[str, StoredFile] = {}
        self.commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.callbacks: dict[str, dict[str, Any]] = {}
        self.faults: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.listeners: list[Any] = []  # in-process observers of events (benchmarks)
        self._updates: list[dict[str, Any]] = []
        self._sent_updates: dict[int, dict[str, Any]] = {}
        self._redeliveries: list[dict[str, Any]] = []
        self.polls = 0  # getUpdates calls received: a bot is ready once it polls
        self._shutting_down = False
        self.webhook: dict[str, Any] | None = (
            None  # set by setWebhook: url, secret_token, allowed_updates, max_connections
        )
        self.webhook_posts: list[dict[str, Any]] = []  # every webhook delivery attempt: update_id, status
        self._webhook_task: asyncio.Task[None] | None = None
        self._update_ids = itertools.count(1)
        self._user_ids = itertools.count(100001)
        self._group_ids = itertools.count(1)
        self._ids = itertools.count(1)
        self._file_numbers = itertools.count(0)
        self._changed = asyncio.Condition()
        self._global = _Bucket(self.limits.global_per_second, self.limits.global_burst)
        self._chat_buckets: dict[int, _Bucket] = {}
        self.app = self._build_app()

    # --- HTTP --------------------------------------------------------------------------

    def _build_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        app.on_shutdown.append(self._end_long_polls)
        return app

    async def _end_long_polls(self, _app: web.Application) -> None:
        """Shutting down: a getUpdates waiting for updates answers now, so that the server need not
        wait out its shutdown timeout for a bot that may be gone already."""
        self._shutting_down = True
        await self._notify()

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        try:
            raw, uploads = await _read_params(request)
            params = self.spec.coerce(method, raw)
            params["__uploads__"] = uploads
            await self._inject_fault(method.lower(), params)
            handler = getattr(self, f"_m_{method.lower()}", None)
            if handler is None:
                raise BadRequest(f"Bad Request: method {method} is not supported by the emulator", code=501)
            if self.limits.enabled and method.lower() in _COUNTED:
                self._check_rate(params.get("chat_id"), edit=is_edit(method))
            result = handler(params)
            if asyncio.iscoroutine(result):
                result = await result
        except BadRequest as exc:
            self._log_request(method, locals().get("raw", {}), exc.code, exc.description)
            return _error(exc.code, exc.description, exc.parameters)
        self._log_request(method, raw, 200, None)
        return web.json_response({"ok": True, "result": result})

    async def _handle_file(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        path = request.match_info["path"]
        for record in self.files.values():
            if record.path == path:
                return web.Response(body=record.data, content_type=record.mime or "application/octet-stream")
        return _error(404, "Not Found")

    def _log_request(self, method: str, raw: dict[str, Any], status: int, error: str | None) -> None:
        params = {k: (v if not isinstance(v, FileField) else f"<file {v.filename}>") for k, v in raw.items()}
        self.requests.append(
            {"method": method, "params": params, "status": status, "error": error, "at": time.time()}
        )

    async def _inject_fault(self, method: str, params: dict[str, Any]) -> None:
        chat_id = params.get("chat_id")
        if isinstance(chat_id, int) and chat_id in self.blocked and method in _COUNTED | {"sendchataction"}:
            raise BadRequest("Forbidden: bot was blocked by the user", code=403)
        for fault in self.faults:
            if "until" in fault:  # an outage of some seconds: every matching request fails meanwhile
                if time.monotonic() > fault["until"]:
                    continue
            elif fault["count"] == 0:
                continue
            if fault.get("method") and fault["method"].lower() != method:
                continue
            if fault.get("chat_id") is not None and fault["chat_id"] != chat_id:
                continue
            fault["count"] -= 1
            if fault["kind"] == "timeout":
                await asyncio.sleep(fault.get("delay", 30))
                return
            if fault["kind"] == "forbidden":
                raise BadRequest("Forbidden: bot was blocked by the user", code=403)
            if fault["kind"] == "retry_after":
                raise BadRequest(
                    f"Too Many Requests: retry after {fault.get('retry_after', 1)}",
                    code=429,
                    parameters={"retry_after": fault.get("retry_after", 1)},
                )
            raise BadRequest("Internal Server Error", code=fault.get("code", 500))

    def _check_rate(self, chat_id: Any, edit: bool) -> None:
        """Telegram's limits; in a private chat only new messages count, in a group edits too."""
        chat = self.chats.get(chat_id) if isinstance(chat_id, int) else None
        if chat is not None and chat.is_private and edit:
            chat = None
        wait = self._global.wait_needed()
        bucket = None
        if chat is not None:
            bucket = self._chat_buckets.get(chat_id)
            if bucket is None:
                if chat.is_private:
                    bucket = _Bucket(self.limits.private_per_second, self.limits.private_burst)
                else:
                    bucket = _Bucket(self.limits.group_per_minute / 60, self.limits.group_per_minute)
                self._chat_buckets[chat_id] = bucket
            wait = max(wait, bucket.wait_needed())
        if wait > 0:
            retry_after = max(1, int(wait + 0.999))
            raise BadRequest(
                f"Too Many Requests: retry after {retry_after}",
                code=429,
                parameters={"retry_after": retry_after},
            )
        self._global.take()
        if bucket is not None:
            bucket.take()

    def reset_rate_buckets(self) -> None:
        self._global = _Bucket(self.limits.global_per_second, self.limits.global_burst)
        self._chat_buckets.clear()

    async def serve(
        self, host: str = "127.0.0.1", port: int = 0, sock: socket.socket | None = None
    ) -> web.AppRunner:
        """Start listening (on `sock` if given: bound already); `self.url` is the base URL to give
        the bot as TELEGRAM_API_URL."""
        runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.SockSite(runner, sock) if sock is not None else web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0]
        self.url = f"http://{bound[0]}:{bound[1]}"
        return runner

    # --- state shared with the control API ----------------------------------------------

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def _record(self, kind: str, chat_id: int, **payload: Any) -> None:
        event = {"seq": len(self.events) + 1, "type": kind, "chat_id": chat_id, **payload}
        self.events.append(event)
        for listener in self.listeners:
            listener(event)
        asyncio.get_running_loop().create_task(self._notify())

    async def wait_for(self, predicate: Any, timeout: float) -> bool:
        """Wait until predicate() is true or the timeout passes."""
        deadline = time.monotonic() + timeout
        async with self._changed:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                try:  # not wait_for, which on Python 3.11 can swallow a cancellation (see Outbox._run)
                    async with asyncio.timeout(remaining):
                        await self._changed.wait()
                except TimeoutError:
                    return bool(predicate())
        return True

    def add_user(
        self,
        first_name: str,
        language_code: str | None = "pl",
        last_name: str | None = None,
        user_id: int | None = None,
    ) -> dict[str, Any]:
        uid = user_id or next(self._user_ids)
        user = {"id": uid, "is_bot": False, "first_name": first_name}
        if last_name:
            user["last_name"] = last_name
        if language_code:
            user["language_code"] = language_code
        self.users[uid] = user
        chat_info = {"id": uid, "type": "private", "first_name": first_name}
        if last_name:
            chat_info["last_name"] = last_name
        self.chats[uid] = Chat(info=chat_info, members={uid})
        return user

    def add_group(
        self, title: str, forum: bool = False, members: Sequence[int] = (), chat_id: int | None = None
    ) -> dict[str, Any]:
        cid = chat_id or -(1_000_000_000_000 + next(self._group_ids))
        info = {"id": cid, "type": "supergroup", "title": title}
        if forum:
            info["is_forum"] = True
        # Message 1 of a forum is its General topic: thread ids start after it.
        self.chats[cid] = Chat(info=info, members=set(members), message_ids=itertools.count(2))
        return info

    def enqueue(self, update: dict[str, Any]) -> dict[str, Any]:
        update = {"update_id": next(self._update_ids), **update}
        self._updates.append(update)
        asyncio.get_running_loop().create_task(self._notify())
        return update

    def press(
        self, user: dict[str, Any], chat_id: int, message: dict[str, Any], data: str, query_id: str
    ) -> dict[str, Any]:
        """A person presses a button under `message` carrying `data`: the callback_query update the bot gets."""
        self.callbacks[query_id] = {"id": query_id, "chat_id": chat_id}
        query = {
            "id": query_id,
            "from": user,
            "message": message,
            "chat_instance": str(chat_id),
            "data": data,
        }
        return self.enqueue({"callback_query": query})

    def migrate(self, chat_id: int, new_id: int) -> None:
        """The group becomes a supergroup with a new id; the old id answers with migrate_to_chat_id."""
        old = self.chats.pop(chat_id)
        self.chats[new_id] = Chat(
            info={**old.info, "id": new_id},
            members=old.members,
            admins=old.admins,
            message_ids=itertools.count(2),
        )
        self.migrated[chat_id] = new_id

    def chat(self, chat_id: Any) -> Chat:
        if chat_id in self.migrated:
            raise BadRequest(
                "Bad Request: group chat was upgraded to a supergroup chat",
                parameters={"migrate_to_chat_id": self.migrated[chat_id]},
            )
        chat = self.chats.get(chat_id) if isinstance(chat_id, int) else None
        if chat is None:
            raise BadRequest("Bad Request: chat not found")
        return chat

    def store_file(
        self, data: bytes, name: str | None, mime: str | None, kind: str
    ) -> tuple[str, StoredFile]:
        file_id = f"{kind}-{secrets.token_urlsafe(12)}"
        # Telegram's file_path: "photos/file_12.jpg", "documents/file_3.pdf" (the extension of the sent name).
        extension = (
            ".jpg" if kind == "photo" else "." + name.rsplit(".", 1)[1] if name and "." in name else ""
        )
        record = StoredFile(
            data=data,
            unique_id=secrets.token_hex(8),
            name=name,
            mime=mime,
            path=f"{kind}s/file_{next(self._file_numbers)}{extension}",
        )
        self.files[file_id] = record
        return file_id, record

    def new_message(
        self,
        chat: Chat,
        sender: dict[str, Any],
        content: dict[str, Any],
        *,
        thread_id: int | None = None,
        reply_to: int | None = None,
        html: str | None = None,
        keyboard: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": next(chat.message_ids),
            "date": int(time.time()),
            "chat": chat.info,
            "from": sender,
            **content,
        }
        if thread_id is not None:
            message["message_thread_id"] = thread_id
            message["is_topic_message"] = True
        if reply_to is not None:
            original = chat.messages.get(reply_to)
            if original is not None:
                message["reply_to_message"] = {k: v for k, v in original.items() if k != "reply_to_message"}
        chat.messages[message["message_id"]] = message
        self._record(
            "message",
            chat.info["id"],
            message=message,
            outgoing=sender.get("id") == self.bot_user["id"],
            html=html,
            keyboard=keyboard,
        )
        return message

    # --- Bot API methods ---------------------------------------------------------------

    def _m_getme(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": True,
            "supports_inline_queries": False,
        }

    def _m_deletewebhook(self, params: dict[str, Any]) -> bool:
        if params.get("drop_pending_updates"):
            self._updates.clear()
        self.webhook = None
        return True

    def _m_setwebhook(self, params: dict[str, Any]) -> bool:
        url = params.get("url") or ""
        if not url:
            return self._m_deletewebhook(params)
        parts = urlsplit(url)
        if parts.scheme != "https" and parts.hostname not in (
            "127.0.0.1",
            "localhost",
        ):  # plain http only on this machine
            raise BadRequest("Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
        secret = params.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret):
            raise BadRequest("Bad Request: secret token contains unallowed characters")
        if params.get("drop_pending_updates"):
            self._updates.clear()
        allowed = params.get("allowed_updates")
        self.webhook = {
            "url": url,
            "secret_token": secret,
            "allowed_updates": allowed or None,
            "max_connections": params.get("max_connections") or 40,
        }
        if self._webhook_task is None or self._webhook_task.done():
            self._webhook_task = asyncio.get_running_loop().create_task(self._post_updates())
        return True

    def _m_getwebhookinfo(self, params: dict[str, Any]) -> dict[str, Any]:
        url = self.webhook["url"] if self.webhook else ""
        return {"url": url, "has_custom_certificate": False, "pending_update_count": len(self._updates)}

    async def _post_updates(self) -> None:
        """Telegram's side of a webhook: post pending updates until the bot answers 2xx."""
        in_flight: dict[Any, int] = {}  # chat -> the update_id being posted
        retry_at: dict[int, float] = {}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:

            async def post(update: dict[str, Any], key: Any, hook: dict[str, Any]) -> None:
                headers = (
                    {"X-Telegram-Bot-Api-Secret-Token": hook["secret_token"]} if hook["secret_token"] else {}
                )
                status = 0
                try:
                    async with http.post(hook["url"], json=update, headers=headers) as response:
                        status = response.status
                except (aiohttp.ClientError, TimeoutError):
                    pass
                self.webhook_posts.append({"update_id": update["update_id"], "status": status})
                if 200 <= status < 300:
                    self._updates = [u for u in self._updates if u["update_id"] != update["update_id"]]
                else:
                    retry_at[update["update_id"]] = time.monotonic() + 1.0
                del in_flight[key]
                await self._notify()

            def ready() -> list[dict[str, Any]]:
                hook = self.webhook
                if hook is None:
                    return []
                now, seen, batch = time.monotonic(), set(in_flight), []
                for update in self._updates:
                    key = _chat_of(update)
                    if key in seen:
                        continue
                    seen.add(key)  # later updates of this chat wait for this one
                    allowed = hook["allowed_updates"]
                    if (not allowed or any(k in update for k in allowed)) and retry_at.get(
                        update["update_id"], 0
                    ) <= now:
                        batch.append(update)
                return batch[: max(0, hook["max_connections"] - len(in_flight))]

            while self.webhook is not None:
                for update in ready():
                    key = _chat_of(update)
                    in_flight[key] = update["update_id"]
                    asyncio.get_running_loop().create_task(post(update, key, self.webhook))
                await self.wait_for(lambda: bool(ready()), 0.25)

    async def _m_getupdates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        if self.webhook is not None:
            raise BadRequest(
                "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
                code=409,
            )
        self.polls += 1
        offset = params.get("offset") or 0
        if offset:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        allowed = params.get("allowed_updates") or None

        def pending() -> list[dict[str, Any]]:
            return self._redeliveries + [
                u for u in self._updates if not allowed or any(k in u for k in allowed)
            ]

        await self.wait_for(lambda: self._shutting_down or bool(pending()), float(params.get("timeout") or 0))
        batch = pending()[: int(params.get("limit") or 100)]
        self._redeliveries = [u for u in self._redeliveries if u not in batch]
        for update in batch:
            self._sent_updates[update["update_id"]] = update
        return batch

    def redeliver(self, update_id: int) -> None:
        """Deliver an update again, as Telegram does when a bot crashed before confirming it."""
        self._redeliveries.append(self._sent_updates[update_id])
        asyncio.get_running_loop().create_task(self._notify())

    def _m_setmycommands(self, params: dict[str, Any]) -> bool:
        commands = params["commands"]
        if not isinstance(commands, list) or len(commands) > 100:
            raise BadRequest("Bad Request: commands must be a list of at most 100 commands")
        for command in commands:
            name, description = command.get("command", ""), command.get("description", "")
            if not (1 <= len(name) <= 32 and name.replace("_", "").isalnum() and name.islower()):
                raise BadRequest("Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(description) <= 256:
                raise BadRequest("Bad Request: command description must be 1-256 characters")
        self.commands[
            (
                json.dumps(params.get("scope") or {"type": "default"}, sort_keys=True),
                params.get("language_code") or "",
            )
        ] = commands
        return True

    def _m_getmycommands(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        return self.commands.get(
            (
                json.dumps(params.get("scope") or {"type": "default"}, sort_keys=True),
                params.get("language_code") or "",
            ),
            [],
        )

    def _m_deletemycommands(self, params: dict[str, Any]) -> bool:
        self.commands.pop(
            (
                json.dumps(params.get("scope") or {"type": "default"}, sort_keys=True),
                params.get("language_code") or "",
            ),
            None,
        )
        return True

    def _m_sendchataction(self, params: dict[str, Any]) -> bool:
        self.chat(params["chat_id"])
        return True

    def _m_sendmessage(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self.chat(params["chat_id"])
        text, entities = formatted(params["text"], params.get("parse_mode"), TEXT_LIMIT)
        content: dict[str, Any] = {"text": text}
        if entities:
            content["entities"] = entities
        return self._send(chat, params, content, html=params["text"] if params.get("parse_mode") else None)

    def _send(
        self, chat: Chat, params: dict[str, Any], content: dict[str, Any], html: str | None = None
    ) -> dict[str, Any]:
        thread_id = self._thread(chat, params.get("message_thread_id"))
        reply_to = self._reply_target(chat, params)
        markup = params.get("reply_markup")
        check_reply_markup(markup)
        keyboard = None
        if markup and "inline_keyboard" in markup:
            content["reply_markup"] = markup
        elif markup:
            keyboard = markup  # reply keyboards are not part of the Message: the chat shows them
        return self.new_message(
            chat, self.bot_user, content, thread_id=thread_id, reply_to=reply_to, html=html, keyboard=keyboard
        )

    def _thread(self, chat: Chat, thread_id: int | None) -> int | None:
        if thread_id in (None, 0, 1):
            return None
        if not chat.info.get("is_forum") or thread_id not in chat.topics:
            raise BadRequest("Bad Request: message thread not found")
        if chat.topics[thread_id].get("is_closed"):
            raise BadRequest("Bad Request: TOPIC_CLOSED")
        return thread_id

    def _reply_target(self, chat: Chat, params: dict[str, Any]) -> int | None:
        reply = params.get("reply_parameters") or {}
        message_id = reply.get("message_id") if isinstance(reply, dict) else None
        if message_id is None:
            return None
        if message_id not in chat.messages and not reply.get("allow_sending_without_reply"):
            raise BadRequest("Bad Request: message to be replied not found")
        return message_id if message_id in chat.messages else None

    def _caption(self, params: dict[str, Any], content: dict[str, Any]) -> None:
        if params.get("caption"):
            caption, entities = formatted(
                params["caption"],
                params.get("parse_mode"),
                CAPTION_LIMIT,
                what="message caption",
                allow_empty=True,
            )
            content["caption"] = caption
            if entities:
                content["caption_entities"] = entities

    def _file_for(
        self, value: Any, kind: str, uploads: dict[str, Any] | None = None
    ) -> tuple[str, StoredFile]:
        if isinstance(value, str) and value.startswith("attach://") and uploads is not None:
            value = uploads.get(value.removeprefix("attach://"))
        if isinstance(value, FileField):
            data = value.file.read()
            return self.store_file(data, value.filename, value.content_type, kind)
        if isinstance(value, str) and value in self.files:
            return value, self.files[value]
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            raise BadRequest("Bad Request: failed to get HTTP URL content")
        raise BadRequest("Bad Request: wrong file identifier/HTTP URL specified")

    def media(self, kind: str, file_id: str, record: StoredFile) -> dict[str, Any]:
        """The part of a Message that shows a stored file: `photo` (sizes) or `document`."""
        if kind == "photo":
            return {
                "photo": [
                    {
                        "file_id": file_id,
                        "file_unique_id": record.unique_id,
                        "width": 800,
                        "height": 600,
                        "file_size": len(record.data),
                    }
                ]
            }
        document = {"file_id": file_id, "file_unique_id": record.unique_id, "file_size": len(record.data)}
        if record.name:
            document["file_name"] = record.name
        if record.mime:
            document["mime_type"] = record.mime
        return {"document": document}

    def _m_sendphoto(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._send_file("photo", params)

    def _m_senddocument(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._send_file("document", params)

    def _send_file(self, kind: str, params: dict[str, Any]) -> dict[str, Any]:
        chat = self.chat(params["chat_id"])
        file_id, record = self._file_for(params[kind], kind)
        content = self.media(kind, file_id, record)
        self._caption(params, content)
        return self._send(chat, params, content)

    def _m_sendmediagroup(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        chat = self.chat(params["chat_id"])
        media = params["media"]
        if not isinstance(media, list) or not 2 <= len(media) <= 10:
            raise BadRequest("Bad Request: media group must include 2-10 items")
        thread_id = self._thread(chat, params.get("message_thread_id"))
        reply_to = self._reply_target(chat, params)
        group_id = str(next(self._ids) + 10**12)
        messages = []
        uploads = params["__uploads__"]
        for item in media:
            kind = item.get("type")
            if kind not in ("photo", "document"):
                raise BadRequest(f"Bad Request: unsupported media type {kind}")
            file_id, record = self._file_for(item.get("media"), kind, uploads)
            content = {**self.media(kind, file_id, record), "media_group_id": group_id}
            self._caption(item, content)
            messages.append(
                self.new_message(chat, self.bot_user, content, thread_id=thread_id, reply_to=reply_to)
            )
        return messages

    def _m_sendlocation(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self.chat(params["chat_id"])
        latitude, longitude = float(params["latitude"]), float(params["longitude"])
        if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
            raise BadRequest("Bad Request: wrong latitude or longitude")
        return self._send(chat, params, {"location": {"latitude": latitude, "longitude": longitude}})

    def _m_sendcontact(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self.chat(params["chat_id"])
        return self._send(
            chat,
            params,
            {"contact": {"phone_number": params["phone_number"], "first_name": params["first_name"]}},
        )

    def _m_sendpoll(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self.chat(params["chat_id"])
        options = params["options"]
        if not isinstance(options, list) or not 2 <= len(options) <= 12:
            raise BadRequest("Bad Request: poll must have 2-12 options")
        question = params["question"]
        if not 1 <= len(question) <= 300:
            raise BadRequest("Bad Request: poll question must be 1-300 characters")
        poll = {
            "id": str(next(self._ids)),
            "question": question,
            "options": [
                {"text": o["text"] if isinstance(o, dict) else str(o), "voter_count": 0} for o in options
            ],
            "total_voter_count": 0,
            "is_closed": False,
            "is_anonymous": params.get("is_anonymous", True),
            "type": params.get("type", "regular"),
            "allows_multiple_answers": bool(params.get("allows_multiple_answers")),
        }
        return self._send(chat, params, {"poll": poll})

    def _editable(self, params: dict[str, Any]) -> tuple[Chat, dict[str, Any]]:
        if params.get("inline_message_id"):
            raise BadRequest("Bad Request: inline messages are not supported by the emulator")
        chat = self.chat(params.get("chat_id"))
        message = chat.messages.get(int(params.get("message_id") or 0))
        if message is None:
            raise BadRequest("Bad Request: message to edit not found")
        if not message["from"].get("is_bot"):
            raise BadRequest("Bad Request: message can't be edited")
        return chat, message

    def _apply_edit(
        self,
        chat: Chat,
        message: dict[str, Any],
        changes: dict[str, Any],
        markup: Any,
        html: str | None = None,
    ) -> dict[str, Any]:
        check_reply_markup(markup)
        if markup is not None and "inline_keyboard" not in markup:
            raise BadRequest("Bad Request: only inline keyboards can be edited")
        new = {k: v for k, v in message.items() if k != "reply_markup"}
        new.update(changes)
        new = {k: v for k, v in new.items() if v is not None}
        if markup and markup.get("inline_keyboard"):
            new["reply_markup"] = markup
        same_content = all(new.get(k) == message.get(k) for k in _CONTENT_KEYS)
        if same_content and new.get("reply_markup") == message.get("reply_markup"):
            raise BadRequest(
                "Bad Request: message is not modified: specified new message content and reply markup are "
                "exactly the same as a current content and reply markup of the message"
            )
        new["edit_date"] = int(time.time())
        chat.messages[message["message_id"]] = new
        self._record("edit", chat.info["id"], message=new, html=html)
        return new

    def _m_editmessagetext(self, params: dict[str, Any]) -> dict[str, Any]:
        chat, message = self._editable(params)
        if "text" not in message:
            raise BadRequest("Bad Request: there is no text in the message to edit")
        text, entities = formatted(params["text"], params.get("parse_mode"), TEXT_LIMIT)
        changes = {"text": text, "entities": entities or None}
        return self._apply_edit(
            chat,
            message,
            changes,
            params.get("reply_markup"),
            html=params["text"] if params.get("parse_mode") else None,
        )

    def _m_editmessagecaption(self, params: dict[str, Any]) -> dict[str, Any]:
        chat, message = self._editable(params)
        changes: dict[str, Any] = {"caption": None, "caption_entities": None}
        self._caption(params, changes)
        return self._apply_edit(chat, message, changes, params.get("reply_markup"))

    def _m_editmessagereplymarkup(self, params: dict[str, Any]) -> dict[str, Any]:
        chat, message = self._editable(params)
        return self._apply_edit(chat, message, {}, params.get("reply_markup") or {"inline_keyboard": []})

    def _m_editmessagemedia(self, params: dict[str, Any]) -> dict[str, Any]:
        chat, message = self._editable(params)
        if not any(key in message for key in ("photo", "document")):
            raise BadRequest("Bad Request: there is no media in the message to edit")
        item = params["media"]
        kind = item.get("type") if isinstance(item, dict) else None
        if kind not in ("photo", "document"):
            raise BadRequest(f"Bad Request: unsupported media type {kind}")
        file_id, record = self._file_for(item.get("media"), kind, params["__uploads__"])
        changes: dict[str, Any] = {
            "photo": None,
            "document": None,
            "caption": None,
            "caption_entities": None,
            **self.media(kind, file_id, record),
        }
        self._caption(item, changes)
        return self._apply_edit(chat, message, changes, params.get("reply_markup"))

    def _m_deletemessage(self, params: dict[str, Any]) -> bool:
        chat = self.chat(params["chat_id"])
        if chat.messages.pop(params["message_id"], None) is None:
            raise BadRequest("Bad Request: message to delete not found")
        self._record("delete", chat.info["id"], message_id=params["message_id"])
        return True

    def _m_answercallbackquery(self, params: dict[str, Any]) -> bool:
        query = self.callbacks.get(params["callback_query_id"])
        if query is None or query.get("answered"):
            raise BadRequest(
                "Bad Request: query is too old and response timeout expired or query ID is invalid"
            )
        text = params.get("text") or ""
        if len(text) > 200:
            raise BadRequest("Bad Request: MESSAGE_TOO_LONG")
        query["answered"] = True
        self._record(
            "callback_answer",
            query["chat_id"],
            callback_query_id=query["id"],
            text=text,
            show_alert=bool(params.get("show_alert")),
        )
        return True

    def _copy_content(self, source: dict[str, Any]) -> dict[str, Any]:
        return {k: source[k] for k in _CONTENT_KEYS if k in source}

    def _m_copymessage(self, params: dict[str, Any]) -> dict[str, Any]:
        source = self.chat(params["from_chat_id"]).messages.get(params["message_id"])
        if source is None:
            raise BadRequest("Bad Request: message to copy not found")
        content = self._copy_content(source)
        if "caption" in params:
            content.pop("caption", None)
            content.pop("caption_entities", None)
            self._caption(params, content)
        message = self._send(self.chat(params["chat_id"]), params, content)
        return {"message_id": message["message_id"]}

    def _m_copymessages(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        source_chat = self.chat(params["from_chat_id"])
        target = self.chat(params["chat_id"])
        result = []
        albums: dict[str, str] = {}  # copies of an album stay an album, under a new id
        for message_id in params["message_ids"]:
            source = source_chat.messages.get(message_id)
            if source is not None:
                content = self._copy_content(source)
                if source.get("media_group_id"):
                    content["media_group_id"] = albums.setdefault(
                        source["media_group_id"], str(next(self._ids) + 10**12)
                    )
                result.append(
                    {
                        "message_id": self._send(
                            target, {k: v for k, v in params.items() if k == "message_thread_id"}, content
                        )["message_id"]
                    }
                )
        if not result:
            raise BadRequest("Bad Request: messages to copy not found")
        return result

    def _m_forwardmessage(self, params: dict[str, Any]) -> dict[str, Any]:
        source_chat = self.chat(params["from_chat_id"])
        source = source_chat.messages.get(params["message_id"])
        if source is None:
            raise BadRequest("Bad Request: message to forward not found")
        content = self._copy_content(source)
        content["forward_origin"] = {"type": "user", "date": source["date"], "sender_user": source["from"]}
        return self._send(
            self.chat(params["chat_id"]),
            {k: v for k, v in params.items() if k == "message_thread_id"},
            content,
        )

    def _m_createforumtopic(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self.chat(params["chat_id"])
        if not chat.info.get("is_forum"):
            raise BadRequest("Bad Request: the chat is not a forum")
        if not (chat.bot_rights.get("admin", True) and chat.bot_rights.get("can_manage_topics", True)):
            raise BadRequest("Bad Request: not enough rights to create a topic")
        name = params["name"]
        if not 1 <= len(name) <= 128:
            raise BadRequest("Bad Request: topic name must be 1-128 characters")
        color = params.get("icon_color", 7322096)
        if color not in _FORUM_ICON_COLORS:
            raise BadRequest("Bad Request: invalid icon_color")
        service = self.new_message(
            chat, self.bot_user, {"forum_topic_created": {"name": name, "icon_color": color}}
        )
        thread_id = service["message_id"]
        service["message_thread_id"] = thread_id
        service["is_topic_message"] = True
        chat.topics[thread_id] = {"message_thread_id": thread_id, "name": name, "icon_color": color}
        self._record("topic", chat.info["id"], topic=chat.topics[thread_id])
        return chat.topics[thread_id]

    def _topic(self, params: dict[str, Any]) -> tuple[Chat, dict[str, Any]]:
        chat = self.chat(params["chat_id"])
        topic = chat.topics.get(params["message_thread_id"])
        if topic is None:
            raise BadRequest("Bad Request: message thread not found")
        return chat, topic

    def _m_editforumtopic(self, params: dict[str, Any]) -> bool:
        chat, topic = self._topic(params)
        if params.get("name"):
            if len(params["name"]) > 128:
                raise BadRequest("Bad Request: topic name must be 1-128 characters")
            if params["name"] == topic["name"]:
                raise BadRequest("Bad Request: TOPIC_NOT_MODIFIED")
            topic["name"] = params["name"]
        self._record("topic", chat.info["id"], topic=topic)
        return True

    def _m_closeforumtopic(self, params: dict[str, Any]) -> bool:
        chat, topic = self._topic(params)
        if topic.get("is_closed"):
            raise BadRequest("Bad Request: TOPIC_NOT_MODIFIED")
        topic["is_closed"] = True
        self._record("topic", chat.info["id"], topic=topic)
        return True

    def _m_reopenforumtopic(self, params: dict[str, Any]) -> bool:
        chat, topic = self._topic(params)
        if not topic.get("is_closed"):
            raise BadRequest("Bad Request: TOPIC_NOT_MODIFIED")
        topic["is_closed"] = False
        self._record("topic", chat.info["id"], topic=topic)
        return True

    def _m_deleteforumtopic(self, params: dict[str, Any]) -> bool:
        chat, topic = self._topic(params)
        del chat.topics[topic["message_thread_id"]]
        self._record("topic_deleted", chat.info["id"], topic=topic)
        return True

    def _m_getchat(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self.chat(params["chat_id"])
        return {
            **chat.info,
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }

    def _m_getchatmember(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self.chat(params["chat_id"])
        user_id = params["user_id"]
        if user_id == self.bot_user["id"]:
            if chat.bot_rights.get("admin", True) is False:
                return {"status": "member", "user": self.bot_user}
            rights = {name: chat.bot_rights.get(name, value) for name, value in _ADMIN_RIGHTS.items()}
            return {"status": "administrator", "user": self.bot_user, **rights}
        user = self.users.get(user_id)
        if user is None:
            raise BadRequest("Bad Request: user not found")
        if user_id in chat.admins:
            return {"status": "administrator", "user": user, **_ADMIN_RIGHTS}
        if user_id in chat.restricted:
            may_send = chat.restricted[user_id]
            rights = dict.fromkeys(_RESTRICTED_RIGHTS, may_send)
            return {
                "status": "restricted",
                "user": user,
                "is_member": user_id in chat.members,
                **rights,
                "until_date": 0,
            }
        if user_id in chat.members:
            return {"status": "member", "user": user}
        return {"status": "left", "user": user}

    def _m_getfile(self, params: dict[str, Any]) -> dict[str, Any]:
        record = self.files.get(params["file_id"])
        if record is None:
            raise BadRequest("Bad Request: invalid file_id")
        if len(record.data) > MAX_DOWNLOAD_BYTES:  # "bots can download files of up to 20MB in size"
            raise BadRequest("Bad Request: file is too big")
        return {
            "file_id": params["file_id"],
            "file_unique_id": record.unique_id,
            "file_size": len(record.data),
            "file_path": record.path,
        }

    def _m_setmessagereaction(self, params: dict[str, Any]) -> bool:
        chat = self.chat(params["chat_id"])
        message = chat.messages.get(params["message_id"])
        if message is None:
            raise BadRequest("Bad Request: message to react not found")
        reaction = params.get("reaction") or []
        if len(reaction) > 1:
            raise BadRequest("Bad Request: REACTIONS_TOO_MANY")
        self._record("reaction", chat.info["id"], message_id=message["message_id"], reaction=reaction)
        return True

    def _m_leavechat(self, params: dict[str, Any]) -> bool:
        self.chat(params["chat_id"])
        return True


_ADMIN_RIGHTS = {
    "can_be_edited": False,
    "is_anonymous": False,
    "can_manage_chat": True,
    "can_delete_messages": True,
    "can_manage_video_chats": True,
    "can_restrict_members": True,
    "can_promote_members": False,
    "can_change_info": True,
    "can_invite_users": True,
    "can_post_stories": False,
    "can_edit_stories": False,
    "can_delete_stories": False,
    "can_pin_messages": True,
    "can_manage_topics": True,
    **NEWER_REQUIRED_FIELDS["ChatMemberAdministrator"],
}
# A restricted member's rights: all granted or all withheld (the test's `restricted` flag).
_RESTRICTED_RIGHTS = (
    "can_send_messages",
    "can_send_audios",
    "can_send_documents",
    "can_send_photos",
    "can_send_videos",
    "can_send_video_notes",
    "can_send_voice_notes",
    "can_send_polls",
    "can_send_other_messages",
    "can_add_web_page_previews",
    "can_react_to_messages",
    "can_edit_tag",
    "can_change_info",
    "can_invite_users",
    "can_pin_messages",
    "can_manage_topics",
)


def _chat_of(update: dict[str, Any]) -> Any:
    """Whose update it is: updates of one chat are posted to a webhook one after another."""
    for kind in ("message", "edited_message", "callback_query", "my_chat_member", "chat_member"):
        if kind in update:
            body = update[kind]
            chat = (body.get("message") or body).get("chat") if kind == "callback_query" else body.get("chat")
            return (chat or {}).get("id") or body.get("from", {}).get("id")
    return update["update_id"]


def _error(code: int, description: str, parameters: dict[str, Any] | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=code)


async def _read_params(request: web.Request) -> tuple[dict[str, Any], dict[str, FileField]]:
    """The request's parameters, and the files uploaded under names of their own (attach://)."""
    params: dict[str, Any] = dict(request.query)
    uploads: dict[str, FileField] = {}
    if request.method == "POST" and request.can_read_body:
        if request.content_type == "application/json":
            body = await request.json()
            if not isinstance(body, dict):
                raise BadRequest("Bad Request: JSON body must be an object")
            params.update(body)
        else:
            form = await request.post()
            params.update(form.items())
    # Uploaded files are named by "attach://<field>" in the parameter that uses them.
    for key in [k for k, v in params.items() if isinstance(v, FileField)]:
        if any(isinstance(v, str) and f"attach://{key}" in v for v in params.values()):
            uploads[key] = params.pop(key)
    for key, value in list(params.items()):
        if isinstance(value, str) and value.startswith("attach://") and value[9:] in uploads:
            params[key] = uploads[value[9:]]
    return params, uploads
