"""The commands that change a case: open (or submit), act (the clerks' actions and the resident's
reopening, under one transition table keyed by `Action`), merge, relay, send a canned answer, note,
add information and files.

Each command checks first (a `check_*`, which raises `NotAllowed` with a `Refusal` saying why, or
another typed refusal), then changes the case, writes its event to the audit trail and queues what
people must be told (bot.services.case_notices) — all in one transaction (the outbox wakes when it
commits) — and returns what happened. Handlers ask the same `check_*` before a prompt and render
the refusal; they never check again themselves. Nothing here waits for Telegram.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.config import Config
from bot.municipality import Team
from bot.services import case_queries
from bot.services.case_notices import CaseNotices, by_whom
from bot.services.case_queries import OPEN_STATUSES
from bot.services.cases import (
    AnswerBy,
    AttachmentDraft,
    CaseDraft,
    OpenedCase,
    ReceivedBy,
    attachment_rows,
    format_case_number,
)
from bot.services.deadlines import ExtensionNotAllowed, WorkingCalendar
from bot.services.metoo import add_follow, followers_of
from bot.services.outbox import NO_CHAT, enqueue, resident_key
from bot.services.outbox_payloads import CopyPayload, StoreFilePayload
from bot.services.teams import TeamDirectory
from bot.services.webhooks import Event
from bot.store.db import Database, insert_for
from bot.store.models import (
    CLOSED_STATUSES,
    Attachment,
    Case,
    CaseCounter,
    CaseEvent,
    CaseKind,
    CaseStatus,
    Channel,
    EventKind,
    Resident,
    utcnow,
)


class Action(StrEnum):
    """What is done to a case: keys the transitions, the card's buttons and the prompts."""

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
    DUPLICATE = (
        "duplicate"  # closed as a duplicate of another case (`merge`), its resident following that one
    )


@dataclass(frozen=True)
class Transition:
    allowed_from: frozenset[CaseStatus]
    to: CaseStatus | None  # None: the status stays (or follows from the action)
    needs_text: bool = False  # a reason, or the final answer
    heads_only: bool = False
    by_resident: bool = False  # the case's resident may do it too, within REOPEN_DAYS of closing


TRANSITIONS: dict[Action, Transition] = {
    Action.TAKE: Transition(
        frozenset({CaseStatus.NEW, CaseStatus.REOPENED, CaseStatus.IN_PROGRESS, CaseStatus.ASSIGNED}),
        CaseStatus.ASSIGNED,
    ),
    Action.ASSIGN: Transition(OPEN_STATUSES, None, heads_only=True),
    Action.PROGRESS: Transition(
        frozenset({CaseStatus.NEW, CaseStatus.ASSIGNED, CaseStatus.REOPENED}), CaseStatus.IN_PROGRESS
    ),
    Action.EXTEND: Transition(OPEN_STATUSES, None, needs_text=True),
    Action.ANSWER: Transition(OPEN_STATUSES, CaseStatus.ANSWERED, needs_text=True),
    Action.PASS: Transition(OPEN_STATUSES, None, needs_text=True),
    Action.REDIRECT: Transition(OPEN_STATUSES, CaseStatus.REDIRECTED, needs_text=True),
    Action.REJECT: Transition(OPEN_STATUSES, CaseStatus.REJECTED, needs_text=True),
    Action.REOPEN: Transition(CLOSED_STATUSES, CaseStatus.REOPENED, by_resident=True),
    Action.PUBLISH: Transition(frozenset(CaseStatus), None),
    Action.HIDE: Transition(frozenset(CaseStatus), None),
    Action.DUPLICATE: Transition(
        OPEN_STATUSES, CaseStatus.DUPLICATE, needs_text=True
    ),  # the text: the original's number
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


class Refusal(StrEnum):
    """Why a command was refused: what the handler tells the person who asked."""

    NO_CASE = "no_case"  # no such case, or its retention period is over
    STATUS = "status"  # the action does not fit the case now
    NOT_THEIRS = "not_theirs"  # a resident acting on a case that is not theirs
    TOO_LATE = "too_late"  # a resident's reopening after REOPEN_DAYS
    NO_EXTENSION_LEFT = "no_extension_left"  # the kind's maximum extension is used up
    EXTENSION = "extension"  # more working days than are left, or none
    SAME_TEAM = "same_team"  # passing a case to the team that has it, or to no team
    NOT_A_MEMBER = "not_a_member"  # assigning a case to someone outside its team
    HOW_ANSWERED = "how_answered"  # closing a case answered outside Telegram without saying how
    PROFILE_ERASED = "profile_erased"  # the resident erased their profile and the case is closed
    NO_TELEGRAM = "no_telegram"  # the case's person has no Telegram
    MERGE = "merge"  # the duplicate's original does not fit (the message says why)


class NotAllowed(Exception):
    """The case does not exist, or the command does not fit it now; `reason` says which."""

    def __init__(self, reason: Refusal = Refusal.STATUS, detail: str = "") -> None:
        super().__init__(detail or reason.value)
        self.reason = reason


class MergeRefused(NotAllowed):
    """A merge that cannot be made; the message is for the clerk (in ADMIN_LOCALE)."""

    def __init__(self, message: str) -> None:
        super().__init__(Refusal.MERGE, message)


class DailyLimitReached(Exception):
    """The resident has opened as many cases today as the municipality accepts in one day."""

    def __init__(self, limit: int) -> None:
        super().__init__(str(limit))
        self.limit = limit


def check_transition(case: Case | None, action: Action) -> Case:
    """The case, if `action` fits it now (the transition table, and what the status alone does
    not decide); NotAllowed otherwise."""
    if case is None or case.purged_at is not None:
        raise NotAllowed(Refusal.NO_CASE)  # the retention period is over: the case is a statistic now
    if case.status not in TRANSITIONS[action].allowed_from or not _fits(action, case):
        raise NotAllowed(Refusal.STATUS)
    return case


def allowed_actions(case: Case) -> list[Action]:
    return [action for action in TRANSITIONS if _allows(case, action)]


def _allows(case: Case, action: Action) -> bool:
    try:
        check_transition(case, action)
    except NotAllowed:
        return False
    return True


HeldFiles = tuple[int, int, set[str]]  # a case's files: how many, their bytes, their unique ids


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

    def __init__(self) -> None:
        super().__init__(Refusal.NO_TELEGRAM)


# Cases whose answer is given outside Telegram: closing one records how (`Case.answered_via`).
ANSWERED_OUTSIDE_TELEGRAM = frozenset({Channel.STAFF})


def answered_outside_telegram(case: Case) -> bool:
    return case.channel in ANSWERED_OUTSIDE_TELEGRAM


def records_how_answered(case: Case, action: Action) -> bool:
    """Whether `action` closes a case whose answer went outside Telegram: the clerk says how."""
    return (
        answered_outside_telegram(case)
        and TRANSITIONS[action].to in CLOSED_STATUSES
        and action is not Action.DUPLICATE
    )


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


class CaseCommands:
    def __init__(
        self,
        database: Database,
        calendar: WorkingCalendar,
        config: Config,
        teams: TeamDirectory,
        notices: CaseNotices,
    ) -> None:
        self.database = database
        self.calendar = calendar
        self.config = config
        self.municipality = config.municipality
        self.teams = teams
        self.notices = notices  # what each change queues
        self.resident_texts = notices.resident_texts  # in the resident's language
        self.clerk_texts = notices.clerk_texts  # in ADMIN_LOCALE

    def extension_left(self, case: Case) -> int:
        return extension_left(case, self.config)

    # --- the checks: each raises what the command would refuse with, before anything is asked or changed ---

    def check_action(self, case: Case | None, action: Action) -> Case:
        """A clerk's action fits the case now (before its prompt: a reason, days, a team, a person)."""
        case = check_transition(case, action)
        if action is Action.EXTEND and self.extension_left(case) <= 0:
            raise NotAllowed(Refusal.NO_EXTENSION_LEFT)
        return case

    def check_extension(self, case: Case | None, days: int) -> Case:
        """The deadline may be extended by `days` working days."""
        case = self.check_action(case, Action.EXTEND)
        if not 1 <= days <= self.extension_left(case):
            raise NotAllowed(Refusal.EXTENSION)
        return case

    def check_pass(self, case: Case | None, team_id: str | None) -> Team:
        """The team the case may be passed to: another team of the municipality."""
        case = self.check_action(case, Action.PASS)
        target = self.municipality.team_by_id.get(team_id or "")
        if target is None or target.id == self.teams.get(case.team_id).id:
            raise NotAllowed(Refusal.SAME_TEAM)
        return target

    def assignable(self, team: Team) -> list[int]:
        """Whom a head may assign the team's cases to (and is offered): its heads, then its members."""
        return list(dict.fromkeys([*team.heads, *team.members]))

    def check_assignee(self, case: Case | None, user_id: int) -> Team:
        """A head's choice of whom to assign the case to: one of its team's `assignable` (the team returned)."""
        case = self.check_action(case, Action.ASSIGN)
        team = self.teams.get(case.team_id)
        if user_id not in self.assignable(team):
            raise NotAllowed(Refusal.NOT_A_MEMBER)
        return team

    def check_how_answered(self, case: Case | None, action: Action) -> Case:
        """`action` closes a case answered outside Telegram, so the clerk says how it was answered."""
        case = self.check_action(case, action)
        if not records_how_answered(case, action):
            raise NotAllowed(Refusal.STATUS)
        return case

    def check_reopen_by_resident(self, case: Case | None, resident_id: int, now: datetime) -> Case:
        """The resident may reopen their case: the transition table's REOPEN, within REOPEN_DAYS of closing."""
        if case is None or case.resident_id != resident_id:
            raise NotAllowed(Refusal.NOT_THEIRS)
        case = check_transition(case, Action.REOPEN)
        if not TRANSITIONS[Action.REOPEN].by_resident:
            raise NotAllowed(Refusal.STATUS)
        if case.closed_at is None or now - case.closed_at > timedelta(days=self.config.settings.reopen_days):
            raise NotAllowed(Refusal.TOO_LATE)
        return case

    def resident_may_reopen(self, case: Case, now: datetime) -> bool:
        """Whether the case's resident may reopen it now (to offer the button)."""
        if case.resident_id is None:
            return False
        try:
            self.check_reopen_by_resident(case, case.resident_id, now)
        except NotAllowed:
            return False
        return True

    def check_add_information(self, case: Case | None, resident_id: int) -> Case:
        """The resident may add text or files to this case: theirs, and still being handled."""
        if case is None or case.resident_id != resident_id:
            raise NotAllowed(Refusal.NOT_THEIRS)
        if case.status in CLOSED_STATUSES:
            raise NotAllowed(Refusal.STATUS)
        return case

    async def check_daily_limit(self, resident_id: int, now: datetime) -> None:
        """DailyLimitReached if the resident has opened as many cases today as MAX_CASES_PER_DAY."""
        async with self.database.read() as session:
            await self._check_daily_limit(session, resident_id, now, self.config.settings.max_cases_per_day)

    async def _check_daily_limit(
        self, session: AsyncSession, resident_id: int, now: datetime, limit: int
    ) -> None:
        if await case_queries.opened_since(session, resident_id, self.calendar.day_start(now)) >= limit:
            raise DailyLimitReached(limit)

    # --- opening ---

    async def submit(
        self, draft: CaseDraft, received_at: datetime, update_id: int, phone: str | None = None
    ) -> OpenedCase:
        """A resident's new case, within the day's limit (MAX_CASES_PER_DAY; DailyLimitReached
        otherwise) and the files' quotas (FileQuotaReached), with the phone number they chose to
        share; the same update again returns its case."""
        return await self.open(
            draft, received_at, update_id, daily_limit=self.config.settings.max_cases_per_day, phone=phone
        )

    async def open(
        self,
        draft: CaseDraft,
        received_at: datetime,
        update_id: int | None = None,
        registered_by: RegisteredBy | None = None,
        *,
        daily_limit: int | None = None,
        phone: str | None = None,
    ) -> OpenedCase:
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
            return await case_queries.case_by_update(session, update_id)

    async def _insert(
        self,
        draft: CaseDraft,
        received_at: datetime,
        update_id: int | None,
        registered_by: RegisteredBy | None,
        daily_limit: int | None,
        phone: str | None,
    ) -> Case:
        rules = self.municipality.kinds[draft.kind]
        year = self.calendar.local_date(received_at).year
        team = self.teams.route(draft.kind, draft.category_id, draft.eldership_id)
        async with self.database.write() as session:
            if draft.resident_id is not None:
                if (
                    daily_limit is not None
                ):  # a resident's own submission: within the day's limit, their files against the quotas
                    await self._check_daily_limit(session, draft.resident_id, received_at, daily_limit)
                    none: HeldFiles = (0, 0, set())
                    await self._check_quota(
                        session, none, draft.resident_id, self._new_files(none, draft.attachments)
                    )
                if phone:
                    resident = await session.get(Resident, draft.resident_id)
                    if resident is not None:
                        resident.phone = phone[:32]
            seq = await allocate_sequence(session, year)
            case = Case(
                number=format_case_number(self.config.settings.case_prefix, year, seq),
                year=year,
                seq=seq,
                resident_id=draft.resident_id,
                locale=draft.locale,
                kind=draft.kind,
                category_id=draft.category_id,
                eldership_id=draft.eldership_id,
                description=draft.description,
                latitude=draft.latitude,
                longitude=draft.longitude,
                address=draft.address,
                received_at=received_at,
                deadline=self.calendar.deadline(received_at, rules.deadline_days),
                source_update_id=update_id,
                team_id=team.id,
                group_chat_id=self.teams.chat_of(team),
                channel=draft.channel,
                contact=draft.contact.as_json() if draft.contact else None,
                open311_client=draft.open311_client,
                open311_token=draft.open311_token,
            )
            session.add(case)
            await session.flush()
            data: dict[str, Any] = {"team": team.id, "channel": draft.channel}
            actor_id, actor_name = draft.resident_id, None
            if registered_by is not None:
                actor_id, actor_name = registered_by.clerk.id, registered_by.clerk.name
                data["received_by"] = registered_by.received_by
            created = CaseEvent(
                case_id=case.id,
                at=received_at,
                kind=EventKind.CREATED,
                actor_id=actor_id,
                actor_name=actor_name,
                data=data,
            )
            session.add(created)
            await session.flush()
            files = await self.add_files(session, case, created.id, draft.attachments)
            self.notices.queue_card(session, case, [f.id for f in files])
            await self.notices.hook(session, Event.OPENED, case, created)
        return case

    async def add_files(
        self, session: AsyncSession, case: Case, event_id: int | None, drafts: tuple[AttachmentDraft, ...]
    ) -> list[Attachment]:
        """Record a case's photos and documents, each with its download into the municipality's
        storage queued in the same transaction (bot.services.files). A file the case holds already
        (the same file_unique_id, sent again) is recorded once."""
        drafts = self._new_files(await self._files_held(session, case.id), drafts)
        files = attachment_rows(case.id, event_id, drafts)
        if not files:
            return files
        session.add_all(files)
        await session.flush()
        for file in files:
            enqueue(
                session, StoreFilePayload(attachment=file.id), NO_CHAT, key=f"file:{file.id}", case_id=case.id
            )
        return files

    # --- what clerks do ---

    async def act(
        self,
        case_id: int,
        action: Action,
        clerk: Clerk,
        *,
        text: str | None = None,
        days: int | None = None,
        team_id: str | None = None,
        assignee: Clerk | None = None,
        answer: GroupMessage | None = None,
        answered_via: AnswerBy | None = None,
    ) -> Outcome:
        """Apply a clerk's action; raise NotAllowed (with the `Refusal`) if the case or the transition is wrong.

        ANSWER with `answer`: that group message is copied to the resident as the answer.
        Closing a case answered outside Telegram (`records_how_answered`) needs `answered_via`:
        how the answer was given (stored on the case and in the STATUS event); the answer's text
        is recorded, nothing is sent."""
        rule = TRANSITIONS[action]
        now = utcnow()
        async with self.database.write() as session:
            case = self.check_action(await session.get(Case, case_id, with_for_update=True), action)
            if action is Action.DUPLICATE:
                raise NotAllowed(Refusal.STATUS)  # a duplicate is closed by `merge`, with its original
            outcome = Outcome(case)
            if action in (Action.PUBLISH, Action.HIDE):
                self._publish(session, outcome, clerk, action is Action.PUBLISH, now)
            elif action is Action.EXTEND:
                self.check_extension(case, days or 0)
                await self._extend(session, outcome, clerk, text or "", days or 0, now)
            elif action is Action.PASS:
                await self._pass(session, outcome, clerk, self.check_pass(case, team_id), text or "", now)
                return outcome
            elif action is Action.ASSIGN:  # the head's choice checked by `check_assignee` when it was made
                await self._assign(session, outcome, clerk, assignee or clerk, now)
            else:
                details: dict[str, Any] = {}
                if records_how_answered(case, action):
                    if answered_via is None:
                        raise NotAllowed(Refusal.HOW_ANSWERED)
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
                notify = details.pop(
                    "notified", True
                )  # a relayed final answer says itself that the case is closed
                await self._set_status(
                    session, outcome, rule.to, clerk.id, clerk.name, text, now, details, notify=notify
                )
            await self.notices.refresh_card(session, case)
        return outcome

    async def _set_status(
        self,
        session: AsyncSession,
        outcome: Outcome,
        to: CaseStatus,
        actor_id: int | None,
        actor_name: str | None,
        text: str | None,
        now: datetime,
        details: dict[str, Any] | None = None,
        *,
        notify: bool = True,
    ) -> None:
        case = outcome.case
        previous = case.status
        case.status = to
        case.closed_at = now if to in CLOSED_STATUSES else None
        event = CaseEvent(
            case_id=case.id,
            at=now,
            kind=EventKind.STATUS,
            actor_id=actor_id,
            actor_name=actor_name,
            text=text,
            data={"from": previous, "to": to, **(details or {})},
        )
        session.add(event)
        outcome.events.append(event)
        await self.notices.status_changed(
            session, case, event, outcome.events, actor_name, text, notify=notify
        )

    def _publish(
        self, session: AsyncSession, outcome: Outcome, clerk: Clerk, public: bool, now: datetime
    ) -> None:
        """A report shown in the public Open311 listing (its description and place), or hidden again."""
        case = outcome.case
        case.public = public
        event = CaseEvent(
            case_id=case.id,
            at=now,
            kind=EventKind.PUBLISHED,
            actor_id=clerk.id,
            actor_name=clerk.name,
            data={"public": public},
        )
        session.add(event)
        outcome.events.append(event)

    async def _extend(
        self, session: AsyncSession, outcome: Outcome, clerk: Clerk, reason: str, days: int, now: datetime
    ) -> None:
        case = outcome.case
        try:
            extension = self.calendar.extend(
                case.due, days, case.extension_days, self.municipality.kinds[case.kind].max_extension_days
            )
        except ExtensionNotAllowed as exc:
            raise NotAllowed(Refusal.EXTENSION, str(exc)) from None
        case.extended_until, case.extension_days, case.extension_reason = (
            extension.until,
            extension.total_days,
            reason,
        )
        event = CaseEvent(
            case_id=case.id,
            at=now,
            kind=EventKind.EXTENDED,
            actor_id=clerk.id,
            actor_name=clerk.name,
            text=reason,
            data={"until": extension.until.isoformat(), "days": days},
        )
        session.add(event)
        outcome.events.append(event)
        await self.notices.hook(
            session,
            Event.EXTENDED,
            case,
            event,
            {"until": extension.until.isoformat(), "days": days, "reason": reason, "by": by_whom(clerk.name)},
        )
        await self.notices.event_to_resident(session, case, event)

    async def _assign(
        self, session: AsyncSession, outcome: Outcome, clerk: Clerk, assignee: Clerk, now: datetime
    ) -> None:
        case = outcome.case
        case.assignee_id, case.assignee_name = assignee.id, assignee.name
        event = CaseEvent(
            case_id=case.id,
            at=now,
            kind=EventKind.ASSIGNED,
            actor_id=clerk.id,
            actor_name=clerk.name,
            data={"assignee_id": assignee.id, "assignee_name": assignee.name},
        )
        session.add(event)
        outcome.events.append(event)
        if case.status in (CaseStatus.NEW, CaseStatus.REOPENED):
            await self._set_status(session, outcome, CaseStatus.ASSIGNED, clerk.id, clerk.name, None, now)
        self.notices.post_in(session, case, self.clerk_texts.assigned(case, clerk, assignee))

    async def _pass(
        self, session: AsyncSession, outcome: Outcome, clerk: Clerk, to: Team, reason: str, now: datetime
    ) -> None:
        case = outcome.case
        source = self.teams.get(case.team_id)
        if to.id == source.id:
            raise NotAllowed(Refusal.SAME_TEAM)
        old_chat, old_topic, old_card = case.group_chat_id, case.topic_id, case.card_message_id
        event = CaseEvent(
            case_id=case.id,
            at=now,
            kind=EventKind.PASSED,
            actor_id=clerk.id,
            actor_name=clerk.name,
            text=reason,
            data={"from": source.id, "to": to.id},
            group_chat_id=old_chat,
            group_message_id=old_topic,  # the topic it left
        )
        session.add(event)
        outcome.events.append(event)
        # The old topic: a last line saying where the case went, the old card without its buttons, then it is closed.
        if old_chat is not None:
            # Its topic named now: when it is sent, the case already lives in the new team's group.
            self.notices.leave_group(
                session,
                case,
                old_chat,
                old_topic,
                old_card,
                self.clerk_texts.passed_away(case, clerk, to, reason),
            )
        case.team_id, case.group_chat_id = to.id, self.teams.chat_of(to)
        case.topic_id = case.card_message_id = None
        case.assignee_id = case.assignee_name = None
        if case.status == CaseStatus.ASSIGNED:
            case.status = CaseStatus.NEW  # nobody in the new team has it yet
        await session.flush()
        await self.notices.hook(
            session,
            Event.PASSED,
            case,
            event,
            {"from_team": source.id, "to_team": to.id, "reason": reason, "by": by_whom(clerk.name)},
        )
        events = await case_queries.case_events(session, case.id)
        attachments = await case_queries.attachment_ids(session, case.id)
        self.notices.queue_card(
            session, case, attachments, history=self.clerk_texts.history(case, events, source, reason)
        )
        self.notices.notify(
            session,
            case,
            self.resident_texts.passed(case, to, reason, await case_queries.resident_locale(session, case)),
        )

    async def _relay(
        self,
        session: AsyncSession,
        outcome: Outcome,
        clerk: Clerk,
        messages: list[GroupMessage],
        text: str | None,
        now: datetime,
        files: tuple[AttachmentDraft, ...] = (),
        *,
        final: bool = False,
    ) -> CaseEvent:
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
        locale = await case_queries.resident_locale(session, case)
        heading, footer = (
            self.resident_texts.answer_heading(locale)
            if final
            else (self.resident_texts.clerk_heading(locale), None)
        )
        assert event.id is not None
        payload = CopyPayload(
            from_chat_id=first.chat_id,
            message_ids=[m.message_id for m in messages],
            event=event.id,
            header=self.resident_texts.header(case, locale),
            heading=heading,
            footer=footer,
            html=first.html,
            media=any(m.media for m in messages),
        )
        if (
            case.resident_id is not None
        ):  # a case without a Telegram resident keeps the answer on record (Open311 shows it)
            enqueue(session, payload, case.resident_id, key=resident_key(case.resident_id), case_id=case.id)
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
            check_transition(case, Action.DUPLICATE)
            assert case is not None
            original = await session.get(Case, original_id, with_for_update=True)
            self._check_merge(case, original, head_of_original, now)
            assert original is not None
            case.duplicate_of = original.id
            outcome = Outcome(case)
            await self._set_status(
                session,
                outcome,
                CaseStatus.DUPLICATE,
                clerk.id,
                clerk.name,
                original.number,
                now,
                {"original": original.number},
                notify=False,
            )
            self.notices.notify(
                session,
                case,
                self.resident_texts.merged(case, original, await case_queries.resident_locale(session, case)),
            )
            resident = await case_queries.resident_of(session, case)
            followers = {
                resident_id
                for resident_id, _locale in await followers_of(
                    session, case.id, self.config.settings.default_locale
                )
            }
            if case.resident_id is not None and not case_queries.kept_apart(case, resident):
                followers.add(case.resident_id)
            for resident_id in sorted(followers - {original.resident_id}):
                await add_follow(session, resident_id, original)
            await self.notices.refresh_card(session, case)
            await self.notices.refresh_card(session, original)
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
        if (
            original.status in CLOSED_STATUSES
            and original.closed_at is not None
            and now - original.closed_at > window
        ):
            raise MergeRefused(texts_.merge_refused("old", original))
        if original.team_id != case.team_id and not head_of_original:
            raise MergeRefused(texts_.merge_refused("team", original))

    # --- messages between the clerk and the resident ---

    async def relay(
        self,
        case_id: int,
        clerk: Clerk,
        messages: list[GroupMessage],
        text: str | None,
        files: tuple[AttachmentDraft, ...] = (),
    ) -> Outcome:
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
            await self.notices.event_to_resident(session, case, event)
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
            raise NotAllowed(Refusal.NO_CASE)
        return case

    async def _writable(self, session: AsyncSession, case: Case) -> None:
        """Raise NotAllowed unless the resident may still be written to about this case: after
        /forget, only while it is being handled (bot.services.privacy); NoTelegram for a case whose
        person has no Telegram (registered by a clerk). An Open311 case keeps what it is told on
        record (its client reads the final answer as status notes)."""
        if answered_outside_telegram(case):
            raise NoTelegram
        resident = await case_queries.resident_of(session, case)
        if case.status in CLOSED_STATUSES and case_queries.kept_apart(case, resident):
            raise NotAllowed(Refusal.PROFILE_ERASED)

    # --- what residents do ---

    async def add_information(
        self,
        case_id: int,
        resident_id: int,
        text: str | None,
        files: tuple[AttachmentDraft, ...],
        resident_message_id: int,
    ) -> CaseEvent:
        """The resident adds text or files to their open case; what comes in quick succession is
        gathered into one post for the clerks (GATHER_SECONDS). A file the case has already is not
        recorded again (AlreadyAdded if nothing else came); files over a quota are refused with
        all that came with them (FileQuotaReached): the resident is told, nothing is half-added."""
        async with self.database.write() as session:
            await session.get(
                Resident, resident_id, with_for_update=True
            )  # one addition at a time counts against the day's quota
            case = self.check_add_information(
                await session.get(Case, case_id, with_for_update=True), resident_id
            )
            held = await self._files_held(session, case.id)
            files = self._new_files(held, files)
            if text is None and not files:
                raise AlreadyAdded
            await self._check_quota(session, held, resident_id, files)
            event = CaseEvent(
                case_id=case.id,
                kind=EventKind.MESSAGE_IN,
                actor_id=resident_id,
                text=text,
                resident_message_id=resident_message_id,
            )
            session.add(event)
            await session.flush()
            await self.add_files(session, case, event.id, files)
            await self.notices.gather_information(session, case, event)
        return event

    @staticmethod
    async def _files_held(session: AsyncSession, case_id: int | None) -> HeldFiles:
        """The case's files (count, bytes, their unique ids); none for a case not stored yet."""
        return await case_queries.files_of_case(session, case_id) if case_id is not None else (0, 0, set())

    @staticmethod
    def _new_files(held: HeldFiles, drafts: tuple[AttachmentDraft, ...]) -> tuple[AttachmentDraft, ...]:
        """`drafts` without the files the case has already, or that come twice."""
        seen = set(held[2])
        new = []
        for draft in drafts:
            if draft.file_unique_id not in seen:
                seen.add(draft.file_unique_id)
                new.append(draft)
        return tuple(new)

    async def _check_quota(
        self,
        session: AsyncSession,
        held: HeldFiles,
        resident_id: int,
        drafts: tuple[AttachmentDraft, ...],
    ) -> None:
        """Raise FileQuotaReached if `drafts` (new to the case) would take the case's or the
        resident's day's files over a quota (FILES_PER_CASE_MAX and the others)."""
        if not drafts:
            return
        settings = self.config.settings
        adding, adding_bytes = len(drafts), sum(draft.file_size or 0 for draft in drafts)
        count, size, _ = held
        today, today_bytes = await case_queries.files_sent_since(
            session, resident_id, self.calendar.day_start(utcnow())
        )
        for used, limit, maximum in (
            (count + adding, FileLimit.CASE_FILES, settings.files_per_case_max),
            (size + adding_bytes, FileLimit.CASE_BYTES, int(settings.file_bytes_per_case_max)),
            (today + adding, FileLimit.DAY_FILES, settings.files_per_resident_day_max),
            (today_bytes + adding_bytes, FileLimit.DAY_BYTES, int(settings.file_bytes_per_resident_day_max)),
        ):
            if used > maximum:
                raise FileQuotaReached(limit, maximum)

    async def check_files(
        self, resident_id: int, drafts: tuple[AttachmentDraft, ...], case_id: int | None = None
    ) -> None:
        """Before a file joins a case being written (the intake's draft, `drafts` with it): raise
        AlreadyAdded if it is there already, FileQuotaReached if it goes over a quota."""
        async with self.database.read() as session:
            held = await self._files_held(session, case_id)
            unique = self._new_files(held, drafts)
            if len(unique) < len(drafts):
                raise AlreadyAdded
            await self._check_quota(session, held, resident_id, unique)

    async def send_information_now(self, case_id: int, resident_id: int) -> None:
        """The resident said they are done adding: what is gathered for the clerks goes at once,
        not at the end of the gathering window."""
        async with self.database.write() as session:
            case = await session.get(Case, case_id)
            if case is None or case.resident_id != resident_id:
                return
            await self.notices.release_information(session, case)

    async def reopen_by_resident(self, case_id: int, resident_id: int, reason: str) -> Case:
        """The resident reopens their closed case (`check_reopen_by_resident`), with their reason."""
        now = utcnow()
        async with self.database.write() as session:
            case = self.check_reopen_by_resident(
                await session.get(Case, case_id, with_for_update=True), resident_id, now
            )
            previous = case.status
            case.status, case.closed_at = CaseStatus.REOPENED, None
            event = CaseEvent(
                case_id=case.id,
                at=now,
                kind=EventKind.STATUS,
                actor_id=resident_id,
                text=reason,
                data={"from": previous, "to": CaseStatus.REOPENED},
            )
            session.add(event)
            await session.flush()
            await self.notices.hook(
                session, Event.REOPENED, case, event, {"reason": reason, "by": {"role": "resident"}}
            )
            self.notices.post_in(session, case, self.clerk_texts.information(case, [event]))
            await self.notices.refresh_card(session, case)
        return case


def _clerk_event(
    case: Case,
    kind: EventKind,
    clerk: Clerk,
    text: str | None,
    message: GroupMessage,
    at: datetime | None = None,
) -> CaseEvent:
    """A clerk's message or note in the trail, with the group message it came from (to find the case by a reply)."""
    event = CaseEvent(
        case_id=case.id,
        kind=kind,
        actor_id=clerk.id,
        actor_name=clerk.name,
        text=text,
        group_chat_id=message.chat_id,
        group_message_id=message.message_id,
    )
    if at is not None:
        event.at = at
    return event


async def allocate_sequence(session: AsyncSession, year: int) -> int:
    """The next number of `year`, inside the caller's transaction.

    The counter row stays locked until the transaction ends, so concurrent creators wait for
    each other, and a transaction that rolls back gives its number back: no gaps, no repeats.
    """
    await session.execute(
        insert_for(session, CaseCounter)
        .values(year=year, last=0)
        .on_conflict_do_nothing(index_elements=["year"])
    )
    result = await session.execute(
        update(CaseCounter)
        .where(col(CaseCounter.year) == year)
        .values(last=CaseCounter.last + 1)
        .returning(col(CaseCounter.last))
    )
    return result.scalar_one()
