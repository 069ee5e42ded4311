"""Each outbox kind has one payload model and one sender; rows as the previous release wrote them
are read by the models, and written back unchanged (no migration)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from unittest.mock import MagicMock

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from bot.app import build_services
from bot.config import load_config
from bot.services.outbox import Outbox, Sent, enqueue
from bot.services.outbox_payloads import (
    PAYLOADS,
    BadPayload,
    CardBlankPayload,
    CopyPayload,
    DeleteFilesPayload,
    InfoPayload,
    Kind,
    MessagePayload,
    StoreFilePayload,
    WebhookPayload,
)
from bot.services.senders import Senders, outbox_senders
from bot.store.db import Database
from bot.store.migrate import upgrade
from bot.store.models import OutboxMessage, OutboxStatus
from tests.conftest import ADMIN_CHAT_ID, COMMS_CHAT_ID, SECRET_KEY, TOKEN
from tests.unit.test_config import env  # noqa: F401  (the fixture)

KEYBOARD = {"inline_keyboard": [[{"text": "✅ Gerai", "callback_data": "nc:verify:3"}]]}
REPLY_KEYBOARD = {"keyboard": [[{"text": "📝 Nowa sprawa"}]], "resize_keyboard": True}
BODY = {
    "version": 1,
    "event": "case.opened",
    "id": 7,
    "at": "2026-11-23T07:00:00+00:00",
    "detail": {},
    "case": {
        "number": "VRS-2026-000001",
        "resident": {"name": "Anna Nowak", "phone": "+37060000001", "answer_by": "telegram"},
    },
}

COPY_TEXT = {
    "from_chat_id": -1001,
    "message_ids": [5, 6],
    "event": 9,
    "header": "<b>VRS-2026-000001</b>",
    "heading": "Odpowiedź:",
    "footer": None,
    "html": "Naprawione",
    "media": False,
}
COPY_MEDIA = {
    "from_chat_id": -1001,
    "message_ids": [5],
    "event": 9,
    "header": "h",
    "heading": "Odpowiedź:",
    "footer": "Sprawa zamknięta",
    "html": None,
    "media": True,
}

# The payloads exactly as the code before the typed models wrote them (bot/services/*.py, `enqueue(`).
LEGACY: list[tuple[Kind, dict[str, Any]]] = [
    (Kind.MESSAGE, {"text": "Sprawa VRS-2026-000001", "warn_blocked": True}),  # case_notices.notify
    (Kind.MESSAGE, {"text": "Ocena?", "warn_blocked": True, "keyboard": KEYBOARD}),
    (Kind.MESSAGE, {"text": "Dziękujemy", "warn_blocked": True, "reply_keyboard": REPLY_KEYBOARD}),
    (Kind.MESSAGE, {"text": "Priminimas", "in_topic": True}),  # post_in, the history
    (Kind.MESSAGE, {"text": "Perduota", "topic_id": 77}),  # leave_group
    (Kind.MESSAGE, {"text": "Peržiūra"}),  # escalate, post_to_group, proposals, projects, nonconformities
    (Kind.MESSAGE, {"text": "Patikra", "keyboard": KEYBOARD}),  # audits, nonconformities
    (Kind.TOPIC, {}),
    (Kind.CARD, {}),
    (Kind.CARD_EDIT, {}),
    (Kind.CARD_EDIT, {"retired": 501}),
    (Kind.LOCATION, {}),
    (Kind.FILES, {"attachments": [3, 4], "in_topic": True}),
    (Kind.INFO, {"events": [11, 12]}),
    (Kind.COPY, COPY_TEXT),  # case_commands._relay
    (Kind.COPY, COPY_MEDIA),
    (Kind.CLOSE_TOPIC, {"topic_id": 77}),
    (Kind.DELETE_TOPIC, {"topic_id": 77}),
    (Kind.DELETE_MESSAGES, {"messages": [1, 2, 3], "cards": [2], "number": "VRS-2026-000001"}),
    (Kind.DELETE_MESSAGES, {"messages": [1], "cards": [], "number": "VRS-2026-000001"}),
    (Kind.NC_CARD, {"nc_id": 4}),
    (Kind.CARD_BLANK, {"message_id": 501, "number": "VRS-2026-000001"}),
    (Kind.WEBHOOK, {"receiver": "dms", "body": BODY}),
    (Kind.WEBHOOK, {"receiver": "dms", "event": "case.opened", "id": 7}),  # delivered: the body is gone
    (Kind.STORE_FILE, {"attachment": 3}),
    (Kind.STORE_FILE, {"project_update": 2, "index": 0}),
    (Kind.DELETE_FILES, {"files": [["local", "cases/2026/VRS-2026-000001/3.jpg"], ["s3", "x/4.pdf"]]}),
]


def _row(kind: Kind | str, payload: dict[str, Any]) -> OutboxMessage:
    return OutboxMessage(id=1, kind=kind, key="k", chat_id=-100, payload=payload)


def test_every_kind_has_one_payload_model() -> None:
    assert set(PAYLOADS) == set(Kind)
    assert all(kind == model.KIND for kind, model in PAYLOADS.items())
    assert len(set(PAYLOADS.values())) == len(Kind)


def test_every_kind_has_a_legacy_example() -> None:
    assert {kind for kind, _ in LEGACY} == set(Kind)


@pytest.mark.parametrize(
    ("kind", "payload"), LEGACY, ids=[f"{kind}-{i}" for i, (kind, _) in enumerate(LEGACY)]
)
def test_a_row_of_the_previous_release_is_read_and_written_back_the_same(
    kind: Kind, payload: dict[str, Any]
) -> None:
    parsed = PAYLOADS[kind].of(_row(kind, payload))
    assert parsed.dump() == payload  # the JSON on disk does not change: no migration


def test_fields_read_through_the_model() -> None:
    message = MessagePayload.of(_row(Kind.MESSAGE, {"text": "Dzień dobry"}))
    assert (message.text, message.keyboard, message.in_topic, message.topic_id, message.warn_blocked) == (
        "Dzień dobry",
        None,
        False,
        None,
        False,
    )
    assert CardBlankPayload.of(_row(Kind.CARD_BLANK, {"message_id": 5, "number": "N"})).why == "forget"
    assert DeleteFilesPayload.of(_row(Kind.DELETE_FILES, {})).files == []
    copy = CopyPayload.of(
        _row(Kind.COPY, {"from_chat_id": -1, "message_ids": [1], "event": 2, "header": "h", "heading": "x"})
    )
    assert (copy.footer, copy.html, copy.media) == (None, None, False)  # an older COPY without them


def test_a_wrong_field_is_refused_when_written_and_when_read() -> None:
    with pytest.raises(ValidationError):
        MessagePayload(text="x", buttons=[])  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        InfoPayload(events="12")
    with pytest.raises(ValidationError):
        StoreFilePayload(attachment=1, project_update=2, index=0)
    with pytest.raises(ValidationError):
        StoreFilePayload(project_update=2)
    with pytest.raises(BadPayload, match="nc_id"):
        PAYLOADS[Kind.NC_CARD].of(_row(Kind.NC_CARD, {"nc": 4}))
    with pytest.raises(BadPayload, match="read as"):
        MessagePayload.of(_row(Kind.COPY, {"text": "x"}))


def test_payloads_are_frozen() -> None:
    message = MessagePayload(text="x")
    with pytest.raises(ValidationError):
        message.text = "y"  # type: ignore[misc]


def test_without_person_scrubs_only_a_body_with_a_person() -> None:
    pending = WebhookPayload(receiver="dms", body=BODY)
    scrubbed = pending.without_person()
    assert (
        scrubbed.body is not None
        and scrubbed.body["case"]["resident"]["name"] is None
        and scrubbed.body["case"]["resident"]["erased"]
    )
    delivered = pending.delivered()
    assert delivered.without_person() is delivered and delivered.dump() == {
        "receiver": "dms",
        "event": "case.opened",
        "id": 7,
    }


async def test_enqueue_takes_the_kind_from_the_payload(database: Database) -> None:
    await upgrade(database)
    async with database.write() as session:
        enqueue(session, CardBlankPayload(message_id=5, number="VRS-2026-000001"), -100, key="g:-100:1")
    async with database.read() as session:
        row = (await session.execute(select(OutboxMessage))).scalar_one()
    assert (row.kind, row.payload) == (Kind.CARD_BLANK, {"message_id": 5, "number": "VRS-2026-000001"})


async def test_a_row_its_model_cannot_read_fails_for_good(database: Database) -> None:
    await upgrade(database)
    outbox = Outbox(database, "test")

    async def message(row: OutboxMessage) -> Sent:
        MessagePayload.of(row)
        return Sent()

    outbox.handle(Kind.MESSAGE, message)
    async with database.write() as session:
        session.add(OutboxMessage(kind=Kind.MESSAGE, key="r:5", chat_id=5, payload={"txt": "x"}))
    await outbox.send_due_now()
    async with database.read() as session:
        row = (await session.execute(select(OutboxMessage))).scalar_one()
    assert (
        row.status == OutboxStatus.FAILED
        and row.last_error is not None
        and "text (missing)" in row.last_error
    )


def test_the_sender_table_has_one_sender_for_every_kind() -> None:
    senders = Senders(
        residents=MagicMock(),
        groups=MagicMock(),
        webhooks=MagicMock(),
        files=MagicMock(),
        nc_cards=MagicMock(),
    )
    table = outbox_senders(senders)
    assert set(table) == set(Kind)
    assert (
        table[Kind.MESSAGE] == senders.message
        and table[Kind.WEBHOOK] == senders.webhooks.send
        and table[Kind.STORE_FILE] == senders.files.keep
    )


def test_a_kind_cannot_have_two_senders() -> None:
    outbox = Outbox(MagicMock(), "test")

    async def send(row: OutboxMessage) -> Sent:
        return Sent()

    outbox.handle_all({Kind.MESSAGE: send})
    with pytest.raises(ValueError, match="already has a sender for message"):
        outbox.handle_all({Kind.CARD: send, Kind.MESSAGE: send})


async def test_the_assembled_outbox_sends_every_kind(database: Database, env: dict[str, str]) -> None:
    config = load_config(
        bot_token=TOKEN,
        telegram_api_url="http://127.0.0.1:9",
        admin_chat_id=ADMIN_CHAT_ID,
        comms_chat_id=COMMS_CHAT_ID,
        secret_key=SECRET_KEY,
        database_url=database.url.render_as_string(hide_password=False),
        redis_url=None,
    )
    services = build_services(config, database)
    try:
        assert set(services.outbox.handlers) == set(Kind)
    finally:
        await services.webhooks.close()
        await services.bot.session.close()


def test_senders_read_payloads_only_through_the_models() -> None:
    root = Path(__file__).resolve().parents[2] / "bot"
    raw = re.compile(r"\.payload(\[|\.get\()")
    found = [
        f"{path.relative_to(root)}:{n}"
        for path in root.rglob("*.py")
        if "migrations" not in path.parts
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if raw.search(line)
    ]
    assert found == []
