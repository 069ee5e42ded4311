"""The sandbox's control API (/_emu/) makes people act in the emulator: only for whoever holds this
run's token, only as JSON (a web page elsewhere can post a form to 127.0.0.1, but cannot know the
token nor send JSON across origins without asking), and the files people upload come back as
attachments that a browser never runs as the sandbox's own page."""

from __future__ import annotations

import base64

import httpx
import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.sandbox.control import TOKEN_HEADER, control_headers
from bot.sandbox.emulator import Emulator
from bot.sandbox.run import add_page, build_emulator


async def test_a_request_without_the_token_or_with_a_form_body_is_refused(emulator: Emulator) -> None:
    anna = emulator.add_user("Anna", "pl")
    message = {"user_id": anna["id"], "text": "/start"}
    async with httpx.AsyncClient(base_url=emulator.url) as http:
        for response in (
            await http.post("/_emu/messages", json=message),  # no token
            await http.post("/_emu/messages", json=message, headers={TOKEN_HEADER: "guessed"}),
            await http.post(
                "/_emu/messages",
                json=message,
                headers={TOKEN_HEADER: "żeton".encode()},  # type: ignore[arg-type]
            ),  # not even ASCII: refused, not raised
            await http.get("/_emu/chats"),
        ):
            assert response.status_code == 403
            assert (
                response.text
                == f"the control API needs this run's token in {TOKEN_HEADER} (the sandbox page has it)"
            )
        # What a page on another site can send without asking the browser first: a form.
        form = await http.post(
            "/_emu/messages",
            data={"user_id": str(anna["id"]), "text": "/start"},
            headers=control_headers(emulator),
        )
        assert (form.status_code, form.text) == (415, "the control API takes application/json")
        plain = await http.post(
            "/_emu/messages",
            content=b'{"text": "/start"}',
            headers={**control_headers(emulator), "Content-Type": "text/plain"},
        )
        assert plain.status_code == 415
        sent = await http.post("/_emu/messages", json=message, headers=control_headers(emulator))
        assert sent.status_code == 200 and sent.json()[0]["text"] == "/start"
        # The Bot API itself is the bot's, with its own token in the path: untouched.
        assert (await http.post(f"/bot{emulator.token}/getMe")).json()["ok"]


async def test_each_run_has_its_own_token(emulator: Emulator) -> None:
    other = build_emulator()[0]
    assert emulator.control_token and other.control_token and emulator.control_token != other.control_token


async def test_an_uploaded_file_comes_back_as_an_attachment_with_nosniff(emulator: Emulator) -> None:
    anna = emulator.add_user("Anna", "pl")
    page = b"<html><script>fetch('/_emu/messages')</script></html>"
    async with httpx.AsyncClient(base_url=emulator.url, headers=control_headers(emulator)) as http:
        files = [
            {
                "kind": "document",
                "name": "Wniosek Łukasza.html",
                "mime": "text/html",
                "data": base64.b64encode(page).decode(),
            }
        ]
        [message] = (await http.post("/_emu/messages", json={"user_id": anna["id"], "files": files})).json()
        file_id = message["document"]["file_id"]
        served = await http.get(f"/_emu/files/{file_id}")
    assert served.content == page
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert (
        served.headers["Content-Disposition"]
        == "attachment; filename=\"Wniosek _ukasza.html\"; filename*=UTF-8''Wniosek%20%C5%81ukasza.html"
    )
    async with httpx.AsyncClient(
        base_url=emulator.url
    ) as http:  # an <img> or a link carries the token in the query
        assert (
            await http.get(f"/_emu/files/{file_id}", params={"token": emulator.control_token})
        ).content == page
        assert (await http.get(f"/_emu/files/{file_id}")).status_code == 403
        assert (
            await http.get("/_emu/chats", params={"token": emulator.control_token})
        ).status_code == 403  # only files take it there


async def test_the_sandbox_page_carries_the_token_and_nothing_else_does() -> None:
    emulator = build_emulator()[0]
    add_page(emulator, {})
    async with TestClient(TestServer(emulator.app)) as client:
        page = await (await client.get("/")).text()
        assert f'<meta name="emu-token" content="{emulator.control_token}">' in page
        assert (await client.get("/_emu/chats")).status == 403
        assert (await client.get("/_emu/chats", headers=control_headers(emulator))).status == 200


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # build_emulator writes the sandbox's municipality file under ./data
