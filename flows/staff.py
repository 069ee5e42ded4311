"""The staff groups' gate, shared by the desk (flows.clerk) and the communications group
(flows.comms); who may act is bot.services.roles' one rule.

A post must come from a person: one made anonymously (as the group) or as a channel is refused
with a hint to post as oneself. Someone who may not act is told so: a button press every time
(its own answer, outside the group's lane), a message at most once an hour per person and group
(a reply takes a place in the group's 20-a-minute lane, ahead of the cards); the rest are only
logged. Every staff action and every refusal is logged with the person's id, never with what
they wrote.
"""

from __future__ import annotations

import logging
import re

from aiogram.types import CallbackQuery, Message, User
from aiogram.utils.i18n import gettext as _

from bot.services.roles import Role, StaffRoles

log = logging.getLogger(__name__)

_OUR_DATA = re.compile(
    r"[a-z]{1,8}:[A-Za-z0-9_:.-]{0,60}"
)  # what the bot's CallbackData make: a prefix, then ids and codes


def _what(event: Message | CallbackQuery) -> str:
    """What was done, for the log: a command's name, a button's data (ids the bot made), or the kind of post."""
    if isinstance(event, CallbackQuery):  # a crafted client can send anything: only what looks like ours
        return event.data if event.data and _OUR_DATA.fullmatch(event.data) else "(other button data)"
    if event.text and event.text.startswith("/"):
        return event.text.split(maxsplit=1)[0].split("@", 1)[0][:64]
    return str(event.content_type)


def _chat_id(event: Message | CallbackQuery) -> int | None:
    message = event.message if isinstance(event, CallbackQuery) else event
    return message.chat.id if message is not None else None


async def person_of(event: Message | CallbackQuery, roles: StaffRoles) -> User | None:
    """Who is acting; None (after the hint) for a post made anonymously or as a channel."""
    if isinstance(event, Message) and event.sender_chat is not None:
        log.warning(
            "staff action refused: not posted as a person",
            extra={"chat_id": event.chat.id, "sender_chat_id": event.sender_chat.id, "action": _what(event)},
        )
        await refuse(
            event,
            _(
                "Please post as yourself, not anonymously or as a channel: the case's history must name a person."
            ),
            roles,
            event.sender_chat.id,
        )
        return None
    return event.from_user


async def refuse(event: Message | CallbackQuery, text: str, roles: StaffRoles, who: int) -> None:
    """Tell `who` they may not act: a press always, a message once an hour (then only logged)."""
    if isinstance(event, CallbackQuery):
        await event.answer(text, show_alert=True)
        return
    if roles.refusals.may_tell(event.chat.id, who):
        await event.reply(text)
        return
    log.info("refusal not repeated within the hour", extra={"chat_id": event.chat.id, "user_id": who})


async def refused(
    event: Message | CallbackQuery, user: User, text: str, roles: StaffRoles, **context: object
) -> None:
    """Log a refusal of `user` and tell them (see `refuse`)."""
    log.warning(
        "staff action refused",
        extra={"user_id": user.id, "chat_id": _chat_id(event), "action": _what(event), **context},
    )
    await refuse(event, text, roles, user.id)


def acted(event: Message | CallbackQuery, user: User, role: Role | None = None, **context: object) -> None:
    """Log a staff action with the person who took it."""
    log.info(
        "staff action",
        extra={
            "user_id": user.id,
            "chat_id": _chat_id(event),
            "action": _what(event),
            "role": role,
            **context,
        },
    )
