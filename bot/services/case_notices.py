"""What a change to a case queues: the resident told (in their language), the clerks' posts in the
case's topic, the card's edits, the document management system's events, the followers' notices
("me too"), the schedule's reminders and escalations, and the privacy hooks that blank or delete
what a case left in the teams' groups.

Everything taking a session queues outbox rows in the caller's transaction: they are sent once it
commits (bot.services.outbox). `status_changed` announces a status a clerk set (every closing passes
through it, merging included): a hook on closing a case belongs there. A resident's reopening is
announced to the clerks instead (`CaseCommands.reopen_by_resident`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.config import Config
from bot.services import case_queries
from bot.services.metoo import FollowerTexts, notice_followers
from bot.services.outbox import Kind, enqueue, group_key, pending_row, release_now, resident_key
from bot.services.outbox_payloads import (
    CardBlankPayload,
    CardEditPayload,
    CardPayload,
    CloseTopicPayload,
    DeleteMessagesPayload,
    DeleteTopicPayload,
    FilesPayload,
    InfoPayload,
    LocationPayload,
    MessagePayload,
    TopicPayload,
)
from bot.services.teams import TeamDirectory
from bot.services.webhooks import Event, case_snapshot, queue_event
from bot.store.db import Database, rowcount
from bot.store.models import (
    CLOSED_STATUSES,
    Attachment,
    Case,
    CaseEvent,
    CaseStatus,
    CaseTrace,
    EventKind,
    OutboxMessage,
    OutboxStatus,
    TraceKind,
    utcnow,
)

if TYPE_CHECKING:  # the renderers: imported for types only
    from bot.services.groups import ClerkTexts
    from bot.services.notifications import ResidentTexts

# What a resident adds within this of their previous addition joins it in one post for the clerks
# (an album, a few lines typed one after another); GATHER_SECONDS bounds the whole wait.
GATHER_QUIET_SECONDS = 3


def by_whom(clerk_name: str | None) -> dict[str, str | None]:
    """Who made a change, as the document management system is told: a clerk (by name) or the system."""
    return {"role": "clerk", "name": clerk_name} if clerk_name else {"role": "system"}


def record_trace(
    session: AsyncSession,
    case_id: int,
    kind: TraceKind,
    chat_id: int,
    *,
    topic_id: int | None = None,
    message_id: int | None = None,
) -> None:
    """Remember a topic, card or post of the case in a team group (see CaseTrace)."""
    session.add(
        CaseTrace(case_id=case_id, kind=kind, chat_id=chat_id, topic_id=topic_id, message_id=message_id)
    )


class CaseNotices:
    def __init__(
        self,
        database: Database,
        config: Config,
        teams: TeamDirectory,
        resident_texts: ResidentTexts,
        clerk_texts: ClerkTexts,
    ) -> None:
        self.database = database
        self.config = config
        self.teams = teams
        self.resident_texts = resident_texts  # in the resident's language
        self.clerk_texts = clerk_texts  # in ADMIN_LOCALE
        self.follower_texts = FollowerTexts(
            resident_texts.i18n, config
        )  # "me too": in each follower's language

    # --- in the caller's transaction ---

    async def status_changed(
        self,
        session: AsyncSession,
        case: Case,
        event: CaseEvent,
        events: list[CaseEvent],
        actor_name: str | None,
        text: str | None,
        *,
        notify: bool = True,
    ) -> None:
        """A new status (`event`, the last of the change's `events`): the document management
        system's event, the resident told (unless `notify` is off), the followers, and on closing the
        satisfaction question."""
        to = case.status
        await self._hook_status(session, case, event, events, actor_name, text)
        locale = await case_queries.resident_locale(session, case)
        if notify:
            self.notify(session, case, self.resident_texts.event(case, event, locale))
        # Followers ("me too"): a public case's final answer is the clerk's relayed message.
        answer = text or next((e.text for e in reversed(events) if e.kind == EventKind.MESSAGE_OUT), None)
        await notice_followers(
            session, self.follower_texts, case, answer, self.config.settings.default_locale
        )
        resident = await case_queries.resident_of(session, case)
        asks = (
            to in CLOSED_STATUSES and to != CaseStatus.DUPLICATE
        )  # a duplicate's resident is asked about the original's handling
        if (
            asks
            and case.resident_id is not None
            and not case.feedback_asked
            and not case_queries.kept_apart(case, resident)
        ):
            case.feedback_asked = True  # asked once per case, never again after a reopening
            question, keyboard = self.resident_texts.satisfaction_question(case, locale)
            self.notify(session, case, question, keyboard=keyboard)

    async def _hook_status(
        self,
        session: AsyncSession,
        case: Case,
        event: CaseEvent,
        events: list[CaseEvent],
        actor_name: str | None,
        text: str | None,
    ) -> None:
        """A status that closes or reopens the case is an event for the document management system."""
        to, by = case.status, by_whom(actor_name)
        if to == CaseStatus.ANSWERED:
            # The answer sent as the clerk's message (`act` relays it first), else the text given.
            relayed = next((e.text for e in reversed(events) if e.kind == EventKind.MESSAGE_OUT), None)
            await self.hook(session, Event.ANSWERED, case, event, {"answer": text or relayed, "by": by})
        elif to in CLOSED_STATUSES:
            await self.hook(session, Event.CLOSED, case, event, {"outcome": to, "reason": text, "by": by})
        elif to == CaseStatus.REOPENED:
            await self.hook(session, Event.REOPENED, case, event, {"reason": text, "by": by})

    async def hook(
        self,
        session: AsyncSession,
        kind: Event,
        case: Case,
        event: CaseEvent,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """The event for each receiver of CASE_WEBHOOKS, with the case as it is now (bot.services.webhooks)."""
        receivers = self.config.settings.webhook_receivers
        if not receivers:
            return
        await session.flush()  # the event's id, and the case's changes
        resident = await case_queries.resident_of(session, case)
        files = await session.scalar(
            select(func.count()).select_from(Attachment).where(col(Attachment.case_id) == case.id)
        )
        queue_event(session, receivers, kind, case, event, case_snapshot(case, resident, files or 0), detail)

    async def event_to_resident(self, session: AsyncSession, case: Case, event: CaseEvent) -> None:
        """The resident told of `event`, in their language."""
        self.notify(
            session,
            case,
            self.resident_texts.event(case, event, await case_queries.resident_locale(session, case)),
        )

    def notify(
        self,
        session: AsyncSession,
        case: Case,
        text: str,
        keyboard: dict[str, Any] | None = None,
        reply_keyboard: dict[str, Any] | None = None,
    ) -> None:
        """A message to the case's resident."""
        if case.resident_id is None:
            return  # nobody in Telegram: a case registered by a clerk, or the retention period is over
        payload = MessagePayload(
            text=text, warn_blocked=True, keyboard=keyboard, reply_keyboard=reply_keyboard
        )
        enqueue(session, payload, case.resident_id, key=resident_key(case.resident_id), case_id=case.id)

    def chat_of(self, case: Case) -> int:
        """The team group holding the case (cases from before teams: the default team's)."""
        return case.group_chat_id or self.teams.chat_of(self.teams.get(case.team_id))

    def post_in(self, session: AsyncSession, case: Case, text: str) -> None:
        """A line for the clerks in the case's topic (or the group's main chat)."""
        chat = self.chat_of(case)
        enqueue(
            session,
            MessagePayload(text=text, in_topic=True),
            chat,
            key=group_key(chat, case.id),
            case_id=case.id,
        )

    def queue_card(
        self, session: AsyncSession, case: Case, attachment_ids: list[int], history: str | None = None
    ) -> None:
        """The case's topic and card in its team's group, then its history, pin and files."""
        chat = self.chat_of(case)
        key = group_key(chat, case.id)
        enqueue(session, TopicPayload(), chat, key=key, case_id=case.id)
        enqueue(session, CardPayload(), chat, key=key, case_id=case.id)
        if history:
            enqueue(session, MessagePayload(text=history, in_topic=True), chat, key=key, case_id=case.id)
        if case.latitude is not None and case.longitude is not None:
            enqueue(session, LocationPayload(), chat, key=key, case_id=case.id)
        if attachment_ids:
            enqueue(
                session,
                FilesPayload(attachments=attachment_ids, in_topic=True),
                chat,
                key=key,
                case_id=case.id,
            )

    async def refresh_card(self, session: AsyncSession, case: Case) -> None:
        """Bring the card up to date: one pending edit per case is enough (it renders the case as it is then)."""
        chat = self.chat_of(case)
        key = group_key(chat, case.id)
        if await pending_row(session, Kind.CARD_EDIT, key) or await pending_row(session, Kind.CARD, key):
            return
        enqueue(session, CardEditPayload(), chat, key=key, case_id=case.id)

    def leave_group(
        self,
        session: AsyncSession,
        case: Case,
        chat: int,
        topic_id: int | None,
        card_id: int | None,
        text: str,
    ) -> None:
        """The case was passed on from this group: a last line in its old topic saying where it went,
        the old card without its buttons, then the topic is closed."""
        key = group_key(chat, case.id)
        enqueue(session, MessagePayload(text=text, topic_id=topic_id), chat, key=key, case_id=case.id)
        if card_id is not None:
            enqueue(session, CardEditPayload(retired=card_id), chat, key=key, case_id=case.id)
        if topic_id is not None:
            enqueue(session, CloseTopicPayload(topic_id=topic_id), chat, key=key, case_id=case.id)

    async def gather_information(self, session: AsyncSession, case: Case, event: CaseEvent) -> None:
        """What the resident adds in quick succession (each within GATHER_QUIET_SECONDS of the one
        before) goes to the clerks as one post, once they pause; never held longer than
        GATHER_SECONDS after the first."""
        chat = self.chat_of(case)
        key = group_key(chat, case.id)
        now = utcnow()
        longest = timedelta(seconds=self.config.settings.gather_seconds)
        quiet = min(timedelta(seconds=GATHER_QUIET_SECONDS), longest)
        gathering = await pending_row(session, Kind.INFO, key)
        if gathering is not None:
            # Only a row no sender holds yet: if it was claimed meanwhile, start a new one.
            gathered = InfoPayload(events=[*InfoPayload.of(gathering).events, event.id])
            result = await session.execute(
                update(OutboxMessage)
                .where(
                    col(OutboxMessage.id) == gathering.id, col(OutboxMessage.status) == OutboxStatus.PENDING
                )
                .values(payload=gathered.dump(), due_at=min(gathering.created_at + longest, now + quiet))
            )
            if rowcount(result) == 1:
                return
        enqueue(session, InfoPayload(events=[event.id]), chat, key=key, case_id=case.id, due_at=now + quiet)

    async def release_information(self, session: AsyncSession, case: Case) -> None:
        """What is gathered for the clerks goes at once, not at the end of the gathering window."""
        await release_now(session, Kind.INFO, group_key(self.chat_of(case), case.id))

    # --- privacy ---

    async def tell_team_profile_erased(self, session: AsyncSession, case: Case) -> None:
        """The resident of this case erased their profile (/forget): the card shows it (without
        their name and phone); every card the case left in groups it was passed on from is blanked;
        the team of an open case is told in its topic."""
        if case.status not in CLOSED_STATUSES:
            self.post_in(session, case, self.clerk_texts.profile_erased(case))
        await self.refresh_card(session, case)
        current = (case.group_chat_id, case.card_message_id)
        former = {
            (trace.chat_id, trace.message_id)
            for trace in await case_queries.traces_of(session, [case.id])
            if trace.kind == TraceKind.CARD
            and trace.message_id is not None
            and (trace.chat_id, trace.message_id) != current
        }
        for chat, message_id in sorted(former):
            enqueue(
                session,
                CardBlankPayload(message_id=message_id, number=case.number),
                chat,
                key=group_key(chat, case.id),
                case_id=case.id,
            )

    async def retire_from_groups(self, session: AsyncSession, cases: list[Case]) -> None:
        """The retention period ended (a batch of the purge: three queries, not three per case):
        every forum topic the cases ever had, in every group, is deleted with every message in it
        (the cards, the resident's texts, photos and place, the answers); in a group without
        topics, every message of the case the bot knows of is deleted (its cards and posts, the
        clerks' messages). The caller clears the cases' topic and card in its one UPDATE."""
        ids = [case.id for case in cases]
        traces_by_case: dict[int, list[CaseTrace]] = {}
        for trace in await case_queries.traces_of(session, ids):
            traces_by_case.setdefault(trace.case_id, []).append(trace)
        clerk_by_case: dict[int, list[tuple[int, int]]] = {}
        for case_id, chat, message_id in await case_queries.clerk_messages(session, ids):
            clerk_by_case.setdefault(case_id, []).append((chat, message_id))
        for case in cases:
            traces = traces_by_case.get(case.id, [])
            topics = {
                (t.chat_id, t.topic_id)
                for t in traces
                if t.kind == TraceKind.TOPIC and t.topic_id is not None
            }
            if case.topic_id is not None:
                topics.add((self.chat_of(case), case.topic_id))
            messages: dict[int, set[int]] = {}
            cards: dict[int, set[int]] = {}
            for trace in traces:
                if trace.kind != TraceKind.TOPIC and trace.topic_id is None and trace.message_id is not None:
                    messages.setdefault(trace.chat_id, set()).add(trace.message_id)
                    if trace.kind == TraceKind.CARD:
                        cards.setdefault(trace.chat_id, set()).add(trace.message_id)
            if case.card_message_id is not None and case.topic_id is None:
                messages.setdefault(self.chat_of(case), set()).add(case.card_message_id)
                cards.setdefault(self.chat_of(case), set()).add(case.card_message_id)
            with_topics = {chat for chat, _ in topics}
            for chat, message_id in clerk_by_case.get(case.id, []):
                if chat not in with_topics:  # in a topic, they go with it
                    messages.setdefault(chat, set()).add(message_id)
            for chat, topic_id in sorted(topics):
                enqueue(
                    session,
                    DeleteTopicPayload(topic_id=topic_id),
                    chat,
                    key=group_key(chat, case.id),
                    case_id=case.id,
                )
            for chat, message_ids in sorted(messages.items()):
                payload = DeleteMessagesPayload(
                    messages=sorted(message_ids), cards=sorted(cards.get(chat, ())), number=case.number
                )
                enqueue(session, payload, chat, key=group_key(chat, case.id), case_id=case.id)
        # The cases' topics and messages are being deleted: their references go too.
        await session.execute(delete(CaseTrace).where(col(CaseTrace.case_id).in_(ids)))

    # --- in a transaction of their own: the schedule's messages, and posts from outside a change ---

    async def remind(self, case: Case, text: str) -> None:
        async with self.database.write() as session:
            session.add(CaseEvent(case_id=case.id, kind=EventKind.REMINDED))
            self.post_in(session, case, text)

    async def escalate(self, case: Case, day_key: str, posts: list[tuple[int, str]]) -> bool:
        """Tell the head / escalation team about a case, once per working day; False if already done today."""
        async with self.database.write() as session:
            locked = await session.get(Case, case.id, with_for_update=True)
            done = await session.execute(
                select(col(CaseEvent.id))
                .where(col(CaseEvent.case_id) == case.id, col(CaseEvent.kind) == EventKind.ESCALATED)
                .order_by(col(CaseEvent.id).desc())
                .limit(20)
            )
            for event_id in done.scalars():
                event = await session.get(CaseEvent, event_id)
                if event is not None and (event.data or {}).get("day") == day_key:
                    return False
            session.add(
                CaseEvent(
                    case_id=case.id,
                    kind=EventKind.ESCALATED,
                    data={"day": day_key, "to": [chat for chat, _ in posts]},
                )
            )
            for chat, text in posts:
                enqueue(
                    session,
                    MessagePayload(text=text),
                    chat,
                    key=group_key(chat),
                    case_id=locked.id if locked else None,
                )
        return True

    async def post_about(self, case_id: int, text: str) -> None:
        """A line for the clerks in a case's topic."""
        async with self.database.write() as session:
            case = await session.get(Case, case_id)
            if case is not None:
                self.post_in(session, case, text)

    async def tell_resident(
        self, case: Case, text: str, reply_keyboard: dict[str, Any] | None = None
    ) -> None:
        """A message to the case's resident through the outbox, sent once Telegram takes it: for
        an answer that must not be lost when sending it at once failed (the confirmation)."""
        async with self.database.write() as session:
            self.notify(session, case, text, reply_keyboard=reply_keyboard)

    async def post_to_group(self, chat_id: int, text: str) -> None:
        async with self.database.write() as session:
            enqueue(session, MessagePayload(text=text), chat_id, key=group_key(chat_id))
