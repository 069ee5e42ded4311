"""Who sends each kind of outbox row: one table, beside the kinds and their payloads
(bot.services.outbox_payloads). `tests/unit/test_outbox_payloads.py` checks that every kind has
exactly one sender here.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.services.files import FileKeeper
from bot.services.groups import GroupSender
from bot.services.nonconformities import NcCardSender
from bot.services.notifications import ResidentSender
from bot.services.outbox import Handler, Sent
from bot.services.outbox_payloads import Kind
from bot.services.webhooks import WebhookSender
from bot.store.models import OutboxMessage


@dataclass(frozen=True)
class Senders:
    """The objects that send: to residents' chats, to teams' groups, to the document management
    system, to the municipality's file storage, and the nonconformities' cards."""

    residents: ResidentSender
    groups: GroupSender
    webhooks: WebhookSender
    files: FileKeeper
    nc_cards: NcCardSender

    async def message(self, row: OutboxMessage) -> Sent:
        """A text to a resident (a positive chat id) or to a group."""
        return await (self.residents.message(row) if row.chat_id > 0 else self.groups.message(row))


def outbox_senders(senders: Senders) -> dict[Kind, Handler]:
    """Kind → the sender's method; `Outbox.handle_all` registers them."""
    return {
        Kind.MESSAGE: senders.message,
        Kind.COPY: senders.residents.copy,
        Kind.TOPIC: senders.groups.topic,
        Kind.CARD: senders.groups.card,
        Kind.CARD_EDIT: senders.groups.card_edit,
        Kind.LOCATION: senders.groups.location,
        Kind.FILES: senders.groups.files,
        Kind.INFO: senders.groups.info,
        Kind.CLOSE_TOPIC: senders.groups.close_topic,
        Kind.DELETE_TOPIC: senders.groups.delete_topic,
        Kind.DELETE_MESSAGES: senders.groups.delete_messages,
        Kind.CARD_BLANK: senders.groups.card_blank,
        Kind.NC_CARD: senders.nc_cards.send,
        Kind.WEBHOOK: senders.webhooks.send,
        Kind.STORE_FILE: senders.files.keep,
        Kind.DELETE_FILES: senders.files.delete,
    }
