"""The municipality's projects in the chat.

Residents (private chat, "🏗 Projects" or /projects): their eldership's projects first, then the
whole district's; a project's page (status, progress, next milestone, slips and why, the latest
update with its photos); "🔔 Follow" a project, or every project of their eldership.

Staff (a team group, or the communications group): /projects [team] [eldership] [status] lists
projects, the most slipped first; a project's card has buttons to post an update (Polish, then
Lithuanian, then optional photos), mark a milestone met or partly met, move a due date (a new
date, then a reason, both required) and change the status. Only the project's team (heads,
members, admins of its group) in its own group, or the communications staff in theirs, may act;
anyone else is refused and it is logged. Step-by-step answers use FSM states like /register's;
the steps of each form are data (`UPDATE_STEPS`, `MOVE_STEPS`).

Import: an .xlsx or .csv sent to the communications group gets the dry run (bot.services.
project_import) and, when it has changes and no error, "✅ Apply", pressed by the one who sent it.
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from html import escape

from aiogram import Bot, F, Router
from aiogram.enums import ChatType
from aiogram.filters import Command, CommandObject, StateFilter, or_f
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.config import Config
from bot.keyboards import InlineKeyboardBuilder
from bot.services import project_texts, texts
from bot.services.broadcaster import BroadcastFile, FilesVersion, send_version
from bot.services.cases import visible_text
from bot.services.html_text import truncate_html
from bot.services.project_import import MAX_BYTES, SheetError, apply, plan, plan_text, read_table
from bot.services.projects import (
    PHOTOS_MAX,
    REASON_MAX,
    UPDATE_MAX,
    Actor,
    Listed,
    ProjectButton,
    ProjectError,
    ProjectService,
)
from bot.services.teams import TeamDirectory
from bot.store.models import FollowKind, Milestone, MilestoneStatus, Project, ProjectStatus, Resident, utcnow
from flows.clerk import InTeamGroup
from flows.common import (
    MENU_PROJECTS,
    Onboarded,
    UnderAccessibleMessage,
    acknowledge_later,
    shown,
    stale_button,
)
from flows.comms import InCommsGroup
from flows.news import NewsChoice
from flows.staff import acted, person_of, refused

log = logging.getLogger(__name__)

LISTED_MAX = 30  # project buttons under one list
LABEL_MAX = 60

# --- residents -------------------------------------------------------------------------------

router = Router(name="projects")
router.callback_query.filter(UnderAccessibleMessage())
router.message.filter(F.chat.type == ChatType.PRIVATE)
router.callback_query.filter(F.message.chat.type == ChatType.PRIVATE)


def _label(text: str) -> str:
    return texts.shorten(text, LABEL_MAX)


def _web_link(config: Config, locale: str) -> str | None:
    base = config.settings.public_base_url
    return f"{base}/projects?lang={locale}" if base else None


def _list_keyboard(
    items: list[Listed],
    resident: Resident,
    follows: set[tuple[str, str]],
    config: Config,
    locale: str,
    everything: bool,
) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for item in items[:LISTED_MAX]:
        builder.button(
            text=_label("🏗 " + project_texts.list_line(item.project, item.milestones)),
            callback_data=ProjectButton(action="view", project=item.project.id),
        )
    eldership = config.municipality.eldership_by_id.get(resident.eldership_id or "")
    if eldership is not None:
        following = (FollowKind.ELDERSHIP_PROJECTS, eldership.id) in follows
        label = (
            _("🔕 Stop following my eldership") if following else _("🔔 Follow my eldership's projects")
        )  # a name would not fit
        builder.button(text=label, callback_data=ProjectButton(action="follow_eld"))
    else:
        builder.button(text=_("🏘 Choose my eldership"), callback_data=NewsChoice(action="eld_menu"))
    if not everything:
        builder.button(text=_("📋 All projects"), callback_data=ProjectButton(action="list", value="all"))
    link = _web_link(config, locale)
    if link:
        builder.button(text=_("🌐 Projects on the web"), url=link)
    builder.adjust(1)
    return builder.as_markup()


async def _list_text_and_keyboard(
    resident: Resident, projects: ProjectService, config: Config, locale: str, everything: bool
) -> tuple[str, InlineKeyboardMarkup]:
    follows = await projects.follows(resident.id)
    if everything:
        items = sorted(await projects.listing(), key=lambda i: project_texts.name(i.project))
        text = _("<b>Every project of the district</b>")
    else:
        own, district = await projects.for_resident(resident.eldership_id)
        items = own + district
        eldership = config.municipality.eldership_by_id.get(resident.eldership_id or "")
        text = (
            _("<b>Projects</b> of your eldership first, then of the whole district.")
            if eldership
            else _("<b>Projects of the whole district.</b> Choose your eldership to see its projects first.")
        )
    if not items:
        text += "\n" + _("There are no projects to show yet.")
    else:
        text += "\n" + _("Tap a project to see its milestones, or to follow it.")
    return text, _list_keyboard(items, resident, follows, config, locale, everything)


@router.message(Command("projects"), Onboarded())
@router.message(F.text == MENU_PROJECTS, Onboarded())
async def projects_menu(
    message: Message, resident: Resident, projects: ProjectService, config: Config, i18n: I18n
) -> None:
    text, keyboard = await _list_text_and_keyboard(
        resident, projects, config, i18n.current_locale, everything=False
    )
    await message.answer(text, reply_markup=keyboard)


def _page_keyboard(project: Project, following: bool) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(
        text=_("🔕 Stop following") if following else _("🔔 Follow"),
        callback_data=ProjectButton(action="follow", project=project.id),
    )
    builder.button(text=_("◀ Projects"), callback_data=ProjectButton(action="list"))
    builder.adjust(1)
    return builder.as_markup()


@router.callback_query(
    ProjectButton.filter(F.action.in_({"list", "view", "follow", "follow_eld"})), Onboarded()
)
async def resident_button(
    query: CallbackQuery,
    callback_data: ProjectButton,
    resident: Resident,
    projects: ProjectService,
    config: Config,
    i18n: I18n,
    bot: Bot,
) -> None:
    locale = i18n.current_locale
    if callback_data.action == "list":
        await query.answer()
        text, keyboard = await _list_text_and_keyboard(
            resident, projects, config, locale, everything=callback_data.value == "all"
        )
        await shown(query).answer(text, reply_markup=keyboard)
        return
    if callback_data.action == "follow_eld":
        if not resident.eldership_id or resident.eldership_id not in config.municipality.eldership_by_id:
            await stale_button(query)
            return
        now = await projects.toggle_follow(resident.id, FollowKind.ELDERSHIP_PROJECTS, resident.eldership_id)
        await query.answer(
            _("You will be told about every project of your eldership.")
            if now
            else _("You no longer follow your eldership's projects.")
        )
        text, keyboard = await _list_text_and_keyboard(resident, projects, config, locale, everything=False)
        await shown(query).edit_text(text, reply_markup=keyboard)
        return
    viewed = await projects.view(callback_data.project)
    if viewed is None:
        await query.answer(_("This project is no longer in the register."), show_alert=True)
        return
    project, milestones, update = viewed
    if callback_data.action == "follow":
        now = await projects.toggle_follow(resident.id, FollowKind.PROJECT, str(project.id))
        await query.answer(
            _("You will be told when this project changes.")
            if now
            else _("You no longer follow this project.")
        )
        await shown(query).edit_reply_markup(reply_markup=_page_keyboard(project, now))
        return
    await query.answer()
    if update is not None and update.photos:
        await send_version(
            bot,
            resident.id,
            FilesVersion(files=[BroadcastFile(kind="photo", file_id=p["file_id"]) for p in update.photos]),
        )
    following = (FollowKind.PROJECT, str(project.id)) in await projects.follows(resident.id)
    await shown(query).answer(
        project_texts.page(project, milestones, update, config.municipality),
        reply_markup=_page_keyboard(project, following),
    )


# --- staff -----------------------------------------------------------------------------------


staff = Router(name="projects-staff")  # a team group, or the communications group
staff.callback_query.filter(UnderAccessibleMessage())
staff.message.filter(or_f(InTeamGroup(), InCommsGroup()))
staff.callback_query.filter(or_f(InTeamGroup(), InCommsGroup()))


class ProjectForm(StatesGroup):
    update_pl = State()
    update_lt = State()
    photos = State()
    move_date = State()
    move_reason = State()


@dataclass(frozen=True)
class Step:
    """One question of a form: its state, and the question asked."""

    state: State
    question: Callable[[], str]


UPDATE_STEPS = (
    Step(ProjectForm.update_pl, lambda: _("📝 The update for residents, <b>in Polish</b> (one message):")),
    Step(ProjectForm.update_lt, lambda: _("Now the same <b>in Lithuanian</b>:")),
    Step(ProjectForm.photos, lambda: _("Photos (up to {count}), or post it now:").format(count=PHOTOS_MAX)),
)
MOVE_STEPS = (
    Step(ProjectForm.move_date, lambda: _("📅 The new due date (YYYY-MM-DD or DD.MM.YYYY):")),
    Step(
        ProjectForm.move_reason,
        lambda: _("Why does it move? Residents following the project are told this reason:"),
    ),
)


def _cancel_keyboard(extra: tuple[str, ProjectButton] | None = None) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    if extra:
        builder.button(text=extra[0], callback_data=extra[1])
    builder.button(text=_("✖️ Cancel"), callback_data=ProjectButton(action="cancel"))
    builder.adjust(1)
    return builder.as_markup()


async def _ask(steps: tuple[Step, ...], state: State, message: Message, fsm: FSMContext) -> None:
    step = next(s for s in steps if s.state == state)
    await fsm.set_state(step.state)
    extra = (
        (_("✅ Post the update"), ProjectButton(action="post")) if step.state == ProjectForm.photos else None
    )
    await message.answer(step.question(), reply_markup=_cancel_keyboard(extra))


def _next(steps: tuple[Step, ...], state: State) -> State:
    index = [s.state for s in steps].index(state)
    return steps[index + 1].state


async def _actor(event: Message | CallbackQuery, project: Project, teams: TeamDirectory) -> Actor | None:
    """The person, if they may act on `project` here: its team in its group, or the communications
    staff in theirs (the staff rule of flows.staff: anonymous posts and strangers refused, logged)."""
    message = event if isinstance(event, Message) else event.message
    assert message is not None
    user = await person_of(event, teams.roles)  # None: posted anonymously (told to post as themselves)
    if user is None:
        return None
    chat = message.chat.id
    team = teams.get(project.team_id)
    if chat == teams.comms:
        role = await teams.comms_role(user.id)
    elif teams.chat_of(team) == chat:
        role = await teams.role(user.id, team)
    else:
        role = None
    if role is None or not role.acts:
        await refused(
            event,
            user,
            _("Only the project's team, in its group, or the communications staff can do this."),
            teams.roles,
            project_id=project.id,
        )
        return None
    acted(event, user, role, project_id=project.id)
    return Actor(user.id, user.full_name)


def _filters(args: str, config: Config) -> tuple[list[str] | None, str | None, str | None, list[str]]:
    """Team ids, an eldership id, a status, or "all"; an id that is both an eldership and a team
    (an eldership's own team) is the eldership, unless written `team:id`."""
    municipality = config.municipality
    team_ids, eldership, status, unknown = None, None, None, []
    for token in args.split():
        kind, _colon, value = token.rpartition(":")
        if kind in ("", "status") and value in {s.value for s in ProjectStatus}:
            status = value
        elif kind in ("", "eld") and value in municipality.eldership_by_id:
            eldership = value
        elif kind in ("", "team") and value in municipality.team_by_id:
            team_ids = [*(team_ids or []), value]
        elif token != "all":
            unknown.append(token)
    return team_ids, eldership, status, unknown


@staff.message(Command("projects"))
async def staff_list(
    message: Message,
    command: CommandObject,
    projects: ProjectService,
    teams: TeamDirectory,
    config: Config,
    state: FSMContext,
) -> None:
    await state.clear()
    team_ids, eldership, status, unknown = _filters(command.args or "", config)
    if unknown:
        await message.reply(
            _(
                "Unknown filter: {values}. Use team ids ({teams}), eldership ids, statuses ({statuses}), or all."
            ).format(
                values=", ".join(unknown)[:200],
                teams=", ".join(config.municipality.team_by_id),
                statuses=", ".join(ProjectStatus),
            )
        )
        return
    if team_ids is None and message.chat.id != teams.comms and "all" not in (command.args or "").split():
        team_ids = [team.id for team in teams.teams_in(message.chat.id)]
    items = await projects.listing(team_ids=team_ids, eldership=eldership, status=status)
    lines = [_("🏗 <b>Projects</b> ({count}), the most slipped first:").format(count=len(items))]
    builder = InlineKeyboardBuilder()
    for item in items[:LISTED_MAX]:
        project = item.project
        lines.append(
            escape(
                f"{project.external_id} · {project_texts.status_label(project.status)} · "
                + project_texts.list_line(project, item.milestones)
            )
        )
        builder.button(
            text=_label(f"{project.external_id} · {project_texts.name(project)}"),
            callback_data=ProjectButton(action="card", project=project.id),
        )
    if not items:
        lines.append(_("No project matches."))
    builder.adjust(1)
    await message.answer(truncate_html("\n".join(lines)), reply_markup=builder.as_markup())


def _card_keyboard(project: Project) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for label, action in (
        (_("📝 Post an update"), "update"),
        (_("✅ Milestone met"), "pick_met"),
        (_("◐ Partly met"), "pick_partly"),
        (_("📅 Move a due date"), "pick_move"),
        (_("🔄 Change the status"), "pick_status"),
    ):
        builder.button(text=label, callback_data=ProjectButton(action=action, project=project.id))
    builder.adjust(1)
    return builder.as_markup()


async def _card(message: Message, projects: ProjectService, config: Config, project_id: int) -> None:
    viewed = await projects.view(project_id)
    if viewed is None:
        await message.answer(_("This project is no longer in the register."))
        return
    project, milestones, update = viewed
    await message.answer(
        f"<code>{escape(project.external_id)}</code>\n"
        + project_texts.page(project, milestones, update, config.municipality),
        reply_markup=_card_keyboard(project),
    )


@staff.callback_query(ProjectButton.filter(F.action == "card"))
async def card(
    query: CallbackQuery, callback_data: ProjectButton, projects: ProjectService, config: Config
) -> None:
    await query.answer()
    await _card(shown(query), projects, config, callback_data.project)


async def _project_for(
    query: CallbackQuery, callback_data: ProjectButton, projects: ProjectService, teams: TeamDirectory
) -> tuple[Project, list[Milestone], Actor] | None:
    viewed = await projects.view(callback_data.project)
    if viewed is None:
        await query.answer(_("This project is no longer in the register."), show_alert=True)
        return None
    actor = await _actor(query, viewed[0], teams)
    return (viewed[0], viewed[1], actor) if actor else None


@staff.callback_query(
    ProjectButton.filter(F.action.in_({"pick_met", "pick_partly", "pick_move", "pick_status"}))
)
async def pick(
    query: CallbackQuery, callback_data: ProjectButton, projects: ProjectService, teams: TeamDirectory
) -> None:
    found = await _project_for(query, callback_data, projects, teams)
    if found is None:
        return
    project, milestones, _actor_ = found
    builder = InlineKeyboardBuilder()
    if callback_data.action == "pick_status":
        for status in ProjectStatus:
            if status != project.status:
                builder.button(
                    text=project_texts.status_label(status),
                    callback_data=ProjectButton(action="status", project=project.id, value=status),
                )
        question = _("The new status of {name}:").format(name=escape(project_texts.name(project)))
    else:
        action = {"pick_met": "met", "pick_partly": "partly", "pick_move": "move"}[callback_data.action]
        open_ = [m for m in milestones if m.status in (MilestoneStatus.SCHEDULED, MilestoneStatus.NOT_MET)]
        for m in open_:
            builder.button(
                text=_label(f"{m.number}. {project_texts.title(m)} · {m.current_due.isoformat()}"),
                callback_data=ProjectButton(action=action, project=project.id, milestone=m.id),
            )
        if not open_:
            await query.answer(_("Every milestone of this project is completed."), show_alert=True)
            return
        question = _("Which milestone?")
    builder.button(text=_("✖️ Cancel"), callback_data=ProjectButton(action="cancel"))
    builder.adjust(1)
    await query.answer()
    await shown(query).answer(question, reply_markup=builder.as_markup())


async def _milestone_for(
    query: CallbackQuery, callback_data: ProjectButton, projects: ProjectService, teams: TeamDirectory
) -> tuple[Project, Milestone, Actor] | None:
    found = await _project_for(query, callback_data, projects, teams)
    if found is None:
        return None
    project, milestones, actor = found
    milestone = next((m for m in milestones if m.id == callback_data.milestone), None)
    if milestone is None:
        await stale_button(query)
        return None
    return project, milestone, actor


@staff.callback_query(ProjectButton.filter(F.action.in_({"met", "partly"})))
async def complete(
    query: CallbackQuery,
    callback_data: ProjectButton,
    projects: ProjectService,
    teams: TeamDirectory,
    config: Config,
) -> None:
    found = await _milestone_for(query, callback_data, projects, teams)
    if found is None:
        return
    project, milestone, actor = found
    status = MilestoneStatus.MET if callback_data.action == "met" else MilestoneStatus.PARTIALLY_MET
    today = utcnow().astimezone(config.settings.tz).date()
    try:
        await projects.complete(milestone.id, status, today, actor)
    except ProjectError as exc:
        await query.answer(str(exc), show_alert=True)
        return
    await query.answer()
    await shown(query).edit_text(
        _("{icon} “{title}” of {name}: {status}, {date}. Followers are being told.").format(
            icon=project_texts.MILESTONE_ICONS[status],
            title=escape(project_texts.title(milestone)),
            name=escape(project_texts.name(project)),
            status=project_texts.milestone_label(status),
            date=texts.day(today),
        )
    )


@staff.callback_query(ProjectButton.filter(F.action == "status"))
async def change_status(
    query: CallbackQuery, callback_data: ProjectButton, projects: ProjectService, teams: TeamDirectory
) -> None:
    found = await _project_for(query, callback_data, projects, teams)
    if found is None:
        return
    project, _milestones, actor = found
    if callback_data.value not in {s.value for s in ProjectStatus}:
        await stale_button(query)
        return
    try:
        changed = await projects.change_status(project.id, ProjectStatus(callback_data.value), actor)
    except ProjectError as exc:
        await query.answer(str(exc), show_alert=True)
        return
    await query.answer()
    await shown(query).edit_text(
        _("🔄 {name}: now {status}. Followers are being told.").format(
            name=escape(project_texts.name(changed)), status=project_texts.status_label(changed.status)
        )
    )


@staff.callback_query(ProjectButton.filter(F.action == "move"))
async def move(
    query: CallbackQuery,
    callback_data: ProjectButton,
    projects: ProjectService,
    teams: TeamDirectory,
    state: FSMContext,
) -> None:
    found = await _milestone_for(query, callback_data, projects, teams)
    if found is None:
        return
    project, milestone, _actor_ = found
    await query.answer()
    await state.set_data({"project": project.id, "milestone": milestone.id})
    await shown(query).answer(
        _("“{title}” is due {date} (first planned for {baseline}).").format(
            title=escape(project_texts.title(milestone)),
            date=texts.day(milestone.current_due),
            baseline=texts.day(milestone.baseline_due),
        )
    )
    await _ask(MOVE_STEPS, ProjectForm.move_date, shown(query), state)


@staff.message(ProjectForm.move_date, F.text)
async def move_date(message: Message, state: FSMContext) -> None:
    from bot.services.project_import import parse_date

    try:
        new_due = parse_date(message.text or "")
    except ValueError:
        await message.reply(
            _("That is not a date. Please write it as YYYY-MM-DD or DD.MM.YYYY, e.g. 2027-06-30.")
        )
        return
    await state.update_data(due=new_due.isoformat())
    await _ask(MOVE_STEPS, _next(MOVE_STEPS, ProjectForm.move_date), message, state)


@staff.message(ProjectForm.move_reason, F.text)
async def move_reason(
    message: Message, state: FSMContext, projects: ProjectService, teams: TeamDirectory
) -> None:
    reason = visible_text(message.text or "")
    if len(reason) < 3 or len(reason) > REASON_MAX:
        await message.reply(
            _(
                "Please give the reason in 3 to {count} character.",
                "Please give the reason in 3 to {count} characters.",
                REASON_MAX,
            ).format(count=REASON_MAX)
        )
        return
    data = await state.get_data()
    viewed = await projects.view(data["project"])
    if viewed is None:
        await state.clear()
        await message.reply(_("This project is no longer in the register."))
        return
    actor = await _actor(message, viewed[0], teams)
    if actor is None:
        return
    try:
        milestone = await projects.move_due(data["milestone"], date.fromisoformat(data["due"]), reason, actor)
    except ProjectError as exc:
        await state.clear()
        await message.reply(str(exc))
        return
    await state.clear()
    await message.reply(
        _("📅 “{title}” now due {date}: {slip}. Followers are being told.").format(
            title=escape(project_texts.title(milestone)),
            date=texts.day(milestone.current_due),
            slip=project_texts.slip(milestone) or _("back on its first plan"),
        )
    )


@staff.callback_query(ProjectButton.filter(F.action == "update"))
async def start_update(
    query: CallbackQuery,
    callback_data: ProjectButton,
    projects: ProjectService,
    teams: TeamDirectory,
    state: FSMContext,
) -> None:
    found = await _project_for(query, callback_data, projects, teams)
    if found is None:
        return
    await query.answer()
    await state.set_data({"project": found[0].id, "photos": []})
    await _ask(UPDATE_STEPS, ProjectForm.update_pl, shown(query), state)


@staff.message(StateFilter(ProjectForm.update_pl, ProjectForm.update_lt), F.text)
async def update_text(message: Message, state: FSMContext) -> None:
    text = visible_text(message.text or "")
    if len(text) < 3 or len(text) > UPDATE_MAX:
        await message.reply(
            _(
                "Please write 3 to {count} character.", "Please write 3 to {count} characters.", UPDATE_MAX
            ).format(count=UPDATE_MAX)
        )
        return
    current = await state.get_state()
    field = "text_pl" if current == ProjectForm.update_pl.state else "text_lt"
    await state.update_data({field: message.text})
    step = ProjectForm.update_pl if field == "text_pl" else ProjectForm.update_lt
    await _ask(UPDATE_STEPS, _next(UPDATE_STEPS, step), message, state)


@staff.message(ProjectForm.photos, F.photo)
async def update_photo(message: Message, state: FSMContext) -> None:
    assert message.photo
    photos = list((await state.get_data()).get("photos", []))
    if len(photos) >= PHOTOS_MAX:
        await message.reply(
            _("At most {count} photo.", "At most {count} photos.", PHOTOS_MAX).format(count=PHOTOS_MAX)
        )
        return
    photos.append({"file_id": message.photo[-1].file_id, "file_unique_id": message.photo[-1].file_unique_id})
    await state.update_data(photos=photos)
    count = len(photos)
    acknowledge_later(
        ("project-photos", message.chat.id, message.from_user.id if message.from_user else 0),
        lambda: message.answer(
            _("{count} photo added.", "{count} photos added.", count).format(count=count),
            reply_markup=_cancel_keyboard((_("✅ Post the update"), ProjectButton(action="post"))),
        ),
    )


@staff.callback_query(ProjectForm.photos, ProjectButton.filter(F.action == "post"))
async def post_update(
    query: CallbackQuery, state: FSMContext, projects: ProjectService, teams: TeamDirectory
) -> None:
    data = await state.get_data()
    viewed = await projects.view(data["project"])
    if viewed is None:
        await state.clear()
        await query.answer(_("This project is no longer in the register."), show_alert=True)
        return
    actor = await _actor(query, viewed[0], teams)
    if actor is None:
        return
    await state.clear()
    try:
        await projects.post_update(
            viewed[0].id, data["text_pl"], data["text_lt"], data.get("photos", []), actor
        )
    except ProjectError as exc:
        await query.answer(str(exc), show_alert=True)
        return
    await query.answer()
    await shown(query).edit_text(
        _("📰 The update of {name} is posted. Followers are being told.").format(
            name=escape(project_texts.name(viewed[0]))
        )
    )


@staff.message(StateFilter(ProjectForm), Command("cancel"))
async def cancel_command(message: Message, state: FSMContext) -> None:
    await state.clear()
    await message.reply(_("Cancelled."))


@staff.callback_query(ProjectButton.filter(F.action == "cancel"))
async def cancel_button(query: CallbackQuery, state: FSMContext) -> None:
    if await state.get_state() in {s.state for s in ProjectForm.__states__}:
        await state.clear()
    await query.answer(_("Cancelled."))
    await shown(query).edit_reply_markup(reply_markup=None)


# --- import in the communications group ---------------------------------------------------------


async def _download(bot: Bot, file_id: str) -> bytes:
    buffer = io.BytesIO()
    await bot.download(file_id, destination=buffer)
    return buffer.getvalue()


@staff.message(InCommsGroup(), StateFilter(None), F.document.file_name.lower().endswith((".xlsx", ".csv")))
async def import_file(message: Message, bot: Bot, state: FSMContext, projects: ProjectService) -> None:
    document = message.document
    assert document is not None and document.file_name is not None
    if (document.file_size or 0) > MAX_BYTES:
        await message.reply(_("The file is larger than 5 MB."))
        return
    data = await _download(bot, document.file_id)
    try:
        result = await plan(projects, read_table(data, document.file_name))
    except SheetError as exc:
        await message.reply(str(exc))
        return
    digest = hashlib.sha256(data).hexdigest()[:16]
    keyboard = None
    if result.applicable:
        await state.set_data(
            {"import": {"file_id": document.file_id, "name": document.file_name, "digest": digest}}
        )
        keyboard = _cancel_keyboard((_("✅ Apply"), ProjectButton(action="apply", value=digest)))
    heading = _("<b>Dry run</b> of {name}: nothing is applied yet.").format(
        name=escape(texts.shorten(document.file_name, 100))
    )
    await message.reply(
        truncate_html(heading + "\n\n" + escape(plan_text(result, limit=10**6))), reply_markup=keyboard
    )


@staff.callback_query(InCommsGroup(), ProjectButton.filter(F.action == "apply"))
async def apply_import(
    query: CallbackQuery, callback_data: ProjectButton, bot: Bot, state: FSMContext, projects: ProjectService
) -> None:
    pending = (await state.get_data()).get("import")
    if not pending or pending["digest"] != callback_data.value:
        log.warning("project import applied by someone else, or again", extra={"user_id": query.from_user.id})
        await query.answer(_("Only the person who sent this file can apply it, once."), show_alert=True)
        return
    await state.set_data({})
    data = await _download(bot, pending["file_id"])
    if hashlib.sha256(data).hexdigest()[:16] != pending["digest"]:
        await query.answer(_("The file changed: please send it again."), show_alert=True)
        return
    await query.answer()
    result = await apply(
        projects, read_table(data, pending["name"]), Actor(query.from_user.id, query.from_user.full_name)
    )
    if result.errors:
        await shown(query).edit_text(
            truncate_html(
                _("Not applied: the register changed meanwhile.")
                + "\n\n"
                + escape(plan_text(result, limit=10**6))
            )
        )
        return
    await shown(query).edit_text(
        _("✅ Applied: {count} change.", "✅ Applied: {count} changes.", len(result.changes)).format(
            count=len(result.changes)
        )
    )
