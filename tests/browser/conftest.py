"""The sandbox as `make demo` starts it, and Debian's Chromium to drive its page."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.settings import PROJECT_DIR

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
HAVE_CHROMIUM = Path(CHROMIUM).exists()
OUTPUT = PROJECT_DIR / "test-output"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[str]:
    """`petent sandbox` in a process of its own, as `make demo` runs it; its base URL."""
    port = _free_port()
    env = {**os.environ, "PETENT_FROZEN_TIME": "2026-11-23T09:00:00+02:00"}
    log = (tmp_path / "sandbox.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "sandbox",
        "--port",
        str(port),
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient() as http:
        for _ in range(600):
            try:
                if (await http.get(f"{url}/")).status_code == 200 and b"Petent sandbox" in (
                    tmp_path / "sandbox.log"
                ).read_bytes():
                    break
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
        else:
            raise AssertionError((tmp_path / "sandbox.log").read_text())
    yield url
    process.terminate()
    await process.wait()


@pytest.fixture
async def chromium() -> AsyncIterator[Any]:
    """Headless Chromium (Debian's; Playwright downloads none)."""
    playwright = pytest.importorskip("playwright.async_api")
    if not HAVE_CHROMIUM:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    async with playwright.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


async def control_headers(http: httpx.AsyncClient, sandbox: str) -> dict[str, str]:
    """The control API's token of this run, as the page has it (the sandbox puts it only there)."""
    page = (await http.get(sandbox + "/")).text
    token = re.search(r'<meta name="emu-token" content="([^"]+)">', page)
    assert token, "the page carries the control API's token"
    return {"X-Emulator-Token": token.group(1)}
