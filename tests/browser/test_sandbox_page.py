"""The README's walkthrough of `make demo`, in headless Chromium, as a newcomer follows it: the
labels it quotes, the personas it names. Saves test-output/sandbox.png (docs/sandbox.png is taken
the same way)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.browser.conftest import OUTPUT

POLL = (
    "Q: Jak ocenia Pan/Pani godziny pracy urzędu? | Kaip vertinate savivaldybės darbo laiką?",
    "- Dobrze | Gerai",
    "- Źle | Blogai",
)


async def test_the_readme_walkthrough(sandbox: str, chromium: Any) -> None:
    page = await chromium.new_page(viewport={"width": 1280, "height": 860})
    await page.goto(sandbox)
    messages, keyboard = page.locator("#messages"), page.locator("#keyboard")

    async def say(*lines: str) -> None:
        """Typed into the message box: Shift+Enter between lines, Enter sends."""
        await page.locator("#text").click()
        for number, line in enumerate(lines):
            if number:
                await page.keyboard.press("Shift+Enter")
            await page.keyboard.type(line)
        await page.keyboard.press("Enter")

    async def tap(name: str, where: Any = messages) -> None:
        await where.get_by_role("button", name=name, exact=True).last.click()

    async def chat(name: str) -> None:
        try:
            await page.locator("#chats").get_by_role("button", name=name).first.click(timeout=10000)
        except Exception:
            await page.screenshot(path=str(OUTPUT / "fail.png"))
            print(await page.locator("#chats").inner_html())
            raise

    # 1. Anna Nowak, a resident who writes in Polish, is open: /start, then a case.
    await page.locator("#chat-title", has_text="Anna Nowak").wait_for()
    await say("/start")
    await tap("✓ Polski")
    await tap("✅ Rozumiem")
    await tap("📝 Nowa sprawa", keyboard)
    await tap("🚧 Zgłoszenie problemu")
    await tap("Bezdany")
    await tap("Odpady i czystość")
    await messages.get_by_text("Proszę opisać sprawę").wait_for()
    await say("Nikt nie odebrał śmieci przy ul. Szkolnej w Bezdanach")
    await tap("⏭ Pomiń")
    await tap("⏭ Pomiń", keyboard)
    await tap("💬 Odpowiedź tutaj, w Telegramie", keyboard)
    await tap("✅ Wyślij")
    await messages.get_by_text("Numer sprawy: VRS-2026-000001").wait_for()
    await messages.get_by_text("Sprawę prowadzi: Biuro Obsługi Mieszkańców").wait_for()

    # 2. Ona Kazlauskienė, the front office's administrator (the "as" the group opens with), takes it and answers.
    await chat("# VRS-2026-000001")
    assert await page.locator("#actor option:checked").inner_text() == "Ona Kazlauskienė · administrator"
    await tap("🙋 Imuosi")
    await messages.get_by_text("atsakingas asmuo: Ona").wait_for()
    await tap("✅ Atsakyti ir užbaigti")
    await page.screenshot(path=str(OUTPUT / "x.png"))
    await say("Odpady zostaną odebrane jutro rano.")
    await page.screenshot(path=str(OUTPUT / "y.png"))

    # Anna reads the answer.
    await chat("Anna Nowak")
    await messages.get_by_text("Odpady zostaną odebrane jutro rano.").wait_for()

    # 3. Rasa Vaitkutė, communications staff, sends a poll typed over three lines.
    await chat("Komunikacja · Komunikacija")
    assert await page.locator("#actor option:checked").inner_text() == "Rasa Vaitkutė · communications"
    await say("/poll")
    await messages.get_by_text("Q: ").last.wait_for()
    await say(*POLL)
    await page.screenshot(path=str(OUTPUT / "z.png"))
    await tap("👁 Peržiūra")
    await tap("✅ Siųsti gavėjams: 1")
    await chat("Anna Nowak")
    await messages.get_by_text("Jak ocenia Pan/Pani godziny pracy urzędu?").wait_for()
    await page.screenshot(path=str(OUTPUT / "w.png"))
