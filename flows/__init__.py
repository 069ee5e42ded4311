"""One aiogram Router per conversation; `routers()` lists them in the order they must match."""

from aiogram import Router


def routers() -> list[Router]:
    from flows import fallback, start

    # The fallback router goes last: it answers whatever no other flow took.
    return [start.router, fallback.router]
