"""`petent sandbox`: the whole system on one machine, without Telegram, a token or internet.

One aiohttp server on 127.0.0.1 serves the Bot API emulator, its control API and a web chat
page; the bot runs in the same process against the emulator over HTTP, with an embedded SQLite
store that starts empty each time. Ready to use: four teams in their groups (the front office,
the roads department, the Avižieniai eldership and the director's office, which overdue cases
escalate to), the communications group, and demo residents. A roads or street-lighting case goes
to the roads department, any case in Avižieniai to the eldership, the rest to the front office;
the card's "Pass to another team" moves a case between them. The Open311 GeoReport v2 API is
served beside the page (/open311/v2/, the client `demo` with the key SANDBOX_OPEN311_KEY); /healthz
and /metrics on the operators' listener, the port after the page's (printed at start).

The sandbox builds its own settings: it reads neither `.env` nor the environment, so that a
production configuration beside it (a document system's webhooks, a web port) is never used.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import socket
from pathlib import Path

from aiohttp import web

from bot.config import DEFAULT_MUNICIPALITY_FILE, Config, load_config
from bot.open311 import Open311Api, error
from bot.sandbox.control import controlled_emulator
from bot.sandbox.emulator import Emulator
from bot.store.migrate import upgrade

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
    _add_page(emulator)
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    municipality = teams_file(
        DATA_DIR / "sandbox-municipality.toml", front=CLERKS_GROUP, roads=ROADS_GROUP, eldership=ELDERSHIP_GROUP, director=DIRECTOR_GROUP,
        roads_heads=[rimas["id"]], roads_members=[petras["id"]], eldership_members=[aldona["id"]], director_heads=[vida["id"]],
    )  # fmt: skip
    return emulator, municipality


def _add_page(emulator: Emulator) -> None:
    """The web chat page, with this run's control API token in it (and only in it)."""
    page = (STATIC_DIR / "index.html").read_text(encoding="utf-8").replace("{{control_token}}", emulator.control_token)

    async def index(_: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html", headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})

    emulator.app.router.add_get("/", index)
    emulator.app.router.add_static("/static/", STATIC_DIR)


def ops_port(host: str, port: int) -> int:
    """The sandbox's operators' listener (/healthz, /metrics): the port after the page's, or any
    free one when that is taken."""
    for candidate in (port + 1, 0):
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            try:
                probe.bind((host, candidate))
            except OSError:
                continue
            return int(probe.getsockname()[1])
    raise OSError(f"no free port on {host} for /healthz and /metrics")


def sandbox_config(api_url: str, municipality: Path, ops: tuple[str, int]) -> Config:
    """The sandbox's own settings: nothing from `.env` or the environment (CASE_WEBHOOKS to a real
    document system, WEB_PORT, REDIS_URL…), whatever the directory it is started in holds."""
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
        ops_listen=f"[{ops[0]}]:{ops[1]}" if ":" in ops[0] else f"{ops[0]}:{ops[1]}",
    )


async def run_sandbox(host: str, port: int) -> None:
    emulator, municipality = build_emulator()
    open311: list[Open311Api] = []  # the bot's, once it is built (the server starts first: the bot needs its URL)

    async def open311_api(request: web.Request) -> web.StreamResponse:
        if not open311:
            return error(503, "the service is starting; try again in a moment", "json" if request.path.endswith(".json") else "xml")
        return await open311[0].handle(request)

    Open311Api.route(emulator.app.router, open311_api)
    runner = await emulator.serve(host, port)
    for leftover in DATA_FILE.parent.glob(DATA_FILE.name + "*"):
        leftover.unlink()  # every sandbox starts empty
    shutil.rmtree(FILES_DIR, ignore_errors=True)
    config = sandbox_config(emulator.url, municipality, (host, ops_port(host, int(emulator.url.rsplit(":", 1)[1]))))
    from bot.app import build_app

    app = build_app(config)
    await upgrade(app.database)  # the API reads the store at once (the bot's start upgrades it again, a no-op)
    open311.append(Open311Api(app.open311))
    print(f"Petent sandbox: open {emulator.url}/ in a browser (Ctrl-C stops it)", flush=True)
    print(f"Operators' listener (OPS_LISTEN): http://{config.settings.ops_listen}/healthz and /metrics", flush=True)
    try:
        await app.run()
    finally:
        await app.close()
        await runner.cleanup()
