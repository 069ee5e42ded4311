"""The case workflow: every change to a case, in one place.

Each method checks what may happen (one transition table keyed by `Action`), changes the case,
writes its event to the audit trail, and queues what people must be told (the outbox) — all in
one transaction (the outbox wakes when it commits) — and returns what happened. Handlers never change a case
themselves. Nothing here waits for Telegram.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.config import Config, Team
from bot.services.cases import AnswerBy, AttachmentDraft, CaseDraft, OpenedCase, ReceivedBy, attachment_rows, format_case_number
from bot.services.deadlines import ExtensionNotAllowed, WorkingCalendar
from bot.services.metoo import FollowerTexts, add_follow, followers_of, notice_followers
from bot.services.outbox import NO_CHAT, Kind, Outbox, enqueue, group_key, pending_row, release_now, resident_key
from bot.services.teams import TeamDirectory
from bot.services.webhooks import Event, case_snapshot, queue_event
from bot.store import cases as case_rows
from bot.store.db import Database, rowcount
from bot.store.models import (
    CLOSED_STATUSES,
    Attachment,
    Case,
    CaseEvent,
    CaseKind,
    CaseStatus,
    CaseTrace,
    Channel,
    EventKind,
    OutboxMessage,
    OutboxStatus,
    Resident,
    TraceKind,
    utcnow,
)

if TYPE_CHECKING:  # the renderers show the workflow's actions: imported for types only
    from bot.services.groups import ClerkTexts
    from bot.services.notifications import ResidentTexts

OPEN_STATUSES = frozenset(CaseStatus) - CLOSED_STATUSES
# What a resident adds within this of their previous addition joins it in one post for the clerks
# (an album, a few lines typed one after another); GATHER_SECONDS bounds the whole wait.
GATHER_QUIET_SECONDS = 3


class Action(StrEnum):
    """What clerks do to a case: keys the transitions, the card's buttons and the prompts."""

    TAKE = "take"
    ASSIGN = "assign"
    PROGRESS = "progress"
    EXTEND = "extend"
    ANSWER = "answer"
    PASS = "pass"
    REDIRECT = "redirect"
    REJECT = "reject"
    REOPEN = "reopen"
    PUBLISH = "publish"  # a report of a problem shown in the public Open311 listing (description and place)
    HIDE = "hide"  # taken out of it again
    DUPLICATE = "duplicate"  # closed as a duplicate of another case (`merge`), its resident following that one


@dataclass(frozen=True)
class Transition:
    allowed_from: frozenset[CaseStatus]
    to: CaseStatus | None  # None: the status stays (or follows from the action)
    needs_text: bool = False  # a reason, or the final answer
    heads_only: bool = False


TRANSITIONS: dict[Action, Transition] = {
    Action.TAKE: Transition(frozenset({CaseStatus.NEW, CaseStatus.REOPENED, CaseStatus.IN_PROGRESS, CaseStatus.ASSIGNED}), CaseStatus.ASSIGNED),
    Action.ASSIGN: Transition(OPEN_STATUSES, None, heads_only=True),
    Action.PROGRESS: Transition(frozenset({CaseStatus.NEW, CaseStatus.ASSIGNED, CaseStatus.REOPENED}), CaseStatus.IN_PROGRESS),
    Action.EXTEND: Transition(OPEN_STATUSES, None, needs_text=True),
    Action.ANSWER: Transition(OPEN_STATUSES, CaseStatus.ANSWERED, needs_text=True),
    Action.PASS: Transition(OPEN_STATUSES, None, needs_text=True),
    Action.REDIRECT: Transition(OPEN_STATUSES, CaseStatus.REDIRECTED, needs_text=True),
    Action.REJECT: Transition(OPEN_STATUSES, CaseStatus.REJECTED, needs_text=True),
    Action.REOPEN: Transition(CLOSED_STATUSES, CaseStatus.REOPENED),
    Action.PUBLISH: Transition(frozenset(CaseStatus), None),
    Action.HIDE: Transition(frozenset(CaseStatus), None),
    Action.DUPLICATE: Transition(OPEN_STATUSES, CaseStatus.DUPLICATE, needs_text=True),  # the text: the original's number
}


def _fits(action: Action, case: Case) -> bool:
    """What the status alone does not decide: only reports of a problem (about a place, not a
    person) can be public, and a case is made public or hidden, not both."""
    if action is Action.PUBLISH:
        return case.kind == CaseKind.REPORT and not case.public
    if action is Action.HIDE:
        return case.kind == CaseKind.REPORT and case.public
    if action is Action.REOPEN:
        return case.status != CaseStatus.DUPLICATE  # a duplicate is reopened through its original
    return True


def extension_left(case: Case, config: Config) -> int:
    """Working days the deadline may still be extended by (the kind's maximum, less what was used)."""
    return config.municipality.kinds[case.kind].max_extension_days - case.extension_days


def allowed_actions(case: Case) -> list[Action]:
    if case.purged_at is not None:
        return []  # the retention period is over: the case is a statistic now
    return [action for action, rule in TRANSITIONS.items() if case.status in rule.allowed_from and _fits(action, case)]


class NotAllowed(Exception):
    """The case does not exist, or the action does not fit it now."""


class MergeRefused(NotAllowed):
    """A merge that cannot be made; the message is for the clerk (in ADMIN_LOCALE)."""


class DailyLimitReached(Exception):
    """The resident has opened as many cases today as the municipality accepts in one day."""


class FileLimit(StrEnum):
    """Which of a resident's file quotas a file would go over (settings FILES_*_MAX)."""

    CASE_FILES = "case_files"
    CASE_BYTES = "case_bytes"
    DAY_FILES = "day_files"
    DAY_BYTES = "day_bytes"


class FileQuotaReached(Exception):
    """The resident's files would go over a quota: nothing of what they sent was recorded."""

    def __init__(self, limit: FileLimit, maximum: int) -> None:
        super().__init__(limit.value)
        self.limit = limit
        self.maximum = maximum


class AlreadyAdded(Exception):
    """Everything the resident sent is in the case already (the same file again): nothing was recorded."""


class NoTelegram(NotAllowed):
    """The case's person has no Telegram (a case registered by a clerk): nothing can be sent to
    them; the clerk answers by phone, e-mail or post and records how when closing."""


# Cases whose answer is given outside Telegram: closing one records how (`Case.answered_via`).
ANSWERED_OUTSIDE_TELEGRAM = frozenset({Channel.STAFF})


def answered_outside_telegram(case: Case) -> bool:
    return case.channel in ANSWERED_OUTSIDE_TELEGRAM


def records_how_answered(case: Case, action: Action) -> bool:
    """Whether `action` closes a case whose answer went outside Telegram: the clerk says how."""
    return answered_outside_telegram(case) and TRANSITIONS[action].to in CLOSED_STATUSES and action is not Action.DUPLICATE


@dataclass(frozen=True)
class Clerk:
    id: int
    name: str


@dataclass(frozen=True)
class RegisteredBy:
    """The clerk who registered a case that came by phone, e-mail, post or at the front desk."""

    clerk: Clerk
    received_by: ReceivedBy


@dataclass(frozen=True)
class GroupMessage:
    """A message in a team group: (chat id, message id), never a message id alone."""

    chat_id: int
    message_id: int
    html: str | None = None  # a clerk's text or caption with its formatting, for relaying
    media: bool = False


@dataclass
class Outcome:
    case: Case
    events: list[CaseEvent] = field(default_factory=list)


class CaseWorkflow:
    def __init__(
        self, database: Database, outbox: Outbox, calendar: WorkingCalendar, config: Config, teams: TeamDirectory,
        resident_texts: ResidentTexts, clerk_texts: ClerkTexts,
    ) -> None:  # fmt: skip
        self.database = database
        self.outbox = outbox
        self.calendar = calendar
        self.config = config
        self.municipality = config.municipality
        self.teams = teams
        self.resident_texts = resident_texts  # in the resident's language
        self.clerk_texts = clerk_texts  # in ADMIN_LOCALE
        self.follower_texts = FollowerTexts(resident_texts.i18n, config)  # "me too": in each follower's language

    def extension_left(self, case: Case) -> int:
        return extension_left(case, self.config)

    # --- opening ---

    async def submit(self, draft: CaseDraft, received_at: datetime, update_id: int, phone: str | None = None) -> OpenedCase:
        """A resident's new case, within the day's limit (MAX_CASES_PER_DAY; DailyLimitReached
        otherwise) and the files' quotas (FileQuotaReached), with the phone number they chose to
        share; the same update again returns its case."""
        return await self.open(draft, received_at, update_id, daily_limit=self.config.settings.max_cases_per_day, phone=phone)

    async def open(
        self, draft: CaseDraft, received_at: datetime, update_id: int | None = None, registered_by: RegisteredBy | None = None, *,
        daily_limit: int | None = None, phone: str | None = None,
    ) -> OpenedCase:  # fmt: skip
        """Store a new case for its team, with its card queued; the same `update_id` again returns the first case.

        A case registered by a clerk (channel STAFF) names them: the CREATED event's actor."""
        if (draft.channel == Channel.STAFF) != (registered_by is not None):
            raise ValueError("a case registered by a clerk, and only such a case, names the clerk")
        if update_id is not None:
            existing = await self._case_for_update(update_id)
            if existing:
                return OpenedCase(existing, created=False)
        try:
            case = await self._insert(draft, received_at, update_id, registered_by, daily_limit, phone)
        except IntegrityError:
            # A concurrent delivery of the same update won the race; its case is the answer.
            existing = await self._case_for_update(update_id) if update_id is not None else None
            if existing is None:
                raise
            return OpenedCase(existing, created=False)
        return OpenedCase(case, created=True)

    async def _case_for_update(self, update_id: int) -> Case | None:
        async with self.database.read() as session:
            return await case_rows.case_by_update(session, update_id)

    async def _insert(
        self, draft: CaseDraft, received_at: datetime, update_id: int | None, registered_by: RegisteredBy | None, daily_limit: int | None, phone: str | None
    ) -> Case:
        rules = self.municipality.kinds[draft.kind]
        year = self.calendar.local_date(received_at).year
        team = self.teams.route(draft.kind, draft.category_id, draft.eldership_id)
        async with self.database.write() as session:
            if draft.resident_id is not None:
                if daily_limit is not None and await case_rows.opened_since(session, draft.resident_id, self.calendar.day_start(received_at)) >= daily_limit:
                    raise DailyLimitReached
                if daily_limit is not None:  # a resident's own submission: their files count against the quotas
                    await self._check_quota(session, None, draft.resident_id, await self._new_files(session, None, draft.attachments))
                if phone:
                    resident = await session.get(Resident, draft.resident_id)
                    if resident is not None:
                        resident.phone = phone[:32]
            seq = await case_rows.allocate_sequence(session, year)
            case = Case(
                number=format_case_number(self.config.settings.case_prefix, year, seq), year=year, seq=seq,
                resident_id=draft.resident_id, locale=draft.locale, kind=draft.kind, category_id=draft.category_id,
                eldership_id=draft.eldership_id, description=draft.description, latitude=draft.latitude,
                longitude=draft.longitude, address=draft.address, received_at=received_at,
                deadline=self.calendar.deadline(received_at, rules.deadline_days), source_update_id=update_id,
                team_id=team.id, group_chat_id=self.teams.chat_of(team), channel=draft.channel,
                contact=draft.contact.as_json() if draft.contact else None, open311_client=draft.open311_client,
                open311_token=draft.open311_token,
            )  # fmt: skip
            session.add(case)
            await session.flush()
            data: dict[str, Any] = {"team": team.id, "channel": draft.channel}
            actor_id, actor_name = draft.resident_id, None
            if registered_by is not None:
                actor_id, actor_name = registered_by.clerk.id, registered_by.clerk.name
                data["received_by"] = registered_by.received_by
            created = CaseEvent(case_id=case.id, at=received_at, kind=EventKind.CREATED, actor_id=actor_id, actor_name=actor_name, data=data)
            session.add(created)
            await session.flush()
            files = await self.add_files(session, case, created.id, draft.attachments)
            self._queue_card(session, case, [f.id for f in files])
            await self._hook(session, Event.OPENED, case, created)
        return case

    async def add_files(self, session: AsyncSession, case: Case, event_id: int | None, drafts: tuple[AttachmentDraft, ...]) -> list[Attachment]:
        """Record a case's photos and documents, each with its download into the municipality's
        storage queued in the same transaction (bot.services.files). A file the case holds already
        (the same file_unique_id, sent again) is recorded once."""
        drafts = await self._new_files(session, case.id, drafts)
        files = attachment_rows(case.id, event_id, drafts)
        if not files:
            return files
        session.add_all(files)
        await session.flush()
        for file in files:
            enqueue(session, Kind.STORE_FILE, NO_CHAT, key=f"file:{file.id}", case_id=case.id, payload={"attachment": file.id})
        return files

    def _queue_card(self, session: AsyncSession, case: Case, attachment_ids: list[int], history: str | None = None) -> None:
        """The case's topic and card in its team's group, then its history, pin and files."""
        chat = self._chat(case)
        key = group_key(chat, case.id)
        enqueue(session, Kind.TOPIC, chat, key=key, case_id=case.id)
        enqueue(session, Kind.CARD, chat, key=key, case_id=case.id)
        if history:
            enqueue(session, Kind.MESSAGE, chat, key=key, case_id=case.id, payload={"text": history, "in_topic": True})
        if case.latitude is not None and case.longitude is not None:
            enqueue(session, Kind.LOCATION, chat, key=key, case_id=case.id)
        if attachment_ids:
            enqueue(session, Kind.FILES, chat, key=key, case_id=case.id, payload={"attachments": attachment_ids, "in_topic": True})

    # --- what clerks do ---

    async def act(
        self, case_id: int, action: Action, clerk: Clerk, *, text: str | None = None, days: int | None = None,
        team_id: str | None = None, assignee: Clerk | None = None, answer: GroupMessage | None = None,
        answered_via: AnswerBy | None = None,
    ) -> Outcome:  # fmt: skip
        """Apply a clerk's action; raise NotAllowed if the case or the transition is wrong.

        ANSWER with `answer`: that group message is copied to the resident as the answer.
        Closing a case answered outside Telegram (`records_how_answered`) needs `answered_via`:
        how the answer was given (stored on the case and in the STATUS event); the answer's text
        is recorded, nothing is sent."""
        rule = TRANSITIONS[action]
        now = utcnow()
        async with self.database.write() as session:
            case = await session.get(Case, case_id, with_for_update=True)
            if case is None or case.status not in rule.allowed_from or not _fits(action, case) or case.purged_at is not None or action is Action.DUPLICATE:
                raise NotAllowed(action)  # a duplicate is closed by `merge`, with its original
            outcome = Outcome(case)
            if action in (Action.PUBLISH, Action.HIDE):
                self._publish(session, outcome, clerk, action is Action.PUBLISH, now)
            elif action is Action.EXTEND:
                await self._extend(session, outcome, clerk, text or "", days or 0, now)
            elif action is Action.PASS:
                await self._pass(session, outcome, clerk, self.teams.get(team_id), text or "", now)
                return outcome
            elif action is Action.ASSIGN:
                await self._assign(session, outcome, clerk, assignee or clerk, now)
            else:
                details: dict[str, Any] = {}
                if records_how_answered(case, action):
                    if answered_via is None:
                        raise NotAllowed("how the answer was given is missing")
                    case.answered_via = details["answered_via"] = AnswerBy(answered_via)
                elif action is Action.ANSWER and answer is not None:
                    await self._relay(session, outcome, clerk, [answer], text, now, final=True)
                    text = None  # the answer went as the clerk's message, not as a reason
                    details["notified"] = False
                if action is Action.TAKE:
                    case.assignee_id, case.assignee_name = clerk.id, clerk.name
                if action is Action.REOPEN:
                    case.answered_via = None  # a new answer will be recorded at the next closing
                assert rule.to is not None
                notify = details.pop("notified", True)  # a relayed final answer says itself that the case is closed
                await self._set_status(session, outcome, rule.to, clerk.id, clerk.name, text, now, details, notify=notify)
            await self._card_edit(session, case)
        return outcome

    async def _set_status(
        self, session: AsyncSession, outcome: Outcome, to: CaseStatus, actor_id: int | None, actor_name: str | None, text: str | None, now: datetime,
        details: dict[str, Any] | None = None, *, notify: bool = True,
    ) -> None:  # fmt: skip
        case = outcome.case
        previous = case.status
        case.status = to
        case.closed_at = now if to in CLOSED_STATUSES else None
        event = CaseEvent(
            case_id=case.id, at=now, kind=EventKind.STATUS, actor_id=actor_id, actor_name=actor_name, text=text,
            data={"from": previous, "to": to, **(details or {})},
        )  # fmt: skip
        session.add(event)
        outcome.events.append(event)
        await self._hook_status(session, outcome, event, actor_name, text)
        locale = await self._locale(session, case)
        if notify:
            self._notify(session, case, self.resident_texts.event(case, event, locale))
        # Followers ("me too"): a public case's final answer is the clerk's relayed message.
        answer = text or next((e.text for e in reversed(outcome.events) if e.kind == EventKind.MESSAGE_OUT), None)
        await notice_followers(session, self.follower_texts, case, answer, self.config.settings.default_locale)
        resident = await case_rows.resident_of(session, case)
        asks = to in CLOSED_STATUSES and to != CaseStatus.DUPLICATE  # a duplicate's resident is asked about the original's handling
        if asks and case.resident_id is not None and not case.feedback_asked and not case_rows.kept_apart(case, resident):
            case.feedback_asked = True  # asked once per case, never again after a reopening
            question, keyboard = self.resident_texts.satisfaction_question(case, locale)
            self._notify(session, case, question, keyboard=keyboard)

    def _publish(self, session: AsyncSession, outcome: Outcome, clerk: Clerk, public: bool, now: datetime) -> None:
        """A report shown in the public Open311 listing (its description and place), or hidden again."""
        case = outcome.case
        case.public = public
        event = CaseEvent(case_id=case.id, at=now, kind=EventKind.PUBLISHED, actor_id=clerk.id, actor_name=clerk.name, data={"public": public})
        session.add(event)
        outcome.events.append(event)

    async def _extend(self, session: AsyncSession, outcome: Outcome, clerk: Clerk, reason: str, days: int, now: datetime) -> None:
        case = outcome.case
        try:
            extension = self.calendar.extend(case.due, days, case.extension_days, self.municipality.kinds[case.kind].max_extension_days)
        except ExtensionNotAllowed as exc:
            raise NotAllowed(str(exc)) from None
        case.extended_until, case.extension_days, case.extension_reason = extension.until, extension.total_days, reason
        event = CaseEvent(
            case_id=case.id, at=now, kind=EventKind.EXTENDED, actor_id=clerk.id, actor_name=clerk.name,
            text=reason, data={"until": extension.until.isoformat(), "days": days},
        )  # fmt: skip
        session.add(event)
        outcome.events.append(event)
        await self._hook(session, Event.EXTENDED, case, event, {"until": extension.until.isoformat(), "days": days, "reason": reason, "by": _by(clerk.name)})
        self._notify(session, case, self.resident_texts.event(case, event, await self._locale(session, case)))

    async def _assign(self, session: AsyncSession, outcome: Outcome, clerk: Clerk, assignee: Clerk, now: datetime) -> None:
        case = outcome.case
        case.assignee_id, case.assignee_name = assignee.id, assignee.name
        event = CaseEvent(
            case_id=case.id, at=now, kind=EventKind.ASSIGNED, actor_id=clerk.id, actor_name=clerk.name,
            data={"assignee_id": assignee.id, "assignee_name": assignee.name},
        )  # fmt: skip
        session.add(event)
        outcome.events.append(event)
        if case.status in (CaseStatus.NEW, CaseStatus.REOPENED):
            await self._set_status(session, outcome, CaseStatus.ASSIGNED, clerk.id, clerk.name, None, now)
        self._post(session, case, self.clerk_texts.assigned(case, clerk, assignee))

    async def _pass(self, session: AsyncSession, outcome: Outcome, clerk: Clerk, to: Team, reason: str, now: datetime) -> None:
        case = outcome.case
        source = self.teams.get(case.team_id)
        if to.id == source.id:
            raise NotAllowed("the case is already this team's")
        old_chat, old_topic, old_card = case.group_chat_id, case.topic_id, case.card_message_id
        event = CaseEvent(
            case_id=case.id, at=now, kind=EventKind.PASSED, actor_id=clerk.id, actor_name=clerk.name, text=reason,
            data={"from": source.id, "to": to.id}, group_chat_id=old_chat, group_message_id=old_topic,  # the topic it left
        )  # fmt: skip
        session.add(event)
        outcome.events.append(event)
        # The old topic: a last line saying where the case went, the old card without its buttons, then it is closed.
        if old_chat is not None:
            # Its topic named now: when it is sent, the case already lives in the new team's group.
            text = self.clerk_texts.passed_away(case, clerk, to, reason)
            enqueue(session, Kind.MESSAGE, old_chat, key=group_key(old_chat, case.id), case_id=case.id, payload={"text": text, "topic_id": old_topic})
            if old_card is not None:
                enqueue(session, Kind.CARD_EDIT, old_chat, key=group_key(old_chat, case.id), case_id=case.id, payload={"retired": old_card})
            if old_topic is not None:
                enqueue(session, Kind.CLOSE_TOPIC, old_chat, key=group_key(old_chat, case.id), case_id=case.id, payload={"topic_id": old_topic})
        case.team_id, case.group_chat_id = to.id, self.teams.chat_of(to)
        case.topic_id = case.card_message_id = None
        case.assignee_id = case.assignee_name = None
        if case.status == CaseStatus.ASSIGNED:
            case.status = CaseStatus.NEW  # nobody in the new team has it yet
        await session.flush()
        await self._hook(session, Event.PASSED, case, event, {"from_team": source.id, "to_team": to.id, "reason": reason, "by": _by(clerk.name)})
        events = await case_rows.case_events(session, case.id)
        attachments = (await session.execute(select(col(Attachment.id)).where(col(Attachment.case_id) == case.id).order_by(col(Attachment.id)))).scalars().all()
        self._queue_card(session, case, list(attachments), history=self.clerk_texts.history(case, events, source, reason))
        self._notify(session, case, self.resident_texts.passed(case, to, reason, await self._locale(session, case)))

    async def _relay(
        self, session: AsyncSession, outcome: Outcome, clerk: Clerk, messages: list[GroupMessage], text: str | None, now: datetime,
        files: tuple[AttachmentDraft, ...] = (), *, final: bool = False,
    ) -> CaseEvent:  # fmt: skip
        """A clerk's message(s) copied to the resident; `final`: the answer that closes the case,
        headed as the answer and followed, in the same message, by the case being closed."""
        case = outcome.case
        await self._writable(session, case)
        first = messages[0]
        event = _clerk_event(case, EventKind.MESSAGE_OUT, clerk, text, first, at=now)
        session.add(event)
        await session.flush()
        outcome.events.append(event)
        await self.add_files(session, case, event.id, files)
        locale = await self._locale(session, case)
        heading, footer = self.resident_texts.answer_heading(locale) if final else (self.resident_texts.clerk_heading(locale), None)
        payload = {
            "from_chat_id": first.chat_id, "message_ids": [m.message_id for m in messages], "event": event.id,
            "header": self.resident_texts.header(case, locale), "heading": heading, "footer": footer,
            "html": first.html, "media": any(m.media for m in messages),
        }  # fmt: skip
        if case.resident_id is not None:  # a case without a Telegram resident keeps the answer on record (Open311 shows it)
            enqueue(session, Kind.COPY, case.resident_id, key=resident_key(case.resident_id), case_id=case.id, payload=payload)
        return event

    # --- duplicates ---

    async def merge(self, case_id: int, original_id: int, clerk: Clerk, *, head_of_original: bool) -> Outcome:
        """Close `case_id` as a duplicate of `original_id`: its resident (and its followers) follow
        the original from now on and are told so; both cards show the link. Only within the same
        team, or by a head of the original's team (`head_of_original`, checked by the caller);
        never into itself, into a duplicate (the root instead), nor into a case closed longer
        than the reopen window."""
        now = utcnow()
        async with self.database.write() as session:
            case = await session.get(Case, case_id, with_for_update=True)
            if case is None or case.status not in OPEN_STATUSES or case.purged_at is not None:
                raise NotAllowed(Action.DUPLICATE)
            original = await session.get(Case, original_id, with_for_update=True)
            self._check_merge(case, original, head_of_original, now)
            assert original is not None
            case.duplicate_of = original.id
            outcome = Outcome(case)
            await self._set_status(
                session, outcome, CaseStatus.DUPLICATE, clerk.id, clerk.name, original.number, now, {"original": original.number}, notify=False
            )
            self._notify(session, case, self.resident_texts.merged(case, original, await self._locale(session, case)))
            resident = await case_rows.resident_of(session, case)
            followers = {resident_id for resident_id, _locale in await followers_of(session, case.id, self.config.settings.default_locale)}
            if case.resident_id is not None and not case_rows.kept_apart(case, resident):
                followers.add(case.resident_id)
            for resident_id in sorted(followers - {original.resident_id}):
                await add_follow(session, resident_id, original)
            await self._card_edit(session, case)
            await self._card_edit(session, original)
        return outcome

    def _check_merge(self, case: Case, original: Case | None, head_of_original: bool, now: datetime) -> None:
        texts_ = self.clerk_texts
        if original is None or original.purged_at is not None:
            raise MergeRefused(texts_.merge_refused("unknown", case))
        if original.id == case.id:
            raise MergeRefused(texts_.merge_refused("itself", case))
        if original.status == CaseStatus.DUPLICATE:
            raise MergeRefused(texts_.merge_refused("duplicate", original))
        window = timedelta(days=self.config.settings.reopen_days)
        if original.status in CLOSED_STATUSES and original.closed_at is not None and now - original.closed_at > window:
            raise MergeRefused(texts_.merge_refused("old", original))
        if original.team_id != case.team_id and not head_of_original:
            raise MergeRefused(texts_.merge_refused("team", original))

    # --- messages between the clerk and the resident ---

    async def relay(self, case_id: int, clerk: Clerk, messages: list[GroupMessage], text: str | None, files: tuple[AttachmentDraft, ...] = ()) -> Outcome:
        """A clerk's message (or album) in the case's topic: copied to the resident."""
        async with self.database.write() as session:
            case = await self._open_or_closed(session, case_id)
            outcome = Outcome(case)
            await self._relay(session, outcome, clerk, messages, text, utcnow(), files)
        return outcome

    async def send_template(self, case_id: int, clerk: Clerk, text: str, shown_in: GroupMessage) -> Outcome:
        """A canned answer (already in the resident's language) sent as the clerk's message."""
        async with self.database.write() as session:
            case = await self._open_or_closed(session, case_id)
            await self._writable(session, case)
            event = _clerk_event(case, EventKind.MESSAGE_OUT, clerk, text, shown_in)
            session.add(event)
            self._notify(session, case, self.resident_texts.event(case, event, await self._locale(session, case)))
        return Outcome(case, [event])

    async def note(self, case_id: int, clerk: Clerk, text: str, message: GroupMessage) -> CaseEvent:
        """An internal note: in the trail, never sent to the resident."""
        async with self.database.write() as session:
            case = await self._open_or_closed(session, case_id)
            event = _clerk_event(case, EventKind.NOTE, clerk, text, message)
            session.add(event)
        return event

    async def _open_or_closed(self, session: AsyncSession, case_id: int) -> Case:
        case = await session.get(Case, case_id, with_for_update=True)
        if case is None or case.purged_at is not None:
            raise NotAllowed("no such case, or its retention period is over")
        return case

    async def _writable(self, session: AsyncSession, case: Case) -> None:
        """Raise NotAllowed unless the resident may still be written to about this case: after
        /forget, only while it is being handled (bot.services.privacy); NoTelegram for a case whose
        person has no Telegram (registered by a clerk). An Open311 case keeps what it is told on
        record (its client reads the final answer as status notes)."""
        if answered_outside_telegram(case):
            raise NoTelegram("the case's person has no Telegram")
        resident = await case_rows.resident_of(session, case)
        if case.status in CLOSED_STATUSES and case_rows.kept_apart(case, resident):
            raise NotAllowed("the resident erased their profile")

    # --- what residents do ---

    async def add_information(
        self, case_id: int, resident_id: int, text: str | None, files: tuple[AttachmentDraft, ...], resident_message_id: int
    ) -> CaseEvent:
        """The resident adds text or files to their open case; what comes in quick succession is
        gathered into one post for the clerks (GATHER_SECONDS). A file the case has already is not
        recorded again (AlreadyAdded if nothing else came); files over a quota are refused with
        all that came with them (FileQuotaReached): the resident is told, nothing is half-added."""
        async with self.database.write() as session:
            await session.get(Resident, resident_id, with_for_update=True)  # one addition at a time counts against the day's quota
            case = await session.get(Case, case_id, with_for_update=True)
            if case is None or case.resident_id != resident_id or case.status in CLOSED_STATUSES:
                raise NotAllowed("not an open case of this resident")
            files = await self._new_files(session, case.id, files)
            if text is None and not files:
                raise AlreadyAdded
            await self._check_quota(session, case.id, resident_id, files)
            event = CaseEvent(case_id=case.id, kind=EventKind.MESSAGE_IN, actor_id=resident_id, text=text, resident_message_id=resident_message_id)
            session.add(event)
            await session.flush()
            await self.add_files(session, case, event.id, files)
            await self._gather_information(session, case, event)
        return event

    async def _new_files(self, session: AsyncSession, case_id: int | None, drafts: tuple[AttachmentDraft, ...]) -> tuple[AttachmentDraft, ...]:
        """`drafts` without the files the case has already, or that come twice."""
        seen = (await case_rows.files_of_case(session, case_id))[2] if case_id is not None else set()
        new = []
        for draft in drafts:
            if draft.file_unique_id not in seen:
                seen.add(draft.file_unique_id)
                new.append(draft)
        return tuple(new)

    async def _check_quota(self, session: AsyncSession, case_id: int | None, resident_id: int, drafts: tuple[AttachmentDraft, ...]) -> None:
        """Raise FileQuotaReached if `drafts` (new to the case) would take the case's or the
        resident's day's files over a quota (FILES_PER_CASE_MAX and the others)."""
        if not drafts:
            return
        settings = self.config.settings
        adding, adding_bytes = len(drafts), sum(draft.file_size or 0 for draft in drafts)
        count, size, _ = await case_rows.files_of_case(session, case_id) if case_id is not None else (0, 0, set())
        today, today_bytes = await case_rows.files_sent_since(session, resident_id, self.calendar.day_start(utcnow()))
        for used, limit, maximum in (
            (count + adding, FileLimit.CASE_FILES, settings.files_per_case_max),
            (size + adding_bytes, FileLimit.CASE_BYTES, int(settings.file_bytes_per_case_max)),
            (today + adding, FileLimit.DAY_FILES, settings.files_per_resident_day_max),
            (today_bytes + adding_bytes, FileLimit.DAY_BYTES, int(settings.file_bytes_per_resident_day_max)),
        ):
            if used > maximum:
                raise FileQuotaReached(limit, maximum)

    async def check_files(self, resident_id: int, drafts: tuple[AttachmentDraft, ...], case_id: int | None = None) -> None:
        """Before a file joins a case being written (the intake's draft, `drafts` with it): raise
        AlreadyAdded if it is there already, FileQuotaReached if it goes over a quota."""
        async with self.database.read() as session:
            unique = await self._new_files(session, case_id, drafts)
            if len(unique) < len(drafts):
                raise AlreadyAdded
            await self._check_quota(session, case_id, resident_id, unique)

    async def send_information_now(self, case_id: int, resident_id: int) -> None:
        """The resident said they are done adding: what is gathered for the clerks goes at once,
        not at the end of the gathering window."""
        async with self.database.write() as session:
            case = await session.get(Case, case_id)
            if case is None or case.resident_id != resident_id:
                return
            await release_now(session, Kind.INFO, group_key(self._chat(case), case.id))

    async def reopen_by_resident(self, case_id: int, resident_id: int, reason: str, reopen_days: int) -> Case:
        now = utcnow()
        async with self.database.write() as session:
            case = await session.get(Case, case_id, with_for_update=True)
            if (
                case is None or case.resident_id != resident_id or case.status not in CLOSED_STATUSES or case.status == CaseStatus.DUPLICATE
                or case.closed_at is None or now - case.closed_at > timedelta(days=reopen_days)
            ):  # fmt: skip
                raise NotAllowed("not reopenable")
            previous = case.status
            case.status, case.closed_at = CaseStatus.REOPENED, None
            event = CaseEvent(
                case_id=case.id, at=now, kind=EventKind.STATUS, actor_id=resident_id, text=reason, data={"from": previous, "to": CaseStatus.REOPENED}
            )
            session.add(event)
            await session.flush()
            await self._hook(session, Event.REOPENED, case, event, {"reason": reason, "by": {"role": "resident"}})
            self._post(session, case, self.clerk_texts.information(case, [event]))
            await self._card_edit(session, case)
        return case

    async def _gather_information(self, session: AsyncSession, case: Case, event: CaseEvent) -> None:
        """What the resident adds in quick succession (each within GATHER_QUIET_SECONDS of the one
        before) goes to the clerks as one post, once they pause; never held longer than
        GATHER_SECONDS after the first."""
        chat = self._chat(case)
        key = group_key(chat, case.id)
        now = utcnow()
        longest = timedelta(seconds=self.config.settings.gather_seconds)
        quiet = min(timedelta(seconds=GATHER_QUIET_SECONDS), longest)
        gathering = await pending_row(session, Kind.INFO, key)
        if gathering is not None:
            # Only a row no sender holds yet: if it was claimed meanwhile, start a new one.
            result = await session.execute(
                update(OutboxMessage)
                .where(col(OutboxMessage.id) == gathering.id, col(OutboxMessage.status) == OutboxStatus.PENDING)
                .values(payload={"events": [*gathering.payload.get("events", []), event.id]}, due_at=min(gathering.created_at + longest, now + quiet))
            )
            if rowcount(result) == 1:
                return
        enqueue(session, Kind.INFO, chat, key=key, case_id=case.id, payload={"events": [event.id]}, due_at=now + quiet)

    # --- finding cases ---

    async def get(self, case_id: int) -> Case | None:
        async with self.database.read() as session:
            return await session.get(Case, case_id)

    async def by_number(self, number: str) -> Case | None:
        async with self.database.read() as session:
            return await case_rows.case_by_number(session, number)

    async def by_topic(self, chat_id: int, topic_id: int) -> Case | None:
        async with self.database.read() as session:
            query = select(Case).where(col(Case.group_chat_id) == chat_id, col(Case.topic_id) == topic_id)
            return (await session.execute(query)).scalars().first()

    async def by_former_topic(self, chat_id: int, topic_id: int) -> Case | None:
        """The case that was passed on from this (now closed) forum topic."""
        async with self.database.read() as session:
            return await case_rows.case_left_topic(session, chat_id, topic_id)

    async def by_group_message(self, chat_id: int, message_id: int) -> Case | None:
        """The case whose card, or one of whose relayed messages or notes, is this group message."""
        async with self.database.read() as session:
            query = select(Case).where(col(Case.group_chat_id) == chat_id, col(Case.card_message_id) == message_id)
            case = (await session.execute(query)).scalars().first()
            if case is None:
                event_query = select(col(CaseEvent.case_id)).where(col(CaseEvent.group_chat_id) == chat_id, col(CaseEvent.group_message_id) == message_id)
                case_id = (await session.execute(event_query)).scalars().first()
                case = await session.get(Case, case_id) if case_id is not None else None
            return case

    async def history(self, case_id: int) -> list[CaseEvent]:
        async with self.database.read() as session:
            return await case_rows.case_events(session, case_id)

    async def resident(self, case: Case) -> Resident | None:
        async with self.database.read() as session:
            return await case_rows.resident_of(session, case)

    async def closing(self, case: Case) -> CaseEvent | None:
        """The STATUS event that closed the case (who closed it), if it is closed."""
        async with self.database.read() as session:
            return await case_rows.closing_event(session, case)

    async def registration(self, case: Case) -> CaseEvent | None:
        """The CREATED event of a case that came outside Telegram (it names the clerk who registered it)."""
        async with self.database.read() as session:
            return await case_rows.created_event(session, case)

    # --- the schedule's messages ---

    async def remind(self, case: Case, text: str) -> None:
        async with self.database.write() as session:
            session.add(CaseEvent(case_id=case.id, kind=EventKind.REMINDED))
            self._post(session, case, text)

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
            session.add(CaseEvent(case_id=case.id, kind=EventKind.ESCALATED, data={"day": day_key, "to": [chat for chat, _ in posts]}))
            for chat, text in posts:
                enqueue(session, Kind.MESSAGE, chat, key=group_key(chat), case_id=locked.id if locked else None, payload={"text": text})
        return True

    async def post_about(self, case_id: int, text: str) -> None:
        """A line for the clerks in a case's topic."""
        async with self.database.write() as session:
            case = await session.get(Case, case_id)
            if case is not None:
                self._post(session, case, text)

    async def tell_resident(self, case: Case, text: str, reply_keyboard: dict[str, Any] | None = None) -> None:
        """A message to the case's resident through the outbox, sent once Telegram takes it: for
        an answer that must not be lost when sending it at once failed (the confirmation)."""
        async with self.database.write() as session:
            self._notify(session, case, text, reply_keyboard=reply_keyboard)

    async def post_to_group(self, chat_id: int, text: str) -> None:
        async with self.database.write() as session:
            enqueue(session, Kind.MESSAGE, chat_id, key=group_key(chat_id), payload={"text": text})

    # --- queueing ---

    async def _hook_status(self, session: AsyncSession, outcome: Outcome, event: CaseEvent, actor_name: str | None, text: str | None) -> None:
        """A status that closes or reopens the case is an event for the document management system."""
        to, by = outcome.case.status, _by(actor_name)
        if to == CaseStatus.ANSWERED:
            # The answer sent as the clerk's message (`act` relays it first), else the text given.
            relayed = next((e.text for e in reversed(outcome.events) if e.kind == EventKind.MESSAGE_OUT), None)
            await self._hook(session, Event.ANSWERED, outcome.case, event, {"answer": text or relayed, "by": by})
        elif to in CLOSED_STATUSES:
            await self._hook(session, Event.CLOSED, outcome.case, event, {"outcome": to, "reason": text, "by": by})
        elif to == CaseStatus.REOPENED:
            await self._hook(session, Event.REOPENED, outcome.case, event, {"reason": text, "by": by})

    async def _hook(self, session: AsyncSession, kind: Event, case: Case, event: CaseEvent, detail: dict[str, Any] | None = None) -> None:
        """The event for each receiver of CASE_WEBHOOKS, with the case as it is now (bot.services.webhooks)."""
        receivers = self.config.settings.webhook_receivers
        if not receivers:
            return
        await session.flush()  # the event's id, and the case's changes
        resident = await case_rows.resident_of(session, case)
        files = await session.scalar(select(func.count()).select_from(Attachment).where(col(Attachment.case_id) == case.id))
        queue_event(session, receivers, kind, case, event, case_snapshot(case, resident, files or 0), detail)

    async def _locale(self, session: AsyncSession, case: Case) -> str:
        resident = await case_rows.resident_of(session, case)
        return resident.locale if resident and resident.locale else case.locale  # after /forget: the case's language

    def _notify(
        self, session: AsyncSession, case: Case, text: str, keyboard: dict[str, Any] | None = None, reply_keyboard: dict[str, Any] | None = None
    ) -> None:
        if case.resident_id is None:
            return  # nobody in Telegram: a case registered by a clerk, or the retention period is over
        payload: dict[str, Any] = {"text": text, "warn_blocked": True}
        if keyboard is not None:
            payload["keyboard"] = keyboard
        if reply_keyboard is not None:
            payload["reply_keyboard"] = reply_keyboard
        enqueue(session, Kind.MESSAGE, case.resident_id, key=resident_key(case.resident_id), case_id=case.id, payload=payload)

    def _chat(self, case: Case) -> int:
        """The team group holding the case (cases from before teams: the default team's)."""
        return case.group_chat_id or self.teams.chat_of(self.teams.get(case.team_id))

    def post_in(self, session: AsyncSession, case: Case, text: str) -> None:
        """A line for the clerks in the case's topic, queued in the caller's transaction."""
        self._post(session, case, text)

    def _post(self, session: AsyncSession, case: Case, text: str) -> None:
        """A line for the clerks in the case's topic (or the group's main chat)."""
        chat = self._chat(case)
        enqueue(session, Kind.MESSAGE, chat, key=group_key(chat, case.id), case_id=case.id, payload={"text": text, "in_topic": True})

    async def tell_team_profile_erased(self, session: AsyncSession, case: Case) -> None:
        """The resident of this case erased their profile (/forget): the card shows it (without
        their name and phone); every card the case left in groups it was passed on from is blanked;
        the team of an open case is told in its topic."""
        if case.status not in CLOSED_STATUSES:
            self._post(session, case, self.clerk_texts.profile_erased(case))
        await self._card_edit(session, case)
        current = (case.group_chat_id, case.card_message_id)
        former = {
            (trace.chat_id, trace.message_id) for trace in await case_rows.traces_of(session, [case.id])
            if trace.kind == TraceKind.CARD and trace.message_id is not None and (trace.chat_id, trace.message_id) != current
        }  # fmt: skip
        for chat, message_id in sorted(former):
            enqueue(session, Kind.CARD_BLANK, chat, key=group_key(chat, case.id), case_id=case.id, payload={"message_id": message_id, "number": case.number})

    async def retire_from_group(self, session: AsyncSession, case: Case) -> None:
        """The retention period ended: every forum topic the case ever had, in every group, is
        deleted with every message in it (the cards, the resident's texts, photos and place, the
        answers); in a group without topics, every message of the case the bot knows of is
        deleted (its cards and posts, the clerks' messages)."""
        await self.retire_from_groups(session, [case])

    async def retire_from_groups(self, session: AsyncSession, cases: list[Case]) -> None:
        """`retire_from_group` for many cases at once (the retention purge's batch): three queries, not three per case."""
        ids = [case.id for case in cases]
        traces_by_case: dict[int, list[CaseTrace]] = {}
        for trace in await case_rows.traces_of(session, ids):
            traces_by_case.setdefault(trace.case_id, []).append(trace)
        clerk_by_case: dict[int, list[tuple[int, int]]] = {}
        for case_id, chat, message_id in await case_rows.clerk_messages(session, ids):
            clerk_by_case.setdefault(case_id, []).append((chat, message_id))
        for case in cases:
            traces = traces_by_case.get(case.id, [])
            topics = {(t.chat_id, t.topic_id) for t in traces if t.kind == TraceKind.TOPIC and t.topic_id is not None}
            if case.topic_id is not None:
                topics.add((self._chat(case), case.topic_id))
            messages: dict[int, set[int]] = {}
            cards: dict[int, set[int]] = {}
            for trace in traces:
                if trace.kind != TraceKind.TOPIC and trace.topic_id is None and trace.message_id is not None:
                    messages.setdefault(trace.chat_id, set()).add(trace.message_id)
                    if trace.kind == TraceKind.CARD:
                        cards.setdefault(trace.chat_id, set()).add(trace.message_id)
            if case.card_message_id is not None and case.topic_id is None:
                messages.setdefault(self._chat(case), set()).add(case.card_message_id)
                cards.setdefault(self._chat(case), set()).add(case.card_message_id)
            with_topics = {chat for chat, _ in topics}
            for chat, message_id in clerk_by_case.get(case.id, []):
                if chat not in with_topics:  # in a topic, they go with it
                    messages.setdefault(chat, set()).add(message_id)
            for chat, topic_id in sorted(topics):
                enqueue(session, Kind.DELETE_TOPIC, chat, key=group_key(chat, case.id), case_id=case.id, payload={"topic_id": topic_id})
            for chat, message_ids in sorted(messages.items()):
                payload = {"messages": sorted(message_ids), "cards": sorted(cards.get(chat, ())), "number": case.number}
                enqueue(session, Kind.DELETE_MESSAGES, chat, key=group_key(chat, case.id), case_id=case.id, payload=payload)
            case.topic_id = case.card_message_id = None
        await case_rows.forget_traces(session, ids)

    async def refresh_card(self, session: AsyncSession, case: Case) -> None:
        """The card re-rendered (coalesced with any pending edit), in the caller's transaction."""
        await self._card_edit(session, case)

    async def _card_edit(self, session: AsyncSession, case: Case) -> None:
        """Bring the card up to date: one pending edit per case is enough (it renders the case as it is then)."""
        chat = self._chat(case)
        key = group_key(chat, case.id)
        if await pending_row(session, Kind.CARD_EDIT, key) or await pending_row(session, Kind.CARD, key):
            return
        enqueue(session, Kind.CARD_EDIT, chat, key=key, case_id=case.id)


def _by(clerk_name: str | None) -> dict[str, str | None]:
    """Who made a change, as the document management system is told: a clerk (by name) or the system."""
    return {"role": "clerk", "name": clerk_name} if clerk_name else {"role": "system"}


def _clerk_event(case: Case, kind: EventKind, clerk: Clerk, text: str | None, message: GroupMessage, at: datetime | None = None) -> CaseEvent:
    """A clerk's message or note in the trail, with the group message it came from (to find the case by a reply)."""
    event = CaseEvent(
        case_id=case.id, kind=kind, actor_id=clerk.id, actor_name=clerk.name, text=text,
        group_chat_id=message.chat_id, group_message_id=message.message_id,
    )  # fmt: skip
    if at is not None:
        event.at = at
    return event
