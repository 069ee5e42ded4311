"""What an outbox row carries: its kind, and one frozen pydantic model per kind for its payload.

`enqueue(session, MessagePayload(text=…), chat_id, key=…)` (bot.services.outbox) takes the kind
from the model, and stores `dump()`: the JSON as the rows have always had it (fields left at their
default are not written), so rows written by an earlier release read back unchanged and no
migration is needed. A sender reads its row through the model (`MessagePayload.of(row)`); a
payload that does not fit its model is a `BadPayload`, and the row fails for good.

Who sends each kind: `bot.services.senders.outbox_senders`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from bot.store.models import OutboxMessage


class Kind(StrEnum):
    """What a row does; each has one payload model (`PAYLOADS`) and one sender (bot.services.senders)."""

    MESSAGE = "message"  # a text (with buttons) to a resident or a team group, maybe in the case's topic
    TOPIC = "topic"  # open the case's forum topic in its team's group
    CARD = "card"  # post the case's card (rendered when sent, so it is current)
    CARD_EDIT = "card_edit"  # bring the card up to date
    LOCATION = "location"  # the case's map pin in its topic
    FILES = "files"  # attachments (by id) in a chat, albums kept together
    INFO = "info"  # what the resident added, gathered per case
    COPY = "copy"  # a clerk's message(s) copied from the group to the resident
    CLOSE_TOPIC = "close_topic"  # the case left this group
    DELETE_TOPIC = "delete_topic"  # the retention period ended: the topic goes, and every copy in it
    DELETE_MESSAGES = (
        "delete_messages"  # the retention period ended, in a group without topics: the case's messages go
    )
    NC_CARD = "nc_card"  # a nonconformity's card in a group: posted once, then edited in place (bot.services.nonconformities)
    CARD_BLANK = "card_blank"  # /forget: a card the case left behind in a group (passed on) is blanked
    WEBHOOK = "webhook"  # a case event to a receiver (bot.services.webhooks): no Telegram chat, chat_id 0
    # The municipality's copies of files (bot.services.files); chat_id 0: no chat, no sending lane.
    STORE_FILE = "store_file"  # download an attachment from Telegram (getFile) into FILES_DIR or the bucket
    DELETE_FILES = "delete_files"  # the retention period ended: the stored copies go


class BadPayload(ValueError):
    """A row's payload does not fit its kind's model: it can never be sent (the row fails)."""


class Payload(BaseModel):
    """A row's payload. Fields that earlier releases read with `.get` have a default (an old row
    may lack them); the others are required."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    KIND: ClassVar[Kind]
    WRITES_DEFAULTS: ClassVar[bool] = False  # every field is written, as earlier releases did for this kind

    @classmethod
    def of(cls, row: OutboxMessage) -> Self:
        """The payload of `row`, which must be of this model's kind."""
        if row.kind != cls.KIND:
            raise BadPayload(f"a {row.kind} row read as {cls.KIND}")
        try:
            return cls.model_validate(row.payload or {})
        except ValidationError as exc:
            raise BadPayload(
                f"the {row.kind} payload does not fit its model: {exc.error_count()} error(s), first at {_where(exc)}"
            ) from None

    def dump(self) -> dict[str, Any]:
        """The JSON stored in the row, as earlier releases wrote it: fields left at their default
        are left out, unless the kind always had every field (`WRITES_DEFAULTS`)."""
        return self.model_dump(mode="json", exclude_defaults=not self.WRITES_DEFAULTS)


def _where(exc: ValidationError) -> str:
    """Where the first error is, without the value (a payload may hold what a person wrote)."""
    errors = exc.errors(include_input=False, include_url=False)
    return ".".join(str(part) for part in errors[0]["loc"]) + f" ({errors[0]['type']})" if errors else "?"


# --- a chat's messages ---


class MessagePayload(Payload):
    """A text to a resident (`warn_blocked`: the clerks are told if they blocked the bot) or to a
    team group: in the case's topic (`in_topic`), or in a topic the case has left (`topic_id`)."""

    KIND = Kind.MESSAGE
    text: str
    keyboard: dict[str, Any] | None = None  # an InlineKeyboardMarkup, as JSON
    reply_keyboard: dict[str, Any] | None = None  # a ReplyKeyboardMarkup, as JSON (residents only)
    in_topic: bool = False
    topic_id: int | None = None
    warn_blocked: bool = False


class CopyPayload(Payload):
    """A clerk's message(s) in `from_chat_id`, copied to the resident under the municipality's
    name; `event` is the MESSAGE_OUT event that records the delivery."""

    KIND = Kind.COPY
    WRITES_DEFAULTS = True
    from_chat_id: int
    message_ids: list[int]
    event: int
    header: str
    heading: str
    footer: str | None = None  # the final answer: the case is closed
    html: str | None = None  # the clerk's text as HTML, if it was a text
    media: bool = False


# --- a case in its team's group ---


class TopicPayload(Payload):
    KIND = Kind.TOPIC


class CardPayload(Payload):
    KIND = Kind.CARD


class CardEditPayload(Payload):
    """`retired`: the card's message in the group the case was passed on from (its buttons go)."""

    KIND = Kind.CARD_EDIT
    retired: int | None = None


class LocationPayload(Payload):
    KIND = Kind.LOCATION


class FilesPayload(Payload):
    KIND = Kind.FILES
    attachments: list[int]
    in_topic: bool = False


class InfoPayload(Payload):
    """The resident's additions (their events), gathered into one post."""

    KIND = Kind.INFO
    events: list[int]


class CloseTopicPayload(Payload):
    KIND = Kind.CLOSE_TOPIC
    topic_id: int


class DeleteTopicPayload(Payload):
    KIND = Kind.DELETE_TOPIC
    topic_id: int


class DeleteMessagesPayload(Payload):
    """The case's messages in a group without topics; the `cards` among them are blanked if Telegram will not delete them."""

    KIND = Kind.DELETE_MESSAGES
    WRITES_DEFAULTS = True
    messages: list[int]
    cards: list[int] = []
    number: str


class CardBlankPayload(Payload):
    KIND = Kind.CARD_BLANK
    message_id: int
    number: str
    why: Literal["forget", "retention"] = "forget"


class NcCardPayload(Payload):
    KIND = Kind.NC_CARD
    nc_id: int


# --- outside Telegram ---


class WebhookPayload(Payload):
    """A case event for `receiver`: the `body` as it is posted. Once delivered, the row keeps only
    the event's name and id (`delivered()`): the body, with its personal data, goes."""

    KIND = Kind.WEBHOOK
    receiver: str
    body: dict[str, Any] | None = None
    event: str | None = None  # delivered rows only
    id: int | None = None  # delivered rows only

    def delivered(self) -> WebhookPayload:
        assert self.body is not None
        return WebhookPayload(receiver=self.receiver, event=self.body["event"], id=self.body["id"])

    def without_person(self) -> WebhookPayload:
        """A pending event after its resident erased their profile (/forget): the case stays on
        record, without their name and phone (`resident` keeps only how they are answered, and
        says the profile was erased). The same payload if there is no one in it."""
        body = self.body
        if not body or not (body.get("case") or {}).get("resident"):
            return self
        person = {
            "name": None,
            "phone": None,
            "email": None,
            "postal_address": None,
            "answer_by": body["case"]["resident"].get("answer_by"),
            "erased": True,
        }
        return self.model_copy(update={"body": {**body, "case": {**body["case"], "resident": person}}})


class StoreFilePayload(Payload):
    """A file to keep: a case's `attachment`, or photo `index` of a project's update (`project_update`)."""

    KIND = Kind.STORE_FILE
    attachment: int | None = None
    project_update: int | None = None
    index: int | None = None

    @model_validator(mode="after")
    def _one_file(self) -> Self:
        if (self.attachment is None) == (self.project_update is None) or (self.project_update is None) != (
            self.index is None
        ):
            raise ValueError("either attachment, or project_update with index")
        return self


class DeleteFilesPayload(Payload):
    """Stored copies to delete: [store kind, key] pairs."""

    KIND = Kind.DELETE_FILES
    files: list[tuple[str, str]] = []


PAYLOADS: dict[Kind, type[Payload]] = {
    model.KIND: model
    for model in (
        MessagePayload,
        CopyPayload,
        TopicPayload,
        CardPayload,
        CardEditPayload,
        LocationPayload,
        FilesPayload,
        InfoPayload,
        CloseTopicPayload,
        DeleteTopicPayload,
        DeleteMessagesPayload,
        CardBlankPayload,
        NcCardPayload,
        WebhookPayload,
        StoreFilePayload,
        DeleteFilesPayload,
    )
}
"""Each kind's payload model."""
