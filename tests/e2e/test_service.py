"""The bot as the municipality's service: Telegram's webhook with its secret token on the public
web server, /healthz and /metrics on the operators' listener (OPS_LISTEN) and not on the public one."""

from __future__ import annotations

import httpx
import pytest

from bot.sandbox.emulator import Emulator
from tests.e2e.conftest import ROOT, BotProcess
from tests.support.driver import Person, Telegram
from tests.support.helpers import WEBHOOK_SECRET as SECRET
from tests.support.helpers import free_port, onboard, submit_case


@pytest.fixture
def settings_env(settings_env: dict[str, str]) -> dict[str, str]:
    port = free_port()
    return {
        **settings_env,
        "WEB_PORT": str(port),
        "WEBHOOK_URL": f"http://127.0.0.1:{port}/telegram/hook",
        "WEBHOOK_SECRET": SECRET,
    }


def metric(page: str, name: str) -> float:
    """The value of one sample line (name with its labels, as printed) of a /metrics page."""
    for line in page.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} is not on the page")


async def test_webhook_mode_serves_a_resident_and_refuses_a_forged_update(
    bot: BotProcess, telegram: Telegram, emulator: Emulator, clerks: Person, settings_env
) -> None:
    base = f"http://127.0.0.1:{settings_env['WEB_PORT']}"
    assert emulator.webhook is not None
    assert emulator.webhook == {
        "url": f"{base}/telegram/hook",
        "secret_token": SECRET,
        "allowed_updates": emulator.webhook["allowed_updates"],
        "max_connections": 40,
    }
    anna = await telegram.resident("Anna", language_code="pl")
    await onboard(anna, "pl")
    confirmation = await submit_case(
        anna, "pl", "📄 Wniosek", "Inne sprawy", "Proszę o zaświadczenie o zamieszkaniu"
    )
    assert "VRS-2026-000001" in confirmation.text
    assert "Proszę o zaświadczenie o zamieszkaniu" in (await clerks.receive_one()).text
    assert emulator.polls == 0, "the bot polled although it has a webhook"
    assert {post["status"] for post in emulator.webhook_posts} == {200}

    # Someone who knows the URL but not the secret: refused, and nothing reaches the resident.
    forged = {
        "update_id": 999,
        "message": {
            "message_id": 1,
            "date": 0,
            "chat": {"id": anna.user["id"], "type": "private"},
            "from": anna.user,
            "text": "/cases",
        },
    }
    async with httpx.AsyncClient() as http:
        assert (await http.post(f"{base}/telegram/hook", json=forged)).status_code == 401
        assert (
            await http.post(
                f"{base}/telegram/hook", json=forged, headers={"X-Telegram-Bot-Api-Secret-Token": "guess"}
            )
        ).status_code == 401
    await anna.nothing_more(1.0)


async def test_health_and_metrics(
    bot: BotProcess, telegram: Telegram, emulator: Emulator, clerks: Person, settings_env
) -> None:
    public = f"http://127.0.0.1:{settings_env['WEB_PORT']}"
    base = bot.ops_url
    assert base is not None and base != public
    jonas = await telegram.resident("Jonas", language_code="lt")
    await onboard(jonas, "lt")
    await submit_case(jonas, "lt", "📄 Prašymas", "Kiti klausimai", "Prašau pažymos apie gyvenamąją vietą")
    await clerks.receive_one()
    async with httpx.AsyncClient() as http:
        health = await http.get(f"{base}/healthz")
        page = (await http.get(f"{base}/metrics")).text
        # The public port (the webhook's, Open311's) tells nobody the outbox's depth or the teams' open cases.
        assert [(await http.get(f"{public}{path}")).status_code for path in ("/metrics", "/healthz")] == [
            404,
            404,
        ]
    assert health.status_code == 200
    assert health.json() == {
        "status": "ok",
        "database": "ok",
        "telegram": "ok",
        "files": "ok",
        "outbox": {"pending": 0, "oldest_seconds": 0.0},
    }
    # Counted exactly for this script: /start, language, consent; then the nine steps of submit_case.
    assert metric(page, 'petent_updates_total{flow="start",outcome="handled"}') == 3
    assert metric(page, 'petent_updates_total{flow="intake",outcome="handled"}') == 9
    assert metric(page, 'petent_update_seconds_count{flow="intake"}') == 9
    assert (
        metric(page, 'petent_telegram_sent_total{lane="interactive"}') == 22
    )  # answers, edits, button answers, the command menus
    assert (
        metric(page, 'petent_telegram_sent_total{lane="background"}') == 2
    )  # the card, the topic: through the outbox
    assert metric(page, 'petent_cases_open{team="desk"}') == 1
    assert metric(page, 'petent_cases_overdue{team="desk"}') == 0
    assert metric(page, "petent_outbox_pending") == 0
    assert "process_resident_memory_bytes" in page


async def test_without_redis_a_second_process_on_the_database_is_refused(
    bot: BotProcess, emulator: Emulator, telegram: Telegram, tmp_path
) -> None:
    """The SQL conversation storage is one process's: a second `petent run` names the problem and
    stops; after a kill -9 of the first, a new process starts at once."""
    import asyncio
    import sys

    second = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        cwd=tmp_path,
        env={**bot.env, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(second.communicate(), timeout=60)
    assert second.returncode == 2
    assert stderr.decode().strip().startswith("petent: another Petent process is running on the database ")
    assert (
        stderr.decode()
        .strip()
        .endswith("without REDIS_URL only one may run; stop the other, or set REDIS_URL for several replicas")
    )

    await bot.kill()
    await bot.start()  # the hold went with the killed process
    anna = await telegram.resident("Anna", language_code="pl")
    await onboard(anna, "pl")
