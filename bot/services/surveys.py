"""Anonymous answers: residents' satisfaction with closed cases, and polls for everyone.

What is stored with an answer is what reports need and nothing that points to a person: no
Telegram id, no resident, no case, no poll message; the day, not the time; a random row id.
"One answer each" is kept by a receipt, HMAC-SHA256 under SECRET_KEY of the poll and the user
(or of the case), in a table of its own with no other column: the receipt and the answer are
written in one transaction, but nothing in either row leads to the other. A person's poll
receipts go with their profile (/forget): with the key they would still tell which polls that
Telegram user took part in. Case receipts name no person and stay.

Nor does the storage: a row written in the receipt's transaction would keep that transaction's
place and id (SQLite's rowid order, PostgreSQL's ctid order and xmin) and so pair with the
receipt for anyone holding the key. So that same transaction writes all answers of the group
(the day, and the poll) again, in a random order: each then carries the newest transaction id and
a random place, and only the group is left to tell them apart.

Visit surveys (bot.services.visits, docs/visit-survey.md) follow the same rule: a receipt of
(person, place, day) in `visit_receipts`, the place's answers of the day rewritten beside it, and
the receipts of earlier days deleted in the same transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlmodel import SQLModel, col

from bot.services.deadlines import WorkingCalendar
from bot.services.polls import Question, questions_of, questions_to_json
from bot.store.db import Database, insert_for, rowcount, table_of
from bot.store.models import (
    Case,
    Delivery,
    Poll,
    PollAnswer,
    PollStatus,
    Resident,
    ResolvedAnswer,
    SatisfactionAnswer,
    SurveyReceipt,
    VisitAnswer,
    VisitReceipt,
    WaitingTime,
    utcnow,
)

COMMENT_MAX = 1000
SCORES = range(1, 6)
# pg_advisory_xact_lock(REWRITE_LOCK, group): one rewrite of a group at a time (the two-key form,
# apart from the migrations' one-key lock). Satisfaction answers are group 0, a poll's its id.
REWRITE_LOCK = 7424502
SATISFACTION_GROUP = 0
VISITS_GROUP = -1  # visit answers (poll ids are positive)


class AlreadyAnswered(Exception):
    """This person (or this case) has answered, or declined, already."""


class PollClosed(Exception):
    """The poll does not exist or no longer takes answers."""


@dataclass
class PollResults:
    poll: Poll
    questions: list[Question]  # the poll's
    respondents: int
    counts: list[list[int]]  # per question, per option
    by_locale: dict[str, int] = field(default_factory=dict)


class SurveyService:
    def __init__(self, database: Database, calendar: WorkingCalendar, secret_key: str) -> None:
        self.database = database
        self.calendar = calendar
        self._key = secret_key.encode()
        self.rng: random.Random = (
            random.SystemRandom()
        )  # the order answers are stored in; tests seed their own

    def receipt(self, *parts: Any) -> str:
        return hmac.new(self._key, ":".join(map(str, parts)).encode(), hashlib.sha256).hexdigest()

    async def _take_receipt(
        self, session: Any, digest: str, model: type[SQLModel] = SurveyReceipt, **columns: Any
    ) -> None:
        """Store the receipt in the caller's transaction; AlreadyAnswered if it was there."""
        result = await session.execute(
            insert_for(session, model).values(digest=digest, **columns).on_conflict_do_nothing()
        )
        if rowcount(result) != 1:
            raise AlreadyAnswered

    async def _rewrite_group(
        self, session: Any, model: type[SQLModel], lock_key: int, *group: Any, new: SQLModel | None = None
    ) -> None:
        """Write the group's answers again, with `new` among them, in a random order (see the module's note).

        Delete and insert, not update: SQLite keeps a row's rowid through an update, and fresh
        rows in a shuffled order give new rowids and ctids in that order, all under this
        transaction's id. The ids (random) stay as they were.
        """
        if not self.database.is_sqlite:
            # Two rewrites at once would each put back the rows they read and lose the other's answer.
            # (SQLite writers are serialised already: BEGIN IMMEDIATE and a lock in bot.store.db.)
            await session.execute(select(func.pg_advisory_xact_lock(REWRITE_LOCK, lock_key)))
        table = table_of(model)
        rows = [dict(row) for row in (await session.execute(select(table).where(*group))).mappings()]
        if new is not None:
            rows.append(new.model_dump())
        if not rows:
            return
        await session.execute(delete(table).where(*group))
        self.rng.shuffle(rows)
        await session.execute(insert(table), rows)

    async def _rewrite_satisfaction_day(
        self, session: Any, day: date, new: SatisfactionAnswer | None = None
    ) -> None:
        table = table_of(SatisfactionAnswer)
        await self._rewrite_group(
            session, SatisfactionAnswer, SATISFACTION_GROUP, table.c.answered_on == day, new=new
        )

    async def _has_receipt(self, digest: str, model: type[SQLModel] = SurveyReceipt) -> bool:
        async with self.database.read() as session:
            return await session.get(model, digest) is not None

    # --- satisfaction with a closed case ---

    async def claim_feedback_question(self, case_id: int) -> bool:
        """True once per case: the caller then asks the question (never again, even after a reopening)."""
        async with self.database.write() as session:
            result = await session.execute(
                update(Case)
                .where(col(Case.id) == case_id, col(Case.feedback_asked).is_(False))
                .values(feedback_asked=True)
            )
        return rowcount(result) == 1

    async def feedback_given(self, case_id: int) -> bool:
        return await self._has_receipt(self.receipt("case", case_id))

    async def answer_satisfaction(
        self, case: Case, score: int, resolved: str, comment: str | None = None
    ) -> None:
        if score not in SCORES or resolved not in set(ResolvedAnswer):
            raise ValueError("score 1-5 and resolved yes/partly/no")
        answer = SatisfactionAnswer(
            answered_on=self.calendar.local_date(utcnow()),
            locale=case.locale,
            kind=case.kind,
            category_id=case.category_id,
            eldership_id=case.eldership_id,
            score=score,
            resolved=resolved,
            comment=(comment or "").strip()[:COMMENT_MAX] or None,
        )
        async with self.database.write() as session:
            await self._take_receipt(session, self.receipt("case", case.id))
            await self._rewrite_satisfaction_day(session, answer.answered_on, new=answer)

    async def decline_satisfaction(self, case: Case) -> None:
        """No answer, only the receipt: the question cannot be answered later either."""
        async with self.database.write() as session:
            await self._take_receipt(session, self.receipt("case", case.id))
            # The day's answers take this transaction's id too, so the receipt sharing their xmin
            # may be a decline: it does not mark its case as one that answered.
            await self._rewrite_satisfaction_day(session, self.calendar.local_date(utcnow()))

    # --- polls ---

    async def create_poll(
        self, questions: list[Question], audience: dict[str, Any], author: tuple[int, str]
    ) -> Poll:
        async with self.database.write() as session:
            poll = Poll(
                questions=questions_to_json(questions),
                audience=audience,
                author_id=author[0],
                author_name=author[1],
            )
            session.add(poll)
        return poll

    async def attach_broadcast(self, poll_id: int, broadcast_id: int) -> None:
        async with self.database.write() as session:
            await session.execute(
                update(Poll).where(col(Poll.id) == poll_id).values(broadcast_id=broadcast_id)
            )

    async def poll(self, poll_id: int) -> Poll | None:
        async with self.database.read() as session:
            return await session.get(Poll, poll_id)

    async def recent_polls(self, limit: int = 10) -> list[Poll]:
        async with self.database.read() as session:
            return list(
                (await session.execute(select(Poll).order_by(col(Poll.id).desc()).limit(limit))).scalars()
            )

    async def invited(self, poll: Poll, user_id: int) -> bool:
        """Whether the poll was sent to this person (a forged button from anyone else is refused).

        Not once they erased their profile after the poll came (/forget: "no news, polls or
        questions"), even if they came back since: their receipts went with the profile, so
        answering again would count them twice.
        """
        if poll.broadcast_id is None:
            return False
        erased_since = (
            select(col(Resident.id))
            .where(col(Resident.id) == user_id, col(Resident.erased_at) >= poll.created_at)
            .exists()
        )
        async with self.database.read() as session:
            found = await session.scalar(
                select(col(Delivery.id)).where(
                    col(Delivery.broadcast_id) == poll.broadcast_id,
                    col(Delivery.chat_id) == user_id,
                    ~erased_since,
                )
            )
        return found is not None

    async def forget_poll_receipts(self, session: Any, user_id: int) -> None:
        """Delete the person's poll receipts in the caller's transaction (their erasure); the answers stay counted."""
        poll_ids = (await session.execute(select(col(Poll.id)))).scalars().all()  # a few hundred at most
        digests = [self.receipt("poll", poll_id, user_id) for poll_id in poll_ids]
        if digests:
            await session.execute(delete(SurveyReceipt).where(col(SurveyReceipt.digest).in_(digests)))

    async def poll_answered(self, poll_id: int, user_id: int) -> bool:
        return await self._has_receipt(self.receipt("poll", poll_id, user_id))

    async def answer_poll(self, poll_id: int, user_id: int, locale: str, choices: list[list[int]]) -> None:
        """Store one person's answers; PollClosed or AlreadyAnswered, and nothing stored, otherwise."""
        async with self.database.write() as session:
            poll = await session.get(Poll, poll_id)
            if poll is None or poll.status != PollStatus.OPEN:
                raise PollClosed
            if not valid_choices(questions_of(poll), choices):
                raise ValueError("choices do not fit the poll's questions")
            await self._take_receipt(session, self.receipt("poll", poll_id, user_id))
            answer = PollAnswer(
                poll_id=poll_id,
                answered_on=self.calendar.local_date(utcnow()),
                locale=locale,
                choices=choices,
            )
            table = table_of(PollAnswer)
            await self._rewrite_group(
                session,
                PollAnswer,
                poll_id,
                table.c.poll_id == poll_id,
                table.c.answered_on == answer.answered_on,
                new=answer,
            )

    async def close_poll(self, poll_id: int) -> Poll | None:
        """Stop taking answers; the poll (None if unknown). Closing twice changes nothing."""
        async with self.database.write() as session:
            poll = await session.get(Poll, poll_id)
            if poll is not None and poll.status == PollStatus.OPEN:
                poll.status, poll.closed_at = PollStatus.CLOSED, utcnow()
        return poll

    async def answer_counts(self, poll_ids: list[int]) -> dict[int, int]:
        async with self.database.read() as session:
            rows = await session.execute(
                select(col(PollAnswer.poll_id), func.count())
                .where(col(PollAnswer.poll_id).in_(poll_ids))
                .group_by(col(PollAnswer.poll_id))
            )
            return dict(rows.all())

    async def results(self, poll_id: int) -> PollResults | None:
        async with self.database.read() as session:
            poll = await session.get(Poll, poll_id)
            if poll is None:
                return None
            rows = (
                await session.execute(
                    select(col(PollAnswer.locale), col(PollAnswer.choices)).where(
                        col(PollAnswer.poll_id) == poll_id
                    )
                )
            ).all()
        questions = questions_of(poll)
        counts = [[0] * len(q.options) for q in questions]
        for _locale, choices in rows:
            for question, chosen in enumerate(choices):
                for option in chosen:
                    counts[question][option] += 1
        return PollResults(
            poll=poll,
            questions=questions,
            respondents=len(rows),
            counts=counts,
            by_locale=dict(Counter(locale for locale, _ in rows)),
        )

    # --- visit surveys (bot.services.visits): one answer per person, place and day ---

    def _visit_receipt(self, place_id: str, user_id: int, day: date) -> str:
        return self.receipt("visit", place_id, day.isoformat(), user_id)

    async def visited_today(self, place_id: str, user_id: int) -> bool:
        """Whether this person has answered about this place today (the municipality's day)."""
        today = self.calendar.local_date(utcnow())
        return await self._has_receipt(self._visit_receipt(place_id, user_id, today), VisitReceipt)

    async def answer_visit(self, place_id: str, user_id: int, answers: VisitAnswers) -> None:
        """Store one visitor's answer about a place; AlreadyAnswered (nothing stored) if they did today.

        The receipt and the rewrite of the place's answers of the day share one transaction, as
        for satisfaction answers. Receipts of earlier days go in it too: they no longer stop a
        second answer, and gone they pair with nothing."""
        answers.check()
        today = self.calendar.local_date(utcnow())
        answer = VisitAnswer(
            place_id=place_id,
            answered_on=today,
            score=answers.score,
            waited=answers.waited,
            settled=answers.settled,
            courtesy=answers.courtesy,
            proposal=(answers.proposal or "").strip()[:COMMENT_MAX] or None,
        )
        async with self.database.write() as session:
            await self._take_receipt(
                session, self._visit_receipt(place_id, user_id, today), VisitReceipt, day=today
            )
            await session.execute(delete(VisitReceipt).where(col(VisitReceipt.day) < today))
            table = table_of(VisitAnswer)
            await self._rewrite_group(
                session,
                VisitAnswer,
                VISITS_GROUP,
                table.c.place_id == place_id,
                table.c.answered_on == today,
                new=answer,
            )


@dataclass
class VisitAnswers:
    """What a visitor answered: the score, and what they chose to add (None: skipped)."""

    score: int
    waited: str | None = None  # WaitingTime
    settled: str | None = None  # ResolvedAnswer
    courtesy: int | None = None
    proposal: str | None = None

    def check(self) -> None:
        """ValueError unless every answer given is one the survey offers."""
        if self.score not in SCORES or (self.courtesy is not None and self.courtesy not in SCORES):
            raise ValueError("scores are 1 to 5")
        if self.waited is not None and self.waited not in set(WaitingTime):
            raise ValueError("not a waiting time")
        if self.settled is not None and self.settled not in set(ResolvedAnswer):
            raise ValueError("settled is yes, partly or no")


def valid_choices(questions: list[Question], choices: list[list[int]]) -> bool:
    """One answer per question: one option (single choice) or at least one (multiple), all existing."""
    if len(choices) != len(questions):
        return False
    for question, chosen in zip(questions, choices, strict=True):
        if (
            not chosen
            or len(set(chosen)) != len(chosen)
            or any(not 0 <= i < len(question.options) for i in chosen)
        ):
            return False
        if not question.multiple and len(chosen) != 1:
            return False
    return True
