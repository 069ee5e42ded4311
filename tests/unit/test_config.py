"""Configuration: a missing or malformed setting stops start-up with one line naming it."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import load_config
from bot.municipality import load_municipality
from bot.settings import DEFAULT_MUNICIPALITY_FILE, ConfigError
from tests.conftest import ADMIN_CHAT_ID, COMMS_CHAT_ID, SECRET_KEY, TOKEN

VALID = {
    "BOT_TOKEN": TOKEN,
    "ADMIN_CHAT_ID": str(ADMIN_CHAT_ID),
    "COMMS_CHAT_ID": str(COMMS_CHAT_ID),
    "SECRET_KEY": SECRET_KEY,
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in list(os.environ):
        if name in VALID or name in (
            "DATABASE_URL",
            "REDIS_URL",
            "TIMEZONE",
            "CASE_PREFIX",
            "MUNICIPALITY_FILE",
            "WEEKLY_REPORT",
            "WEBHOOK_URL",
            "WEBHOOK_SECRET",
            "WEB_PORT",
        ):
            monkeypatch.delenv(name)
    for name, value in VALID.items():
        monkeypatch.setenv(name, value)
    return VALID


def test_defaults(env: dict[str, str]) -> None:
    config = load_config()
    settings = config.settings
    assert settings.telegram_api_url == "https://api.telegram.org"
    assert settings.database_url == "sqlite+aiosqlite:///data/petent.db"
    assert (settings.default_locale, settings.admin_locale, settings.case_prefix) == ("pl", "lt", "VRS")
    assert settings.timezone == "Europe/Vilnius"
    assert config.municipality.name.lt == "Vilniaus rajono savivaldybė"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("BOT_TOKEN", None, "BOT_TOKEN is not set"),
        ("BOT_TOKEN", "not-a-token", "BOT_TOKEN: does not look like a bot token"),
        ("ADMIN_CHAT_ID", "abc", "ADMIN_CHAT_ID"),
        ("ADMIN_CHAT_ID", "12345", "ADMIN_CHAT_ID: must be a group id"),
        ("COMMS_CHAT_ID", None, "COMMS_CHAT_ID is not set"),
        ("SECRET_KEY", "short", "SECRET_KEY: must be at least 16 characters"),
        ("TIMEZONE", "Mars/Olympus", "TIMEZONE: is not a known time zone"),
        ("CASE_PREFIX", "vrs-1", "CASE_PREFIX: must be 2 to 6 capital letters"),
        ("DATABASE_URL", "mysql://x", "DATABASE_URL: must be a sqlite:/// or postgresql:// URL"),
        ("DEFAULT_LOCALE", "de", "DEFAULT_LOCALE"),
        ("TELEGRAM_API_URL", "api.telegram.org", "TELEGRAM_API_URL: must be an http(s) URL"),
        ("MUNICIPALITY_FILE", "/nonexistent.toml", "MUNICIPALITY_FILE: /nonexistent.toml does not exist"),
        ("WEEKLY_REPORT", "someday", "WEEKLY_REPORT: must be a day of the week"),
        ("WEEKLY_REPORT", "mo", "WEEKLY_REPORT: must be a day of the week"),
        ("CONVERSATION_TTL_HOURS", "0", "CONVERSATION_TTL_HOURS"),
    ],
)
def test_bad_setting_is_named(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, name: str, value: str | None, message: str
) -> None:
    if value is None:
        monkeypatch.delenv(name)
    else:
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as error:
        load_config()
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)
    assert TOKEN not in str(error.value)


@pytest.mark.parametrize(("value", "weekday"), [("monday", 0), ("Fri", 4), ("sunday", 6), ("off", None)])
def test_weekly_report_day(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, value: str, weekday: int | None
) -> None:
    monkeypatch.setenv("WEEKLY_REPORT", value)
    assert load_config().settings.weekly_report_weekday == weekday


def test_plain_database_urls_get_async_drivers(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/petent")
    assert load_config().settings.database_url == "postgresql+asyncpg://postgres@127.0.0.1:5432/petent"


def test_cli_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in VALID}
    env.update(VALID, ADMIN_CHAT_ID="oops")
    result = subprocess.run(
        [sys.executable, "-m", "bot", "migrate"],
        cwd=tmp_path,
        env=env | {"PYTHONPATH": str(Path.cwd())},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith("petent: configuration error: ADMIN_CHAT_ID")


def test_cli_names_a_redis_nobody_answers_on(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in VALID}
    env.update(
        VALID, REDIS_URL="redis://127.0.0.1:1/0", TELEGRAM_API_URL="http://127.0.0.1:1"
    )  # port 1: nothing listens
    result = subprocess.run(
        [sys.executable, "-m", "bot", "run"],
        cwd=tmp_path,
        env=env | {"PYTHONPATH": str(Path.cwd())},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith(
        "petent: configuration error: REDIS_URL: cannot connect to redis://127.0.0.1:1/0 ("
    )


def test_cli_names_a_files_dir_it_cannot_write_to(tmp_path: Path) -> None:
    (tmp_path / "mounted").write_text("a file, not a directory")
    env = {k: v for k, v in os.environ.items() if k not in VALID}
    env.update(VALID, FILES_DIR="mounted/files", TELEGRAM_API_URL="http://127.0.0.1:1")
    result = subprocess.run(
        [sys.executable, "-m", "bot", "run"],
        cwd=tmp_path,
        env=env | {"PYTHONPATH": str(Path.cwd())},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == f"petent: configuration error: FILES_DIR: cannot write to {tmp_path / 'mounted' / 'files'}: Not a directory"
    )


def test_default_municipality_has_the_23_elderships_in_both_languages() -> None:
    municipality = load_municipality(DEFAULT_MUNICIPALITY_FILE)
    pairs = {(e.lt, e.pl) for e in municipality.elderships}
    assert len(municipality.elderships) == 23
    for pair in [
        ("Avižieniai", "Awiżenie"),
        ("Juodšiliai", "Czarny Bór"),
        ("Nemenčinės miestas", "Niemenczyn (miasto)"),
        ("Šatrininkai", "Szatryniki"),
    ]:
        assert pair in pairs
    assert {code: (k.deadline_days, k.max_extension_days) for code, k in municipality.kinds.items()} == {
        "request": (20, 20),
        "complaint": (20, 10),
        "report": (20, 10),
    }
    # English falls back to the Lithuanian place name.
    assert municipality.eldership_by_id["juodsiliai"].get("en") == "Juodšiliai"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda text: text.replace('id = "bezdonys"', 'id = "avizieniai"'),
            "elderships: duplicate id avizieniai",
        ),
        (lambda text: text.replace('lt = "Bezdonys"\n', ""), "elderships.1.lt: Field required"),
        (
            lambda text: text.replace(
                "[kinds.report]\ndeadline_days = 20", "[kinds.report]\ndeadline_days = 0"
            ),
            "kinds.report.deadline_days",
        ),
        (
            lambda text: text.replace("[kinds.report]", "[kinds.petition]"),
            "kinds: expected exactly request, complaint, report",
        ),
        (lambda text: text + "\n[[[broken", "is not valid TOML"),
    ],
)
def test_bad_municipality_file_is_named(tmp_path: Path, change, message: str) -> None:
    path = tmp_path / "municipality.toml"
    path.write_text(change(DEFAULT_MUNICIPALITY_FILE.read_text(encoding="utf-8")), encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_municipality(path)
    assert str(error.value).startswith("MUNICIPALITY_FILE:")
    assert message in str(error.value)


TEAMS = """
[[teams]]
id = "front"
chat_id = -1001
name = { pl = "Biuro", lt = "Skyrius" }

[[teams]]
id = "roads"
chat_id = -1002
name = { pl = "Drogi", lt = "Keliai" }
"""


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        (TEAMS + '[routing]\ndefault_team = "nobody"\n', "routing.default_team: unknown team nobody"),
        (
            TEAMS + '[routing]\ndefault_team = "front"\n[[routing.rules]]\nteam = "parks"\n',
            "routing.rules[1]: unknown team parks",
        ),
        (
            TEAMS
            + '[routing]\ndefault_team = "front"\n[[routing.rules]]\nteam = "front"\n[[routing.rules]]\nteam = "roads"\ncategories = ["roads"]\n',
            "routing.rules[2]: can never match, rule 1 before it takes every case it would",
        ),
        (
            TEAMS
            + '[routing]\ndefault_team = "front"\n[[routing.rules]]\nteam = "roads"\ncategories = ["rods"]\n',
            "routing.rules[1]: unknown category or eldership rods",
        ),
        (TEAMS, "routing: missing; name at least the default_team"),
        (
            '[[teams]]\nid = "front"\nname = { pl = "Biuro", lt = "Skyrius" }\n[routing]\ndefault_team = "front"\n',
            "teams.0.chat_id: Field required",
        ),
    ],
)
def test_teams_and_routing_are_checked_at_start(tmp_path, extra: str, error: str) -> None:
    path = tmp_path / "municipality.toml"
    path.write_text(DEFAULT_MUNICIPALITY_FILE.read_text(encoding="utf-8") + extra, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_municipality(path)
    assert str(caught.value) == f"MUNICIPALITY_FILE: {path}: {error}"


def test_routing_sends_each_case_to_the_first_matching_team(tmp_path) -> None:
    path = tmp_path / "municipality.toml"
    rules = '[routing]\ndefault_team = "front"\n[[routing.rules]]\nteam = "roads"\ncategories = ["roads"]\nelderships = ["rudamina"]\n'
    path.write_text(DEFAULT_MUNICIPALITY_FILE.read_text(encoding="utf-8") + TEAMS + rules, encoding="utf-8")
    municipality = load_municipality(path)
    assert municipality.routing is not None
    rule = municipality.routing.rules[0]
    assert rule.matches("report", "roads", "rudamina") and not rule.matches("report", "roads", None)
    assert load_municipality(DEFAULT_MUNICIPALITY_FILE).with_default_team(-1009).teams[0].chat_id == -1009


@pytest.mark.parametrize(
    ("url", "secret", "message"),
    [
        ("https://petent.example.lt/telegram", None, "WEBHOOK_SECRET: must be set with WEBHOOK_URL"),
        ("https://petent.example.lt/telegram", "has spaces in it", "WEBHOOK_SECRET: must be 1-256 letters"),
        ("petent.example.lt/telegram", "fine_secret", "WEBHOOK_URL: must be the full URL Telegram posts to"),
    ],
)
def test_webhook_settings_are_named(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, url: str, secret: str | None, message: str
) -> None:
    monkeypatch.setenv("WEBHOOK_URL", url)
    if secret is not None:
        monkeypatch.setenv("WEBHOOK_SECRET", secret)
    with pytest.raises(ConfigError) as error:
        load_config()
    assert str(error.value).startswith(message)


def test_webhook_mode_listens_on_8081_by_default(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert load_config().settings.web_listen_port is None  # polling: no web server unless WEB_PORT is set
    monkeypatch.setenv("WEBHOOK_URL", "https://petent.example.lt/telegram")
    monkeypatch.setenv("WEBHOOK_SECRET", "s3cret")
    assert load_config().settings.web_listen_port == 8081
