"""The process settings: the environment and `.env`, validated at start-up (a bad one is one
`ConfigError` line naming it). What belongs to the municipality is in bot/municipality.py."""

from __future__ import annotations

import hmac
import ipaddress
import re
from dataclasses import dataclass
from datetime import time
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ByteSize, Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

LOCALES = ("pl", "lt", "en")
Locale = Literal["pl", "lt", "en"]
KIND_CODES = ("request", "complaint", "report")

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent
DEFAULT_MUNICIPALITY_FILE = PACKAGE_DIR / "municipalities" / "vilnius-district.toml"
LOCALES_DIR = PROJECT_DIR / "locales"

_TOKEN_RE = re.compile(r"^\d{3,}:[\w-]{20,}$")


# The secrets `.env.example` shows (and the README's samples): refused at start-up, so that a copied
# file never goes to production with secrets anyone can read. tests/unit/test_config.py checks that
# every secret in .env.example is here.
EXAMPLE_SECRETS = frozenset(
    {
        "change-this-to-a-long-random-secret",  # SECRET_KEY
        "a-long-random-string_of-letters-digits",  # WEBHOOK_SECRET
        "a-long-random-secret-of-16-or-more",  # CASE_WEBHOOKS
        "a-long-random-key-for-fixmystreet",  # OPEN311_KEYS
        "change-me",  # FILES_S3_SECRET_KEY
    }
)
EXAMPLE_REFUSED = "is the example value from .env.example; make your own: python3 -c 'import secrets; print(secrets.token_hex(32))'"


def is_example(secret: str) -> bool:
    return secret.strip() in EXAMPLE_SECRETS


class ConfigError(Exception):
    """A setting is missing or malformed; the message names it."""


@dataclass(frozen=True)
class WebhookReceiver:
    """Where case events go (bot.services.webhooks): a name (in the outbox's keys and the logs),
    an http(s) URL, and the secret the bodies are signed with."""

    name: str
    url: str
    secret: SecretStr


_RECEIVER_NAME_RE = re.compile(r"[a-z0-9_-]{1,16}")
_RECEIVER_SECRET_RE = re.compile(r"[A-Za-z0-9_.~+/=-]{16,256}")


def _loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_receivers(value: str) -> tuple[WebhookReceiver, ...]:
    """`name=https://host/path|secret`, entries separated by commas or line breaks.

    Raise ValueError saying which entry is wrong and why; the message never contains a secret."""
    receivers: list[WebhookReceiver] = []
    entries = [entry.strip() for entry in re.split(r"[,\n]", value) if entry.strip()]
    for number, entry in enumerate(entries, start=1):
        name, equals, rest = entry.partition("=")
        url, bar, secret = rest.rpartition("|")
        name, url, secret = name.strip(), url.strip(), secret.strip()
        where = f"entry {number}" + (f" ({name})" if _RECEIVER_NAME_RE.fullmatch(name) else "")
        if not equals or not bar:
            raise ValueError(f"{where}: must be name=https://host/path|secret")
        if not _RECEIVER_NAME_RE.fullmatch(name):
            raise ValueError(f"{where}: the name must be 1-16 of a-z 0-9 _ -")
        parsed = urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname or any(c.isspace() for c in url):
            raise ValueError(f"{where}: the URL must be https://, e.g. https://dms.example.lt/petent")
        if parsed.scheme == "http" and not _loopback(parsed.hostname):
            raise ValueError(
                f"{where}: the URL must be https:// (the body carries residents' data); http:// only to this host (127.0.0.1, ::1, localhost)"
            )
        if is_example(secret):
            raise ValueError(f"{where}: the secret {EXAMPLE_REFUSED}")
        if not _RECEIVER_SECRET_RE.fullmatch(secret):
            raise ValueError(
                f"{where}: the secret must be 16-256 of A-Z a-z 0-9 _ . ~ + / = - (python -c 'import secrets; print(secrets.token_hex(32))')"
            )
        if any(receiver.name == name for receiver in receivers):
            raise ValueError(f"{where}: the name is used twice")
        receivers.append(WebhookReceiver(name, url, SecretStr(secret)))
    if not receivers:
        raise ValueError("no receiver given; leave it unset for none")
    return tuple(receivers)


def same_secret(given: str | None, expected: str) -> bool:
    """Whether a secret someone sent (a header, a form field) is the expected one, in constant time.
    Whatever they sent: a header with bytes that are not ASCII is simply not the secret (the
    standard library's compare refuses such strings with a TypeError)."""
    if not given:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode("utf-8"))


def parse_listen(value: str) -> tuple[str, int]:
    """`127.0.0.1:9090`, `[::1]:9090` or `0.0.0.0:9090` → (host, port); ValueError saying the form."""
    host, colon, port = value.strip().rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if (
        not colon
        or not host
        or not port.isdigit()
        or not 1 <= int(port) <= 65535
        or any(c.isspace() for c in host)
    ):
        raise ValueError("must be host:port, e.g. 127.0.0.1:9090 (or off)")
    return host, int(port)


WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class Settings(BaseSettings):
    """Process settings, from the environment or `.env` (see `.env.example`)."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", env_ignore_empty=True
    )

    bot_token: SecretStr
    telegram_api_url: str = "https://api.telegram.org"
    admin_chat_id: int
    comms_chat_id: int
    database_url: str = "sqlite+aiosqlite:///data/petent.db"
    redis_url: str | None = None
    conversation_ttl_hours: Annotated[int, Field(ge=1, le=720)] = (
        24  # a conversation left waiting is forgotten after this
    )
    default_locale: Locale = "pl"
    admin_locale: Locale = "lt"
    timezone: str = "Europe/Vilnius"
    case_prefix: str = "VRS"
    secret_key: SecretStr
    municipality_file: Path = DEFAULT_MUNICIPALITY_FILE
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    send_rate_per_second: Annotated[float, Field(ge=0, le=1000)] = 30.0
    group_messages_per_minute: Annotated[int, Field(ge=1, le=600)] = 20
    digest_time: time | None = time(8, 0)
    paid_broadcast: bool = False
    broadcast_lease_seconds: Annotated[int, Field(ge=1, le=3600)] = 120
    # The longest pause between attempts while Telegram is down: after an outage, announcements
    # go on within this many seconds.
    broadcast_max_backoff_seconds: Annotated[float, Field(gt=0, le=600)] = 30.0
    max_cases_per_day: Annotated[int, Field(ge=1, le=1000)] = 5
    audit_sample_size: Annotated[int, Field(ge=1, le=50)] = 5  # cases drawn for an internal audit (/audit)
    reopen_days: Annotated[int, Field(ge=0, le=365)] = 14
    weekly_report: str | None = "monday"  # the day the clerks' group gets last week's report, or off
    escalate_within_days: Annotated[int, Field(ge=0, le=20)] = (
        3  # due this soon with nobody responsible: the head is told
    )
    prompt_minutes: Annotated[int, Field(ge=1, le=120)] = (
        10  # a clerk's pending prompt (answer, reason) expires after this
    )
    gather_seconds: Annotated[int, Field(ge=0, le=600)] = (
        20  # the longest what a resident adds in quick succession waits to reach the clerks as one post
    )
    instance_name: str | None = (
        None  # this process's name in the outbox; default: the host name (a restart resumes its rows)
    )
    webhook_url: str | None = (
        None  # set: Telegram posts updates to this URL (webhook mode) instead of being polled
    )
    webhook_secret: SecretStr | None = Field(
        default=None, validate_default=True
    )  # Telegram's X-Telegram-Bot-Api-Secret-Token
    # The operators' listener: /healthz and /metrics, apart from the web server the public reaches
    # ("host:port", or off). Loopback by default: a probe or Prometheus on the same host, or a
    # private address that only the monitoring network reaches.
    ops_listen: str | None = "127.0.0.1:9090"
    web_host: str = "127.0.0.1"  # the web server: the webhook and the Open311 API
    web_port: Annotated[int, Field(ge=1, le=65535)] | None = (
        None  # default: 8081 in webhook mode, no web server when polling
    )
    # The web server's address from outside (http(s), a path if a proxy serves it under one): the
    # Open311 discovery names it. Default: WEBHOOK_URL's scheme and host, else the request's Host header.
    public_url: str | None = None
    # Reverse proxies in front of the web server, each appending the address it saw to X-Forwarded-For
    # (Open311 reads are limited per address); 0: the connection's address is the client's, the header is ignored.
    web_proxy_hops: Annotated[int, Field(ge=0, le=5)] = 0
    # Receivers of case events (the document management system): "name=https://url|secret, …" (see parse_receivers).
    case_webhooks: SecretStr | None = None
    case_webhook_timeout_seconds: Annotated[float, Field(gt=0, le=120)] = (
        10.0  # one delivery attempt, connecting included
    )
    case_webhook_max_backoff_seconds: Annotated[float, Field(gt=0, le=3600)] = (
        300.0  # the longest pause between attempts
    )
    # The Open311 clients that may post requests: "name:key,name:key" (bot.open311; kept out of the municipality file).
    open311_keys: SecretStr | None = None
    # Where the files residents and clerks send are kept (bot.services.storage): this directory,
    # or an S3-compatible bucket when FILES_S3_ENDPOINT is set.
    files_dir: Path = Path("data/files")
    files_s3_endpoint: str | None = None
    files_s3_bucket: str | None = Field(default=None, validate_default=True)
    files_s3_access_key: str | None = Field(default=None, validate_default=True)
    files_s3_secret_key: SecretStr | None = Field(default=None, validate_default=True)
    files_s3_region: str = "us-east-1"
    # Server-side encryption of every stored object: AES256 (the storage's own keys) or a KMS key id (SSE-KMS).
    files_s3_sse: str | None = None
    # What a resident's files may take (bot.services.case_commands): per case, and per day over all their
    # cases; a byte size is a number of bytes or e.g. "100MiB", "1GB". The same file sent again is kept once.
    files_per_case_max: Annotated[int, Field(ge=1, le=1000)] = 20
    file_bytes_per_case_max: Annotated[ByteSize, Field(ge=1)] = ByteSize(100 * 2**20)
    files_per_resident_day_max: Annotated[int, Field(ge=1, le=10_000)] = 30
    file_bytes_per_resident_day_max: Annotated[ByteSize, Field(ge=1)] = ByteSize(200 * 2**20)
    # Downloads stop (the clerks are alerted once, /healthz turns unhealthy) while FILES_DIR's disk
    # has less free space than this; 0 turns the check off. Not checked for an S3 bucket.
    files_min_free_bytes: Annotated[ByteSize, Field(ge=0)] = ByteSize(2**30)
    # The public page /service-quality on the web server: the visit surveys' figures per place (bot.web).
    public_service_quality: bool = False

    @field_validator("weekly_report")
    @classmethod
    def _weekday(cls, value: str | None) -> str | None:
        if value is None or value.strip().lower() in ("", "off", "no", "false"):
            return None
        day = value.strip().lower()
        # "mon", "Monday": three letters or more name one day.
        match = next((name for name in WEEKDAYS if len(day) >= 3 and name.startswith(day)), None)
        if match is None:
            raise ValueError("must be a day of the week in English (monday … sunday) or off")
        return match

    @property
    def weekly_report_weekday(self) -> int | None:
        """0 = Monday, as date.weekday(); None when the weekly report is off."""
        return WEEKDAYS.index(self.weekly_report) if self.weekly_report else None

    @field_validator("bot_token")
    @classmethod
    def _token_shape(cls, value: SecretStr) -> SecretStr:
        if not _TOKEN_RE.match(value.get_secret_value()):
            raise ValueError("does not look like a bot token from @BotFather (digits:letters)")
        return value

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url(cls, value: str | None) -> str | None:
        if value and not re.match(r"^https?://[^/\s]+/\S*$", value):
            raise ValueError(
                "must be the full URL Telegram posts to, e.g. https://petent.example.lt/telegram"
            )
        return value or None

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value and not re.fullmatch(r"https?://[^/\s?#]+(/[^\s?#]*)?", value):
            raise ValueError(
                "must be the http(s) URL the web server is reached at, without a query, e.g. https://petent.example.lt"
            )
        return value.rstrip("/") if value else None

    @property
    def public_base_url(self) -> str | None:
        """Where the web server is reached from outside: PUBLIC_URL, else WEBHOOK_URL's scheme and host."""
        if self.public_url or not self.webhook_url:
            return self.public_url
        parts = urlsplit(self.webhook_url)
        return f"{parts.scheme}://{parts.netloc}"

    @field_validator("webhook_secret")
    @classmethod
    def _webhook_secret(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if info.data.get("webhook_url") and value is None:
            raise ValueError(
                "must be set with WEBHOOK_URL: 1-256 letters, digits, _ or -, known only to Telegram and the bot"
            )
        if value is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", value.get_secret_value()):
            raise ValueError("must be 1-256 letters (A-Z, a-z), digits, _ or -")
        if value is not None and is_example(value.get_secret_value()):
            raise ValueError(EXAMPLE_REFUSED)
        return value

    @field_validator("case_webhooks")
    @classmethod
    def _case_webhooks(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parse_receivers(value.get_secret_value())  # raises ValueError naming the entry, never its secret
        return value

    @cached_property
    def webhook_receivers(self) -> tuple[WebhookReceiver, ...]:
        """The receivers of case events (CASE_WEBHOOKS), in the order given."""
        return parse_receivers(self.case_webhooks.get_secret_value()) if self.case_webhooks else ()

    @field_validator("open311_keys")
    @classmethod
    def _open311_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value().strip():
            parse_open311_keys(value.get_secret_value())  # raises ValueError naming the problem
        return value

    @property
    def open311_clients(self) -> dict[str, str]:
        """The Open311 API keys and the client each belongs to (key → client name)."""
        return parse_open311_keys(self.open311_keys.get_secret_value()) if self.open311_keys else {}

    @field_validator("ops_listen")
    @classmethod
    def _ops_listen(cls, value: str | None) -> str | None:
        if value is None or value.strip().lower() in ("", "off", "no", "false"):
            return None
        parse_listen(value)  # raises ValueError naming the problem
        return value.strip()

    @property
    def ops_address(self) -> tuple[str, int] | None:
        """Where /healthz and /metrics are served (OPS_LISTEN), or None when that is off."""
        return parse_listen(self.ops_listen) if self.ops_listen else None

    @property
    def web_listen_port(self) -> int | None:
        """Where the web server listens: WEB_PORT, else 8081 in webhook mode, else none."""
        return self.web_port or (8081 if self.webhook_url else None)

    @field_validator("files_s3_endpoint")
    @classmethod
    def _s3_endpoint(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not re.fullmatch(r"https?://[^/\s]+/?", value):
            raise ValueError(
                "must be the storage's http(s) URL without a path, e.g. https://s3.eu-central-1.amazonaws.com or http://127.0.0.1:9000"
            )
        try:
            import minio  # noqa: F401
        except ImportError:
            raise ValueError(
                "the S3 client is not installed: pip install 'petent[s3]' (or leave it unset to keep files in FILES_DIR)"
            ) from None
        return value.rstrip("/")

    @field_validator("files_s3_bucket")
    @classmethod
    def _s3_bucket(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("files_s3_endpoint") and not value:
            raise ValueError("must be set with FILES_S3_ENDPOINT: the bucket the files go to")
        if value and not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", value):
            raise ValueError("must be a bucket name: 3-63 lowercase letters, digits, dots and hyphens")
        return value or None

    @field_validator("files_s3_access_key", "files_s3_secret_key")
    @classmethod
    def _s3_credentials(cls, value: str | SecretStr | None, info: ValidationInfo) -> str | SecretStr | None:
        if info.data.get("files_s3_endpoint") and not value:
            raise ValueError("must be set with FILES_S3_ENDPOINT (the storage's credentials)")
        if isinstance(value, SecretStr) and is_example(value.get_secret_value()):
            raise ValueError(EXAMPLE_REFUSED)
        return value

    @field_validator("files_s3_sse")
    @classmethod
    def _s3_sse(cls, value: str | None, info: ValidationInfo) -> str | None:
        value = (value or "").strip()
        if not value:
            return None
        if not info.data.get("files_s3_endpoint"):
            raise ValueError(
                "only for a bucket: set FILES_S3_ENDPOINT too (files in FILES_DIR are not encrypted by the bot)"
            )
        if value.upper() == "AES256":
            return "AES256"
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9:/_.-]{0,2047}", value):
            raise ValueError("must be AES256 or a KMS key id, ARN or alias (e.g. alias/petent-files)")
        return value

    @field_validator("telegram_api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an http(s) URL, e.g. https://api.telegram.org")
        return value.rstrip("/")

    @field_validator("admin_chat_id", "comms_chat_id")
    @classmethod
    def _group_id(cls, value: int) -> int:
        if value >= 0:
            raise ValueError("must be a group id: a negative number such as -1001234567890")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        # Accept the plain forms an administrator is likely to paste and pick the async driver.
        for plain, driver in (
            ("sqlite://", "sqlite+aiosqlite://"),
            ("postgresql://", "postgresql+asyncpg://"),
            ("postgres://", "postgresql+asyncpg://"),
        ):
            if value.startswith(plain):
                value = driver + value[len(plain) :]
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must be a sqlite:/// or postgresql:// URL")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis:// URL")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("is not a known time zone such as Europe/Vilnius") from None
        return value

    @field_validator("case_prefix")
    @classmethod
    def _case_prefix(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Z]{2,6}", value):
            raise ValueError("must be 2 to 6 capital letters, e.g. VRS")
        return value

    @field_validator("secret_key")
    @classmethod
    def _secret_key(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 16:
            raise ValueError(
                "must be at least 16 characters (python -c 'import secrets; print(secrets.token_hex(32))')"
            )
        if is_example(value.get_secret_value()):
            raise ValueError(EXAMPLE_REFUSED)
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


_CLIENT_RE = re.compile(r"[a-z0-9_-]{1,32}")
_API_KEY_RE = re.compile(r"[A-Za-z0-9_-]{16,128}")


def parse_open311_keys(value: str) -> dict[str, str]:
    """`fixmystreet:KEY1,other:KEY2` → {"KEY1": "fixmystreet", "KEY2": "other"}; ValueError names what is wrong."""
    keys: dict[str, str] = {}
    clients: set[str] = set()
    for number, pair in enumerate((part.strip() for part in value.split(",") if part.strip()), start=1):
        name, colon, key = pair.partition(":")
        name, key = name.strip(), key.strip()
        if not colon or not _CLIENT_RE.fullmatch(name):
            raise ValueError(
                f"pair {number}: write client:key, the client's name in a-z, 0-9, _ or - (e.g. fixmystreet:…)"
            )
        if not _API_KEY_RE.fullmatch(key):
            raise ValueError(
                f"pair {number} ({name}): the key must be 16 to 128 letters, digits, _ or - (python -c 'import secrets; print(secrets.token_urlsafe(24))')"
            )
        if is_example(key):
            raise ValueError(f"pair {number} ({name}): the key {EXAMPLE_REFUSED}")
        if name in clients:
            raise ValueError(f"pair {number}: the client {name} is named twice")
        if key in keys:
            raise ValueError(f"pair {number} ({name}): the key is the same as {keys[key]}'s")
        clients.add(name)
        keys[key] = name
    return keys


class GivenSettings(Settings):
    """Settings from the values given only: no `.env`, no environment (the sandbox's own, which must
    never post to a real document system nor open a port that production's settings name)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)
