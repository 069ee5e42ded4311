"""Start-up refuses what would be unsafe in production (the example secrets of .env.example, a
webhook receiver over plain http, an ops listener that is not host:port), and the sandbox never
takes production's settings from a .env or the environment."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from bot.config import load_config
from bot.sandbox.run import SANDBOX_OPEN311_KEY, sandbox_config
from bot.settings import DEFAULT_MUNICIPALITY_FILE, EXAMPLE_SECRETS, PROJECT_DIR, ConfigError
from tests.conftest import ADMIN_CHAT_ID, COMMS_CHAT_ID, SECRET_KEY, TOKEN

BASE: dict[str, Any] = {
    "bot_token": TOKEN,
    "admin_chat_id": ADMIN_CHAT_ID,
    "comms_chat_id": COMMS_CHAT_ID,
    "secret_key": SECRET_KEY,
}
# The settings of .env.example that hold a secret, and the value refused in each (its example).
SECRET_SETTINGS = ("SECRET_KEY", "WEBHOOK_SECRET", "CASE_WEBHOOKS", "OPEN311_KEYS", "FILES_S3_SECRET_KEY")


@pytest.fixture
def clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in list(os.environ):
        if name.startswith(
            (
                "BOT_",
                "ADMIN_",
                "COMMS_",
                "SECRET_",
                "WEB",
                "CASE_",
                "OPEN311_",
                "FILES_",
                "OPS_",
                "DATABASE_",
                "REDIS_",
            )
        ):
            monkeypatch.delenv(name)
    return tmp_path


def test_the_example_secret_key_is_refused_at_start(clean: Path) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(**{**BASE, "secret_key": "change-this-to-a-long-random-secret"})
    assert str(error.value) == (
        "SECRET_KEY: is the example value from .env.example; make your own: python3 -c 'import secrets; print(secrets.token_hex(32))'"
    )


def test_every_example_secret_of_env_example_is_refused(clean: Path) -> None:
    """A secret added to .env.example must be refused too: this fails until EXAMPLE_SECRETS has it."""
    lines = (PROJECT_DIR / ".env.example").read_text(encoding="utf-8").splitlines()
    examples = {
        m["name"]: m["value"]
        for line in lines
        if (m := re.match(r"#?\s*(?P<name>[A-Z0-9_]+)=(?P<value>\S+)$", line.strip()))
    }
    assert set(SECRET_SETTINGS) <= set(examples)
    shown = {
        "SECRET_KEY": examples["SECRET_KEY"],
        "WEBHOOK_SECRET": examples["WEBHOOK_SECRET"],
        "CASE_WEBHOOKS": examples["CASE_WEBHOOKS"].rpartition("|")[2],
        "OPEN311_KEYS": examples["OPEN311_KEYS"].partition(":")[2],
        "FILES_S3_SECRET_KEY": examples["FILES_S3_SECRET_KEY"],
    }
    assert set(shown.values()) <= EXAMPLE_SECRETS
    for name, overrides in (
        ("SECRET_KEY", {"secret_key": shown["SECRET_KEY"]}),
        (
            "WEBHOOK_SECRET",
            {"webhook_url": examples["WEBHOOK_URL"], "webhook_secret": shown["WEBHOOK_SECRET"]},
        ),
        ("CASE_WEBHOOKS", {"case_webhooks": examples["CASE_WEBHOOKS"]}),
        ("OPEN311_KEYS", {"open311_keys": examples["OPEN311_KEYS"]}),
    ):
        with pytest.raises(ConfigError, match=rf"^{name}: .*is the example value from \.env\.example"):
            load_config(**{**BASE, **overrides})
    with pytest.raises(ConfigError, match=r"^FILES_S3_SECRET_KEY: is the example value"):
        pytest.importorskip("minio")
        load_config(
            **BASE,
            files_s3_endpoint="http://127.0.0.1:9000",
            files_s3_bucket="petent",
            files_s3_access_key="petent",
            files_s3_secret_key="change-me",
        )


def test_a_plain_http_webhook_receiver_is_refused_at_start_unless_on_this_host(clean: Path) -> None:
    secret = "dms-secret-0123456789abcdef"
    with pytest.raises(
        ConfigError, match=r"^CASE_WEBHOOKS: entry 1 \(dms\): the URL must be https://"
    ) as error:
        load_config(**BASE, case_webhooks=f"dms=http://dms.example.lt/petent|{secret}")
    assert secret not in str(error.value)
    for local in (
        "http://127.0.0.1:8000/in",
        "http://localhost/in",
        "http://[::1]:8000/in",
        "https://dms.example.lt/in",
    ):
        assert (
            load_config(**BASE, case_webhooks=f"dms={local}|{secret}").settings.webhook_receivers[0].url
            == local
        )


def test_the_ops_listener_is_loopback_by_default_and_checked(clean: Path) -> None:
    assert load_config(**BASE).settings.ops_address == ("127.0.0.1", 9090)
    assert load_config(**BASE, ops_listen="10.1.2.3:9100").settings.ops_address == ("10.1.2.3", 9100)
    assert load_config(**BASE, ops_listen="[::1]:9100").settings.ops_address == ("::1", 9100)
    assert load_config(**BASE, ops_listen="off").settings.ops_address is None
    for wrong in ("9090", "localhost", "127.0.0.1:99999", "127.0.0.1:http"):
        with pytest.raises(
            ConfigError, match=r"^OPS_LISTEN: must be host:port, e.g. 127.0.0.1:9090 \(or off\)$"
        ):
            load_config(**BASE, ops_listen=wrong)


def test_the_sandbox_ignores_a_env_in_the_working_directory_and_the_environment(
    clean: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    production = {
        "CASE_WEBHOOKS": "dms=https://dms.example.lt/petent|dms-secret-0123456789abcdef",
        "WEB_PORT": "8443",
        "WEBHOOK_URL": "https://petent.example.lt/telegram",
        "WEBHOOK_SECRET": "production-secret",
        "OPEN311_KEYS": "fixmystreet:production-key-0123456789",
        "REDIS_URL": "redis://10.0.0.5:6379/0",
    }
    (clean / ".env").write_text(
        "".join(f"{name}={value}\n" for name, value in production.items()), encoding="utf-8"
    )
    assert load_config(**BASE).settings.web_port == 8443  # what the bot itself would take
    monkeypatch.setenv("FILES_S3_ENDPOINT", "https://s3.example.lt")
    monkeypatch.setenv("PUBLIC_URL", "https://petent.example.lt")

    settings = sandbox_config("http://127.0.0.1:8080", DEFAULT_MUNICIPALITY_FILE).settings
    assert (settings.case_webhooks, settings.webhook_receivers, settings.web_port, settings.webhook_url) == (
        None,
        (),
        None,
        None,
    )
    assert (settings.redis_url, settings.files_s3_endpoint, settings.public_url) == (None, None, None)
    assert (settings.open311_clients, settings.ops_address) == (
        {SANDBOX_OPEN311_KEY: "demo"},
        None,
    )  # /healthz, /metrics beside the page
    with pytest.raises(
        ConfigError, match="^BOT_TOKEN is not set"
    ):  # nothing comes from the environment, not even what is missing
        monkeypatch.setenv("BOT_TOKEN", TOKEN)
        load_config(isolated=True, admin_chat_id=-1001, comms_chat_id=-1002, secret_key=SECRET_KEY)
