"""`petent sandbox`: the whole system on one machine, without Telegram, a token or internet.

One aiohttp server on 127.0.0.1 serves the Bot API emulator, its control API and a web chat
page; the bot runs in the same process against the emulator over HTTP, with an embedded SQLite
store that starts empty each time. Ready to use: four teams in their groups (the front office,
the roads department, the Avižieniai eldership and the director's office, which overdue cases
escalate to), the communications group, and demo residents. A roads or street-lighting case goes
to the roads department, any case in Avižieniai to the eldership, the rest to the front office;
the card's "Pass to another team" moves a case between them. The bot's own routes are served
beside the page, so that a newcomer sees what an operator scrapes: /healthz, /metrics (in
production on the operators' listener, OPS_LISTEN) and the Open311 GeoReport v2 API (/open311/v2/,
the client `demo` with the key SANDBOX_OPEN311_KEY), and the projects' open data (/projects,
/projects.json, /projects.csv): the sample register is imported at the start through the importer
itself.

The sandbox builds its own settings: it reads neither `.env` nor the environment, so that a
production configuration beside it (a document system's webhooks, a web port) is never used.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.config import Config, load_config
from bot.municipality import Municipality
from bot.sandbox.control import controlled_emulator
from bot.sandbox.emulator import Emulator
from bot.services.project_import import SAMPLE, apply, plan_text, read_table
from bot.services.projects import Actor
from bot.settings import DEFAULT_MUNICIPALITY_FILE
from bot.store.migrate import upgrade
from bot.web import add_ops_routes, add_public_routes

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)

TOKEN = "100200300:SANDBOX-token-only-for-the-local-emulator"
CLERKS_GROUP = -1001000000001
COMMS_GROUP = -1001000000002
ROADS_GROUP = -1001000000003
ELDERSHIP_GROUP = -1001000000004
DIRECTOR_GROUP = -1001000000005
STATIC_DIR = Path(__file__).resolve().parent / "static"
DATA_DIR = Path("data")
DATA_FILE = DATA_DIR / "sandbox.db"
SANDBOX_OPEN311_KEY = "demo-key-for-the-sandbox-only"  # docs/open311.md's curl calls use it
FILES_DIR = DATA_DIR / "sandbox-files"  # the files residents and clerks send, as the municipality keeps them


def teams_file(
    path: Path,
    *,
    front: int,
    roads: int,
    eldership: int,
    director: int,
    roads_heads: list[int],
    roads_members: list[int],
    eldership_members: list[int],
    director_heads: list[int],
) -> Path:
    """The default municipality with four teams and their routing (the sandbox's, and the tests')."""
    path.write_text(
        DEFAULT_MUNICIPALITY_FILE.read_text(encoding="utf-8")
        + f"""
[[teams]]
id = "front"
chat_id = {front}
name = {{ pl = "Biuro Obsługi Mieszkańców", lt = "Gyventojų aptarnavimo skyrius", en = "Front office" }}

[[teams]]
id = "roads"
chat_id = {roads}
name = {{ pl = "Wydział Dróg", lt = "Kelių skyrius", en = "Roads department" }}
heads = {roads_heads}
members = {roads_members}

[[teams]]
id = "avizieniai"
chat_id = {eldership}
name = {{ pl = "Starostwo Awiżenie", lt = "Avižienių seniūnija", en = "Avižieniai eldership" }}
members = {eldership_members}

[[places]]
id = "avizieniai-office"
team = "avizieniai"
eldership = "avizieniai"
name = {{ pl = "Starostwo Awiżenie", lt = "Avižienių seniūnija", en = "Avižieniai Eldership" }}

[[teams]]
id = "director"
chat_id = {director}
name = {{ pl = "Gabinet Dyrektora", lt = "Direktoriaus kabinetas", en = "Director's office" }}
heads = {director_heads}

[routing]
default_team = "front"
escalation_team = "director"

[[routing.rules]]
team = "roads"
categories = ["roads", "lighting"]

[[routing.rules]]
team = "avizieniai"
elderships = ["avizieniai"]
""",
        encoding="utf-8",
    )
    return path


def build_emulator() -> tuple[Emulator, Path]:
    """The emulator with its people and groups, and the municipality file naming them."""
    emulator = controlled_emulator(TOKEN)
    emulator.add_user("Anna", "pl", last_name="Nowak")
    emulator.add_user("Jonas", "lt", last_name="Petrauskas")
    ona = emulator.add_user("Ona", "lt", last_name="Kazlauskienė")
    petras = emulator.add_user("Petras", "lt", last_name="Jankauskas")
    rimas = emulator.add_user("Rimas", "lt", last_name="Stankevičius")
    aldona = emulator.add_user("Aldona", "lt", last_name="Mickevič")
    vida = emulator.add_user("Vida", "lt", last_name="Žukauskienė")
    rasa = emulator.add_user("Rasa", "lt", last_name="Vaitkutė")
    emulator.add_group(
        "Biuro Obsługi · Aptarnavimo skyrius",
        forum=True,
        members=[ona["id"], petras["id"]],
        chat_id=CLERKS_GROUP,
    )
    emulator.add_group(
        "Wydział Dróg · Kelių skyrius", forum=True, members=[petras["id"], rimas["id"]], chat_id=ROADS_GROUP
    )
    emulator.add_group(
        "Starostwo Awiżenie · Avižienių seniūnija",
        forum=True,
        members=[aldona["id"]],
        chat_id=ELDERSHIP_GROUP,
    )
    emulator.add_group(
        "Gabinet Dyrektora · Direktoriaus kabinetas", members=[vida["id"]], chat_id=DIRECTOR_GROUP
    )
    emulator.add_group("Komunikacja · Komunikacija", members=[rasa["id"]], chat_id=COMMS_GROUP)
    emulator.chats[CLERKS_GROUP].admins.add(ona["id"])
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    municipality = teams_file(
        DATA_DIR / "sandbox-municipality.toml",
        front=CLERKS_GROUP,
        roads=ROADS_GROUP,
        eldership=ELDERSHIP_GROUP,
        director=DIRECTOR_GROUP,
        roads_heads=[rimas["id"]],
        roads_members=[petras["id"]],
        eldership_members=[aldona["id"]],
        director_heads=[vida["id"]],
    )
    return emulator, municipality


def roles(emulator: Emulator, municipality: Municipality) -> dict[int, dict[int, str]]:
    """Whom each member of a group plays there (the page's "as" picker shows it): the
    communications staff, the group's administrator, a head of a team there, a member of one."""
    played: dict[int, dict[int, str]] = {}
    for chat_id, chat in emulator.chats.items():
        if chat.info["type"] == "private":
            continue
        teams = [team for team in municipality.teams if team.chat_id == chat_id]
        for user_id in chat.members:
            if chat_id == COMMS_GROUP:
                role = "communications"
            elif user_id in chat.admins:
                role = "administrator"
            elif any(user_id in team.heads for team in teams):
                role = "head"
            elif any(user_id in team.members or not team.lists_people() for team in teams):
                role = "member"
            else:
                role = "not in the team"
            played.setdefault(chat_id, {})[user_id] = role
    return played


async def import_sample_projects(app: App) -> None:
    """The sample register (bot/municipalities/vilnius-district-projects.csv), through the importer itself."""
    table = read_table(SAMPLE.read_bytes(), SAMPLE.name)
    with app.i18n.context(), app.i18n.use_locale("en"):
        result = await apply(app.projects, table, Actor(None, "make demo"))
    if result.errors:
        raise RuntimeError("the sample projects do not import:\n" + plan_text(result))


def add_page(emulator: Emulator, about: dict[str, Any]) -> None:
    """The web chat page, with this run's control API token in it (and only in it), and what the
    page learns about the people it plays."""
    app = emulator.app
    page = (
        (STATIC_DIR / "index.html")
        .read_text(encoding="utf-8")
        .replace("{{control_token}}", emulator.control_token)
    )

    async def index(_: web.Request) -> web.Response:
        return web.Response(
            text=page,
            content_type="text/html",
            headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
        )

    async def sandbox_about(_: web.Request) -> web.Response:
        return web.json_response(about)

    app.router.add_get("/", index)
    app.router.add_get("/_sandbox/about", sandbox_about)
    app.router.add_static("/static/", STATIC_DIR)


def sandbox_config(api_url: str, municipality: Path) -> Config:
    """The sandbox's own settings: nothing from `.env` or the environment (CASE_WEBHOOKS to a real
    document system, WEB_PORT, REDIS_URL…), whatever the directory it is started in holds.
    /healthz and /metrics are served beside the page, not on a listener of their own."""
    return load_config(
        isolated=True,
        bot_token=TOKEN,
        telegram_api_url=api_url,
        admin_chat_id=CLERKS_GROUP,
        comms_chat_id=COMMS_GROUP,
        database_url=f"sqlite+aiosqlite:///{DATA_FILE}",
        files_dir=FILES_DIR,
        secret_key=secrets.token_hex(32),
        municipality_file=municipality,
        open311_keys=f"demo:{SANDBOX_OPEN311_KEY}",
        ops_listen="off",
    )


async def run_sandbox(host: str, port: int) -> None:
    emulator, municipality = build_emulator()
    # The port first: a second sandbox on it stops here, before it empties the first one's store;
    # and the bot, built before the server starts (its routes join the page's), needs the address.
    listening = socket.create_server((host, port))
    bound = listening.getsockname()
    url = f"http://{bound[0]}:{bound[1]}"
    for leftover in DATA_FILE.parent.glob(DATA_FILE.name + "*"):
        leftover.unlink()  # every sandbox starts empty
    shutil.rmtree(FILES_DIR, ignore_errors=True)
    config = sandbox_config(url, municipality)
    from bot.app import build_app

    app = build_app(config)
    # One web app: the page, the emulator, and the bot's /healthz, /metrics and Open311.
    add_ops_routes(emulator.app.router, app)
    add_public_routes(emulator.app.router, app)
    add_page(emulator, {"timezone": config.settings.timezone, "roles": roles(emulator, config.municipality)})
    await upgrade(
        app.database
    )  # the API reads the store at once (the bot's start upgrades it again, a no-op)
    await import_sample_projects(app)
    runner = await emulator.serve(sock=listening)
    print(
        f"Petent sandbox: open {url}/ in a browser (Ctrl-C stops it)\n"
        f"  what an operator scrapes: {url}/healthz and {url}/metrics; Open311: {url}/open311/v2/services.json; projects: {url}/projects",
        flush=True,
    )
    try:
        await app.run()
    finally:
        await app.close()
        await runner.cleanup()
