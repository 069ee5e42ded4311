"""What makes a case, whatever the channel: the draft of a new case and its rules, its number, and
how a person without Telegram is answered. Every change to a case goes through
bot.services.case_commands; every look-up through bot.services.case_queries."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

from bot.store.models import Attachment, Case, Channel


@dataclass(frozen=True)
class AttachmentDraft:
    kind: str  # photo | document
    file_id: str
    file_unique_id: str
    caption: str | None = None
    media_group_id: str | None = None
    file_name: str | None = None  # documents: as the sender named it
    mime_type: str | None = None
    file_size: int | None = None  # as Telegram announced it


class AnswerBy(StrEnum):
    """How a person without Telegram is answered (a staff-registered or Open311 case)."""

    PHONE = "phone"
    EMAIL = "email"
    POST = "post"
    IN_PERSON = "in_person"
    OPEN311 = "open311"  # only through the Open311 client that sent the case (its status notes)


class ReceivedBy(StrEnum):
    """How a case registered by a clerk came in (stored in its CREATED event)."""

    PHONE = "phone"
    EMAIL = "email"
    POST = "post"
    DESK = "desk"  # at the front desk, in person


@dataclass(frozen=True)
class Contact:
    """Whom to answer, and how, when the case has no Telegram resident (stored in `cases.contact`)."""

    name: str
    answer_by: AnswerBy
    phone: str | None = None
    email: str | None = None
    address: str | None = None  # postal

    def as_json(self) -> dict[str, str]:
        return {key: value for key, value in asdict(self).items() if value is not None}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Contact | None:
        if not data:
            return None
        return cls(
            name=data.get("name", ""),
            answer_by=AnswerBy(data.get("answer_by", AnswerBy.PHONE)),
            phone=data.get("phone"),
            email=data.get("email"),
            address=data.get("address"),
        )


def visible_text(text: str) -> str:
    """`text` as a reader sees it, for minimum lengths: without invisible format characters (zero-width
    space, non-joiner and joiner U+200B-U+200D, word joiner U+2060, BOM U+FEFF, …) and outer whitespace."""
    return "".join(c for c in text if unicodedata.category(c) != "Cf").strip()


class Problem(StrEnum):
    """Why a value cannot go into a case; each channel words it for its own reader."""

    TOO_SHORT = "too_short"
    TOO_LONG = "too_long"
    NOT_A_PHONE = "not_a_phone"
    NOT_AN_EMAIL = "not_an_email"


@dataclass(frozen=True)
class Length:
    min: int
    max: int

    def problem(self, text: str) -> Problem | None:
        if len(visible_text(text)) < self.min:
            return Problem.TOO_SHORT
        return Problem.TOO_LONG if len(text) > self.max else None


_PHONE = re.compile(r"\+?[0-9][0-9 ()\-]{4,30}[0-9]")
_EMAIL = re.compile(r"[^@\s<>]{1,64}@[^@\s<>]{1,190}\.[^@\s<>]{2,}")


@dataclass(frozen=True)
class CaseDraft:
    # What makes a valid case, whatever the channel: the residents' chat (flows.intake), a clerk's
    # /register (flows.register) and Open311 (bot.open311) all check these, and only these.
    DESCRIPTION: ClassVar[Length] = Length(10, 3000)  # 3000: the card keeps room within Telegram's 4096
    ADDRESS: ClassVar[Length] = Length(3, 300)
    NAME: ClassVar[Length] = Length(2, 100)
    EMAIL_MAX: ClassVar[int] = 254
    PHONE_MAX: ClassVar[int] = 32
    MAX_FILES: ClassVar[int] = 10

    @classmethod
    def phone_problem(cls, value: str) -> Problem | None:
        return None if len(value) <= cls.PHONE_MAX and _PHONE.fullmatch(value) else Problem.NOT_A_PHONE

    @classmethod
    def email_problem(cls, value: str) -> Problem | None:
        return None if len(value) <= cls.EMAIL_MAX and _EMAIL.fullmatch(value) else Problem.NOT_AN_EMAIL

    resident_id: int | None  # None: no Telegram resident (see `contact`)
    locale: str
    kind: str
    category_id: str
    description: str
    eldership_id: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    address: str | None = None
    attachments: tuple[AttachmentDraft, ...] = field(default_factory=tuple)
    channel: Channel = Channel.TELEGRAM
    contact: Contact | None = None
    open311_client: str | None = None  # the Open311 client that sent it (its API key's name)
    open311_token: str | None = None  # for GET tokens/{token}


@dataclass(frozen=True)
class OpenedCase:
    case: Case
    created: bool  # False when the same update had already opened it


def format_case_number(prefix: str, year: int, seq: int) -> str:
    return f"{prefix}-{year}-{seq:06d}"


CASE_NUMBER = re.compile(
    r"^\s*([A-Za-z]{2,6})[-\s]?([0-9]{4})[-\s]?([0-9]{1,6})\s*$"
)  # ASCII digits: \d takes "２０２６"


def parse_case_number(text: str) -> str | None:
    """A case number as people type it ("VRS-2026-000042", "vrs 2026 42"), written as the bot writes it; None if it is none."""
    match = CASE_NUMBER.match(text)
    if match is None:
        return None
    prefix, year, seq = match.groups()
    return format_case_number(prefix.upper(), int(year), int(seq))


def attachment_rows(
    case_id: int, event_id: int | None, drafts: tuple[AttachmentDraft, ...]
) -> list[Attachment]:
    return [
        Attachment(
            case_id=case_id,
            event_id=event_id,
            kind=item.kind,
            file_id=item.file_id,
            file_unique_id=item.file_unique_id,
            caption=item.caption,
            media_group_id=item.media_group_id,
            file_name=item.file_name[:256] if item.file_name else None,
            size=item.file_size,
            content_type=(item.mime_type or "")[:128] or ("image/jpeg" if item.kind == "photo" else None),
        )
        for item in drafts
    ]
