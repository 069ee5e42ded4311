"""The projects as open data, served by the bot's web app: `GET /projects.json`, `/projects.csv`
(the register's own layout, bot.services.project_import: every public field, milestones
included) and `/projects`, a plain page in Polish, Lithuanian or English (`?lang=`): no
JavaScript, readable on a phone and by a screen reader. No personal data: who changed what (the
events' actors) and the authors of updates are never served."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from html import escape
from typing import Any

from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from aiohttp import web

from bot.config import Config
from bot.services import project_texts, texts
from bot.services.project_import import export_rows, write_table
from bot.services.projects import Listed, ProjectService
from bot.store.models import ProjectUpdate

PATHS = ("/projects", "/projects.json", "/projects.csv")


class OpenProjects:
    def __init__(self, projects: ProjectService, i18n: I18n, config: Config) -> None:
        self.projects = projects
        self.i18n = i18n
        self.config = config

    @staticmethod
    def route(
        router: web.UrlDispatcher, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> None:
        for path in PATHS:
            router.add_get(path, handler)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.path == "/projects.json":
            return web.json_response(
                await self.document(), dumps=lambda data: json.dumps(data, ensure_ascii=False)
            )
        if request.path == "/projects.csv":
            body = write_table(await export_rows(self.projects), "projects.csv")
            return web.Response(
                body=body,
                content_type="text/csv",
                charset="utf-8",
                headers={"Content-Disposition": 'inline; filename="projects.csv"'},
            )
        locale = texts.page_locale(
            request.query.get("lang"),
            request.headers.get("Accept-Language", ""),
            self.config.settings.default_locale,
        )
        return web.Response(text=await self.page(locale), content_type="text/html", charset="utf-8")

    async def document(self) -> dict[str, Any]:
        listed = await self.projects.listing()
        updates = await self.projects.updates_of([item.project.id for item in listed])
        return {
            "projects": [
                self._record(item, updates.get(item.project.id, []))
                for item in sorted(listed, key=lambda i: i.project.external_id)
            ]
        }

    def _record(self, item: Listed, updates: list[ProjectUpdate]) -> dict[str, Any]:
        project, municipality = item.project, self.config.municipality
        team = municipality.team_by_id.get(project.team_id)
        return {
            "id": project.id,
            "external_id": project.external_id,
            "name": {"pl": project.name_pl, "lt": project.name_lt, "en": project.name_en},
            "summary": {"pl": project.summary_pl, "lt": project.summary_lt, "en": project.summary_en},
            "elderships": [
                {"id": eid, "pl": e.pl, "lt": e.lt}
                for eid in project.elderships
                if (e := municipality.eldership_by_id.get(eid))
            ],  # empty: the whole district
            "team": {
                "id": project.team_id,
                "pl": team.name.pl if team else None,
                "lt": team.name.lt if team else None,
            },
            "status": project.status,
            "progress": project.progress,
            "budget": project.budget,
            "currency": "EUR",
            "funding": project.funding,
            "starts_on": project.starts_on.isoformat() if project.starts_on else None,
            "place": {
                "latitude": project.latitude,
                "longitude": project.longitude,
                "address": project.address,
            },
            "link": project.link,
            "slip_days": item.slipped,
            "milestones": [
                {
                    "number": m.number,
                    "title": {"pl": m.title_pl, "lt": m.title_lt, "en": m.title_en},
                    "baseline_due": m.baseline_due.isoformat(),
                    "current_due": m.current_due.isoformat(),
                    "status": m.status,
                    "date_met": m.met_on.isoformat() if m.met_on else None,
                    "slip_days": project_texts.slip_days(m),
                    "reason": m.reason,
                }
                for m in item.milestones
            ],
            "updates": [
                {
                    "date": u.at.date().isoformat(),
                    "text": {"pl": u.text_pl, "lt": u.text_lt},
                    "photos": len(u.photos),
                }
                for u in updates
            ],
        }

    async def page(self, locale: str) -> str:
        listed = sorted(await self.projects.listing(), key=lambda i: i.project.external_id)
        with self.i18n.context(), self.i18n.use_locale(locale):
            title = _("Projects of {municipality}").format(
                municipality=self.config.municipality.name.get(locale)
            )
            languages = " · ".join(
                f'<a href="?lang={code}" hreflang="{code}" lang="{code}">{escape(name)}</a>'
                if code != locale
                else f"<strong>{escape(name)}</strong>"
                for code, name in texts.LANGUAGE_NAMES.items()
            )
            language, also, empty = (
                escape(_("Language")),
                escape(_("Also as open data:")),
                escape(_("There are no projects yet.")),
            )
            parts = [
                f'<!doctype html><html lang="{locale}"><head><meta charset="utf-8">',
                '<meta name="viewport" content="width=device-width, initial-scale=1">',
                f"<title>{escape(title)}</title>",
                "<style>body{font-family:system-ui,sans-serif;max-width:52rem;margin:0 auto;padding:1rem;line-height:1.5;overflow-wrap:anywhere}"
                "table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #ccc;padding:.3rem;text-align:left;vertical-align:top}"
                ".late{color:#a00000}section{margin-bottom:2rem}"
                # On a phone each milestone is a block of labelled lines: nothing scrolls sideways.
                "caption{text-align:left;font-weight:bold}@media (max-width:40rem){table,caption,tbody,tr,td{display:block}thead{position:absolute;left:-10000px}"
                'tr{border-bottom:1px solid #ccc;padding:.3rem 0}td{border:0;padding:0}td::before{content:attr(data-label) ": ";font-weight:bold}}'
                "</style></head><body>",
                f'<header><nav aria-label="{language}">{languages}</nav><h1>{escape(title)}</h1>',
                f'<p>{also} <a href="projects.json">JSON</a> · <a href="projects.csv">CSV</a></p></header><main>',
            ]
            for item in listed:
                parts.append(self._section(item))
            if not listed:
                parts.append(f"<p>{empty}</p>")
            parts.append("</main></body></html>")
        return "\n".join(parts)

    def _section(self, item: Listed) -> str:
        project = item.project
        facts = [
            _("Status: {status} · progress {progress}%").format(
                status=project_texts.status_label(project.status), progress=project.progress
            ),
            _("Where: {where}").format(where=project_texts.where(project, self.config.municipality)),
            _("Budget: {budget} · funding: {funding}").format(
                budget=project_texts.budget(project), funding=project.funding or "—"
            ),
        ]
        if item.slipped > 0:
            facts.append(
                _("⚠️ Behind its first plan by {duration}").format(
                    duration=project_texts.duration(item.slipped)
                )
            )
        headers = (_("Milestone"), _("Planned for"), _("Due now"), _("State"), _("Slip and why"))
        labels = [escape(h) for h in headers]
        late = ' class="late"'
        rows = []
        for m in item.milestones:
            moved = project_texts.slip(m)  # its reason escaped inside
            cells = (
                escape(project_texts.title(m)),
                escape(texts.day(m.baseline_due)),
                escape(texts.day(m.current_due)),
                escape(project_texts.milestone_label(m.status)),
                moved or "—",
            )
            rows.append(
                "<tr>"
                + "".join(
                    f'<td data-label="{label}"{late if i == 4 and moved else ""}>{cell}</td>'
                    for i, (label, cell) in enumerate(zip(labels, cells, strict=True))
                )
                + "</tr>"
            )
        caption = escape(_("Milestones"))
        head = "".join(f'<th scope="col">{label}</th>' for label in labels)
        table = (
            f"<table><caption>{caption}</caption><thead><tr>{head}</tr></thead><tbody>"
            + "".join(rows)
            + "</tbody></table>"
            if rows
            else ""
        )
        link = f'<p><a href="{escape(project.link)}">{escape(project.link)}</a></p>' if project.link else ""
        return (
            f'<section id="{escape(project.external_id)}" aria-labelledby="h-{project.id}"><h2 id="h-{project.id}">{escape(project_texts.name(project))}</h2>'
            f"<p>{escape(project_texts.summary(project))}</p><ul>"
            + "".join(f"<li>{escape(fact)}</li>" for fact in facts)
            + f"</ul>{table}{link}</section>"
        )
