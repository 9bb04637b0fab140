"""The demo's terminal: calls as they happen, then a summary of the campaign.

The live view is one more observer of campaign calls, beside the dashboard's
live page and the metrics: each call's start, every line either side says (as
the agent's Whisper heard the customer), and how the call ended.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable
from typing import TextIO

from agent.campaigns.placement import CallRequest, CallResult
from agent.conversation.events import BargeIn, Said
from agent.demo.customers import DemoCustomer
from agent.demo.summary import Summary

NAME_WIDTH = 13


class DemoView:
    """Prints each demo call's progress; ``on_ended`` hears of every call's end."""

    def __init__(
        self,
        by_phone: dict[str, DemoCustomer],
        on_ended: Callable[[DemoCustomer, CallResult], None] | None = None,
        out: TextIO = sys.stdout,
    ) -> None:
        self.by_phone = by_phone
        self.on_ended = on_ended
        self.out = out

    def say(self, who: str, text: str) -> None:
        stamp = dt.datetime.now().strftime("%H:%M:%S")
        print(f"{stamp}  {who[:NAME_WIDTH]:<{NAME_WIDTH}} {text}", file=self.out, flush=True)

    def _name(self, request: CallRequest) -> str:
        customer = self.by_phone.get(request.phone_e164)
        return customer.name if customer else request.phone_e164

    def call_started(self, request: CallRequest, call_id: str) -> None:
        self.say(
            self._name(request), f"calling {request.phone_e164} (attempt {request.attempt_id})"
        )

    def call_event(self, request: CallRequest, event: object) -> None:
        if isinstance(event, Said) and event.text.strip():
            who = "agent   " if event.who == "agent" else "customer"
            self.say(self._name(request), f"  {who} | {event.text.strip()}")
        elif isinstance(event, BargeIn):
            self.say(self._name(request), "  (the customer spoke over the agent: it stopped)")

    def call_ended(self, request: CallRequest, result: CallResult) -> None:
        ended = str(result.status)
        if result.outcome:
            ended = f"{ended}, outcome {result.outcome}"
        step = result.note.get("next_step") if result.note else None
        if step and step != "none":
            ended = f"{ended} (next: {step})"
        self.say(self._name(request), f"ended: {ended}")
        customer = self.by_phone.get(request.phone_e164)
        if customer is not None and self.on_ended is not None:
            self.on_ended(customer, result)


def print_summary(summary: Summary, out: TextIO = sys.stdout) -> None:
    """The campaign's results, one line per customer, then the totals."""
    print("\nSummary", file=out)
    print(f"  {'customer':<14}{'behaviour':<58}{'calls':>5}  result", file=out)
    for c in summary.customers:
        mark = "ok" if c.as_expected else "UNEXPECTED"
        extra = []
        if c.recovered:
            extra.append(f"recovered {c.recovered} USD")
        if c.on_dnc:
            extra.append("on the do-not-call list")
        if not c.settled:
            extra.append("still open")
        more = f" ({', '.join(extra)})" if extra else ""
        print(
            f"  {c.name:<14}{c.behaviour[:56]:<58}{c.calls:>5}  {c.result}{more}  [{mark}]",
            file=out,
        )
    outcomes = ", ".join(f"{n} {code}" for code, n in sorted(summary.outcomes().items()))
    print(f"\n  calls placed: {summary.calls}", file=out)
    print(f"  results: {outcomes}", file=out)
    print(f"  recovered revenue: {summary.recovered} USD", file=out)
    verdict = "as expected" if summary.all_as_expected else "NOT all as expected"
    print(f"  every customer {verdict}", file=out, flush=True)
