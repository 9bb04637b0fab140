"""The overview's figures: revenue recovered, recovery rate, outcomes, the funnel, a daily series.

Aggregates only, never a customer's data, so any role with ``metrics:read`` may see them.
A handful of ``GROUP BY`` queries over indexed time columns give every figure (the
calls once, by day, campaign, status and outcome; the credited orders; the funnel),
so the page stays quick with hundreds of thousands of calls stored. Every query may be
narrowed to the campaigns a principal sees (``campaigns=None``: all of them).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import Date, Select, and_, case, cast, distinct, func
from sqlalchemy import select as sa_select
from sqlmodel import Session

from agent.store.tables import (
    AttemptStatus,
    Attribution,
    CallAttempt,
    CallJob,
    Checkout,
    Outcome,
    table,
)

Q = TypeVar("Q", bound=Select[*tuple[Any, ...]])


@dataclass(frozen=True)
class Period:
    """A range of whole UTC days, ``start`` included and ``end`` excluded."""

    start: dt.date
    end: dt.date

    @property
    def since(self) -> dt.datetime:
        return dt.datetime.combine(self.start, dt.time(), dt.UTC)

    @property
    def until(self) -> dt.datetime:
        return dt.datetime.combine(self.end, dt.time(), dt.UTC)

    @property
    def days(self) -> list[dt.date]:
        return [self.start + dt.timedelta(days=i) for i in range((self.end - self.start).days)]

    @classmethod
    def last(cls, days: int, today: dt.date) -> Period:
        return cls(today - dt.timedelta(days=days - 1), today + dt.timedelta(days=1))


@dataclass(frozen=True)
class Funnel:
    """Checkouts abandoned in the period and how far each got."""

    abandoned: int = 0
    scheduled: int = 0  # a campaign took it on (a call job)
    called: int = 0  # at least one call placed
    answered: int = 0  # at least one call answered by a person
    recovered: int = 0  # an order was credited to one of its calls

    def steps(self) -> list[tuple[str, int]]:
        return [
            ("Abandoned", self.abandoned),
            ("Scheduled", self.scheduled),
            ("Called", self.called),
            ("Answered", self.answered),
            ("Recovered", self.recovered),
        ]


@dataclass(frozen=True)
class DayFigures:
    day: dt.date
    calls: int = 0
    answered: int = 0
    revenue: dict[str, Decimal] = field(default_factory=dict)  # per currency


@dataclass(frozen=True)
class CampaignFigures:
    name: str
    calls: int = 0
    answered: int = 0
    recovered: int = 0  # orders credited
    revenue: dict[str, Decimal] = field(default_factory=dict)

    @property
    def answer_rate(self) -> float | None:
        return self.answered / self.calls if self.calls else None


@dataclass(frozen=True)
class Overview:
    """Everything the overview page shows for one period."""

    period: Period
    revenue: dict[str, Decimal]  # recovered, per currency
    orders: int  # orders credited to calls
    calls_by_status: dict[str, int]
    outcomes: dict[str, int]  # answered calls by the conversation's verdict
    funnel: Funnel
    days: list[DayFigures]
    campaigns: list[CampaignFigures]

    @property
    def calls(self) -> int:
        return sum(self.calls_by_status.values())

    @property
    def recovery_rate(self) -> float | None:
        """Checkouts recovered out of those called."""
        f = self.funnel
        return f.recovered / f.called if f.called else None


def _day(column: Any, dialect: str) -> Any:
    # SQLite keeps datetimes as ISO text: the first ten characters are the day (cheaper
    # than date() on every row). PostgreSQL casts.
    return func.substr(column, 1, 10) if dialect == "sqlite" else cast(column, Date)


def _as_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def _only(query: Q, column: Any, campaigns: frozenset[str] | None) -> Q:
    return query if campaigns is None else query.where(column.in_(sorted(campaigns)))


@dataclass(frozen=True)
class _CallCount:
    day: dt.date
    campaign: str
    status: str
    outcome: str | None
    calls: int


def call_counts(
    s: Session, period: Period, campaigns: frozenset[str] | None = None
) -> list[_CallCount]:
    """Calls per day, campaign, status and outcome: one pass over the period's calls,
    from which the outcome table, the daily series and the campaign table are summed."""
    a = table(CallAttempt)
    o = table(Outcome)
    day = _day(a.c.started_at, s.get_bind().dialect.name)
    q = (
        sa_select(day, a.c.campaign, a.c.status, o.c.code, func.count())
        .select_from(a.outerjoin(o, o.c.attempt_id == a.c.id))
        .where(a.c.started_at >= period.since, a.c.started_at < period.until)
        .group_by(day, a.c.campaign, a.c.status, o.c.code)
    )
    return [
        _CallCount(_as_date(d), str(c), str(st), code, int(n))
        for d, c, st, code, n in s.connection().execute(_only(q, a.c.campaign, campaigns))
    ]


def revenue_counts(
    s: Session, period: Period, campaigns: frozenset[str] | None = None
) -> list[tuple[dt.date, str, str, Decimal, int]]:
    """(day, campaign, currency, amount, orders) credited to calls in the period."""
    t = table(Attribution).c
    day = _day(t.created_at, s.get_bind().dialect.name)
    q = (
        sa_select(day, t.campaign, t.currency, func.sum(t.amount), func.count())
        .where(t.created_at >= period.since, t.created_at < period.until)
        .group_by(day, t.campaign, t.currency)
    )
    return [
        (_as_date(d), str(c), str(cur), Decimal(amount or 0), int(n))
        for d, c, cur, amount, n in s.connection().execute(_only(q, t.campaign, campaigns))
    ]


def funnel(s: Session, period: Period, campaigns: frozenset[str] | None = None) -> Funnel:
    """The period's checkouts and how far each got. Past the first step a checkout
    counts once per campaign that took it on.

    Four small queries, each narrowed by an indexed time: a checkout's calls come after
    it was abandoned and its credited orders after those calls, so only the calls and
    credits since the period began are read, never every call of every checkout.
    """
    k = table(Checkout)
    j = table(CallJob)
    a = table(CallAttempt)
    t = table(Attribution)
    in_period = and_(k.c.abandoned_at >= period.since, k.c.abandoned_at < period.until)
    conn = s.connection()
    jobs = (
        sa_select(func.count(), func.sum(case((j.c.attempts > 0, 1), else_=0)))
        .select_from(k.join(j, j.c.checkout_id == k.c.id))
        .where(in_period)
    )
    scheduled, called = tuple(conn.execute(_only(jobs, j.c.campaign, campaigns)).one())
    of_jobs = a.join(j, j.c.id == a.c.job_id).join(k, k.c.id == j.c.checkout_id)
    answered = (
        sa_select(func.count(distinct(a.c.job_id)))
        .select_from(of_jobs)
        .where(
            a.c.started_at >= period.since,
            a.c.status == AttemptStatus.ANSWERED.value,
            in_period,
        )
    )
    recovered = (
        sa_select(func.count(distinct(a.c.job_id)))
        .select_from(t.join(of_jobs, a.c.id == t.c.attempt_id))
        .where(t.c.created_at >= period.since, in_period)
    )
    if campaigns is None:
        abandoned = conn.execute(sa_select(func.count()).where(in_period)).scalar_one()
    else:
        # An agent's funnel starts at the checkouts their campaigns took on.
        abandoned = scheduled
    return Funnel(
        int(abandoned or 0),
        int(scheduled or 0),
        int(called or 0),
        int(conn.execute(_only(answered, j.c.campaign, campaigns)).scalar_one() or 0),
        int(conn.execute(_only(recovered, j.c.campaign, campaigns)).scalar_one() or 0),
    )


def overview(
    s: Session,
    period: Period,
    names: list[str],
    campaigns: frozenset[str] | None = None,
) -> Overview:
    """All the overview's figures, read in one transaction."""
    by_status: dict[str, int] = defaultdict(int)
    by_outcome: dict[str, int] = defaultdict(int)
    day_calls: dict[dt.date, list[int]] = defaultdict(lambda: [0, 0])
    camp_calls: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row in call_counts(s, period, campaigns):
        was_answered = row.status == AttemptStatus.ANSWERED.value
        by_status[row.status] += row.calls
        if row.outcome is not None:
            by_outcome[row.outcome] += row.calls
        for slot in (day_calls[row.day], camp_calls[row.campaign]):
            slot[0] += row.calls
            slot[1] += row.calls if was_answered else 0
    money: dict[str, Decimal] = defaultdict(Decimal)
    day_money: dict[dt.date, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    camp_money: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    orders: dict[str, int] = defaultdict(int)
    for day, campaign, currency, amount, n in revenue_counts(s, period, campaigns):
        money[currency] += amount
        day_money[day][currency] += amount
        camp_money[campaign][currency] += amount
        orders[campaign] += n
    shown = [n for n in names if campaigns is None or n in campaigns]
    shown += sorted((set(camp_calls) | set(camp_money)) - set(shown))
    return Overview(
        period=period,
        revenue=dict(sorted(money.items())),
        orders=sum(orders.values()),
        calls_by_status=dict(by_status),
        outcomes=dict(sorted(by_outcome.items(), key=lambda kv: -kv[1])),
        funnel=funnel(s, period, campaigns),
        days=[
            DayFigures(
                d,
                calls=day_calls[d][0] if d in day_calls else 0,
                answered=day_calls[d][1] if d in day_calls else 0,
                revenue=dict(day_money.get(d, {})),
            )
            for d in period.days
        ],
        campaigns=[
            CampaignFigures(
                n,
                calls=camp_calls[n][0] if n in camp_calls else 0,
                answered=camp_calls[n][1] if n in camp_calls else 0,
                recovered=orders.get(n, 0),
                revenue=dict(camp_money.get(n, {})),
            )
            for n in shown
        ],
    )
