"""The projects' open-data page (/projects) in headless Chromium on a phone's screen, without
JavaScript: the sample register, every project with its milestones and slips, the language
links. Saves test-output/projects-page.png."""

from __future__ import annotations

from typing import Any

from tests.browser.conftest import OUTPUT

PHONE = {"width": 390, "height": 844}


async def test_the_projects_page_reads_on_a_phone_without_javascript(sandbox: str, chromium: Any) -> None:
    browser = chromium  # the fixture's: it closes it
    context = await browser.new_context(viewport=PHONE, java_script_enabled=False)
    page = await context.new_page()
    await page.goto(f"{sandbox}/projects?lang=lt")
    assert await page.locator("h1").inner_text() == "Projektai: Vilniaus rajono savivaldybė"
    assert await page.locator("main section").count() == 12
    street = page.locator("section#VRS-2025-014")
    assert await street.locator("h2").inner_text() == "Mokyklos gatvės rekonstrukcija Avižieniuose"
    assert (
        "planuota 2026 m. spalio 31 d., dabar 2027 m. kovo 31 d. (+5 mėnesiai)"
        in await street.locator("table").inner_text()
    )
    OUTPUT.mkdir(exist_ok=True)
    await page.screenshot(path=str(OUTPUT / "projects-page.png"))
    await page.get_by_role("link", name="Polski").click()
    assert await page.locator("h1").inner_text() == "Projekty: Samorząd Rejonu Wileńskiego"
    assert await page.locator("html").get_attribute("lang") == "pl"
    measuring = await (
        await browser.new_context(viewport=PHONE)
    ).new_page()  # JavaScript only to measure the layout
    await measuring.goto(f"{sandbox}/projects?lang=lt")
    assert await measuring.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], (
        "no sideways scrolling on a phone"
    )
