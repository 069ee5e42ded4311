"""The case store: SQLModel tables shared by SQLite and PostgreSQL.

Times are stored in UTC and come back timezone-aware on both databases; legal deadlines are
plain dates (the municipality's calendar). Enumerations are stored as short strings so that
adding a value never needs a database-specific migration.
"""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from bot import clock


def utcnow() -> datetime:
    return clock.now()


class UTCDateTime(TypeDecorator[datetime]):
    """An aware datetime stored as UTC (SQLite keeps no zone, so it is restored on read)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use an aware one")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _time(nullable: bool = False, **kwargs: Any) -> Any:
    return Field(sa_column=sa.Column(UTCDateTime(), nullable=nullable, **kwargs))


def _bigint(**kwargs: Any) -> Any:
    return Field(sa_type=sa.BigInteger, **kwargs)


class CaseKind(StrEnum):
    REQUEST = "request"
    COMPLAINT = "complaint"
    REPORT = "report"


class CaseStatus(StrEnum):
    NEW = "new"
    ASSIGNED = "assigned"
    IN_PROGRESS = "in_progress"
    ANSWERED = "answered"
    REDIRECTED = "redirected"
    REJECTED = "rejected"
    REOPENED = "reopened"  # by the resident, after closing
    DUPLICATE = "duplicate"  # merged by a clerk into another case (Case.duplicate_of); closed, counted apart from answered


CLOSED_STATUSES = frozenset(
    {CaseStatus.ANSWERED, CaseStatus.REDIRECTED, CaseStatus.REJECTED, CaseStatus.DUPLICATE}
)


class Channel(StrEnum):
    """How a case came in (reports count cases by channel)."""

    TELEGRAM = "telegram"  # a resident in the bot's private chat
    STAFF = "staff"  # registered by a clerk: by phone, e-mail, post or at the front desk (/register)
    OPEN311 = "open311"  # through the GeoReport v2 API (bot.open311)


class EventKind(StrEnum):
    CREATED = "created"
    STATUS = "status"
    MESSAGE_IN = "message_in"  # from the resident
    MESSAGE_OUT = "message_out"  # to the resident
    NOTE = "note"
    EXTENDED = "extended"
    REMINDED = "reminded"
    PASSED = "passed"  # to another team: data {"from", "to"}, the reason in text
    ASSIGNED = "assigned"  # a responsible clerk named: data {"assignee_id", "assignee_name"}
    ESCALATED = "escalated"  # the head (and the escalation team) told: data {"day", "to"}
    PUBLISHED = "published"  # a clerk made a report public, or hid it again: data {"public": bool}


class Resident(SQLModel, table=True):
    __tablename__ = "residents"

    id: int = _bigint(primary_key=True)  # the Telegram user id (private chat id)
    locale: str | None = Field(default=None, max_length=5)
    display_name: str = Field(default="", max_length=256)
    phone: str | None = Field(default=None, max_length=32)
    consent_at: datetime | None = _time(nullable=True)
    blocked_at: datetime | None = _time(nullable=True)
    news_topics: list[str] = Field(
        default_factory=list, sa_column=sa.Column(sa.JSON, nullable=False, server_default="[]")
    )
    eldership_id: str | None = Field(default=None, max_length=24)  # for news from their eldership
    erased_at: datetime | None = _time(
        nullable=True
    )  # /forget: the profile went; cases received before stay apart
    exports_on: date | None = None  # the day of the last /mydata (they are counted per day)
    exports_that_day: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    created_at: datetime = _time(default=utcnow)
    updated_at: datetime = _time(default=utcnow, onupdate=utcnow)


class CaseCounter(SQLModel, table=True):
    """The last number given out per year; its row lock makes numbering gap-free."""

    __tablename__ = "case_counters"

    year: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    last: int = 0


class Case(SQLModel, table=True):
    __tablename__ = "cases"
    __table_args__ = (
        sa.UniqueConstraint("year", "seq", name="uq_cases_year_seq"),
        sa.Index(
            "ix_cases_category_status_received", "category_id", "status", "received_at"
        ),  # "me too": open cases of a category
        sa.Index("ix_cases_latitude_longitude", "latitude", "longitude"),  # ...within a bounding box
        sa.Index(
            "ix_cases_received_at", "received_at"
        ),  # Open311's listing (a window, newest first); a period's report
        sa.Index(
            "ix_cases_closed_at", "closed_at"
        ),  # a period's report (not closed before it); retention (closed before a day)
    )

    id: int = Field(default=None, primary_key=True)  # set by the database at the first flush
    number: str = Field(max_length=32, unique=True)
    year: int
    seq: int
    resident_id: int | None = _bigint(
        foreign_key="residents.id", index=True
    )  # None once the retention period is over
    locale: str = Field(max_length=5)
    kind: str = Field(max_length=16)
    category_id: str = Field(max_length=24)
    eldership_id: str | None = Field(default=None, max_length=24)
    description: str = Field(sa_type=sa.Text)
    latitude: float | None = None
    longitude: float | None = None
    address: str | None = Field(default=None, max_length=512)
    status: str = Field(default=CaseStatus.NEW, max_length=16, index=True)
    received_at: datetime = _time()
    deadline: date
    extended_until: date | None = None
    extension_days: int = 0
    extension_reason: str | None = Field(default=None, sa_type=sa.Text)
    assignee_id: int | None = _bigint(default=None)
    assignee_name: str | None = Field(default=None, max_length=256)
    team_id: str | None = Field(
        default=None, max_length=24, index=True
    )  # None: the default team (cases from before teams)
    group_chat_id: int | None = _bigint(default=None)  # the team group holding the case's topic and card
    topic_id: int | None = Field(default=None, index=True)  # the forum topic of the case in that group
    card_message_id: int | None = None  # the case card in that group (None: not posted yet)
    closed_at: datetime | None = _time(nullable=True)
    source_update_id: int | None = _bigint(default=None, unique=True)
    feedback_asked: bool = Field(
        default=False, sa_column_kwargs={"server_default": sa.false()}
    )  # the satisfaction question was sent (it is never repeated)
    purged_at: datetime | None = _time(nullable=True)  # the retention period ended: the personal data went
    channel: str = Field(
        default=Channel.TELEGRAM, max_length=16, sa_column_kwargs={"server_default": Channel.TELEGRAM.value}
    )
    # Who to answer when there is no Telegram resident (staff-registered and Open311 cases), see
    # bot.services.cases.Contact; personal data like the resident's, gone with the retention period.
    contact: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)
    answered_via: str | None = Field(
        default=None, max_length=16
    )  # how the answer was given outside Telegram (phone, e-mail, post, in person)
    public: bool = Field(
        default=False, sa_column_kwargs={"server_default": sa.false()}
    )  # a report a clerk made public (Open311 shows it)
    open311_client: str | None = Field(
        default=None, max_length=32
    )  # the Open311 client (its API key's name) that sent the case
    open311_token: str | None = Field(
        default=None, max_length=32, unique=True, index=True
    )  # GET tokens/{token} finds the case by it
    duplicate_of: int | None = Field(
        default=None, foreign_key="cases.id", index=True
    )  # closed as a duplicate of this (root) case

    @property
    def due(self) -> date:
        return self.extended_until or self.deadline


class CaseEvent(SQLModel, table=True):
    """The audit trail of a case: rows are only ever added."""

    __tablename__ = "case_events"
    __table_args__ = (sa.Index("ix_case_events_kind_at", "kind", "at"),)  # a period's extensions (the report)

    id: int = Field(default=None, primary_key=True)  # set by the database at the first flush
    case_id: int = Field(foreign_key="cases.id", index=True)
    at: datetime = _time(default=utcnow)
    kind: str = Field(max_length=16)
    actor_id: int | None = _bigint(default=None)
    actor_name: str | None = Field(default=None, max_length=256)
    text: str | None = Field(default=None, sa_type=sa.Text)
    data: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)
    resident_message_id: int | None = None  # in the resident's private chat (chat id = the resident's id)
    group_chat_id: int | None = _bigint(default=None)
    # With group_chat_id: the clerks' side of a message; of a PASSED event, the forum topic the case left
    # (a topic's id is the id of its first message).
    group_message_id: int | None = Field(default=None, index=True)


class TraceKind(StrEnum):
    TOPIC = "topic"  # a forum topic the case had: (chat_id, topic_id)
    CARD = "card"  # a card of the case: (chat_id, message_id), in topic_id (None: the main chat)
    POST = "post"  # anything else the bot put into a group about the case (its files, the resident's additions, notes to clerks)


class CaseTrace(SQLModel, table=True):
    """Where a case has been in the team groups: every topic and card it ever had, in every group
    (a case passed between teams leaves them in each), and the bot's other posts about it. Only
    ever added to; /forget blanks the cards, retention deletes the topics, or the messages in a
    group without topics (bot.services.privacy)."""

    __tablename__ = "case_traces"

    id: int = Field(default=None, primary_key=True)  # set by the database at the first flush
    case_id: int = Field(foreign_key="cases.id", index=True)
    kind: str = Field(max_length=8)  # TraceKind
    chat_id: int = _bigint()
    topic_id: int | None = None
    message_id: int | None = None
    created_at: datetime = _time(default=utcnow)


class Attachment(SQLModel, table=True):
    __tablename__ = "attachments"

    id: int = Field(default=None, primary_key=True)  # set by the database at the first flush
    case_id: int = Field(foreign_key="cases.id", index=True)
    event_id: int | None = Field(default=None, foreign_key="case_events.id")
    kind: str = Field(max_length=16)  # photo | document
    file_id: str = Field(max_length=256)
    file_unique_id: str = Field(max_length=64)
    caption: str | None = Field(default=None, sa_type=sa.Text)
    media_group_id: str | None = Field(default=None, max_length=64)
    created_at: datetime = _time(default=utcnow)
    # The municipality's own copy (bot.services.files): downloaded from Telegram as the file
    # arrives, so the record stays whole without Telegram or this bot.
    file_name: str | None = Field(default=None, max_length=256)  # as the sender named it (documents)
    content_type: str | None = Field(default=None, max_length=128)
    size: int | None = _bigint(default=None)  # bytes: as Telegram announced it, then as stored
    sha256: str | None = Field(default=None, max_length=64)  # of the stored bytes
    storage: str | None = Field(default=None, max_length=8)  # local | s3 (see bot.services.storage)
    storage_key: str | None = Field(
        default=None, max_length=256
    )  # under FILES_DIR, or the object's key in the bucket
    stored_at: datetime | None = _time(nullable=True)
    store_error: str | None = Field(
        default=None, max_length=256
    )  # why it could not be kept (e.g. too big): it is only in Telegram


class FsmRecord(SQLModel, table=True):
    """aiogram FSM state and data per key (see bot.store.fsm)."""

    __tablename__ = "fsm_records"

    key: str = Field(primary_key=True, max_length=255)
    state: str | None = Field(default=None, max_length=255)
    data: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    updated_at: datetime = _time(default=utcnow, onupdate=utcnow)


class BroadcastStatus(StrEnum):
    SENDING = "sending"
    DONE = "done"
    STOPPED = "stopped"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"  # claimed by a sender; back to pending if its lease expires (a crash)
    SENT = "sent"
    BLOCKED = "blocked"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Broadcast(SQLModel, table=True):
    """An announcement (or poll) to many residents: the outbox's header."""

    __tablename__ = "broadcasts"

    id: int = Field(default=None, primary_key=True)  # set by the database at the first flush
    created_at: datetime = _time(default=utcnow)
    author_id: int | None = _bigint(default=None)
    author_name: str | None = Field(default=None, max_length=256)
    content: dict[str, Any] = Field(
        sa_type=sa.JSON
    )  # versions by locale: bot.services.broadcaster.Version, dumped (read with versions_of)
    audience: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    status: str = Field(default=BroadcastStatus.SENDING, max_length=16)
    paid: bool = False
    progress_chat_id: int | None = _bigint(default=None)
    progress_message_id: int | None = None
    finished_at: datetime | None = _time(nullable=True)
    case_id: int | None = Field(
        default=None, foreign_key="cases.id", index=True
    )  # an area notice: sent from this case's card


class Delivery(SQLModel, table=True):
    """One recipient of a broadcast: sent at most once (see bot.services.broadcaster)."""

    __tablename__ = "deliveries"
    __table_args__ = (
        sa.UniqueConstraint("broadcast_id", "chat_id", name="uq_deliveries_broadcast_chat"),
        sa.Index("ix_deliveries_broadcast_status", "broadcast_id", "status"),
    )

    id: int = Field(default=None, primary_key=True)  # set by the database at the first flush
    broadcast_id: int = Field(foreign_key="broadcasts.id")
    chat_id: int = _bigint()
    locale: str = Field(max_length=5)
    status: str = Field(default=DeliveryStatus.PENDING, max_length=16)
    attempts: int = 0
    last_error: str | None = Field(default=None, sa_type=sa.Text)
    sent_message_id: int | None = None
    claimed_by: str | None = Field(default=None, max_length=64)
    claimed_at: datetime | None = _time(nullable=True)


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"  # claimed by a sender (claimed_by); back to pending if that sender dies
    SENT = "sent"
    FAILED = "failed"  # a permanent answer from Telegram (blocked, chat not found, bad request)


class OutboxMessage(SQLModel, table=True):
    """A message that matters, written in the same transaction as the change that causes it and
    sent by bot.services.outbox until Telegram gives a permanent answer.

    Rows with the same `key` (a case's group posts, a resident's notices) go out in id order."""

    __tablename__ = "outbox"
    __table_args__ = (
        sa.Index("ix_outbox_status_due", "status", "due_at"),
        sa.Index("ix_outbox_key_id", "key", "id"),
    )

    id: int = Field(default=None, primary_key=True)  # set by the database at the first flush
    created_at: datetime = _time(default=utcnow)
    kind: str = Field(max_length=16)  # see bot.services.outbox.Kind
    key: str = Field(max_length=48)
    chat_id: int = _bigint()
    case_id: int | None = Field(
        default=None, foreign_key="cases.id", index=True
    )  # retention and /forget find a case's rows
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    status: str = Field(default=OutboxStatus.PENDING, max_length=16)
    # Not before (backoff, a 429's retry_after, gathering); None: at once. Only the claiming
    # process sets a time, so clocks of different processes never disagree about what is due.
    due_at: datetime | None = _time(nullable=True)
    attempts: int = 0
    last_error: str | None = Field(default=None, sa_type=sa.Text)
    claimed_by: str | None = Field(default=None, max_length=64)
    claimed_at: datetime | None = _time(nullable=True)
    sent_chat_id: int | None = _bigint(default=None)
    sent_message_id: int | None = None
    sent_at: datetime | None = _time(nullable=True)


# --- surveys: answers carry no identifier (see bot.services.surveys) ---


def _random_id() -> str:
    # Random, not a sequence: an answer's id says nothing about when it came or whose it is.
    return secrets.token_hex(16)


class ResolvedAnswer(StrEnum):
    YES = "yes"
    PARTLY = "partly"
    NO = "no"


class SatisfactionAnswer(SQLModel, table=True):
    """How a resident rated a closed case: what the case was about, never which case or who."""

    __tablename__ = "satisfaction_answers"

    id: str = Field(default_factory=_random_id, primary_key=True, max_length=32)
    answered_on: date = Field(index=True)  # the day only
    locale: str = Field(max_length=5)
    kind: str = Field(max_length=16)
    category_id: str = Field(max_length=24)
    eldership_id: str | None = Field(default=None, max_length=24)
    score: int  # 1 to 5
    resolved: str = Field(max_length=8)  # ResolvedAnswer
    comment: str | None = Field(default=None, sa_type=sa.Text)


class PollStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class Poll(SQLModel, table=True):
    """A poll for many residents: its questions (pl/lt), sent through a broadcast."""

    __tablename__ = "polls"

    id: int = Field(default=None, primary_key=True)  # set by the database at the first flush
    created_at: datetime = _time(default=utcnow)
    author_id: int | None = _bigint(default=None)
    author_name: str | None = Field(default=None, max_length=256)
    questions: list[dict[str, Any]] = Field(
        sa_type=sa.JSON
    )  # bot.services.polls.Question, dumped (read with polls.questions_of)
    audience: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    broadcast_id: int | None = Field(default=None, foreign_key="broadcasts.id")
    status: str = Field(default=PollStatus.OPEN, max_length=16)
    closed_at: datetime | None = _time(nullable=True)


class PollAnswer(SQLModel, table=True):
    """One resident's answers to a poll: the options chosen per question, the day, the language."""

    __tablename__ = "poll_answers"

    id: str = Field(default_factory=_random_id, primary_key=True, max_length=32)
    poll_id: int = Field(foreign_key="polls.id", index=True)
    answered_on: date
    locale: str = Field(max_length=5)
    choices: list[list[int]] = Field(sa_type=sa.JSON)  # per question, the indexes of the options chosen


class SurveyReceipt(SQLModel, table=True):
    """Proof that someone answered (or declined): HMAC(SECRET_KEY, poll and user, or case).

    Kept apart from the answers, with nothing else in the row, so a receipt cannot be matched
    to an answer; without the key it cannot even be matched to a person or a case.
    """

    __tablename__ = "survey_receipts"

    digest: str = Field(primary_key=True, max_length=64)


# --- visit surveys: at the desk, by QR code (bot.services.visits); nothing about the person ---


class WaitingTime(StrEnum):
    UNDER_5 = "lt5"  # under 5 minutes
    UP_TO_15 = "5-15"
    UP_TO_30 = "15-30"
    OVER_30 = "gt30"


class VisitAnswer(SQLModel, table=True):
    """One visitor's answer about a place: the place, the day, what they answered; never who or when in the day."""

    __tablename__ = "visit_answers"

    id: str = Field(default_factory=_random_id, primary_key=True, max_length=32)
    place_id: str = Field(max_length=40)
    answered_on: date = Field(index=True)  # the day only
    score: int  # 1 to 5
    waited: str | None = Field(default=None, max_length=8)  # WaitingTime, or not said
    settled: str | None = Field(default=None, max_length=8)  # ResolvedAnswer, or not said
    courtesy: int | None = None  # the clerk's courtesy, 1 to 5, or not said
    proposal: str | None = Field(default=None, sa_type=sa.Text)


class VisitReceipt(SQLModel, table=True):
    """HMAC(SECRET_KEY, user, place, day): one answer per person, place and day. The day is kept so
    that a day's receipts can go once it is over (they stop nothing then); nothing leads to an answer."""

    __tablename__ = "visit_receipts"

    digest: str = Field(primary_key=True, max_length=64)
    day: date = Field(index=True)


# --- the municipality's projects (bot.services.projects) ---


class ProjectStatus(StrEnum):
    PLANNED = "planned"
    PROCUREMENT = "procurement"
    UNDER_WAY = "under_way"
    COMPLETED = "completed"
    SUSPENDED = "suspended"
    CANCELLED = "cancelled"


class MilestoneStatus(StrEnum):
    """The Open Contracting milestone status codelist."""

    SCHEDULED = "scheduled"
    MET = "met"
    NOT_MET = "notMet"
    PARTIALLY_MET = "partiallyMet"


class Project(SQLModel, table=True):
    """A project of the municipality: public, every field (see bot.services.projects.public_record)."""

    __tablename__ = "projects"

    id: int = Field(default=None, primary_key=True)  # set by the database at the first flush
    external_id: str = Field(max_length=32, unique=True)  # the municipality's own code (the import's key)
    name_pl: str = Field(max_length=200)
    name_lt: str = Field(max_length=200)
    name_en: str | None = Field(default=None, max_length=200)
    summary_pl: str = Field(default="", sa_type=sa.Text)
    summary_lt: str = Field(default="", sa_type=sa.Text)
    summary_en: str | None = Field(default=None, sa_type=sa.Text)
    elderships: list[str] = Field(
        default_factory=list, sa_column=sa.Column(sa.JSON, nullable=False, server_default="[]")
    )  # empty: the whole district
    team_id: str = Field(max_length=24, index=True)  # the responsible team (the municipality file)
    status: str = Field(default=ProjectStatus.PLANNED, max_length=16)
    progress: int = 0  # per cent
    budget: float | None = None  # euros
    funding: str | None = Field(default=None, max_length=200)
    starts_on: date | None = None
    latitude: float | None = None
    longitude: float | None = None
    address: str | None = Field(default=None, max_length=300)
    link: str | None = Field(default=None, max_length=500)
    created_at: datetime = _time(default=utcnow)
    updated_at: datetime = _time(default=utcnow, onupdate=utcnow)


class Milestone(SQLModel, table=True):
    __tablename__ = "milestones"
    __table_args__ = (sa.UniqueConstraint("project_id", "number", name="uq_milestones_project_number"),)

    id: int = Field(default=None, primary_key=True)  # set by the database at the first flush
    project_id: int = Field(foreign_key="projects.id", index=True)
    number: int  # its place in the project (1, 2, …): with the project's external id, the import's key
    title_pl: str = Field(max_length=200)
    title_lt: str = Field(max_length=200)
    title_en: str | None = Field(default=None, max_length=200)
    baseline_due: date  # as first planned: never moved
    current_due: date  # as planned now: moved only with a reason
    status: str = Field(default=MilestoneStatus.SCHEDULED, max_length=16)
    met_on: date | None = None
    reason: str | None = Field(
        default=None, sa_type=sa.Text
    )  # why the current due date differs from the baseline (the latest move)


class ProjectEventKind(StrEnum):
    CREATED = "created"
    CHANGED = "changed"  # fields of the project: data {"field": [old, new], …}
    STATUS = "status"  # data {"from", "to"}
    MILESTONE = "milestone"  # a milestone's status: data {"milestone", "from", "to", "met_on"}
    MOVED = "moved"  # a milestone's current due date: data {"milestone", "from", "to"}, the reason in text
    UPDATE = "update"  # an update posted: data {"update_id"}


class ProjectEvent(SQLModel, table=True):
    """The audit trail of a project: who, when, what, why. Rows are only ever added."""

    __tablename__ = "project_events"

    id: int = Field(default=None, primary_key=True)  # set by the database at the first flush
    project_id: int = Field(foreign_key="projects.id", index=True)
    milestone_id: int | None = Field(default=None, foreign_key="milestones.id")
    at: datetime = _time(default=utcnow)
    kind: str = Field(max_length=16)
    actor_id: int | None = _bigint(default=None)  # None: the importer run on the server, or the daily job
    actor_name: str | None = Field(default=None, max_length=256)
    text: str | None = Field(default=None, sa_type=sa.Text)  # why
    data: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)


class ProjectUpdate(SQLModel, table=True):
    """News of a project from its team, in Polish and Lithuanian, with photos."""

    __tablename__ = "project_updates"

    id: int = Field(default=None, primary_key=True)  # set by the database at the first flush
    project_id: int = Field(foreign_key="projects.id", index=True)
    at: datetime = _time(default=utcnow)
    text_pl: str = Field(sa_type=sa.Text)
    text_lt: str = Field(sa_type=sa.Text)
    photos: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=sa.Column(sa.JSON, nullable=False, server_default="[]")
    )  # {"file_id", "file_unique_id"}
    author_id: int | None = _bigint(default=None)
    author_name: str | None = Field(default=None, max_length=256)


class FollowKind(StrEnum):
    PROJECT = "project"  # target: the project's id
    ELDERSHIP_PROJECTS = (
        "eldership_projects"  # target: an eldership id (its projects, and the whole district's)
    )
    CASE = "case"  # target: a case's id, followed through "me too" (someone else's report: its status, never its trail)


class Follow(SQLModel, table=True):
    """Something a resident follows: told of its changes, once each, in their language."""

    __tablename__ = "follows"
    __table_args__ = (
        sa.UniqueConstraint("resident_id", "kind", "target", name="uq_follows_resident_kind_target"),
        sa.Index("ix_follows_kind_target", "kind", "target"),
    )

    id: int = Field(default=None, primary_key=True)  # set by the database at the first flush
    resident_id: int = _bigint(foreign_key="residents.id", index=True)
    kind: str = Field(max_length=24)
    target: str = Field(max_length=48)
    created_at: datetime = _time(default=utcnow)


# --- the quality loop (ISO 9001, 9.1.3, 10.2) ---


class NcStatus(StrEnum):
    OPEN = "open"
    ANALYSED = "analysed"  # immediate correction and root cause written
    ACTIONS = "actions"  # corrective actions under way
    VERIFYING = "verifying"  # every action done: the effectiveness check is due on `check_on`
    CLOSED = "closed"  # effective
    REOPENED = "reopened"  # not effective: new actions needed


class NcSource(StrEnum):
    OBJECTIVE = "objective"  # an objective not met at its period's end
    CLERK = "clerk"  # /nc in a case's topic
    QUALITY = "quality"  # /nc in the quality group
    AUDIT = "audit"
    CASES = "cases"  # the municipality file's rules over cases (closed late, rated low): one per team and ISO week


class ObjectiveReview(SQLModel, table=True):
    """An objective's figure for one period, as the period-end review found it. One row per
    objective and period: whichever replica writes it first posts the review."""

    __tablename__ = "objective_reviews"
    __table_args__ = (
        sa.UniqueConstraint("objective_id", "period", name="uq_objective_reviews_objective_period"),
    )

    id: int = Field(default=None, primary_key=True)
    objective_id: str = Field(max_length=24)
    period: str = Field(max_length=16)  # 2026-11, 2026-Q4
    figure: float | None = None  # None: no data in the period (nothing closed, no answers)
    met: bool | None = None
    reviewed_at: datetime = _time(default=utcnow)


class Nonconformity(SQLModel, table=True):
    """A nonconformity and its corrective actions (ISO 9001, 10.2), with its trail in NcEvent."""

    __tablename__ = "nonconformities"

    id: int = Field(default=None, primary_key=True)
    opened_at: datetime = _time(default=utcnow)
    source: str = Field(max_length=16)  # NcSource
    description: str = Field(sa_type=sa.Text)
    team_id: str = Field(max_length=24, index=True)
    owner_id: int | None = _bigint(default=None)  # the team's head by default
    opened_by: int | None = _bigint(default=None)
    case_ids: list[int] = Field(default_factory=list, sa_type=sa.JSON)
    objective_id: str | None = Field(default=None, max_length=24)
    period: str | None = Field(default=None, max_length=16)  # the objective's period that was not met
    figure: float | None = None
    correction: str | None = Field(default=None, sa_type=sa.Text)
    root_cause: str | None = Field(default=None, sa_type=sa.Text)
    status: str = Field(default=NcStatus.OPEN, max_length=16, index=True)
    check_on: date | None = None  # the effectiveness check
    check_posted_on: date | None = None  # the check was put to the quality manager (once)
    closed_at: datetime | None = _time(nullable=True)
    # source CASES: the week's satisfaction answers of 1 or 2 with "not resolved" (anonymous: a count, never a case)
    low_ratings: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class NcCard(SQLModel, table=True):
    """Where a nonconformity's card was posted, so that a change edits it there instead of posting again."""

    __tablename__ = "nc_cards"
    __table_args__ = (
        sa.UniqueConstraint("nonconformity_id", "chat_id", name="uq_nc_cards_nonconformity_chat"),
    )

    id: int = Field(default=None, primary_key=True)
    nonconformity_id: int = Field(foreign_key="nonconformities.id", index=True)
    chat_id: int = _bigint()
    message_id: int = _bigint()


class CorrectiveAction(SQLModel, table=True):
    __tablename__ = "corrective_actions"

    id: int = Field(default=None, primary_key=True)
    nonconformity_id: int = Field(foreign_key="nonconformities.id", index=True)
    what: str = Field(sa_type=sa.Text)
    owner_id: int | None = _bigint(default=None)
    owner_name: str | None = Field(default=None, max_length=256)
    due: date
    created_at: datetime = _time(default=utcnow)
    done_at: datetime | None = _time(nullable=True)
    done_note: str | None = Field(default=None, sa_type=sa.Text)
    overdue_told_at: datetime | None = _time(nullable=True)  # the quality group was told, once


class NcEvent(SQLModel, table=True):
    """The trail of a nonconformity: who did what, when and why (append-only)."""

    __tablename__ = "nc_events"

    id: int = Field(default=None, primary_key=True)
    nonconformity_id: int = Field(foreign_key="nonconformities.id", index=True)
    at: datetime = _time(default=utcnow)
    kind: str = Field(
        max_length=24
    )  # opened, analysed, action_added, action_done, check_due, effective, not_effective, action_overdue
    actor_id: int | None = _bigint(default=None)
    actor_name: str | None = Field(default=None, max_length=256)
    data: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)


class Audit(SQLModel, table=True):
    """An internal audit (ISO 9001, 9.2) of a team's cases in a period: the sample drawn with
    `seed` (random.Random(seed).sample of the cases' ids in order) is drawn again the same."""

    __tablename__ = "audits"

    id: int = Field(default=None, primary_key=True)
    created_at: datetime = _time(default=utcnow)
    team_id: str = Field(max_length=24)
    period: str = Field(max_length=32)  # 2026-11, 2026-Q4, 2026-10-01..2026-12-31
    start: date
    end: date
    auditor_id: int = _bigint()
    auditor_name: str | None = Field(default=None, max_length=256)
    seed: int = _bigint()
    sample_size: int
    population: int  # the team's cases received in the period
    case_ids: list[int] = Field(default_factory=list, sa_type=sa.JSON)
    # the auditor's answers: {case id: {checklist item (1-4): yes or no}}
    checklist: dict[str, dict[str, bool]] = Field(
        default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False, server_default="{}")
    )


class FindingKind(StrEnum):
    NONCONFORMITY = "nc"  # opens a nonconformity linked to the audit (and the case)
    OBSERVATION = "obs"
    IMPROVEMENT = "ofi"  # an opportunity for improvement


class AuditFinding(SQLModel, table=True):
    """A finding of an internal audit; a nonconformity's finding links the nonconformity it opened."""

    __tablename__ = "audit_findings"

    id: int = Field(default=None, primary_key=True)
    audit_id: int = Field(foreign_key="audits.id", index=True)
    created_at: datetime = _time(default=utcnow)
    kind: str = Field(max_length=8)  # FindingKind
    text: str = Field(sa_type=sa.Text)
    case_id: int | None = None  # as in the audit's case_ids (no foreign key, as there)
    nonconformity_id: int | None = Field(default=None, foreign_key="nonconformities.id")
    author_id: int = _bigint()
    author_name: str | None = Field(default=None, max_length=256)


class Proposal(SQLModel, table=True):
    """A resident's anonymous improvement proposal: the text, the day and the language only (the
    anonymity rule: nothing ties it to a person, not even in the database)."""

    __tablename__ = "proposals"

    id: str = Field(default_factory=_random_id, primary_key=True, max_length=32)
    submitted_on: date = Field(index=True)
    locale: str = Field(max_length=5)
    text: str = Field(sa_type=sa.Text)
