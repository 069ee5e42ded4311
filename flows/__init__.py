"""One aiogram Router per conversation; `routers()` lists them in the order they must match."""

from collections.abc import Callable, Iterator
from typing import Any

from aiogram import Router
from aiogram.dispatcher.event.handler import FilterObject


def routers() -> list[Router]:
    from flows import (
        area_notices,
        cases,
        clerk,
        comms,
        fallback,
        feedback,
        intake,
        news,
        privacy,
        projects,
        proposals,
        quality,
        register,
        start,
        visits,
    )

    # The fallback router goes last: it answers whatever no other flow took.
    flows = [
        visits.router,  # before start: a scanned poster's /start v_<place>
        start.router,
        privacy.router,
        intake.router,
        cases.router,
        news.router,
        projects.router,
        proposals.router,
        feedback.router,
        projects.staff,  # before the desk's and the communications group's routers: its answers to its own steps
        register.router,
        visits.staff,
        quality.router,  # before the desk: a nonconformity's step is not a message to a resident
        area_notices.router,  # before the desk: the notice's text is not a message to the case's resident
        clerk.router,
        clerk.outside,
        area_notices.outside,
        comms.router,
        comms.outside,
        cases.unprompted,
        fallback.router,
    ]
    for router in flows:
        for check in filters_of(router):
            if not check.awaitable:
                _check_on_the_loop(check)
    return flows


def filters_of(router: Router) -> Iterator[FilterObject]:
    """Every filter of the router: its observers' own (`router.message.filter(…)`) and its handlers'."""
    for observer in router.observers.values():
        for handler in (observer._handler, *observer.handlers):  # _handler: the observer's own filters
            yield from handler.filters or ()


def _check_on_the_loop(check: FilterObject) -> None:
    """aiogram runs a filter that is a plain function, as every `F.…` filter is, in a worker thread
    (asyncio.to_thread): a trip to a thread and back, several per update, for a comparison of two
    attributes. Ours never block, so they run on the event loop."""
    resolve: Callable[..., Any] = check.callback

    async def run(*args: Any, **kwargs: Any) -> Any:
        return resolve(*args, **kwargs)

    check.callback, check.awaitable = run, True
