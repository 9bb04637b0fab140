"""What came of the demo campaign, read back from the database.

For each demo customer: how many calls, the result (the conversation's outcome,
how the last call ended, or why the customer was never called), whether the
number is on the do-not-call list and the revenue credited to the calls. A
customer is *settled* when nothing more will happen within the demo: the job is
closed or waits for a later time (a callback, a retry hours away).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlmodel import Session, col, select

from agent.demo.customers import DemoCustomer
from agent.store.tables import (
    Attribution,
    CallAttempt,
    CallJob,
    Checkout,
    Decision,
    DoNotCall,
    JobState,
    Outcome,
)

# A job due later than this is waiting for a time beyond the demo.
HORIZON = dt.timedelta(minutes=10)


@dataclass(frozen=True)
class CustomerResult:
    key: str
    name: str
    behaviour: str
    calls: int
    result: str
    settled: bool
    on_dnc: bool
    recovered: Decimal
    as_expected: bool


@dataclass(frozen=True)
class Summary:
    customers: tuple[CustomerResult, ...]

    @property
    def calls(self) -> int:
        return sum(c.calls for c in self.customers)

    @property
    def recovered(self) -> Decimal:
        return sum((c.recovered for c in self.customers), Decimal(0))

    @property
    def settled(self) -> bool:
        return all(c.settled for c in self.customers)

    @property
    def all_as_expected(self) -> bool:
        return all(c.as_expected for c in self.customers)

    def outcomes(self) -> Counter[str]:
        return Counter(c.result for c in self.customers)

    def as_json(self) -> dict[str, Any]:
        return {
            "customers": len(self.customers),
            "calls": self.calls,
            "outcomes": dict(sorted(self.outcomes().items())),
            "recovered": str(self.recovered),
            "currency": "USD",
            "do_not_call": sorted(c.key for c in self.customers if c.on_dnc),
            "as_expected": self.all_as_expected,
            "unexpected": {c.key: c.result for c in self.customers if not c.as_expected},
        }


def read_summary(
    s: Session,
    cast: Sequence[DemoCustomer],
    phones: dict[str, str],
    ordered: Collection[str],
    now: dt.datetime | None = None,
) -> Summary:
    """The result of every customer in ``cast``.

    ``phones`` maps a customer's key to the number as Cartline stored it (E.164);
    ``ordered`` holds the keys of customers whose order the store has sent.
    """
    now = now or dt.datetime.now(dt.UTC)
    dnc = set(s.exec(select(DoNotCall.phone_e164)).all())
    return Summary(tuple(_one(s, c, phones.get(c.key), c.key in ordered, dnc, now) for c in cast))


def _one(
    s: Session,
    customer: DemoCustomer,
    phone: str | None,
    ordered: bool,
    dnc: set[str],
    now: dt.datetime,
) -> CustomerResult:
    checkout = s.exec(
        select(Checkout).where(Checkout.external_id == f"demo-{customer.key}")
    ).first()
    result, settled, attempts, recovered = "not received", False, [], Decimal(0)
    if checkout is not None:
        job = s.exec(select(CallJob).where(CallJob.checkout_id == checkout.id)).first()
        if job is not None:
            attempts = list(
                s.exec(
                    select(CallAttempt)
                    .where(CallAttempt.job_id == job.id)
                    .order_by(col(CallAttempt.id))
                ).all()
            )
        ids = [a.id for a in attempts]
        if ids:
            credited = s.exec(select(Attribution).where(col(Attribution.attempt_id).in_(ids))).all()
            recovered = sum((a.amount for a in credited), Decimal(0))
        result, settled = _result(s, checkout, job, attempts, now)
        # The store's order is on its way: wait for it to be credited.
        settled = settled and (not ordered or recovered > 0)
    return CustomerResult(
        key=customer.key,
        name=customer.name,
        behaviour=customer.behaviour,
        calls=len(attempts),
        result=result,
        settled=settled,
        on_dnc=phone is not None and phone in dnc,
        recovered=recovered,
        as_expected=result in customer.expect and (not customer.buys_after_text or recovered > 0),
    )


def _result(
    s: Session,
    checkout: Checkout,
    job: CallJob | None,
    attempts: list[CallAttempt],
    now: dt.datetime,
) -> tuple[str, bool]:
    if not attempts:
        if job is not None and job.state != JobState.DONE:
            return "waiting", False
        reason = job.result if job is not None else None
        if reason is None:
            decision = s.exec(
                select(Decision)
                .where(Decision.checkout_id == checkout.id)
                .order_by(col(Decision.id).desc())
            ).first()
            reason = decision.reason if decision is not None else None
        return f"not called: {reason or 'unknown'}", reason is not None
    last = attempts[-1]
    outcome = s.exec(select(Outcome).where(Outcome.attempt_id == last.id)).first()
    assert job is not None
    if outcome is not None:
        result = outcome.code
    elif job.state == JobState.DONE and job.result:
        result = job.result  # answered, with no verdict of the conversation's own
    else:
        result = last.status
    if last.ended_at is None:
        return result, False
    due = job.due_at if job.due_at.tzinfo else job.due_at.replace(tzinfo=dt.UTC)
    return result, job.state == JobState.DONE or (
        job.state == JobState.PENDING and due > now + HORIZON
    )
