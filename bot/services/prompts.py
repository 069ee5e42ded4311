"""A prompt: a question in a team group that waits for one clerk's text (a reason, the final
answer) for PROMPT_MINUTES. Its expiry is kept in the clerk's conversation data, as ISO 8601."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.store.models import utcnow


def prompt_expiry(minutes: int, now: datetime | None = None) -> str:
    """When a prompt asked now stops waiting, as stored with the conversation."""
    return ((now or utcnow()) + timedelta(minutes=minutes)).isoformat()


def prompt_expired(expiry: str, now: datetime | None = None) -> bool:
    """Whether a prompt with this stored expiry no longer waits."""
    return (now or utcnow()) > datetime.fromisoformat(expiry)
