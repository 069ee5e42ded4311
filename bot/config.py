"""Configuration: the process settings (environment / .env) and the municipality file (TOML).

Both are validated at start-up; `load_config` turns any problem into one `ConfigError` whose
message names the setting, so `python -m bot` can print one clear line and stop.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
import tomllib
from dataclasses import dataclass
from datetime import time
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ByteSize, Field, SecretStr, ValidationError, ValidationInfo, field_validator, model_validator
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
EXAMPLE_SECRETS = frozenset({
    "change-this-to-a-long-random-secret",  # SECRET_KEY
    "a-long-random-string_of-letters-digits",  # WEBHOOK_SECRET
    "a-long-random-secret-of-16-or-more",  # CASE_WEBHOOKS
    "a-long-random-key-for-fixmystreet",  # OPEN311_KEYS
    "change-me",  # FILES_S3_SECRET_KEY
})  # fmt: skip
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
            raise ValueError(f"{where}: the URL must be https:// (the body carries residents' data); http:// only to this host (127.0.0.1, ::1, localhost)")
        if is_example(secret):
            raise ValueError(f"{where}: the secret {EXAMPLE_REFUSED}")
        if not _RECEIVER_SECRET_RE.fullmatch(secret):
            raise ValueError(f"{where}: the secret must be 16-256 of A-Z a-z 0-9 _ . ~ + / = - (python -c 'import secrets; print(secrets.token_hex(32))')")
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
    if not colon or not host or not port.isdigit() or not 1 <= int(port) <= 65535 or any(c.isspace() for c in host):
        raise ValueError("must be host:port, e.g. 127.0.0.1:9090 (or off)")
    return host, int(port)


WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class Settings(BaseSettings):
    """Process settings, from the environment or `.env` (see `.env.example`)."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", env_ignore_empty=True)

    bot_token: SecretStr
    telegram_api_url: str = "https://api.telegram.org"
    admin_chat_id: int
    comms_chat_id: int
    database_url: str = "sqlite+aiosqlite:///data/petent.db"
    redis_url: str | None = None
    conversation_ttl_hours: Annotated[int, Field(ge=1, le=720)] = 24  # a conversation left waiting is forgotten after this
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
    escalate_within_days: Annotated[int, Field(ge=0, le=20)] = 3  # due this soon with nobody responsible: the head is told
    prompt_minutes: Annotated[int, Field(ge=1, le=120)] = 10  # a clerk's pending prompt (answer, reason) expires after this
    gather_seconds: Annotated[int, Field(ge=0, le=600)] = 20  # the longest what a resident adds in quick succession waits to reach the clerks as one post
    instance_name: str | None = None  # this process's name in the outbox; default: the host name (a restart resumes its rows)
    webhook_url: str | None = None  # set: Telegram posts updates to this URL (webhook mode) instead of being polled
    webhook_secret: SecretStr | None = Field(default=None, validate_default=True)  # Telegram's X-Telegram-Bot-Api-Secret-Token
    # The operators' listener: /healthz and /metrics, apart from the web server the public reaches
    # ("host:port", or off). Loopback by default: a probe or Prometheus on the same host, or a
    # private address that only the monitoring network reaches.
    ops_listen: str | None = "127.0.0.1:9090"
    web_host: str = "127.0.0.1"  # the web server: the webhook and the Open311 API
    web_port: Annotated[int, Field(ge=1, le=65535)] | None = None  # default: 8081 in webhook mode, no web server when polling
    # The web server's address from outside (http(s), a path if a proxy serves it under one): the
    # Open311 discovery names it. Default: WEBHOOK_URL's scheme and host, else the request's Host header.
    public_url: str | None = None
    # Reverse proxies in front of the web server, each appending the address it saw to X-Forwarded-For
    # (Open311 reads are limited per address); 0: the connection's address is the client's, the header is ignored.
    web_proxy_hops: Annotated[int, Field(ge=0, le=5)] = 0
    # Receivers of case events (the document management system): "name=https://url|secret, …" (see parse_receivers).
    case_webhooks: SecretStr | None = None
    case_webhook_timeout_seconds: Annotated[float, Field(gt=0, le=120)] = 10.0  # one delivery attempt, connecting included
    case_webhook_max_backoff_seconds: Annotated[float, Field(gt=0, le=3600)] = 300.0  # the longest pause between attempts
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
            raise ValueError("must be the full URL Telegram posts to, e.g. https://petent.example.lt/telegram")
        return value or None

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value and not re.fullmatch(r"https?://[^/\s?#]+(/[^\s?#]*)?", value):
            raise ValueError("must be the http(s) URL the web server is reached at, without a query, e.g. https://petent.example.lt")
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
            raise ValueError("must be set with WEBHOOK_URL: 1-256 letters, digits, _ or -, known only to Telegram and the bot")
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
            raise ValueError("must be the storage's http(s) URL without a path, e.g. https://s3.eu-central-1.amazonaws.com or http://127.0.0.1:9000")
        try:
            import minio  # noqa: F401
        except ImportError:
            raise ValueError("the S3 client is not installed: pip install 'petent[s3]' (or leave it unset to keep files in FILES_DIR)") from None
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
            raise ValueError("only for a bucket: set FILES_S3_ENDPOINT too (files in FILES_DIR are not encrypted by the bot)")
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
            raise ValueError("must be at least 16 characters (python -c 'import secrets; print(secrets.token_hex(32))')")
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
            raise ValueError(f"pair {number}: write client:key, the client's name in a-z, 0-9, _ or - (e.g. fixmystreet:…)")
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


# --- the municipality file ---------------------------------------------------------------


class LocalizedName(BaseModel):
    """A name in Polish and Lithuanian; English falls back to Lithuanian (place names)."""

    model_config = {"extra": "forbid"}

    pl: Annotated[str, Field(min_length=1, max_length=60)]
    lt: Annotated[str, Field(min_length=1, max_length=60)]
    en: Annotated[str | None, Field(min_length=1, max_length=60)] = None

    def get(self, locale: str) -> str:
        if locale == "pl":
            return self.pl
        if locale == "en" and self.en:
            return self.en
        return self.lt


class Entry(LocalizedName):
    id: Annotated[str, Field(pattern=r"^[a-z0-9_]{1,24}$")]


NEARBY_RADIUS_M = 250  # "me too": how far open cases of a category are offered, unless the category says otherwise


class Category(Entry):
    """A category of cases; `radius_m`: how far away an open report of it is offered as "me too"."""

    radius_m: Annotated[int, Field(ge=10, le=5000)] = NEARBY_RADIUS_M


class LocalizedText(BaseModel):
    """A text residents read, in each language; English falls back to Polish."""

    model_config = {"extra": "forbid"}

    pl: Annotated[str, Field(min_length=1, max_length=3000)]
    lt: Annotated[str, Field(min_length=1, max_length=3000)]
    en: Annotated[str | None, Field(min_length=1, max_length=3000)] = None

    def get(self, locale: str) -> str:
        return {"pl": self.pl, "lt": self.lt}.get(locale) or self.en or self.pl


class Template(BaseModel):
    """A canned answer clerks can send; offered for the given kinds and statuses (all if empty)."""

    model_config = {"extra": "forbid"}

    id: Annotated[str, Field(pattern=r"^[a-z0-9_]{1,24}$")]
    title: LocalizedName
    text: LocalizedText
    kinds: list[Literal["request", "complaint", "report"]] = []
    statuses: list[Literal["new", "assigned", "in_progress", "answered", "redirected", "rejected", "reopened"]] = []

    def fits(self, kind: str, status: str) -> bool:
        return (not self.kinds or kind in self.kinds) and (not self.statuses or status in self.statuses)


class KindRules(BaseModel):
    model_config = {"extra": "forbid"}

    deadline_days: Annotated[int, Field(ge=1, le=120)]
    max_extension_days: Annotated[int, Field(ge=0, le=120)]
    retention_years: Annotated[int, Field(ge=1, le=100)]  # after closing, then the personal data goes


class Privacy(BaseModel):
    """Who answers for residents' data: named in the privacy notice (/privacy)."""

    model_config = {"extra": "forbid"}

    controller: LocalizedText  # the controller's name and address
    dpo: Annotated[str, Field(min_length=3, max_length=200)]  # the data protection officer's contact


class Team(BaseModel):
    """A department, an eldership or the front office: the clerks who own a set of cases.

    `members` and `heads` are Telegram user ids; heads also assign cases. A team that lists
    nobody lets every member of its group who may post there act (the zero-config desk). Admins
    of the group may always act (bot.services.roles)."""

    model_config = {"extra": "forbid"}

    id: Annotated[str, Field(pattern=r"^[a-z0-9_]{1,24}$")]
    name: LocalizedName
    chat_id: Annotated[int, Field(lt=0)]  # the team's (forum) supergroup; several teams may share one
    heads: list[int] = []
    members: list[int] = []
    quality: bool = False  # the quality team: objectives' reviews, nonconformities, visitors' proposals (at most one team)

    def lists_people(self) -> bool:
        return bool(self.heads or self.members)


class CommsStaff(BaseModel):
    """Who acts in the communications group (COMMS_CHAT_ID): these Telegram user ids and the
    group's admins; when nobody is listed, every member of the group who may post there."""

    model_config = {"extra": "forbid"}

    members: list[int] = []


PLACE_ID_MAX = 40  # "v_" + the id in Telegram's 64-character start payload of A-Za-z0-9_-
PLACE_ID_PATTERN = rf"^[a-z0-9-]{{1,{PLACE_ID_MAX}}}$"


class Place(BaseModel):
    """Where people are served in person (a desk of the front office, an eldership's office): the
    visit survey's QR poster hangs there (bot.services.visits). `team` prints its poster (the
    default team when left out); `eldership` says where it is."""

    model_config = {"extra": "forbid"}

    id: str
    name: LocalizedName
    team: str | None = None
    eldership: str | None = None

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not re.fullmatch(PLACE_ID_PATTERN, value):
            raise ValueError(f"{value[:60]!r}: the id must be 1-{PLACE_ID_MAX} of a-z 0-9 - (it goes into the poster's link)")
        return value


class RoutingRule(BaseModel):
    """Cases of these kinds, categories and elderships (any, where a list is empty) go to `team`."""

    model_config = {"extra": "forbid"}

    team: str
    kinds: list[Literal["request", "complaint", "report"]] = []
    categories: list[str] = []
    elderships: list[str] = []

    def matches(self, kind: str, category_id: str, eldership_id: str | None) -> bool:
        return (
            (not self.kinds or kind in self.kinds)
            and (not self.categories or category_id in self.categories)
            and (not self.elderships or eldership_id in self.elderships)
        )


class Routing(BaseModel):
    """The first matching rule wins; no match: `default_team`. Overdue cases also go to `escalation_team`."""

    model_config = {"extra": "forbid"}

    default_team: str
    escalation_team: str | None = None
    rules: list[RoutingRule] = []


class Objective(BaseModel):
    """A quality objective (ISO 9001, 6.2): a figure of the quality report, compared with a target
    for each month or quarter, for one team or (`team` left out) the whole municipality.

    on_time_share: % closed within the legal deadline; median_handling_days: working days;
    average_satisfaction: 1 to 5 (the whole municipality only: answers carry no team);
    overdue_at_period_end: open cases past their deadline on the period's last day;
    milestones_on_time: % of the project milestones planned (baseline) in the period that were met
    by that date (the project register; `team`: its projects only)."""

    model_config = {"extra": "forbid"}

    id: Annotated[str, Field(pattern=r"^[a-z0-9_]{1,24}$")]
    name: LocalizedName
    metric: Literal["on_time_share", "median_handling_days", "average_satisfaction", "overdue_at_period_end", "milestones_on_time"]
    comparison: Literal[">=", "<="]
    target: Annotated[float, Field(ge=0, le=100_000)]
    period: Literal["month", "quarter"] = "month"
    team: str | None = None  # None: the whole municipality

    def met_by(self, figure: float) -> bool:
        return figure >= self.target if self.comparison == ">=" else figure <= self.target


class PlannedAudit(BaseModel):
    """An internal audit of the audit programme (ISO 9001, 9.2.2): a team, a month or quarter as
    /audit takes it, and the auditor (a Telegram user id, never of the audited team)."""

    model_config = {"extra": "forbid"}

    team: str
    period: Annotated[str, Field(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2]|Q[1-4])$")]  # 2026-11, 2026-Q4
    auditor: Annotated[int, Field(gt=0)]


class NcRules(BaseModel):
    """Nonconformities opened from the cases themselves, one per team and ISO week listing them
    (bot.services.nonconformities.Nonconformities.from_cases)."""

    model_config = {"extra": "forbid"}

    closed_late: bool = False  # a case closed after its deadline
    low_rating: bool = False  # a satisfaction rating of 1 or 2 with "not resolved" (anonymous: counted for its category's team)


DEFAULT_TEAM_ID = "desk"


class Municipality(BaseModel):
    """Everything municipality-specific that is not a process setting."""

    model_config = {"extra": "forbid"}

    name: LocalizedName
    elderships: list[Entry]
    categories: list[Category]
    kinds: dict[str, KindRules]
    privacy: Privacy
    news_topics: list[Entry] = []
    templates: list[Template] = []
    teams: list[Team] = []
    routing: Routing | None = None
    comms: CommsStaff = CommsStaff()
    places: list[Place] = []
    objectives: list[Objective] = []
    nc_rules: NcRules = NcRules()
    audit_programme: list[PlannedAudit] = []

    @model_validator(mode="after")
    def _consistent(self) -> Municipality:
        for field in ("elderships", "categories", "news_topics", "templates"):
            entries = getattr(self, field)
            if not entries and field in ("elderships", "categories"):
                raise ValueError(f"{field}: at least one entry is needed")
            ids = [entry.id for entry in entries]
            duplicates = sorted({i for i in ids if ids.count(i) > 1})
            if duplicates:
                raise ValueError(f"{field}: duplicate id {', '.join(duplicates)}")
        missing = [code for code in KIND_CODES if code not in self.kinds]
        unknown = [code for code in self.kinds if code not in KIND_CODES]
        if missing or unknown:
            raise ValueError(f"kinds: expected exactly {', '.join(KIND_CODES)}")
        self._check_teams()
        self._check_places()
        self._check_objectives()
        self._check_audit_programme()
        return self

    def _check_places(self) -> None:
        """Each place named in the error: a duplicate id, a team or an eldership the file does not have."""
        seen: set[str] = set()
        known_teams = {team.id for team in self.teams}
        for number, place in enumerate(self.places, start=1):
            where = f"places[{number}] ({place.id})"
            if place.id in seen:
                raise ValueError(f"{where}: duplicate id")
            seen.add(place.id)
            if place.team is not None and place.team not in known_teams:
                raise ValueError(
                    f"{where}: unknown team {place.team}" + ("" if known_teams else " (the file has no [[teams]]: leave team out for the default team)")
                )
            if place.eldership is not None and place.eldership not in self.eldership_by_id:
                raise ValueError(f"{where}: unknown eldership {place.eldership}")

    def _check_teams(self) -> None:
        ids = [team.id for team in self.teams]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"teams: duplicate id {', '.join(duplicates)}")
        if self.teams and self.routing is None:
            raise ValueError("routing: missing; name at least the default_team")
        quality = [team.id for team in self.teams if team.quality]
        if len(quality) > 1:
            raise ValueError(f"teams: quality = true on {', '.join(quality)}; mark one team only")
        if self.routing is None:
            return
        if not self.teams:
            raise ValueError("routing: there are no teams to route to (add [[teams]])")
        known = set(ids)
        for where, team in (("routing.default_team", self.routing.default_team), ("routing.escalation_team", self.routing.escalation_team)):
            if team is not None and team not in known:
                raise ValueError(f"{where}: unknown team {team}")
        for number, rule in enumerate(self.routing.rules, start=1):
            where = f"routing.rules[{number}]"
            if rule.team not in known:
                raise ValueError(f"{where}: unknown team {rule.team}")
            unknown_ids = [c for c in rule.categories if c not in self.category_by_id] + [e for e in rule.elderships if e not in self.eldership_by_id]
            if unknown_ids:
                raise ValueError(f"{where}: unknown category or eldership {', '.join(unknown_ids)}")
            shadowing = next((i for i, earlier in enumerate(self.routing.rules[: number - 1], start=1) if _covers(earlier, rule)), None)
            if shadowing is not None:
                raise ValueError(f"{where}: can never match, rule {shadowing} before it takes every case it would")

    def _check_objectives(self) -> None:
        ids = [objective.id for objective in self.objectives]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"objectives: duplicate id {', '.join(duplicates)}")
        known = {team.id for team in self.teams}
        for number, objective in enumerate(self.objectives, start=1):
            where = f"objectives[{number}]"
            if objective.team is not None and objective.team not in known:
                raise ValueError(f"{where}: unknown team {objective.team}")
            if objective.team is not None and objective.metric == "average_satisfaction":
                raise ValueError(f"{where}: average_satisfaction is measured for the whole municipality only (answers carry no team)")
            if objective.metric in ("on_time_share", "milestones_on_time") and objective.target > 100:
                raise ValueError(f"{where}: a share is at most 100")
            if objective.metric == "average_satisfaction" and not 1 <= objective.target <= 5:
                raise ValueError(f"{where}: satisfaction is from 1 to 5")

    def _check_audit_programme(self) -> None:
        for number, planned in enumerate(self.audit_programme, start=1):
            team = self.team_by_id.get(planned.team)
            if team is None:
                raise ValueError(f"audit_programme[{number}]: unknown team {planned.team}")
            if planned.auditor in (*team.heads, *team.members):
                raise ValueError(f"audit_programme[{number}]: the auditor {planned.auditor} is of team {team.id}: an auditor never audits their own team")

    @property
    def quality_team(self) -> Team:
        """Where quality matters go: the team marked `quality = true`, else the default team."""
        marked = next((team for team in self.teams if team.quality), None)
        if marked is not None:
            return marked
        assert self.routing is not None, "with_default_team gives every municipality a routing"
        return self.team_by_id[self.routing.default_team]

    @cached_property
    def objective_by_id(self) -> dict[str, Objective]:
        return {objective.id: objective for objective in self.objectives}

    def with_default_team(self, chat_id: int) -> Municipality:
        """Without teams in the file: one team in the clerks' group (ADMIN_CHAT_ID) takes every case."""
        if self.teams:
            return self
        desk = Team(id=DEFAULT_TEAM_ID, name=LocalizedName(pl="Urzędnicy", lt="Specialistai", en="Clerks"), chat_id=chat_id)
        return self.model_copy(update={"teams": [desk], "routing": Routing(default_team=DEFAULT_TEAM_ID)})

    @cached_property
    def team_by_id(self) -> dict[str, Team]:
        return {team.id: team for team in self.teams}

    @cached_property
    def eldership_by_id(self) -> dict[str, Entry]:
        return {entry.id: entry for entry in self.elderships}

    @cached_property
    def category_by_id(self) -> dict[str, Category]:
        return {entry.id: entry for entry in self.categories}

    @cached_property
    def place_by_id(self) -> dict[str, Place]:
        return {place.id: place for place in self.places}


def _covers(earlier: RoutingRule, later: RoutingRule) -> bool:
    """Every case `later` matches is matched by `earlier` first."""
    return all(
        not wide or (narrow and set(narrow) <= set(wide))
        for wide, narrow in ((earlier.kinds, later.kinds), (earlier.categories, later.categories), (earlier.elderships, later.elderships))
    )


def load_municipality(path: Path) -> Municipality:
    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"MUNICIPALITY_FILE: {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"MUNICIPALITY_FILE: {path} is not valid TOML ({exc})") from None
    try:
        return Municipality.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"MUNICIPALITY_FILE: {path}: {_first_error(exc)}") from None


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


class Config(BaseModel):
    """Settings and the municipality together, as the application receives them."""

    model_config = {"arbitrary_types_allowed": True}

    settings: Settings
    municipality: Municipality


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


def load_config(*, isolated: bool = False, **overrides: object) -> Config:
    """Read and validate everything; raise ConfigError naming the first bad setting. `isolated`:
    from `overrides` alone (GivenSettings), whatever `.env` and the environment say."""
    try:
        settings = (GivenSettings if isolated else Settings)(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        error = exc.errors()[0]
        name = str(error["loc"][0]).upper() if error["loc"] else "settings"
        if error["type"] == "missing":
            raise ConfigError(f"{name} is not set (see .env.example)") from None
        message = error["msg"].removeprefix("Value error, ")
        raise ConfigError(f"{name}: {message}") from None
    municipality = load_municipality(settings.municipality_file).with_default_team(settings.admin_chat_id)
    return Config(settings=settings, municipality=municipality)
