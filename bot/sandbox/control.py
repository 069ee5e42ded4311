"""The emulator's control API (`/_emu/...`): what people do in Telegram, and what tests read back.

Requests and answers are JSON. Files travel base64-encoded in `data`.

Only for whoever holds the run's token (`Emulator.control_token`, new at each start: the sandbox
page gets it in its HTML, the tests' driver from the emulator): every request carries it in
X-Emulator-Token (a file may carry it as `?token=`, for an <img> or a link), and a request with a
body is `application/json`. A web page elsewhere cannot make people act here: it knows no token,
and a form post is refused. Files come back as attachments with `nosniff`, so an uploaded page or
script is never run as this site's.
"""

from __future__ import annotations

import base64
import mimetypes
import secrets
import time
from dataclasses import asdict
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from bot.sandbox.emulator import Emulator, Limits
from bot.services.storage import content_disposition
from bot.settings import same_secret

CONTROL_PATH = "/_emu/"
TOKEN_HEADER = "X-Emulator-Token"
INLINE_TYPES = frozenset(
    {"image/png", "image/jpeg", "image/gif", "image/webp"}
)  # shown when opened from the page; the rest downloads


def controlled_emulator(
    token: str, limits: Limits | None = None, control_token: str | None = None
) -> Emulator:
    """An emulator whose people are driven through the control API under /_emu/: the one place
    where the two meet (the emulator itself knows only the Bot API; this module knows both).
    `control_token`: the control API's token when a client in another process must know it
    beforehand (a benchmark); by default a new random one."""
    emulator = Emulator(token, limits)
    emulator.control_token = control_token or secrets.token_urlsafe(24)
    emulator.app.middlewares.append(_guard(emulator.control_token))
    control = _Control(emulator)
    router = emulator.app.router
    router.add_post("/_emu/users", control.add_user)
    router.add_post("/_emu/groups", control.add_group)
    router.add_post("/_emu/members", control.set_member)
    router.add_post("/_emu/messages", control.send)
    router.add_post("/_emu/click", control.click)
    router.add_post("/_emu/callback", control.forge_callback)
    router.add_post("/_emu/block", control.block)
    router.add_post("/_emu/redeliver", control.redeliver)
    router.add_get("/_emu/events", control.events)
    router.add_get("/_emu/chats", control.chats)
    router.add_get("/_emu/chats/{chat_id}", control.chat)
    router.add_get("/_emu/files/{file_id}", control.file)
    router.add_get("/_emu/requests", control.requests)
    router.add_get("/_emu/commands", control.commands)
    router.add_post("/_emu/faults", control.add_fault)
    router.add_delete("/_emu/faults", control.clear_faults)
    router.add_get("/_emu/limits", control.get_limits)
    router.add_put("/_emu/limits", control.set_limits)
    return emulator


# Who a message posted anonymously by a group's administrator is "from" (Telegram's own bot account).
GROUP_ANONYMOUS_BOT = {
    "id": 1087968824,
    "is_bot": True,
    "first_name": "Group",
    "username": "GroupAnonymousBot",
}


def control_headers(emulator: Emulator) -> dict[str, str]:
    """What a client of the control API sends with every request (the tests' driver, the benchmarks)."""
    return {TOKEN_HEADER: emulator.control_token}


def _guard(token: str) -> Any:
    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith(CONTROL_PATH):
            return await handler(request)  # the Bot API and the page
        given = request.headers.get(TOKEN_HEADER) or (
            request.query.get("token") if request.path.startswith(CONTROL_PATH + "files/") else None
        )
        if not same_secret(given, token):
            raise web.HTTPForbidden(
                text=f"the control API needs this run's token in {TOKEN_HEADER} (the sandbox page has it)"
            )
        if request.method in ("POST", "PUT", "PATCH") and request.content_type != "application/json":
            raise web.HTTPUnsupportedMediaType(text="the control API takes application/json")
        return await handler(request)

    return guard


def _bad(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=message)


class _Control:
    def __init__(self, emulator: Emulator) -> None:
        self.emu = emulator

    async def add_user(self, request: web.Request) -> web.Response:
        body = await request.json()
        user = self.emu.add_user(
            body.get("first_name") or "Resident",
            language_code=body.get("language_code", "pl"),
            last_name=body.get("last_name"),
            user_id=body.get("id"),
        )
        return web.json_response(user)

    async def add_group(self, request: web.Request) -> web.Response:
        body = await request.json()
        info = self.emu.add_group(
            body["title"],
            forum=bool(body.get("forum")),
            members=body.get("members", []),
            chat_id=body.get("id"),
        )
        self.emu.chats[info["id"]].admins.update(body.get("admins", []))
        return web.json_response(info)

    async def set_member(self, request: web.Request) -> web.Response:
        """A person's standing in a group changes: member, administrator, restricted (with
        `can_send_messages` true or false) or left."""
        body = await request.json()
        user = self._user(body)
        chat = self.emu.chats.get(body.get("chat_id"))
        status = body.get("status")
        if chat is None or chat.is_private:
            raise _bad("unknown group")
        if status not in ("member", "administrator", "restricted", "left"):
            raise _bad("status must be member, administrator, restricted or left")
        uid = user["id"]
        chat.admins.discard(uid)
        chat.restricted.pop(uid, None)
        (chat.members.discard if status == "left" else chat.members.add)(uid)
        if status == "administrator":
            chat.admins.add(uid)
        if status == "restricted":
            chat.restricted[uid] = bool(body.get("can_send_messages", False))
        return web.json_response({"chat_id": chat.info["id"], "user_id": uid, "status": status})

    def _user(self, body: dict[str, Any]) -> dict[str, Any]:
        user = self.emu.users.get(int(body.get("user_id") or 0))
        if user is None:
            raise _bad("unknown user_id")
        return user

    async def send(self, request: web.Request) -> web.Response:
        """A person sends a message: text, photo, document, album, location, contact or sticker."""
        body = await request.json()
        user = self._user(body)
        chat = self.emu.chats.get(body.get("chat_id", user["id"]))
        if chat is None or user["id"] not in chat.members:
            raise _bad("the user is not in that chat")
        if chat.restricted.get(user["id"]) is False:
            raise _bad("the user may not send messages in that chat")
        thread_id = body.get("thread_id")
        reply_to = body.get("reply_to")
        contents = self._contents(body, user)
        sender = user
        if body.get("anonymous"):  # an administrator posting as the group: Telegram names the group, not them
            if user["id"] not in chat.admins or chat.is_private:
                raise _bad("only a group's administrator can post anonymously")
            sender = GROUP_ANONYMOUS_BOT
            contents = [{**content, "sender_chat": chat.info} for content in contents]
        messages = []
        for content in contents:
            message = self.emu.new_message(chat, sender, content, thread_id=thread_id, reply_to=reply_to)
            self.emu.enqueue({"message": message})
            messages.append(message)
        return web.json_response(messages)

    def _contents(self, body: dict[str, Any], user: dict[str, Any]) -> list[dict[str, Any]]:
        if "text" in body:
            text = body["text"]
            content: dict[str, Any] = {"text": text}
            if text.startswith("/"):
                command = text.split()[0]
                content["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
            return [content]
        if "location" in body:
            return [{"location": {"latitude": body["location"][0], "longitude": body["location"][1]}}]
        if "contact" in body:
            contact = {
                "phone_number": body["contact"],
                "first_name": user["first_name"],
                "user_id": user["id"],
            }
            return [{"contact": contact}]
        if "sticker" in body:
            return [{"sticker": self._sticker()}]
        if "voice" in body:
            return [{"voice": {"file_id": "voice-1", "file_unique_id": "v1", "duration": 3}}]
        if "files" in body:
            group_id = str(int(time.time() * 1000)) if len(body["files"]) > 1 else None
            contents = []
            for item in body["files"]:
                content = self._file_content(item)
                if group_id:
                    content["media_group_id"] = group_id
                contents.append(content)
            return contents
        raise _bad("nothing to send")

    def _file_content(self, item: dict[str, Any]) -> dict[str, Any]:
        kind = item.get("kind", "photo")
        data = base64.b64decode(item["data"])
        if item.get("size"):  # a large file without sending it all: the data, then zero bytes up to `size`
            data = data.ljust(int(item["size"]), b"\0")
        file_id, record = self.emu.store_file(data, item.get("name"), item.get("mime"), kind)
        content = self.emu.media(kind, file_id, record)
        if item.get("caption"):
            content["caption"] = item["caption"]
        return content

    @staticmethod
    def _sticker() -> dict[str, Any]:
        return {
            "file_id": "sticker-1",
            "file_unique_id": "s1",
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": "👍",
        }

    async def click(self, request: web.Request) -> web.Response:
        """A person presses an inline button, found by its text (or callback_data)."""
        body = await request.json()
        user = self._user(body)
        chat_id = body.get("chat_id", user["id"])
        chat = self.emu.chats.get(chat_id)
        if chat is None:
            raise _bad("unknown chat")
        candidates = (
            [chat.messages[body["message_id"]]]
            if body.get("message_id") in chat.messages
            else list(reversed(chat.messages.values()))
        )
        for message in candidates:
            for row in (message.get("reply_markup") or {}).get("inline_keyboard", []):
                for button in row:
                    if button.get("text") == body.get("text") or (
                        body.get("data") and button.get("callback_data") == body["data"]
                    ):
                        if "callback_data" not in button:
                            raise _bad("that button is a link, not a callback")
                        query_id = str(len(self.emu.callbacks) + 1) + str(int(time.time() * 1000))
                        update = self.emu.press(user, chat_id, message, button["callback_data"], query_id)
                        return web.json_response(
                            {
                                "callback_query_id": query_id,
                                "message_id": message["message_id"],
                                "update_id": update["update_id"],
                            }
                        )
        raise _bad(f"no button {body.get('text') or body.get('data')!r} in that chat")

    async def forge_callback(self, request: web.Request) -> web.Response:
        """A crafted button press with any callback_data on any message: what an attacker can send."""
        body = await request.json()
        user = self._user(body)
        chat = self.emu.chats.get(body.get("chat_id", user["id"]))
        message = chat.messages.get(body.get("message_id")) if chat else None
        if chat is None or message is None:
            raise _bad("unknown chat or message")
        query_id = f"forged{len(self.emu.callbacks) + 1}"
        update = self.emu.press(user, chat.info["id"], message, body["data"], query_id)
        return web.json_response({"update_id": update["update_id"], "callback_query_id": query_id})

    async def block(self, request: web.Request) -> web.Response:
        """The person blocks (or unblocks) the bot: Telegram answers 403 and sends my_chat_member."""
        body = await request.json()
        user = self._user(body)
        blocked = body.get("blocked", True)
        (self.emu.blocked.add if blocked else self.emu.blocked.discard)(user["id"])
        old, new = ("member", "kicked") if blocked else ("kicked", "member")
        self.emu.enqueue(
            {
                "my_chat_member": {
                    "chat": self.emu.chats[user["id"]].info,
                    "from": user,
                    "date": int(time.time()),
                    "old_chat_member": {
                        "status": old,
                        "user": self.emu.bot_user,
                        **({"until_date": 0} if old == "kicked" else {}),
                    },
                    "new_chat_member": {
                        "status": new,
                        "user": self.emu.bot_user,
                        **({"until_date": 0} if new == "kicked" else {}),
                    },
                }
            }
        )
        return web.json_response({"blocked": blocked})

    async def redeliver(self, request: web.Request) -> web.Response:
        """Deliver an update again (the bot crashed before confirming it)."""
        body = await request.json()
        try:
            self.emu.redeliver(body["update_id"])
        except KeyError:
            raise _bad("that update was never delivered") from None
        return web.json_response({"redelivered": body["update_id"]})

    async def events(self, request: web.Request) -> web.Response:
        """Events after `after`, optionally for one chat; waits up to `timeout` s for the first."""
        after = int(request.query.get("after", 0))
        chat_id = int(request.query["chat_id"]) if "chat_id" in request.query else None
        timeout = min(float(request.query.get("timeout", 0)), 60.0)

        def matching() -> list[dict[str, Any]]:
            return [e for e in self.emu.events[after:] if chat_id is None or e["chat_id"] == chat_id]

        await self.emu.wait_for(lambda: bool(matching()), timeout)
        return web.json_response({"events": matching(), "last": len(self.emu.events)})

    async def chats(self, request: web.Request) -> web.Response:
        """Every chat with its people and topics: what a Telegram client's chat list shows."""
        rows = []
        for chat in self.emu.chats.values():
            members = [self.emu.users[m] for m in sorted(chat.members) if m in self.emu.users]
            rows.append(
                {
                    **chat.info,
                    "members": members,
                    "topics": list(chat.topics.values()),
                    "blocked": chat.info["id"] in self.emu.blocked,
                }
            )
        return web.json_response(rows)

    async def file(self, request: web.Request) -> web.Response:
        record = self.emu.files.get(request.match_info["file_id"])
        if record is None:
            raise web.HTTPNotFound(text="unknown file")
        # What the sender declared; else what its name says (aiogram uploads photos and charts as
        # application/octet-stream). A photo or a chart opens in the page's new tab; anything else
        # (a document, HTML, SVG) only downloads, and nothing is sniffed into something else.
        mime = record.mime if record.mime not in (None, "application/octet-stream") else None
        mime = mime or mimetypes.guess_type(record.name or "")[0] or "application/octet-stream"
        headers = {"X-Content-Type-Options": "nosniff"}
        if mime not in INLINE_TYPES:
            headers["Content-Disposition"] = content_disposition(
                record.name or record.path.rsplit("/", 1)[-1]
            )
        return web.Response(body=record.data, content_type=mime, headers=headers)

    async def chat(self, request: web.Request) -> web.Response:
        chat = self.emu.chats.get(int(request.match_info["chat_id"]))
        if chat is None:
            raise web.HTTPNotFound(text="unknown chat")
        return web.json_response(
            {
                "chat": chat.info,
                "messages": list(chat.messages.values()),
                "topics": list(chat.topics.values()),
            }
        )

    async def requests(self, request: web.Request) -> web.Response:
        method = request.query.get("method")
        rows = [r for r in self.emu.requests if not method or r["method"].lower() == method.lower()]
        return web.json_response({"requests": rows, "unknown_parameters": self.emu.spec.unknown_parameters})

    async def commands(self, request: web.Request) -> web.Response:
        rows = [
            {"scope": scope, "language_code": language, "commands": commands}
            for (scope, language), commands in self.emu.commands.items()
        ]
        return web.json_response(rows)

    async def add_fault(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("kind") not in ("error", "timeout", "forbidden", "retry_after"):
            raise _bad("kind must be error, timeout, forbidden or retry_after")
        if "seconds" in body:  # for that long rather than a number of times
            body["until"] = time.monotonic() + float(body.pop("seconds"))
        self.emu.faults.append({"count": 1, **body})
        return web.json_response({"faults": len(self.emu.faults)})

    async def clear_faults(self, request: web.Request) -> web.Response:
        self.emu.faults.clear()
        return web.json_response({"faults": 0})

    async def get_limits(self, request: web.Request) -> web.Response:
        return web.json_response(asdict(self.emu.limits))

    async def set_limits(self, request: web.Request) -> web.Response:
        body = await request.json()
        for key, value in body.items():
            if not hasattr(self.emu.limits, key):
                raise _bad(f"unknown limit {key}")
            setattr(self.emu.limits, key, value)
        self.emu.reset_rate_buckets()
        return web.json_response(asdict(self.emu.limits))
