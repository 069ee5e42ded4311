"""The quality loop in the staff groups (texts in ADMIN_LOCALE): `/who` shows who is responsible
for what (the responsibility matrix); `/nc` opens a nonconformity (in a
case's topic, the case linked; in the quality group, naming the team), and the buttons of its
card lead step by step: analyse (the immediate correction, then the root cause), add a corrective
action (what, the due date, who), mark an action done (a note; after the last one, when to check
the effectiveness), and the quality manager's verdict (effective, not effective). A prompt waits
for the person who pressed, in that topic; ✖️ or /cancel leaves it. Rules live in
bot.services.nonconformities; this module parses, asks and renders.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from html import escape
from typing import Any

from aiogram import F, Router
from aiogram.filters import Command, CommandObject, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import BufferedInputFile, CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _

from bot.config import Config
from bot.keyboards import InlineKeyboardBuilder
from bot.services import texts
from bot.services.audits import AuditButton, Audits
from bot.services.case_commands import Clerk
from bot.services.case_queries import CaseQueries
from bot.services.deadlines import WorkingCalendar
from bot.services.html_text import truncate_html
from bot.services.nonconformities import CHECK_DAYS, NcButton, NcError, Nonconformities, check_text, parse_due
from bot.services.numbers import whole_number
from bot.services.quality import PeriodError, parse_period
from bot.services.responsibility import Responsibility
from bot.services.review import ManagementReview
from bot.services.teams import TeamDirectory
from bot.store.models import NcSource, NcStatus, Nonconformity, utcnow
from flows.clerk import InTeamGroup, acting_clerk, case_of
from flows.common import UnderAccessibleMessage, drop_buttons, shown

log = logging.getLogger(__name__)

router = Router(name="quality")
router.message.filter(InTeamGroup())
router.callback_query.filter(UnderAccessibleMessage())


class NcForm(StatesGroup):
    correction = State()
    root_cause = State()
    action_what = State()
    action_due = State()
    done_note = State()


def _cancel_keyboard(nc_id: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("✖️ Cancel"), callback_data=NcButton(nc_id=nc_id, do="cancel"))
    return builder.as_markup()


def _person(event: Message | CallbackQuery) -> Clerk:
    assert event.from_user is not None
    return Clerk(id=event.from_user.id, name=event.from_user.full_name)


# --- opening ------------------------------------------------------------------------------


@router.message(Command("nc"))
async def open_nonconformity(
    message: Message,
    command: CommandObject,
    queries: CaseQueries,
    teams: TeamDirectory,
    nonconformities: Nonconformities,
) -> None:
    case = await case_of(message, queries)
    args = (command.args or "").strip()
    try:
        if case is not None:
            clerk = await acting_clerk(message, case, teams)
            if clerk is None:
                return
            nc = await nonconformities.open(
                NcSource.CLERK, args, case.team_id or teams.default.id, clerk, [case.id]
            )
        elif nonconformities.is_quality_chat(message.chat.id):
            if not await nonconformities.is_quality_staff(_person(message).id):
                log.warning(
                    "nonconformity refused",
                    extra={"user_id": _person(message).id, "chat_id": message.chat.id},
                )
                await message.reply(_("Only the quality staff can do this."))
                return
            team_id, _space, description = args.partition(" ")
            if not team_id:
                await message.reply(
                    _("Usage: /nc TEAM description, e.g. /nc roads Answers sent after the deadline.")
                )
                return
            nc = await nonconformities.open(NcSource.QUALITY, description, team_id, _person(message))
        else:
            await message.reply(
                _(
                    "Write /nc with a description in a case's topic, or /nc TEAM description in the quality group."
                )
            )
            return
    except NcError as exc:
        await message.reply(escape(str(exc)))
        return
    await message.reply(
        _("Nonconformity #{id} opened; its card is in the quality group and the team's group.").format(
            id=nc.id
        )
    )


# --- the card's buttons -------------------------------------------------------------------


@router.callback_query(NcButton.filter())
async def card_button(
    query: CallbackQuery,
    callback_data: NcButton,
    state: FSMContext,
    nonconformities: Nonconformities,
    teams: TeamDirectory,
) -> None:
    do, person = callback_data.do, _person(query)
    if do == "cancel":
        await state.clear()
        await query.answer(_("Cancelled."))
        await drop_buttons(query)
        return
    nc = await nonconformities.get(callback_data.nc_id)
    if nc is None:
        await query.answer(_("This cannot be done with the nonconformity now."), show_alert=True)
        return
    if do in ("effective", "not_effective"):
        await _verdict(query, nc, do == "effective", nonconformities)
        return
    if not await nonconformities.may_work_on(person.id, nc):
        log.warning("nonconformity button refused", extra={"user_id": person.id, "nc_id": nc.id})
        await query.answer(
            _("Only the nonconformity's team or the quality staff can do this."), show_alert=True
        )
        return
    if do == "analyse" and nc.status in (NcStatus.OPEN, NcStatus.REOPENED):
        await _ask(
            query,
            state,
            NcForm.correction,
            _("#{id}: write the immediate correction: what was done at once to contain the problem.").format(
                id=nc.id
            ),
            nc,
        )
    elif do == "add" and nc.status in (NcStatus.ANALYSED, NcStatus.ACTIONS, NcStatus.REOPENED):
        await _ask(
            query,
            state,
            NcForm.action_what,
            _("#{id}: write the corrective action: what will be done to remove the cause.").format(id=nc.id),
            nc,
        )
    elif do == "done" and nc.status == NcStatus.ACTIONS:
        await _pick_action(query, nc, nonconformities)
    elif do == "pick" and nc.status == NcStatus.ACTIONS:
        await _ask(
            query,
            state,
            NcForm.done_note,
            _("#{id}: write what was done (a short note for the record).").format(id=nc.id),
            nc,
            action_id=callback_data.value,
        )
    elif do == "owner" and await state.get_state() == NcForm.action_due.state:
        data = await state.get_data()
        if data.get("nc_id") != nc.id or "due" not in data:
            await query.answer(_("This cannot be done with the nonconformity now."), show_alert=True)
            return
        team = teams.get(nc.team_id)
        if callback_data.value not in (
            *team.heads,
            *team.members,
        ):  # a forged press: only the team's listed people
            await query.answer(_("This cannot be done with the nonconformity now."), show_alert=True)
            return
        name = await teams.member_name(team, callback_data.value)
        await _add_action(query, state, nonconformities, nc.id, data, Clerk(callback_data.value, name))
    elif do == "check" and await state.get_state() == NcForm.done_note.state:
        data = await state.get_data()
        if data.get("nc_id") != nc.id or "note" not in data:
            await query.answer(_("This cannot be done with the nonconformity now."), show_alert=True)
            return
        await state.clear()
        await drop_buttons(query)
        await _done(query, nonconformities, nc.id, data, callback_data.value)
    else:
        await query.answer(_("This cannot be done with the nonconformity now."), show_alert=True)


async def _verdict(
    query: CallbackQuery, nc: Nonconformity, effective: bool, nonconformities: Nonconformities
) -> None:
    person = _person(query)
    if not await nonconformities.is_manager(person.id):
        log.warning("nonconformity verdict refused", extra={"user_id": person.id, "nc_id": nc.id})
        await query.answer(_("Only the quality manager can decide this."), show_alert=True)
        return
    try:
        await nonconformities.verify(nc.id, person, effective)
    except NcError as exc:
        await query.answer(str(exc), show_alert=True)
        return
    await query.answer(
        _("Effective: closed.") if effective else _("Not effective: reopened for new actions.")
    )
    await drop_buttons(query)


async def _ask(
    query: CallbackQuery, state: FSMContext, step: State, text: str, nc: Nonconformity, **data: Any
) -> None:
    await query.answer()
    message = shown(query)
    thread = message.message_thread_id if message.is_topic_message else None
    await query.bot.send_message(
        message.chat.id, text, message_thread_id=thread, reply_markup=_cancel_keyboard(nc.id)
    )
    await state.set_state(step)
    await state.set_data({"nc_id": nc.id, **data})


async def _pick_action(query: CallbackQuery, nc: Nonconformity, nonconformities: Nonconformities) -> None:
    builder = InlineKeyboardBuilder()
    for number, action in enumerate(await nonconformities.actions(nc.id), start=1):
        if action.done_at is None:
            builder.button(
                text=texts.shorten(f"{number}. {action.what}", 60),
                callback_data=NcButton(nc_id=nc.id, do="pick", value=action.id),
            )
    builder.button(text=_("✖️ Cancel"), callback_data=NcButton(nc_id=nc.id, do="cancel"))
    builder.adjust(1)
    await query.answer()
    message = shown(query)
    thread = message.message_thread_id if message.is_topic_message else None
    await query.bot.send_message(
        message.chat.id,
        _("#{id}: which action is done?").format(id=nc.id),
        message_thread_id=thread,
        reply_markup=builder.as_markup(),
    )


async def _add_action(
    event: Message | CallbackQuery,
    state: FSMContext,
    nonconformities: Nonconformities,
    nc_id: int,
    data: dict[str, Any],
    owner: Clerk,
) -> None:
    from datetime import date

    await state.clear()
    try:
        await nonconformities.add_action(
            nc_id, _person(event), data["what"], date.fromisoformat(data["due"]), owner
        )
    except NcError as exc:
        await _say(event, escape(str(exc)))
        return
    await _say(
        event,
        _("Action added to nonconformity #{id}: {owner} is responsible.").format(
            id=nc_id, owner=escape(owner.name)
        ),
    )


async def _done(
    event: Message | CallbackQuery,
    nonconformities: Nonconformities,
    nc_id: int,
    data: dict[str, Any],
    check_days: int,
) -> None:
    try:
        nc = await nonconformities.action_done(
            nc_id, data["action_id"], _person(event), data["note"], check_days
        )
    except NcError as exc:
        await _say(event, escape(str(exc)))
        return
    if nc.status == NcStatus.VERIFYING and nc.check_on is not None:
        await _say(
            event,
            _("All actions of nonconformity #{id} are done; the effectiveness check is on {date}.").format(
                id=nc_id, date=texts.day(nc.check_on)
            ),
        )
    else:
        await _say(event, _("Action marked done."))


async def _say(event: Message | CallbackQuery, text: str) -> None:
    if isinstance(event, CallbackQuery):
        await event.answer()
        message = shown(event)
        await event.bot.send_message(
            message.chat.id,
            text,
            message_thread_id=message.message_thread_id if message.is_topic_message else None,
        )
    else:
        await event.reply(text)


# --- the steps' texts ---------------------------------------------------------------------


@router.message(StateFilter(NcForm), Command("cancel"))
async def cancel(message: Message, state: FSMContext) -> None:
    await state.clear()
    await message.reply(_("Cancelled."))


@router.message(StateFilter(NcForm), F.text, ~F.text.startswith("/"))
async def step_text(
    message: Message,
    state: FSMContext,
    nonconformities: Nonconformities,
    teams: TeamDirectory,
    calendar: WorkingCalendar,
) -> None:
    step, data = await state.get_state(), await state.get_data()
    nc = await nonconformities.get(data.get("nc_id", 0))
    if nc is None or not await nonconformities.may_work_on(_person(message).id, nc):
        await state.clear()
        await message.reply(_("Only the nonconformity's team or the quality staff can do this."))
        return
    text = message.text or ""
    try:
        if step == NcForm.correction.state:
            await state.update_data(correction=check_text(text))
            await state.set_state(NcForm.root_cause)
            await message.reply(
                _("#{id}: now the root cause: why did it happen?").format(id=nc.id),
                reply_markup=_cancel_keyboard(nc.id),
            )
        elif step == NcForm.root_cause.state:
            await nonconformities.analyse(nc.id, _person(message), data["correction"], text)
            await state.clear()
            await message.reply(
                _("Nonconformity #{id} analysed. Add the corrective actions with the card's button.").format(
                    id=nc.id
                )
            )
        elif step == NcForm.action_what.state:
            await state.update_data(what=check_text(text))
            await state.set_state(NcForm.action_due)
            example = (calendar.local_date(utcnow()) + timedelta(days=14)).isoformat()
            await message.reply(
                _("#{id}: by when? Write the due date as YYYY-MM-DD, e.g. {example}.").format(
                    id=nc.id, example=example
                ),
                reply_markup=_cancel_keyboard(nc.id),
            )
        elif step == NcForm.action_due.state:
            due = parse_due(text, calendar.local_date(utcnow()))
            await state.update_data(due=due.isoformat())
            team = teams.get(nc.team_id)
            people = list(dict.fromkeys([*team.heads, *team.members]))
            if not people:  # a team that lists nobody: the one who adds it is responsible
                await _add_action(
                    message, state, nonconformities, nc.id, await state.get_data(), _person(message)
                )
                return
            builder = InlineKeyboardBuilder()
            for user_id in people:
                builder.button(
                    text=await teams.member_name(team, user_id),
                    callback_data=NcButton(nc_id=nc.id, do="owner", value=user_id),
                )
            builder.button(text=_("✖️ Cancel"), callback_data=NcButton(nc_id=nc.id, do="cancel"))
            builder.adjust(1)
            await message.reply(
                _("#{id}: who is responsible for the action?").format(id=nc.id),
                reply_markup=builder.as_markup(),
            )
        elif step == NcForm.done_note.state:
            note = check_text(text)
            open_actions = [a for a in await nonconformities.actions(nc.id) if a.done_at is None]
            if [a.id for a in open_actions] == [
                data.get("action_id")
            ]:  # the last one: when to check the effectiveness
                await state.update_data(note=note)
                builder = InlineKeyboardBuilder()
                for days in CHECK_DAYS:
                    builder.button(
                        text=_("in {days} day", "in {days} days", days).format(days=days),
                        callback_data=NcButton(nc_id=nc.id, do="check", value=days),
                    )
                builder.button(text=_("✖️ Cancel"), callback_data=NcButton(nc_id=nc.id, do="cancel"))
                builder.adjust(3, 1)
                await message.reply(
                    _("#{id}: the last action. When should the effectiveness be checked?").format(id=nc.id),
                    reply_markup=builder.as_markup(),
                )
                return
            await state.clear()
            await _done(message, nonconformities, nc.id, {**data, "note": note}, CHECK_DAYS[0])
    except NcError as exc:  # the step is asked again; nothing is stored
        await message.reply(escape(str(exc)))


# --- the management review ----------------------------------------------------------------


@router.message(Command("review"))
async def management_review(
    message: Message,
    command: CommandObject,
    nonconformities: Nonconformities,
    review: ManagementReview,
    calendar: WorkingCalendar,
) -> None:
    if not nonconformities.is_quality_chat(message.chat.id) or not await nonconformities.is_quality_staff(
        _person(message).id
    ):
        await message.reply(_("Only the quality staff can do this, in the quality group."))
        return
    try:
        period = parse_period(command.args, calendar.local_date(utcnow()))
    except PeriodError as exc:
        usage = _("Usage: /review 2026-Q4, /review 2026-11, /review 2026 or /review 2026-10-01..2026-12-31.")
        await message.reply(f"{escape(str(exc))}\n{usage}" if str(exc) else usage)
        return
    workbook = await review.xlsx(period)
    name = f"management-review-{period.start.isoformat()}-{period.end.isoformat()}.xlsx"
    caption = _("Management review, {start} – {end}").format(
        start=texts.day(period.start), end=texts.day(period.end)
    )
    await message.reply_document(BufferedInputFile(workbook, name), caption=caption)


# --- internal audits ----------------------------------------------------------------------


@router.message(Command("audit"))
async def audit(
    message: Message,
    command: CommandObject,
    nonconformities: Nonconformities,
    audits: Audits,
    calendar: WorkingCalendar,
) -> None:
    """`/audit TEAM PERIOD`: a sample of the team's cases, each with its trail and the checklist."""
    if not nonconformities.is_quality_chat(message.chat.id) or not await nonconformities.is_quality_staff(
        _person(message).id
    ):
        await message.reply(_("Only the quality staff can do this, in the quality group."))
        return
    team_id, _space, period_text = (command.args or "").strip().partition(" ")
    usage = _("Usage: /audit TEAM PERIOD, e.g. /audit roads 2026-11 or /audit roads 2026-Q4.")
    if not team_id:
        await message.reply(await _programme_text(audits) + "\n\n" + usage)
        return
    if not period_text.strip():
        await message.reply(usage)
        return
    try:
        period = parse_period(period_text, calendar.local_date(utcnow()))
        drawn = await audits.start(team_id, period, _person(message))
    except PeriodError as exc:
        await message.reply(f"{escape(str(exc))}\n{usage}")
        return
    except NcError as exc:
        await message.reply(escape(str(exc)))
        return
    log.info(
        "internal audit drawn",
        extra={"audit_id": drawn.id, "team": drawn.team_id, "cases": len(drawn.case_ids)},
    )


async def _programme_text(audits: Audits) -> str:
    lines = [_("🗓 <b>Audit programme</b>")]
    for planned, made in await audits.programme():
        state = _("done: audit #{id}").format(id=made.id) if made else _("planned")
        team = audits.teams.get(planned.team).name.get(audits.locale)
        lines.append(
            f"{escape(team)} · {planned.period} · {escape(await audits.auditor_name(planned))} · {state}"
        )
    if len(lines) == 1:
        lines.append(_("No audit is planned in the municipality file (audit_programme)."))
    return "\n".join(lines)


@router.callback_query(AuditButton.filter())
async def checklist_answer(
    query: CallbackQuery, callback_data: AuditButton, nonconformities: Nonconformities, audits: Audits
) -> None:
    """A checklist button under a sampled case: the answer recorded, the buttons show it."""
    if not await nonconformities.is_quality_staff(_person(query).id):
        log.warning(
            "audit checklist refused",
            extra={"user_id": _person(query).id, "audit_id": callback_data.audit_id},
        )
        await query.answer(_("Only the quality staff can do this."), show_alert=True)
        return
    try:
        audit = await audits.answer(
            callback_data.audit_id,
            callback_data.case_id,
            callback_data.item,
            bool(callback_data.yes),
            _person(query),
        )
    except NcError as exc:
        await query.answer(str(exc), show_alert=True)
        return
    await query.answer(_("Recorded."))
    await shown(query).edit_reply_markup(reply_markup=audits.checklist_keyboard(audit, callback_data.case_id))


@router.message(Command("finding"))
async def finding(
    message: Message, command: CommandObject, nonconformities: Nonconformities, audits: Audits
) -> None:
    """`/finding AUDIT KIND [CASE] text`: a finding recorded on the audit (a nonconformity's opens one)."""
    if not nonconformities.is_quality_chat(message.chat.id) or not await nonconformities.is_quality_staff(
        _person(message).id
    ):
        await message.reply(_("Only the quality staff can do this, in the quality group."))
        return
    number, kind, text = ((command.args or "").strip().split(maxsplit=2) + ["", "", ""])[:3]
    audit_id = whole_number(number)
    if audit_id is None or not kind or not text:
        await message.reply(
            _(
                "Usage: /finding AUDIT KIND [CASE] text; KIND is nc, obs or ofi, e.g. /finding 3 obs Templates differ between clerks."
            )
        )
        return
    try:
        found = await audits.add_finding(audit_id, kind, text, _person(message))
    except NcError as exc:
        await message.reply(escape(str(exc)))
        return
    reply = _("Finding #{id} ({kind}) recorded on internal audit #{audit}.").format(
        id=found.id, kind=audits.finding_label(found), audit=audit_id
    )
    if found.nonconformity_id:
        reply += "\n" + _(
            "Nonconformity #{id} opened; its card is in the quality group and the team's group."
        ).format(id=found.nonconformity_id)
    await message.reply(reply)


@router.message(Command("auditreport"))
async def audit_report(
    message: Message, command: CommandObject, nonconformities: Nonconformities, audits: Audits
) -> None:
    """`/auditreport AUDIT`: the audit's report, one XLSX."""
    if not nonconformities.is_quality_chat(message.chat.id) or not await nonconformities.is_quality_staff(
        _person(message).id
    ):
        await message.reply(_("Only the quality staff can do this, in the quality group."))
        return
    audit_id = whole_number((command.args or "").strip())
    if audit_id is None:
        await message.reply(_("Usage: /auditreport AUDIT, e.g. /auditreport 3."))
        return
    try:
        workbook = await audits.report(audit_id)
    except NcError as exc:
        await message.reply(escape(str(exc)))
        return
    await message.reply_document(
        BufferedInputFile(workbook, f"internal-audit-{audit_id}.xlsx"),
        caption=_("Internal audit #{id}").format(id=audit_id),
    )


# --- who is responsible for what ----------------------------------------------------------


@router.message(Command("who"))
async def who(
    message: Message,
    teams: TeamDirectory,
    responsibility: Responsibility,
    calendar: WorkingCalendar,
    config: Config,
) -> None:
    """The responsibility matrix: each team's share of the routing rules, its people, and the open
    load per responsible clerk (for anyone who acts in this group)."""
    if await acting_clerk(message, None, teams) is None:
        return
    lines = [_("👥 <b>Who is responsible</b>")]
    for row in await responsibility.matrix(config.settings.admin_locale, calendar.local_date(utcnow())):
        people = "; ".join(f"{escape(load.clerk)} {load.open} ({load.overdue} ⏰)" for load in row.loads)
        lines += [
            "",
            f"<b>{escape(row.name)}</b>" + (" · " + _("quality team") if row.quality else ""),
            _("Handles: {what}").format(what=escape("; ".join(row.handles)) or "—"),
            _("Heads: {heads} · members: {members}").format(
                heads=escape(", ".join(row.heads)) or "—",
                members=escape(", ".join(row.members)) or _("everyone in the group"),
            ),
            _("Open cases: {count}").format(count=row.open) + (f" · {people}" if people else ""),
        ]
    await message.reply(truncate_html("\n".join(lines)))
