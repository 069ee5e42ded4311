"""The sandbox page in headless Chromium: a resident submits a case by clicking, it goes to the
roads department, a clerk answers in the case's topic, and the resident sees the answer. Saves test-output/sandbox.png."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import sys
from pathlib import Path

import httpx
import pytest

from bot.config import PROJECT_DIR

playwright = pytest.importorskip("playwright.async_api")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
OUTPUT = PROJECT_DIR / "test-output"

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (.ci/run installs it)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def sandbox(tmp_path: Path):
    port = _free_port()
    env = {**os.environ, "PETENT_FROZEN_TIME": "2026-11-23T09:00:00+02:00"}
    log = (tmp_path / "sandbox.log").open("wb")
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", "sandbox", "--port", str(port), cwd=tmp_path, env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient() as http:
        for _ in range(300):
            try:
                if (await http.get(f"{url}/")).status_code == 200 and b"Petent sandbox" in (tmp_path / "sandbox.log").read_bytes():
                    break
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
        else:
            raise AssertionError((tmp_path / "sandbox.log").read_text())
    yield url
    process.terminate()
    await process.wait()


async def test_resident_submits_clerk_answers_resident_reads(sandbox: str) -> None:
    async with playwright.async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
        )
        page = await browser.new_page(viewport={"width": 1280, "height": 860})
        await page.goto(sandbox)
        messages, keyboard = page.locator("#messages"), page.locator("#keyboard")

        async def say(text: str) -> None:
            await page.fill("#text", text)
            await page.press("#text", "Enter")

        async def tap(name: str, where=messages) -> None:
            await where.get_by_role("button", name=name, exact=True).last.click()

        await page.get_by_text("Anna Nowak").first.click()
        await say("/start")
        await tap("✓ Polski")
        await tap("✅ Rozumiem")
        await tap("📝 Nowa sprawa", keyboard)
        await tap("🚧 Zgłoszenie problemu")
        await tap("Awiżenie")
        await tap("Oświetlenie ulic")
        await messages.get_by_text("Proszę opisać sprawę").wait_for()
        await say("Nie świeci latarnia przy szkole w Awiżeniach")
        await tap("⏭ Pomiń")
        await tap("⏭ Pomiń", keyboard)
        await tap("💬 Odpowiedź tutaj, w Telegramie", keyboard)
        await tap("✅ Wyślij")
        await messages.get_by_text("Numer sprawy: VRS-2026-000001").wait_for()
        await messages.get_by_text("Sprawę prowadzi: Wydział Dróg").wait_for()  # street lighting: the roads department

        # The clerk opens the case's topic and answers there.
        await page.get_by_role("button", name="# VRS-2026-000001").click()
        await messages.get_by_text("Seniūnija: Avižieniai").wait_for()
        await say("Latarnia zostanie naprawiona do piątku.")
        await messages.get_by_text("👍").wait_for()

        # Back in Anna's chat, the answer has arrived.
        await page.get_by_text("Anna Nowak").first.click()
        await messages.get_by_text("Latarnia zostanie naprawiona do piątku.").wait_for()
        OUTPUT.mkdir(exist_ok=True)
        await page.screenshot(path=str(OUTPUT / "sandbox.png"))
        await browser.close()
