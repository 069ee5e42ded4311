"""The configuration the application receives: the process settings (bot/settings.py) and the
municipality file (bot/municipality.py), loaded and validated together; `load_config` turns any
problem into one `ConfigError` whose message names the setting, so `python -m bot` can print one
clear line and stop."""

from __future__ import annotations

from pydantic import BaseModel, ValidationError

from bot.municipality import Municipality, load_municipality
from bot.settings import ConfigError, GivenSettings, Settings


class Config(BaseModel):
    """Settings and the municipality together, as the application receives them."""

    model_config = {"arbitrary_types_allowed": True}

    settings: Settings
    municipality: Municipality


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
