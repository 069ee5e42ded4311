"""Who may act in a staff group: the teams' groups and the communications group, one rule.

Someone listed in the municipality file (a head or a member of a team, a member of the
communications staff) acts; so does an administrator of the group (creator or administrator,
asked with getChatMember and remembered for MEMBERSHIP_SECONDS). A group that lists nobody (the
zero-config desk in ADMIN_CHAT_ID, a communications group without a list) lets every member who
may post there act: a member, or a restricted member who may still send messages; never one
restricted without that right, nor one who left or was removed.

Someone who may not act is told so at most once an hour per group (`Refusals`): a reply in a
group takes a place in its 20-a-minute lane, ahead of the cards.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from aiogram import Bot
from aiogram.enums import ChatMemberStatus
from aiogram.exceptions import ClientDecodeError, TelegramAPIError
from aiogram.types import ChatMemberRestricted

from bot import clock

log = logging.getLogger(__name__)

MEMBERSHIP_SECONDS = 300
REFUSAL_EVERY = timedelta(hours=1)
_CACHE_LIMIT = 10_000

ADMIN_STATUSES = frozenset({"creator", "administrator"})


class Role(StrEnum):
    HEAD = "head"
    MEMBER = "member"
    ADMIN = "admin"  # an administrator of the group
    NONE = "none"

    @property
    def acts(self) -> bool:
        return self is not Role.NONE

    @property
    def assigns(self) -> bool:
        return self is Role.HEAD

    @staticmethod
    def strongest(roles: Collection[Role]) -> Role:
        """The role that allows the most of `roles` (a person may be in several teams of a group)."""
        order = (Role.NONE, Role.MEMBER, Role.ADMIN, Role.HEAD)
        return max(roles, key=order.index, default=Role.NONE)


@dataclass(frozen=True)
class Membership:
    """What Telegram says of a person in a group."""

    status: str  # creator, administrator, member, restricted, left, kicked
    may_post: bool

    @property
    def admin(self) -> bool:
        return self.status in ADMIN_STATUSES


NOT_A_MEMBER = Membership("left", may_post=False)


class StaffRoles:
    """The rule, the memory of getChatMember's answers, and of the refusals given."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot
        self._membership: dict[tuple[int, int], tuple[Membership, float]] = {}
        self.refusals = Refusals()

    async def role(
        self, chat_id: int, user_id: int, heads: Collection[int], members: Collection[int]
    ) -> Role:
        """The role of `user_id` in the staff group `chat_id` that lists `heads` and `members`."""
        if user_id in heads:
            return Role.HEAD
        if user_id in members:
            return Role.MEMBER
        membership = await self.membership(chat_id, user_id)
        if membership.admin:
            return Role.ADMIN
        if not heads and not members and membership.may_post:
            return Role.MEMBER
        return Role.NONE

    async def membership(self, chat_id: int, user_id: int) -> Membership:
        key = (chat_id, user_id)
        cached = self._membership.get(key)
        if cached and cached[1] > time.monotonic():
            return cached[0]
        try:
            member = await self.bot.get_chat_member(chat_id, user_id)
        except (TelegramAPIError, ClientDecodeError) as exc:
            log.warning(
                "could not check a staff member's membership",
                extra={"chat_id": chat_id, "user_id": user_id, "error": type(exc).__name__},
            )
            return NOT_A_MEMBER  # not remembered: asked again next time
        status = ChatMemberStatus(member.status).value
        membership = Membership(status, _may_post(member, status))
        if len(self._membership) >= _CACHE_LIMIT:
            self._membership.clear()
        self._membership[key] = (membership, time.monotonic() + MEMBERSHIP_SECONDS)
        return membership


def _may_post(member: object, status: str) -> bool:
    """Whether a member may post in the group: not one restricted without the right to send messages."""
    if isinstance(member, ChatMemberRestricted):
        return member.is_member and member.can_send_messages
    return status in ("creator", "administrator", "member")


class Refusals:
    """When each person was last told, in each group, that they may not act there.

    In memory, per process: with several replicas each may tell a person once an hour."""

    def __init__(self, every: timedelta = REFUSAL_EVERY, limit: int = _CACHE_LIMIT) -> None:
        self.every = every
        self.limit = limit
        self._told: dict[tuple[int, int], datetime] = {}

    def may_tell(self, chat_id: int, who: int) -> bool:
        """Whether `who` (a user, or the chat an anonymous post came from) is to be told now; if so,
        it counts as told."""
        now = clock.now()
        last = self._told.get((chat_id, who))
        if last is not None and now - last < self.every:
            return False
        if len(self._told) >= self.limit:
            self._told = {key: at for key, at in self._told.items() if now - at < self.every}
            if len(self._told) >= self.limit:  # that many people refused within the hour: start again
                self._told.clear()
        self._told[(chat_id, who)] = now
        return True
