"""`petent sandbox`: the whole system on one machine, without Telegram, a token or internet.

One aiohttp server on 127.0.0.1 serves the Bot API emulator, its control API and a web chat
page; the bot runs in the same process against the emulator over HTTP, with an embedded SQLite
store that starts empty each time. Ready to use: four teams in their groups (the front office,
the roads department, the Avižieniai eldership and the director's office, which overdue cases
escalate to), the communications group, and demo residents. A roads or street-lighting case goes
to the roads department, any case in Avižieniai to the eldership, the rest to the front office;
the card's "Pass to another team" moves a case between them. The Open311 GeoReport v2 API is
served beside the page (/open311/v2/, the client `demo` with the key SANDBOX_OPEN311_KEY), and so
are the projects' open data (/projects, /projects.json, /projects.csv): the sample register is
imported at the start through the importer itself.
"""

from __future__ import annotations

import logging
import secrets
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from bot.config import DEFAULT_MUNICIPALITY_FILE, load_config
from bot.open311 import Open311Api, error
from bot.open_projects import OpenProjects
from bot.sandbox.control import controlled_emulator
from bot.sandbox.emulator import Emulator
from bot.services.project_import import SAMPLE, apply, plan_text, read_table
from bot.services.projects import Actor
from bot.store.migrate import upgrade

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
SANDBOX_OPEN311_KEY = "demo-key-for-the-sandbox-only"  # README's curl calls use it
FILES_DIR = DATA_DIR / "sandbox-files"  # the files residents and clerks send, as the municipality keeps them


def teams_file(path: Path, *, front: int, roads: int, eldership: int, director: int, roads_heads: list[int], roads_members: list[int],
               eldership_members: list[int], director_heads: list[int]) -> Path:  # fmt: skip
    """The default municipality with four teams and their routing (the sandbox's, and the tests')."""
    path.write_text(DEFAULT_MUNICIPALITY_FILE.read_text(encoding="utf-8") + f"""
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
""", encoding="utf-8")  # fmt: skip
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
    emulator.add_group("Biuro Obsługi · Aptarnavimo skyrius", forum=True, members=[ona["id"], petras["id"]], chat_id=CLERKS_GROUP)
    emulator.add_group("Wydział Dróg · Kelių skyrius", forum=True, members=[petras["id"], rimas["id"]], chat_id=ROADS_GROUP)
    emulator.add_group("Starostwo Awiżenie · Avižienių seniūnija", forum=True, members=[aldona["id"]], chat_id=ELDERSHIP_GROUP)
    emulator.add_group("Gabinet Dyrektora · Direktoriaus kabinetas", members=[vida["id"]], chat_id=DIRECTOR_GROUP)
    emulator.add_group("Komunikacja · Komunikacija", members=[rasa["id"]], chat_id=COMMS_GROUP)
    emulator.chats[CLERKS_GROUP].admins.add(ona["id"])
    _add_page(emulator.app)
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    municipality = teams_file(
        DATA_DIR / "sandbox-municipality.toml", front=CLERKS_GROUP, roads=ROADS_GROUP, eldership=ELDERSHIP_GROUP, director=DIRECTOR_GROUP,
        roads_heads=[rimas["id"]], roads_members=[petras["id"]], eldership_members=[aldona["id"]], director_heads=[vida["id"]],
    )  # fmt: skip
    return emulator, municipality


async def import_sample_projects(app: App) -> None:
    """The sample register (bot/municipalities/vilnius-district-projects.csv), through the importer itself."""
    table = read_table(SAMPLE.read_bytes(), SAMPLE.name)
    with app.i18n.context(), app.i18n.use_locale("en"):
        result = await apply(app.projects, table, Actor(None, "make demo"))
    if result.errors:
        raise RuntimeError("the sample projects do not import:\n" + plan_text(result))


def _add_page(app: web.Application) -> None:
    async def index(_: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC_DIR / "index.html")

    app.router.add_get("/", index)
    app.router.add_static("/static/", STATIC_DIR)


async def run_sandbox(host: str, port: int) -> None:
    emulator, municipality = build_emulator()
    open311: list[Open311Api] = []  # the bot's, once it is built (the server starts first: the bot needs its URL)

    async def open311_api(request: web.Request) -> web.StreamResponse:
        if not open311:
            return error(503, "the service is starting; try again in a moment", "json" if request.path.endswith(".json") else "xml")
        return await open311[0].handle(request)

    Open311Api.route(emulator.app.router, open311_api)
    open_projects: list[OpenProjects] = []

    async def projects_page(request: web.Request) -> web.StreamResponse:
        if not open_projects:
            return web.Response(status=503, text="starting")
        return await open_projects[0].handle(request)

    OpenProjects.route(emulator.app.router, projects_page)
    runner = await emulator.serve(host, port)
    for leftover in DATA_FILE.parent.glob(DATA_FILE.name + "*"):
        leftover.unlink()  # every sandbox starts empty
    shutil.rmtree(FILES_DIR, ignore_errors=True)
    config = load_config(
        bot_token=TOKEN,
        telegram_api_url=emulator.url,
        admin_chat_id=CLERKS_GROUP,
        comms_chat_id=COMMS_GROUP,
        database_url=f"sqlite+aiosqlite:///{DATA_FILE}",
        files_dir=FILES_DIR,
        files_s3_endpoint=None,
        redis_url=None,
        secret_key=secrets.token_hex(32),
        municipality_file=municipality,
        open311_keys=f"demo:{SANDBOX_OPEN311_KEY}",
        public_url=None,  # discovery names the address the demo was reached at, whatever .env says
    )
    from bot.app import build_app

    app = build_app(config)
    await upgrade(app.database)  # the API reads the store at once (the bot's start upgrades it again, a no-op)
    open311.append(Open311Api(app.open311))
    open_projects.append(OpenProjects(app.projects, app.i18n, app.config))
    await import_sample_projects(app)
    print(f"Petent sandbox: open {emulator.url}/ in a browser (Ctrl-C stops it)", flush=True)
    try:
        await app.run()
    finally:
        await app.close()
        await runner.cleanup()
