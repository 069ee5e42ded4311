"""One aiogram Router per conversation; `routers()` lists them in the order they must match."""

from aiogram import Router


def routers() -> list[Router]:
    from flows import cases, clerk, comms, fallback, feedback, intake, news, privacy, register, start

    # The fallback router goes last: it answers whatever no other flow took.
    return [
        start.router,
        privacy.router,
        intake.router,
        cases.router,
        news.router,
        feedback.router,
        register.router,
        clerk.router,
        clerk.outside,
        comms.router,
        comms.outside,
        fallback.router,
    ]
