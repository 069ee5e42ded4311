"""`petent sandbox`: the whole system on one machine, without Telegram, a token or internet.

One aiohttp server on 127.0.0.1 serves the Bot API emulator, its control API and a web chat
page; the bot runs in the same process against the emulator over HTTP, with an embedded SQLite
store that starts empty each time. Ready to use: the clerks' forum group, the communications
group, and demo residents.
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

from aiohttp import web

from bot.config import load_config
from bot.sandbox.emulator import Emulator

log = logging.getLogger(__name__)

TOKEN = "100200300:SANDBOX-token-only-for-the-local-emulator"
CLERKS_GROUP = -1001000000001
COMMS_GROUP = -1001000000002
STATIC_DIR = Path(__file__).resolve().parent / "static"
DATA_FILE = Path("data") / "sandbox.db"


def build_emulator() -> Emulator:
    emulator = Emulator(TOKEN)
    emulator.add_user("Anna", "pl", last_name="Nowak")
    emulator.add_user("Jonas", "lt", last_name="Petrauskas")
    ona = emulator.add_user("Ona", "lt", last_name="Kazlauskienė")
    petras = emulator.add_user("Petras", "lt", last_name="Jankauskas")
    rasa = emulator.add_user("Rasa", "lt", last_name="Vaitkutė")
    emulator.add_group("Urzędnicy · Valdininkai", forum=True, members=[ona["id"], petras["id"]], chat_id=CLERKS_GROUP)
    emulator.add_group("Komunikacja · Komunikacija", members=[rasa["id"]], chat_id=COMMS_GROUP)
    emulator.chats[CLERKS_GROUP].admins.add(ona["id"])
    _add_page(emulator.app)
    return emulator


def _add_page(app: web.Application) -> None:
    async def index(_: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC_DIR / "index.html")

    app.router.add_get("/", index)
    app.router.add_static("/static/", STATIC_DIR)


async def run_sandbox(host: str, port: int) -> None:
    emulator = build_emulator()
    runner = await emulator.serve(host, port)
    DATA_FILE.parent.mkdir(parents=True, exist_ok=True)
    for leftover in DATA_FILE.parent.glob(DATA_FILE.name + "*"):
        leftover.unlink()  # every sandbox starts empty
    config = load_config(
        bot_token=TOKEN,
        telegram_api_url=emulator.url,
        admin_chat_id=CLERKS_GROUP,
        comms_chat_id=COMMS_GROUP,
        database_url=f"sqlite+aiosqlite:///{DATA_FILE}",
        redis_url=None,
        secret_key=secrets.token_hex(32),
    )
    from bot.app import build_app

    app = build_app(config)
    print(f"Petent sandbox: open {emulator.url}/ in a browser (Ctrl-C stops it)", flush=True)
    try:
        await app.run_polling()
    finally:
        await app.close()
        await runner.cleanup()
