"""The Open311 GeoReport v2 API (http://wiki.open311.org/GeoReport_v2), on the bot's web server.

A resident who comes through an Open311 client (FixMyStreet, a city's app) submits and reads the
answer there; the case is the same as one made in Telegram: its number (`service_request_id`),
legal deadline (`expected_datetime`), team (`agency_responsible`) and card in the team's group.

Services are the municipality file's categories, one per kind of case: `report-roads` is a
report of a problem about roads. Every resource answers in XML or JSON by its extension
(`services.xml`, `requests/VRS-2026-000042.json`; XML without one), in the language of the
`locale` parameter or the Accept-Language header (Lithuanian by default). Only POST requests
needs a key (`api_key`, one per client in OPEN311_KEYS).

What the public listing shows: only what the municipality chose to publish, the cases that came
through Open311 and the reports a clerk made public (never a case made in Telegram otherwise, nor
one a clerk registered), and of those never a name, a phone, an e-mail or a Telegram id. Dates are
days (midnight in the municipality's zone), never the minute; `updated_datetime` is the day of the
last public change (a status, publishing), never of a note, a message or an assignment. The
resident's own text and place only for reports of a problem (about a place, not a person) that a
clerk made public, the place rounded to about 100 m; for the rest the service, the days, the team
and the status. `status_notes` is
the municipality's answer (the clerk's final text, or the reason for a redirection or rejection)
for reports that are public or came through Open311, unless a clerk registered them (the closing
text is then the clerk's record of an answer given by phone, e-mail…); for the rest, the status
in words.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import math
import re
import secrets
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from time import monotonic
from typing import Any

from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from aiohttp import web
from multidict import MultiDict, MultiMapping
from sqlalchemy import and_, or_, select
from sqlalchemy import exc as sql_errors
from sqlmodel import col

from bot import clock
from bot.config import Config
from bot.services import texts
from bot.services.case_commands import CaseCommands
from bot.services.cases import AnswerBy, CaseDraft, Contact
from bot.services.deadlines import WorkingCalendar
from bot.services.teams import TeamDirectory
from bot.settings import KIND_CODES, LOCALES, same_secret
from bot.store.db import Database
from bot.store.models import CLOSED_STATUSES, Case, CaseEvent, CaseKind, CaseStatus, Channel, EventKind

log = logging.getLogger(__name__)

API_PATH = "/open311/v2/"
SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
CHANGESET = "2026-12-07T00:00:00Z"  # when this API last changed (service discovery)
DEFAULT_LOCALE = "lt"
FORMATS = {"xml": "text/xml; charset=utf-8", "json": "application/json; charset=utf-8"}
DEFAULT_FORMAT = "xml"  # the format the specification requires
MAX_RESULTS = 1000  # the specification's default query limit
MAX_SPAN = timedelta(days=90)  # nor may a query's dates span more
YEARS = (2000, 2999)  # start_date and end_date
MAX_NUMBERS, NUMBER_MAX = (
    200,
    32,
)  # service_request_id: how many in one query, and how long each (cases.number)
URL_MAX = 500
BODY_MAX = 1024 * 1024  # bytes of a POST's form (aiohttp's default client_max_size)
# What a POST may carry in its URL; the rest (a name, an e-mail, a description, the key…) only in
# the body, as URLs end up in proxies' and servers' access logs.
POST_QUERY = frozenset({"service_code", "lat", "long", "jurisdiction_id", "locale"})
KEY_HEADER = "X-Api-Key"  # where a client may send its api_key instead of the body
_CONTROL_RE = re.compile(
    r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]"
)  # a form's text keeps line breaks and tabs only
_NOT_XML_RE = re.compile(
    "[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)  # characters XML 1.0 cannot carry
# The database cannot be reached (asyncpg raises OSError when connecting) or is overloaded: 503.
UNAVAILABLE = (
    OSError,
    TimeoutError,
    sql_errors.OperationalError,
    sql_errors.InterfaceError,
    sql_errors.TimeoutError,
)
# What moves a listed case's updated_datetime: what the listing shows changing (the status, the
# deadline, the team responsible, being published or hidden), never an internal note, a message,
# an assignment to a clerk, a reminder or an escalation.
PUBLIC_CHANGES = frozenset(
    {EventKind.CREATED, EventKind.STATUS, EventKind.EXTENDED, EventKind.PASSED, EventKind.PUBLISHED}
)
# XML: the element of each item in a list.
_ITEMS = {
    "services": "service",
    "service_requests": "request",
    "errors": "error",
    "attributes": "attribute",
    "endpoints": "endpoint",
    "formats": "format",
}


class Open311Error(Exception):
    """An error in the specification's format: the HTTP status and a description naming the problem."""

    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after  # seconds, for a 429


def service_code(kind: str, category_id: str) -> str:
    return f"{kind}-{category_id}"


def w3(moment: datetime, calendar: WorkingCalendar) -> str:
    """A w3 date and time with the municipality's offset: 2026-11-23T09:00:00+02:00."""
    return moment.astimezone(calendar.tz).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Filters:
    """GET requests' arguments, checked."""

    numbers: tuple[str, ...] = ()  # service_request_id: overrides the rest
    services: tuple[tuple[str, str], ...] = ()  # (kind, category)
    start: datetime | None = None
    end: datetime | None = None
    statuses: frozenset[str] = frozenset()  # open, closed


class RateLimit:
    """At most `burst` requests at once per client, then one every `every` seconds (a token bucket, in
    this process: each replica counts its own). `argument` is what the 429 names."""

    SWEEP_MIN = 1024  # buckets kept before the first look for full ones

    def __init__(
        self, argument: str, burst: int, every: float, clock: Callable[[], float] = monotonic
    ) -> None:
        self.argument, self.burst, self.every, self.clock = argument, burst, every, clock
        self._buckets: dict[str, tuple[float, float]] = {}  # client → (tokens, when counted)
        self._sweep_at = self.SWEEP_MIN

    def take(self, client: str) -> None:
        """Count one request of `client`; Open311Error 429 if it has none left."""
        now = self.clock()
        tokens, then = self._buckets.get(client, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - then) / self.every)
        if tokens < 1:
            wait = math.ceil((1 - tokens) * self.every)
            raise Open311Error(
                429,
                f"{self.argument}: too many requests from {client}; please try again in {wait} seconds",
                retry_after=wait,
            )
        self._buckets[client] = (tokens - 1, now)
        if len(self._buckets) >= self._sweep_at:
            self._forget_full(now)

    def _forget_full(self, now: float) -> None:
        """A full bucket counts as none: forgotten, the map holds only the clients seen within a
        refill, however many addresses an attacker goes through. The next look waits until the map
        has doubled (each request's share stays constant)."""
        self._buckets = {
            c: (t, then)
            for c, (t, then) in self._buckets.items()
            if t + (now - then) / self.every < self.burst
        }
        self._sweep_at = max(self.SWEEP_MIN, 2 * len(self._buckets))


class Open311Service:
    """Services, requests and tokens as the specification describes them, in one language per call."""

    def __init__(
        self,
        database: Database,
        commands: CaseCommands,
        config: Config,
        calendar: WorkingCalendar,
        teams: TeamDirectory,
        i18n: I18n,
    ) -> None:
        self.database = database
        self.commands = commands
        self.config = config
        self.municipality = config.municipality
        self.calendar = calendar
        self.teams = teams
        self.i18n = i18n
        # POSTs per client (its key): a leaked key or a client stuck in a loop must not fill the teams'
        # groups with cards, nor hold up the messages queued behind them for Telegram.
        self.post_limit = RateLimit("api_key", burst=30, every=10.0)
        # Reads per address (anyone may read): a generous burst, then two a second, so that nobody
        # can keep the database busy with listings.
        self.get_limit = RateLimit("request", burst=60, every=0.5)

    def clients(self) -> dict[str, str]:
        return self.config.settings.open311_clients

    # --- services ---

    def services(self, locale: str) -> list[dict[str, Any]]:
        with self.i18n.context(), self.i18n.use_locale(locale):
            return [
                self._service(kind, category.id, locale)
                for kind in KIND_CODES
                for category in self.municipality.categories
            ]

    def _service(self, kind: str, category_id: str, locale: str) -> dict[str, Any]:
        name = self._category_name(category_id, locale)
        group = texts.kind_label(kind)
        return {
            "service_code": service_code(kind, category_id),
            "service_name": name,
            "description": f"{group}: {name}",
            "metadata": False,
            "type": "realtime",
            "keywords": f"{kind}, {category_id}",
            "group": group,
        }

    def service_definition(self, code: str) -> dict[str, Any]:
        self.parse_service(code)
        return {"service_code": code, "attributes": []}  # no service asks for more than the standard fields

    def parse_service(self, code: str, argument: str = "service_code") -> tuple[str, str]:
        kind, _dash, category_id = code.strip().partition("-")
        if kind not in KIND_CODES or category_id not in self.municipality.category_by_id:
            raise Open311Error(404, f"{argument}: unknown service {code!r}; GET services lists them")
        return kind, category_id

    def _category_name(self, category_id: str, locale: str) -> str:
        category = self.municipality.category_by_id.get(category_id)
        return category.get(locale) if category else category_id  # a category removed from the file since

    # --- creating a request ---

    async def create(self, form: MultiMapping[str], locale: str) -> list[dict[str, Any]]:
        """POST requests: a case like one made in Telegram, for the key's client."""
        client = self._client(form.get("api_key"))
        self.post_limit.take(client)
        code = _text(form, "service_code", 50)
        if not code:
            raise Open311Error(400, "service_code: missing; GET services lists them")
        kind, category_id = self.parse_service(code)
        latitude, longitude = _coordinates(form)
        address = _text(form, "address_string", CaseDraft.ADDRESS.max) or None
        address_id = _text(form, "address_id", 64)
        if address is None and address_id:
            address = f"address_id {address_id}"
        if latitude is None and address is None:
            raise Open311Error(400, "location: send lat and long, address_string or address_id")
        description = _text(form, "description", CaseDraft.DESCRIPTION.max)
        if CaseDraft.DESCRIPTION.problem(description):
            raise Open311Error(
                400,
                f"description: describe the matter in {CaseDraft.DESCRIPTION.min} to {CaseDraft.DESCRIPTION.max} characters",
            )
        media_url = _text(form, "media_url", URL_MAX)
        if media_url:
            if not re.match(r"https?://\S+$", media_url):
                raise Open311Error(400, "media_url: must be an http(s) URL")
            description = f"{description}\n\n{media_url}"
        token = secrets.token_hex(16)
        draft = CaseDraft(
            resident_id=None,
            locale=locale,
            kind=kind,
            category_id=category_id,
            description=description,
            latitude=latitude,
            longitude=longitude,
            address=address,
            channel=Channel.OPEN311,
            contact=_contact(form),
            open311_client=client,
            open311_token=token,
        )
        case = (await self.commands.open(draft, clock.now())).case
        log.info(
            "open311 request received", extra={"client": client, "case": case.number, "service_code": code}
        )
        with self.i18n.context(), self.i18n.use_locale(locale):
            notice = _("Registered as {number}. Handled by: {team}. Answer due: {date}").format(
                number=case.number,
                team=self.teams.get(case.team_id).name.get(locale),
                date=texts.day(case.due),
            )
        return [
            {
                "service_request_id": case.number,
                "service_notice": notice,
                "account_id": _text(form, "account_id", 64) or None,
                "token": token,
            }
        ]

    def _client(self, key: str | None) -> str:
        clients = self.clients()
        if not key:
            raise Open311Error(403, "api_key: missing; the municipality gives each client its key")
        client = next((name for known, name in clients.items() if same_secret(key, known)), None)
        if client is None:
            raise Open311Error(403, "api_key: not valid; can't proceed with create_request")
        return client

    # --- reading requests ---

    def filters(self, query: MultiMapping[str]) -> Filters:
        """GET requests' arguments, checked; a wrong one is named (400, or 404 for an unknown service)."""
        numbers = tuple(
            n.strip().upper()
            for value in query.getall("service_request_id", [])
            for n in value.split(",")
            if n.strip()
        )
        if len(numbers) > MAX_NUMBERS:
            raise Open311Error(400, f"service_request_id: at most {MAX_NUMBERS} numbers at once")
        if any(len(number) > NUMBER_MAX for number in numbers):
            raise Open311Error(400, f"service_request_id: a number has at most {NUMBER_MAX} characters")
        services = tuple(
            self.parse_service(c)
            for value in query.getall("service_code", [])
            for c in value.split(",")
            if c.strip()
        )
        statuses = frozenset(
            s.strip().lower() for value in query.getall("status", []) for s in value.split(",") if s.strip()
        )
        if statuses - {"open", "closed"}:
            raise Open311Error(
                400, f"status: {', '.join(sorted(statuses - {'open', 'closed'}))} is not open or closed"
            )
        start, end = _moment(query, "start_date"), _moment(query, "end_date")
        if start and end and start > end:
            raise Open311Error(400, "start_date: after end_date")
        if start and end and end - start > MAX_SPAN:
            raise Open311Error(400, "start_date, end_date: may span at most 90 days")
        return Filters(numbers, services, start, end, statuses)

    async def requests(self, filters: Filters, locale: str) -> list[dict[str, Any]]:
        query = select(Case).where(published())
        if filters.numbers:
            query = query.where(col(Case.number).in_(filters.numbers))  # overrides every other argument
        else:
            end = filters.end or ((filters.start + MAX_SPAN) if filters.start else clock.now())
            start = filters.start or end - MAX_SPAN
            # On the published day, not the minute: a narrow window must not tell the time a case came.
            first, after = self._day_start(start, up=True), self._day_start(end) + timedelta(days=1)
            query = query.where(col(Case.received_at) >= first, col(Case.received_at) < after)
            if filters.services:
                query = query.where(
                    or_(
                        *(
                            and_(col(Case.kind) == kind, col(Case.category_id) == category)
                            for kind, category in filters.services
                        )
                    )
                )
            if filters.statuses == {"open"}:
                query = query.where(col(Case.status).not_in(list(CLOSED_STATUSES)))
            elif filters.statuses == {"closed"}:
                query = query.where(col(Case.status).in_(list(CLOSED_STATUSES)))
        query = query.order_by(col(Case.received_at).desc(), col(Case.id).desc()).limit(MAX_RESULTS)
        async with self.database.read() as session:
            cases = list((await session.execute(query)).scalars())
            updated, answers = await self._trail_facts(session, cases)
        with self.i18n.context(), self.i18n.use_locale(locale):
            return [self._request(case, updated.get(case.id), answers.get(case.id), locale) for case in cases]

    async def request(self, number: str, locale: str) -> list[dict[str, Any]]:
        found = await self.requests(Filters(numbers=(number.strip().upper(),)), locale)
        if not found:
            raise Open311Error(404, f"service_request_id: {number} not found")
        return found

    async def token(self, token: str) -> list[dict[str, Any]]:
        async with self.database.read() as session:
            number = (
                await session.execute(
                    select(col(Case.number)).where(col(Case.open311_token) == token.strip())
                )
            ).scalar_one_or_none()
        if number is None:
            raise Open311Error(404, f"token: {token} not found")
        return [{"service_request_id": number, "token": token}]

    async def _trail_facts(
        self, session: Any, cases: list[Case]
    ) -> tuple[dict[int, datetime], dict[int, str]]:
        """When each case last changed, and the public answer of those whose answer is public."""
        ids = [case.id for case in cases]
        if not ids:
            return {}, {}
        changes = await session.execute(
            select(col(CaseEvent.case_id), col(CaseEvent.kind), col(CaseEvent.at), col(CaseEvent.data)).where(
                col(CaseEvent.case_id).in_(ids), col(CaseEvent.kind).in_(list(PUBLIC_CHANGES))
            )
        )
        updated: dict[int, datetime] = {}
        for case_id, kind, at, data in changes.all():
            if kind == EventKind.STATUS and (data or {}).get("to") == CaseStatus.ASSIGNED:
                continue  # a clerk took it or was given it: internal (the public status stays "received")
            updated[case_id] = max(updated.get(case_id, clock_aware(at)), clock_aware(at))
        # A duplicate's closing text is its original's number (status notes: "Duplicate of …").
        answered = [
            case.id
            for case in cases
            if case.status in CLOSED_STATUSES
            and (_answer_is_public(case) or case.status == CaseStatus.DUPLICATE)
        ]
        answers: dict[int, str] = {}
        if answered:
            rows = await session.execute(
                select(CaseEvent)
                .where(
                    col(CaseEvent.case_id).in_(answered),
                    col(CaseEvent.kind).in_([EventKind.STATUS, EventKind.MESSAGE_OUT]),
                )
                .order_by(col(CaseEvent.case_id), col(CaseEvent.at), col(CaseEvent.id))
            )
            answer_so_far: dict[int, str | None] = {}
            for event in rows.scalars():
                if event.kind == EventKind.MESSAGE_OUT:
                    answer_so_far[event.case_id] = (
                        event.text
                    )  # the clerk's final answer comes just before the closing status
                elif (event.data or {}).get("to") in CLOSED_STATUSES:
                    text = event.text or answer_so_far.get(
                        event.case_id
                    )  # a redirection's or a rejection's reason, or the answer
                    if text:
                        answers[event.case_id] = text
                    answer_so_far.pop(event.case_id, None)
        return updated, answers

    def _request(
        self, case: Case, updated: datetime | None, answer: str | None, locale: str
    ) -> dict[str, Any]:
        shown = case.kind == CaseKind.REPORT and case.public and case.purged_at is None
        closed = case.status in CLOSED_STATUSES
        if closed and case.closed_at is not None:  # the closing, also where retention has emptied the trail
            updated = max(updated or case.closed_at, case.closed_at)
        expected = datetime.combine(case.due, time(23, 59, 59), tzinfo=self.calendar.tz)
        latitude, longitude = rounded_place(case.latitude, case.longitude) if shown else (None, None)
        return {
            "service_request_id": case.number,
            "status": "closed" if closed else "open",
            "status_notes": _("Duplicate of {number}").format(number=answer)
            if case.status == CaseStatus.DUPLICATE and answer
            else answer or texts.status_label(public_status(case.status)),
            "service_name": self._category_name(case.category_id, locale),
            "service_code": service_code(case.kind, case.category_id),
            "description": case.description if shown else None,
            "agency_responsible": self.teams.get(case.team_id).name.get(locale),
            "service_notice": None,
            "requested_datetime": w3(self._day_start(case.received_at), self.calendar),
            "updated_datetime": w3(
                self._day_start(max(updated or case.received_at, case.received_at)), self.calendar
            ),
            "expected_datetime": w3(expected, self.calendar),
            "address": case.address if shown else None,
            "address_id": None,
            "zipcode": None,
            "lat": latitude,
            "long": longitude,
            "media_url": None,
        }

    def _day_start(self, moment: datetime, up: bool = False) -> datetime:
        """The start of `moment`'s day in the municipality's zone (with `up`, of the next day unless
        `moment` is a day's start): what the listing publishes instead of the minute."""
        local = moment.astimezone(self.calendar.tz)
        start = datetime.combine(local.date(), time(0), tzinfo=self.calendar.tz)
        if up and start < local:
            start = datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=self.calendar.tz)
        return start

    def discovery(self, base_url: str) -> dict[str, Any]:
        return {
            "changeset": CHANGESET,
            "contact": self.municipality.name.lt,
            "key_service": "The municipality gives each client its api_key.",
            "endpoints": [
                {
                    "specification": SPECIFICATION,
                    "url": base_url,
                    "changeset": CHANGESET,
                    "type": "production",
                    "formats": ["text/xml", "application/json"],
                }
            ],
        }


def public_status(status: str) -> str:
    """The status as the public reads it: who works on a case is internal, so a case taken or
    given to a clerk still reads as received until the work starts (or it closes)."""
    return CaseStatus.NEW if status == CaseStatus.ASSIGNED else status


def published() -> Any:
    """The cases the listing shows: what the municipality chose to publish, i.e. those that came
    through Open311 (their client reads them there) and reports a clerk made public. A case made
    in Telegram, or registered by a clerk, is nobody else's business."""
    return or_(
        col(Case.channel) == Channel.OPEN311,
        and_(col(Case.kind) == CaseKind.REPORT, col(Case.public).is_(True)),
    )


def rounded_place(latitude: float | None, longitude: float | None) -> tuple[float | None, float | None]:
    """A public report's place to about PLACE_METRES: latitude to 3 decimals (111 m), longitude to
    the step that is as many metres at that latitude (a degree of longitude shrinks with its cosine)."""
    if latitude is None or longitude is None:
        return None, None
    lat = round(latitude, 3)
    step = 0.001 / max(math.cos(math.radians(lat)), 0.01)
    return lat, max(-180.0, min(180.0, round(round(longitude / step) * step, 4)))


def clock_aware(moment: datetime) -> datetime:
    """An aggregate's time, should it come back without the store's type (SQLite keeps no zone): it is UTC."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _answer_is_public(case: Case) -> bool:
    """The municipality's answer is published for reports made public, and for cases whose
    resident came through Open311 and reads the answer there (requests and complaints get the
    status in words only: an answer to a person may speak of that person). A case a clerk
    registered (Channel.STAFF) never: its closing text is the clerk's record of how the person was
    answered outside Telegram ("called Jonas at +370…"), written for the file, not for the public."""
    if case.purged_at is not None or case.channel == Channel.STAFF:
        return False
    return case.kind == CaseKind.REPORT and (case.public or case.channel == Channel.OPEN311)


async def _form(request: web.Request) -> MultiMapping[Any]:
    """A POST's form; a body that is not one (a broken multipart, a bad encoding) is the client's
    mistake: a 400 and one line in the log, never a traceback."""
    try:
        return await request.post()
    except web.HTTPRequestEntityTooLarge:
        raise
    except Exception as exc:  # whatever the parser raises (aiohttp's InvalidHeader, ValueError, UnicodeDecodeError…) is about the body
        log.warning("open311 request refused: the body is not a form", extra={"error": type(exc).__name__})
        raise Open311Error(
            400,
            "request: the body is not a valid form (application/x-www-form-urlencoded or multipart/form-data)",
        ) from None


def _text(form: MultiMapping[str], name: str, limit: int) -> str:
    value = (form.get(name) or "").strip()
    if len(value) > limit:
        raise Open311Error(400, f"{name}: at most {limit} characters")
    if _CONTROL_RE.search(value):
        raise Open311Error(400, f"{name}: control characters are not allowed")
    return value


def _coordinates(form: MultiMapping[str]) -> tuple[float | None, float | None]:
    lat, long = _text(form, "lat", 32), _text(form, "long", 32)
    if not lat and not long:
        return None, None
    if not lat or not long:
        raise Open311Error(400, "lat, long: send both")
    try:
        latitude, longitude = float(lat), float(long)
    except ValueError:
        raise Open311Error(400, "lat, long: must be numbers (WGS84 degrees)") from None
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        raise Open311Error(400, "lat, long: out of range (-90..90, -180..180)")
    return latitude, longitude


def _contact(form: MultiMapping[str]) -> Contact | None:
    """Whom the clerks may contact: the person's name, e-mail and phone, when the client sent them."""
    name = " ".join(
        part
        for part in (
            _text(form, "first_name", CaseDraft.NAME.max),
            _text(form, "last_name", CaseDraft.NAME.max),
        )
        if part
    )
    email, phone = _text(form, "email", CaseDraft.EMAIL_MAX), _text(form, "phone", CaseDraft.PHONE_MAX)
    if email and CaseDraft.email_problem(email):
        raise Open311Error(400, "email: not an e-mail address")
    if phone and CaseDraft.phone_problem(phone):
        raise Open311Error(400, "phone: not a phone number")
    if not (name or email or phone):
        return None
    answer_by = AnswerBy.EMAIL if email else AnswerBy.PHONE if phone else AnswerBy.OPEN311
    return Contact(name=name, answer_by=answer_by, phone=phone or None, email=email or None)


def _moment(query: MultiMapping[str], name: str) -> datetime | None:
    value = (query.get(name) or "").strip()
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise Open311Error(
            400, f"{name}: {value!r} is not a w3 date and time such as 2026-11-01T00:00:00Z"
        ) from None
    if moment.tzinfo is None:
        raise Open311Error(
            400, f"{name}: give the time zone, e.g. 2026-11-01T00:00:00Z or 2026-11-01T00:00:00+02:00"
        )
    if (
        not YEARS[0] <= moment.year <= YEARS[1]
    ):  # the 90 days around year 1 or 9999 are not dates Python can count
        raise Open311Error(400, f"{name}: must be between {YEARS[0]} and {YEARS[1]}")
    return moment


# --- rendering -------------------------------------------------------------------------------


def render(data: Any, root: str, fmt: str, status: int = 200) -> web.Response:
    """The specification's JSON (a list, or one object) or XML (`root` holding an element per item)."""
    if fmt == "json":
        body = (
            json.dumps(data, ensure_ascii=False).encode("utf-8", "replace").decode()
        )  # a lone surrogate cannot be UTF-8
    else:
        element = ET.Element(root)
        _fill(element, root, data)
        body = '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(element, encoding="unicode")
    return web.Response(body=body.encode(), status=status, headers={"Content-Type": FORMATS[fmt]})


def _fill(element: ET.Element, name: str, value: Any) -> None:
    if isinstance(value, list):
        for item in value:
            _fill(ET.SubElement(element, _ITEMS.get(name, "item")), _ITEMS.get(name, "item"), item)
    elif isinstance(value, dict):
        for key, item in value.items():
            _fill(ET.SubElement(element, key), key, item)
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    elif value is not None:
        element.text = _NOT_XML_RE.sub(
            "\ufffd", str(value)
        )  # an echoed argument, a text from Telegram: the document stays XML


def error(status: int, description: str, fmt: str) -> web.Response:
    return render([{"code": status, "description": description}], "errors", fmt, status)


class Open311Api:
    """The HTTP side: one handler for everything under API_PATH (the bot's web app and the sandbox mount it)."""

    def __init__(self, service: Open311Service) -> None:
        self.service = service

    @staticmethod
    def route(router: web.UrlDispatcher, handler: Any) -> None:
        router.add_route("*", API_PATH + "{tail:.*}", handler)

    async def handle(self, request: web.Request) -> web.Response:
        tail = request.match_info.get("tail", "")
        parts = [part for part in tail.split("/") if part]
        fmt = DEFAULT_FORMAT
        if parts and "." in parts[-1]:
            parts[-1], extension = parts[-1].rsplit(".", 1)
            if extension.lower() not in FORMATS:
                return error(400, f"format: .{extension} is not served; use .xml or .json", DEFAULT_FORMAT)
            fmt = extension.lower()
        if (
            request.method == "POST"
        ):  # whatever the server allows (the sandbox's emulator takes 64 MB uploads)
            if (request.content_length or 0) > BODY_MAX:  # said before it is sent: refused without reading it
                return error(
                    413, f"request: the body is larger than the {BODY_MAX // (1024 * 1024)} MB allowed", fmt
                )
            request = request.clone(client_max_size=BODY_MAX)
        try:
            return await self._dispatch(request, parts, fmt)
        except Open311Error as exc:
            response = error(exc.status, exc.description, fmt)
            if exc.retry_after is not None:
                response.headers["Retry-After"] = str(exc.retry_after)
            return response
        except web.HTTPRequestEntityTooLarge:  # aiohttp's client_max_size, reading the form
            return error(
                413,
                f"request: the body is larger than the {request.client_max_size // (1024 * 1024)} MB allowed",
                fmt,
            )
        except (
            UNAVAILABLE
        ) as exc:  # the database is down or overloaded: a client should try again, not give up
            log.warning(
                "open311 request failed: the database is unavailable", extra={"error": type(exc).__name__}
            )
            response = error(
                503, "the municipality's service is unavailable for now; please try again later", fmt
            )
            response.headers["Retry-After"] = "60"
            return response
        except Exception:
            log.exception("open311 request failed")
            return error(400, "general service error; please tell the municipality", fmt)

    async def _dispatch(self, request: web.Request, parts: list[str], fmt: str) -> web.Response:
        method, resource = request.method, parts[0] if parts else ""
        if method == "POST" and parts == ["requests"]:
            if "api_key" in request.query:
                raise Open311Error(
                    400,
                    f"api_key: send it in the body of the POST (a form field) or in the {KEY_HEADER} header, never in the URL (URLs are logged)",
                )
            refused = next((name for name in request.query if name not in POST_QUERY), None)
            if refused is not None:
                raise Open311Error(
                    400, f"{refused}: send it in the body of the POST, not in the URL (URLs are logged)"
                )
            form = MultiDict(request.query)
            form.update(
                {name: value for name, value in (await _form(request)).items() if isinstance(value, str)}
            )  # the body wins; files are not taken
            if KEY_HEADER in request.headers and "api_key" not in form:
                form["api_key"] = request.headers[KEY_HEADER]
            locale = self._locale(request, form)
            return render(await self.service.create(form, locale), "service_requests", fmt)
        if method not in ("GET", "HEAD"):
            raise Open311Error(405, f"method: {method} is not served on {request.path}")
        self.service.get_limit.take(self._address(request))
        locale = self._locale(request, request.query)
        if parts == ["discovery"]:
            # The configured address, not the Host header: a forged one would have caches serve an attacker's URL.
            base = self.service.config.settings.public_base_url or str(request.url.origin())
            return render(self.service.discovery(base + API_PATH), "discovery", fmt)
        if parts == ["services"]:
            return render(self.service.services(locale), "services", fmt)
        if resource == "services" and len(parts) == 2:
            return render(self.service.service_definition(parts[1]), "service_definition", fmt)
        if parts == ["requests"]:
            return render(
                await self.service.requests(self.service.filters(request.query), locale),
                "service_requests",
                fmt,
            )
        if resource == "requests" and len(parts) == 2:
            return render(await self.service.request(parts[1], locale), "service_requests", fmt)
        if resource == "tokens" and len(parts) == 2:
            return render(await self.service.token(parts[1]), "service_requests", fmt)
        raise Open311Error(404, f"resource: {request.path} not found; see {SPECIFICATION}")

    def _address(self, request: web.Request) -> str:
        """Whom a read counts against: the connection's address or, behind WEB_PROXY_HOPS proxies, the
        one the outermost of them appended to X-Forwarded-For (whatever comes before it is the
        client's own word). IPv6 by its /64, what one host is given; IPv4 mapped to IPv6 as IPv4."""
        address, hops = request.remote or "", self.service.config.settings.web_proxy_hops
        if hops:
            forwarded = [
                part.strip()
                for header in request.headers.getall("X-Forwarded-For", [])
                for part in header.split(",")
                if part.strip()
            ]
            address = forwarded[max(0, len(forwarded) - hops)] if forwarded else address
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return request.remote or ""
        if isinstance(ip, ipaddress.IPv6Address):
            return str(ip.ipv4_mapped or ipaddress.IPv6Network((ip, 64), strict=False))
        return str(ip)

    @staticmethod
    def _locale(request: web.Request, params: MultiMapping[str]) -> str:
        asked = (params.get("locale") or "").strip().lower()
        if asked:
            if asked not in LOCALES:
                raise Open311Error(400, f"locale: {asked} is not served; use lt, pl or en")
            return asked
        for part in request.headers.get("Accept-Language", "").split(","):
            language = part.split(";")[0].strip().lower()[:2]
            if language in LOCALES:
                return language
        return DEFAULT_LOCALE
