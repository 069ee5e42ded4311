"""The README's walkthrough of `make demo`, in headless Chromium, as a newcomer follows it: the
labels it quotes, the personas it names; then the page on a phone. Saves test-output/sandbox.png
(the view docs/sandbox.png shows)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from tests.browser.conftest import OUTPUT, control_headers

POLL = (
    "Q: Jak ocenia Pan/Pani godziny pracy urzędu? | Kaip vertinate savivaldybės darbo laiką?",
    "- Dobrze | Gerai",
    "- Źle | Blogai",
)


async def test_the_readme_walkthrough(sandbox: str, chromium: Any) -> None:
    page = await chromium.new_page(viewport={"width": 1280, "height": 860})
    await page.goto(sandbox)
    await walk_the_readme(page)

    # Rasa's /results 1 shows the chart, which opens full size.
    messages = page.locator("#messages")
    chart = messages.locator("a.photo").last
    await chart.locator("img").wait_for()
    await page.wait_for_function("[...document.querySelectorAll('#messages img')].every((i) => i.complete)")
    assert await chart.get_attribute("target") == "_blank"
    at_bottom = "(l) => l.scrollHeight - l.scrollTop - l.clientHeight < 2"
    assert await messages.evaluate(at_bottom), "the list stays at its bottom once the chart has loaded"
    async with httpx.AsyncClient() as http:
        full = await http.get(sandbox + str(await chart.get_attribute("href")))
    assert full.headers["content-type"] == "image/png"
    OUTPUT.mkdir(exist_ok=True)
    await page.screenshot(path=str(OUTPUT / "sandbox.png"))


async def walk_the_readme(page: Any) -> None:
    """The README's quick-start walk, step by step, with the labels it quotes."""
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
        await page.locator("#chats").get_by_role("button", name=name).first.click()

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
    await chat("# VRS-2026-000001 · Atliekos ir švara · Bezdonys")
    assert await page.locator("#actor option:checked").inner_text() == "Ona Kazlauskienė · administrator"
    await tap("🙋 Imuosi")
    await messages.get_by_text("atsakingas asmuo: Ona").wait_for()
    await tap("✅ Atsakyti ir užbaigti")
    await say("Odpady zostaną odebrane jutro rano.")

    # Anna reads the answer.
    await chat("Anna Nowak")
    await messages.get_by_text("Odpady zostaną odebrane jutro rano.").wait_for()
    await messages.get_by_text("Jak ocenia Pan/Pani załatwienie sprawy VRS-2026-000001?").wait_for()

    # 3. Rasa Vaitkutė, communications staff, sends a poll typed over three lines.
    await chat("Komunikacja · Komunikacija")
    assert await page.locator("#actor option:checked").inner_text() == "Rasa Vaitkutė · communications"
    await say("/poll")
    await messages.get_by_text("Q: ").last.wait_for()
    await say(*POLL)
    mine = messages.locator(".msg.mine .body").filter(has_text=POLL[0])
    await mine.last.wait_for()  # shown once the emulator has it (the page polls)
    assert await mine.last.inner_text() == "\n".join(POLL), "the poll arrives in three lines"
    await tap("👁 Peržiūra")
    await tap("✅ Siųsti gavėjams: 1")
    await messages.get_by_text("Apklausa #1").last.wait_for()

    # Anna answers it; Rasa asks for the results.
    await chat("Anna Nowak")
    await tap("○ Dobrze")
    await messages.get_by_role("button", name="● Dobrze", exact=True).last.wait_for()  # the choice shown
    await tap("✅ Potwierdzam")
    await tap("📨 Wyślij odpowiedzi")
    await chat("Komunikacja · Komunikacija")
    await say("/results 1")


async def test_on_a_phone_in_another_time_zone(sandbox: str, chromium: Any) -> None:
    """390 px wide, the browser in New York: nothing scrolls sideways, the chat list opens from
    "☰ Chats", times are the municipality's (as the bot's texts), a long quote ends with "…"."""
    async with httpx.AsyncClient() as http:
        for address in (sandbox + "/healthz", sandbox + "/metrics"):  # what `make demo` prints at start
            assert (await http.get(address)).status_code == 200, address
        assert "petent_updates_total" in (await http.get(sandbox + "/metrics")).text
        control = await control_headers(http, sandbox)
        people = {
            c.get("first_name"): c["id"]
            for c in (await http.get(sandbox + "/_emu/chats", headers=control)).json()
        }
        long = "Proszę o informację, kiedy zostanie naprawiona droga przy szkole w Awiżeniach, bo dzieci chodzą po błocie."
        (sent,) = (
            await http.post(
                sandbox + "/_emu/messages", json={"user_id": people["Anna"], "text": long}, headers=control
            )
        ).json()
    context = await chromium.new_context(
        viewport={"width": 390, "height": 844}, timezone_id="America/New_York", locale="en-GB"
    )
    page = await context.new_page()
    await page.goto(sandbox)
    messages = page.locator("#messages")
    await messages.get_by_text(long).wait_for()
    vilnius = datetime.fromtimestamp(sent["date"], ZoneInfo("Europe/Vilnius")).strftime("%H:%M")
    assert (await messages.locator(".msg .meta").last.inner_text()).startswith(vilnius)
    no_sideways_scroll = "() => document.documentElement.scrollWidth <= window.innerWidth"
    assert await page.evaluate(no_sideways_scroll)

    await page.get_by_role("button", name="☰ Chats").click()
    await page.locator("#chats").get_by_role("button", name="Komunikacja · Komunikacija").click()
    await page.locator("#chat-title", has_text="Komunikacja").wait_for()
    assert await page.evaluate(no_sideways_scroll)
    assert (await page.locator("#send").bounding_box() or {"x": 999})["x"] < 390 - 40
    await page.locator("#text").fill("/poll")
    await page.keyboard.press("Enter")
    await messages.get_by_text("Q: ").last.wait_for()  # the bot's answer quotes the command
    await page.get_by_role("button", name="↩ reply").last.click()  # the bot's long explanation
    await page.locator("#reply-to-text", has_text="Nauja apklausa").wait_for()
    await page.keyboard.type("Czy to działa?")
    await page.keyboard.press("Enter")
    quote = messages.locator(".msg", has_text="Czy to działa?").locator(".quote").first
    assert (await quote.inner_text()).endswith("…"), "a quote cut short says so"
    assert await page.evaluate(no_sideways_scroll)
    await page.screenshot(path=str(OUTPUT / "sandbox-390.png"))
    await context.close()
