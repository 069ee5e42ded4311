"""Residents' improvement proposals (the programme: residents propose how to improve the services).
"💡 Suggest an improvement" in the residents' menu: anonymous unless the resident asks to be
answered. Anonymous: only the text, the day and the language are stored (the anonymity rule) and
the quality group gets the text; to be answered: the proposal becomes a case of its own (a request
in the municipality's "other" category, the first category if it has none), numbered, routed and
answered like any other, and the quality group is told its number. Proposals count in the review."""

from __future__ import annotations

from datetime import date
from html import escape

from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from sqlalchemy import func, select
from sqlmodel import col

from bot.municipality import Municipality
from bot.services import texts
from bot.services.case_commands import CaseCommands
from bot.services.case_notices import CaseNotices
from bot.services.cases import CaseDraft, OpenedCase
from bot.services.nonconformities import Nonconformities
from bot.services.outbox import enqueue, group_key
from bot.services.outbox_payloads import MessagePayload
from bot.store.db import Database
from bot.store.models import Proposal, utcnow

OTHER_CATEGORY = "other"


class Proposals:
    TEXT = CaseDraft.DESCRIPTION  # the same length rule as a case's description

    def __init__(
        self,
        database: Database,
        commands: CaseCommands,
        notices: CaseNotices,
        nonconformities: Nonconformities,
        municipality: Municipality,
        i18n: I18n,
        locale: str,
    ) -> None:
        self.database = database
        self.commands = commands
        self.notices = notices
        self.nonconformities = nonconformities
        self.municipality = municipality
        self.i18n = i18n
        self.locale = locale

    @property
    def category(self) -> str:
        ids = [c.id for c in self.municipality.categories]
        return OTHER_CATEGORY if OTHER_CATEGORY in ids else ids[0]

    async def anonymous(self, text: str, locale: str, today: date) -> None:
        chat = self.nonconformities.quality_chat()
        with self.i18n.context(), self.i18n.use_locale(self.locale):
            post = _("💡 <b>A resident's proposal</b> (anonymous, {language}):").format(
                language=texts.LANGUAGE_NAMES.get(locale, locale)
            )
        async with self.database.write() as session:
            session.add(Proposal(submitted_on=today, locale=locale, text=text))
            enqueue(session, MessagePayload(text=f"{post}\n\n{escape(text)}"), chat, key=group_key(chat))

    async def answered(self, resident_id: int, locale: str, text: str, update_id: int) -> OpenedCase:
        draft = CaseDraft(
            resident_id=resident_id,
            locale=locale,
            kind="request",
            category_id=self.category,
            description=text,
        )
        opened = await self.commands.submit(draft, utcnow(), update_id)
        if not opened.created:  # the same update delivered again: the quality group was told
            return opened
        with self.i18n.context(), self.i18n.use_locale(self.locale):
            post = _("💡 A resident's proposal, to be answered, is case {number}.").format(
                number=opened.case.number
            )
        await self.notices.post_to_group(self.nonconformities.quality_chat(), post)
        return opened

    async def count(self, first: date, last: date) -> int:
        async with self.database.read() as session:
            query = (
                select(func.count())
                .select_from(Proposal)
                .where(col(Proposal.submitted_on) >= first, col(Proposal.submitted_on) <= last)
            )
            return int((await session.execute(query)).scalar_one())
