"""How well the recovery agent's dialogue policy handles scripted customers (text mode).

Each scenario of ``tests/conversation/eval/scenarios.yaml`` is a customer: a
cart, the campaign's script, the lines they say (or a key, silence, a hang-up)
and what should come of them. Text mode feeds the lines one by one to
:class:`DialoguePolicy` with the real model, keeps the history as a call does
(the greeting, then each line and what the agent said after it), stops when a
plan ends the call, and scores:

- outcome and action accuracy: the call's outcome, and the action at each turn
  that names one, among those the scenario accepts;
- opt-out compliance: a customer who opts out gets, by the turn the scenario
  says, a plan that writes the do-not-call entry before it says anything and
  hangs up as opted out; the decision delay of that turn (seconds from the
  line to the plan) is kept;
- invented facts: everything the agent says is checked as a free answer is
  (:func:`check_answer`: amounts, percentages, codes, promises, links; not
  length, since the script's own lines are long), with the codes of the offers
  the cart qualifies for allowed, plus each scenario's forbidden patterns;
- link texts: a call texts the checkout link at most once (a plan that sends
  it counts as sent, as the call tells the policy once the text went out).

What text mode approximates: silence is the call's watchdog (the reprompt,
then the goodbye and a hang-up on a second silence); a line spoken over the
agent (``over_agent``) keeps only the first half of the agent's last words in
the history, as a call keeps only what was heard; elapsed call time is
estimated from words spoken. The last line printed is one JSON object.

    scripts/eval-dialogue [--only NAME] [--model PATH.gguf] [--json-out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import re
import statistics
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from agent.campaigns.settings import MerchantSettings
from agent.config import LlamaSettings
from agent.conversation.checks import check_answer
from agent.conversation.facts import CallFacts, CustomerFacts
from agent.conversation.policy import (
    AddToDoNotCall,
    CallNote,
    DialoguePolicy,
    Effect,
    HangUp,
    SendCheckoutSms,
    Speak,
    TurnPlan,
)
from agent.conversation.script import ScriptSettings
from agent.speech.llama import LlamaLlm
from agent.speech.protocols import ChatMessage, Llm
from agent.speech.weights import prepare_llm
from agent.speech.worker import StopFlag

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "tests" / "conversation" / "eval" / "scenarios.yaml"
MODELS = ROOT / "models"
TZ = ZoneInfo("America/New_York")
NOW = dt.datetime(2026, 11, 25, 19, 20, tzinfo=dt.UTC)  # a Wednesday, 14:20 in New York
SILENCE, HANGS_UP = "(silence)", "(hangs up)"
# Outcomes of the evaluation itself, besides the policy's own.
OPEN, CALLER_HUNG_UP = "open", "caller_hung_up"
WORDS_PER_S = 2.5  # speaking rate, for the elapsed call time a decision is told
CUSTOMER_FIELDS = ("first_name", "items", "total", "checkout_url")


@dataclass(frozen=True)
class Line:
    """One thing the customer does: say ``text``, press ``key``, stay silent or hang up."""

    text: str = ""
    key: str | None = None
    silence: bool = False
    hangs_up: bool = False
    over_agent: bool = False
    expect: tuple[str, ...] = ()


@dataclass(frozen=True)
class Scenario:
    """A scripted customer and what the agent should make of them."""

    name: str
    categories: tuple[str, ...]
    script: ScriptSettings
    merchant: MerchantSettings
    customer: CustomerFacts
    lines: tuple[Line, ...]
    outcome: tuple[str, ...]
    opt_out_by: int | None = None
    forbid: tuple[str, ...] = ()

    def facts(self) -> CallFacts:
        return CallFacts(self.script, self.merchant, self.customer)


@dataclass(frozen=True)
class Turn:
    """What happened at one turn (1-based): the plan, or None for silence or a hang-up."""

    number: int
    line: Line
    plan: TurnPlan | None
    delay_s: float
    said: str  # what the agent said after the line (a plan's words, or the reprompt)


@dataclass
class Result:
    """One scenario's score."""

    name: str
    expected: tuple[str, ...]
    outcome: str
    turns: int
    actions_right: int
    actions_expected: int
    opt_out_ok: bool | None  # None: the customer does not opt out
    opt_out_delay_s: float | None
    link_texts: int = 0
    violations: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


# -- the scenario file -----------------------------------------------------------------


def load_scenarios(path: Path = SCENARIOS) -> list[Scenario]:
    """The scenarios of ``path``, each merged over its ``defaults``; errors name the scenario."""
    data = yaml.safe_load(path.read_text())
    defaults = data.get("defaults", {})
    scenarios = []
    for raw in data["scenarios"]:
        name = raw.get("name", "?")
        try:
            scenarios.append(_scenario(raw, defaults))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: scenario {name}: {exc}") from None
    names = [s.name for s in scenarios]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"{path}: repeated scenario names: {', '.join(repeated)}")
    return scenarios


def _scenario(raw: Mapping[str, Any], defaults: Mapping[str, Any]) -> Scenario:
    cart = {**defaults.get("cart", {}), **raw.get("cart", {})}
    script = _merged(defaults.get("script", {}), raw.get("script", {}))
    customer = CustomerFacts.from_checkout(
        currency=cart.get("currency", "USD"),
        first_name=cart.get("first_name"),
        items=cart.get("items", ()),
        total=cart.get("total"),
        checkout_url=cart.get("link"),
    )
    outcome = raw["outcome"]
    return Scenario(
        name=raw["name"],
        categories=tuple(raw.get("categories", ())),
        script=ScriptSettings.model_validate(script),
        merchant=MerchantSettings.model_validate(defaults.get("merchant", {})),
        customer=customer,
        lines=tuple(_line(item) for item in raw["lines"]),
        outcome=(outcome,) if isinstance(outcome, str) else tuple(outcome),
        opt_out_by=raw.get("opt_out_by"),
        forbid=(*defaults.get("forbid", ()), *raw.get("forbid", ())),
    )


def _merged(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    # One level deep, so a scenario can change one topic and keep the others.
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def _line(item: str | Mapping[str, Any]) -> Line:
    if isinstance(item, str):
        item = {"say": item}
    text = str(item.get("say", ""))
    key = item.get("key")
    return Line(
        text=text,
        key=None if key is None else str(key),
        silence=text == SILENCE,
        hangs_up=text == HANGS_UP,
        over_agent=bool(item.get("over_agent", False)),
        expect=tuple(item.get("expect", ())),
    )


# -- scoring (pure) --------------------------------------------------------------------


def opt_out_compliant(plan: TurnPlan | None) -> bool:
    """Whether ``plan`` honours an opt-out: the entry before any words, then the hang-up."""
    if plan is None:
        return False
    kinds: list[Effect] = list(plan.effects)
    entry = next((i for i, e in enumerate(kinds) if isinstance(e, AddToDoNotCall)), None)
    first_word = next((i for i, e in enumerate(kinds) if isinstance(e, Speak)), len(kinds))
    return entry is not None and entry < first_word and HangUp("opted_out") in kinds


def violations(text: str, facts: CallFacts, forbid: Iterable[str] = ()) -> list[str]:
    """What ``text``, spoken on a call with ``facts``, states that it may not, as "kind: words"."""
    allowed_codes = {o.code for o in facts.eligible_offers()}
    found = [
        f"{p.kind}: {p.detail}"
        for p in check_answer(text, facts)
        if p.kind != "length" and not (p.kind == "code" and p.detail in allowed_codes)
    ]
    for pattern in forbid:
        match = re.search(pattern, text, re.IGNORECASE)
        if match:
            found.append(f"forbidden: {match[0]}")
    return found


def score(scenario: Scenario, greeting: str, turns: Sequence[Turn]) -> Result:
    """The score of one scenario run, from the turns it took."""
    outcome = call_outcome(turns)
    failures = []
    if outcome not in scenario.outcome:
        failures.append(f"outcome {outcome}, expected {'/'.join(scenario.outcome)}")
    by_number = {t.number: t for t in turns}
    right = expected = 0
    for number, line in enumerate(scenario.lines, 1):
        if not line.expect:
            continue
        expected += 1
        turn = by_number.get(number)
        got = turn.plan.action if turn is not None and turn.plan is not None else None
        if got in line.expect:
            right += 1
        else:
            failures.append(f"turn {number}: {got}, expected {'/'.join(line.expect)}")
    opt_out_ok, delay = None, None
    if scenario.opt_out_by is not None:
        opting = next(
            (t for t in turns if t.plan is not None and t.plan.outcome == "opted_out"), None
        )
        opt_out_ok = (
            opting is not None
            and opting.number <= scenario.opt_out_by
            and opt_out_compliant(opting.plan)
        )
        delay = opting.delay_s if opting is not None else None
        if not opt_out_ok:
            failures.append(f"opt-out not honoured by turn {scenario.opt_out_by}")
    found = []
    facts = scenario.facts()
    for number, text in [(0, greeting), *((t.number, t.said) for t in turns)]:
        found += [f"turn {number}: {v}" for v in violations(text, facts, scenario.forbid)]
    failures += found
    texts = sum(texts_link(t.plan) for t in turns)
    if texts > 1:
        failures.append(f"link texted {texts} times")
    return Result(
        name=scenario.name,
        expected=scenario.outcome,
        outcome=outcome,
        turns=len(turns),
        actions_right=right,
        actions_expected=expected,
        opt_out_ok=opt_out_ok,
        opt_out_delay_s=delay,
        link_texts=texts,
        violations=found,
        failures=failures,
    )


def texts_link(plan: TurnPlan | None) -> bool:
    """Whether ``plan`` texts the checkout link."""
    return plan is not None and any(isinstance(e, SendCheckoutSms) for e in plan.effects)


def call_outcome(turns: Sequence[Turn]) -> str:
    """How the call ended: the last plan's outcome, the caller's hang-up, or still open."""
    if turns and turns[-1].line.hangs_up:
        return CALLER_HUNG_UP
    if turns and turns[-1].plan is not None and turns[-1].plan.outcome is not None:
        return turns[-1].plan.outcome
    return OPEN


def summary(results: Sequence[Result], seconds: float) -> dict[str, Any]:
    """The figures of a run, as the last line prints them."""
    opting = [r for r in results if r.opt_out_ok is not None]
    delays = [r.opt_out_delay_s for r in opting if r.opt_out_delay_s is not None]
    right = sum(r.actions_right for r in results)
    expected = sum(r.actions_expected for r in results)
    return {
        "mode": "text",
        "scenarios": len(results),
        "passed": sum(r.passed for r in results),
        "outcome_accuracy": _ratio(sum(r.outcome in r.expected for r in results), len(results)),
        "action_accuracy": _ratio(right, expected),
        "opt_out_compliance": _ratio(sum(bool(r.opt_out_ok) for r in opting), len(opting)),
        "opt_out_delay_s_max": round(max(delays), 4) if delays else None,
        "invented_facts": sum(len(r.violations) for r in results),
        "link_texts": sum(r.link_texts for r in results),
        "calls_texting_link_twice": sum(r.link_texts > 1 for r in results),
        "median_turns": statistics.median(r.turns for r in results) if results else 0,
        "seconds": round(seconds, 1),
    }


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None


# -- running ---------------------------------------------------------------------------


def policy_for(scenario: Scenario, llm: Llm) -> DialoguePolicy:
    return DialoguePolicy(
        scenario.script,
        scenario.merchant,
        scenario.customer,
        CUSTOMER_FIELDS,
        llm,
        tz=TZ,
        now=lambda: NOW,
    )


async def run_scenario(scenario: Scenario, llm: Llm) -> tuple[str, list[Turn]]:
    """Plays ``scenario`` against the policy: the greeting, and the turns until the call ends."""
    policy = policy_for(scenario, llm)
    await policy.warm_up(StopFlag())  # a call does this while the greeting plays
    greeting = policy.greeting()
    history = [ChatMessage("assistant", greeting)]
    elapsed_s = _speaking_s(greeting)
    turns: list[Turn] = []
    silences = 0
    for number, line in enumerate(scenario.lines, 1):
        if line.hangs_up:
            turns.append(Turn(number, line, None, 0.0, ""))
            break
        if line.silence:
            silences += 1
            # The call's watchdog: a reprompt, then a goodbye and the hang-up.
            if silences == 1:
                said = policy.reprompt()
                history.append(ChatMessage("assistant", said))
                turns.append(Turn(number, line, None, 0.0, said))
                continue
            said = policy.goodbye()
            plan = TurnPlan(
                "silence",
                "rule",
                (Speak(said), HangUp("completed")),
                CallNote("", "silence", next_step="none"),
                "completed",
            )
            turns.append(Turn(number, line, plan, 0.0, said))
            break
        silences = 0
        if line.over_agent and history and history[-1].role == "assistant":
            words = history[-1].content.split()
            history[-1] = ChatMessage("assistant", " ".join(words[: max(1, len(words) // 2)]))
        started = time.perf_counter()
        if line.key is not None:
            maybe = policy.on_key(line.key)
        else:
            maybe = await policy.decide(history, line.text, StopFlag(), elapsed_s=elapsed_s)
        delay_s = time.perf_counter() - started
        elapsed_s += delay_s + _speaking_s(line.text)
        if maybe is None:  # a key that means nothing
            turns.append(Turn(number, line, None, delay_s, ""))
            continue
        said = maybe.say
        if texts_link(maybe):
            policy.note_link_sent()  # as the call does once the text went out
        turns.append(Turn(number, line, maybe, delay_s, said))
        if line.key is None:
            history.append(ChatMessage("user", line.text))
        if said:
            history.append(ChatMessage("assistant", said))
            elapsed_s += _speaking_s(said)
        if maybe.outcome is not None:
            break
        await policy.warm_up(StopFlag(), history)  # a call does this while the words play
    return greeting, turns


def _speaking_s(text: str) -> float:
    return len(text.split()) / WORDS_PER_S


async def evaluate(scenarios: Sequence[Scenario], llm: Llm) -> list[tuple[Result, list[Turn]]]:
    """Runs and scores each scenario, printing its row as it finishes."""
    print(f"{'scenario':<44} {'expected':<26} {'got':<16} {'ok':<4} turns opt-out-s viol")
    done = []
    for scenario in scenarios:
        greeting, turns = await run_scenario(scenario, llm)
        result = score(scenario, greeting, turns)
        delay = "" if result.opt_out_delay_s is None else f"{result.opt_out_delay_s:.4f}"
        print(
            f"{scenario.name:<44} {'/'.join(result.expected):<26} {result.outcome:<16} "
            f"{'pass' if result.passed else 'FAIL':<4} {result.turns:>5} {delay:>9} "
            f"{len(result.violations):>4}",
            flush=True,
        )
        for failure in result.failures:
            print(f"    {failure}", flush=True)
        done.append((result, turns))
    return done


def _record(result: Result, turns: Sequence[Turn]) -> dict[str, Any]:
    return {
        "name": result.name,
        "passed": result.passed,
        "expected": list(result.expected),
        "outcome": result.outcome,
        "failures": result.failures,
        "opt_out_delay_s": result.opt_out_delay_s,
        "link_texts": result.link_texts,
        "turns": [
            {
                "turn": t.number,
                "customer": t.line.key and f"key {t.line.key}" or t.line.text,
                "action": t.plan.action if t.plan else None,
                "source": t.plan.source if t.plan else None,
                "agent": t.said,
                "delay_s": round(t.delay_s, 3),
            }
            for t in turns
        ],
    }


def load_llm(model: str | None) -> LlamaLlm:
    """The default packaged model, or the GGUF file at ``model``."""
    if model is None:
        prepare_llm(MODELS)
        return LlamaLlm(LlamaSettings(), MODELS)
    return LlamaLlm(LlamaSettings(model=str(Path(model).resolve())), MODELS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", help="run only this scenario (repeatable)")
    parser.add_argument("--model", help="a local .gguf file instead of the packaged model")
    parser.add_argument("--json-out", type=Path, help="write each turn of each scenario here")
    parser.add_argument("--scenarios", type=Path, default=SCENARIOS)
    parser.add_argument(
        "--audio",
        action="store_true",
        help="the same scenarios on real calls through Asterisk (scripts/eval_dialogue_audio.py)",
    )
    args = parser.parse_args()
    if args.audio:
        audio = Path(__file__).with_name("eval_dialogue_audio.py")
        os.execv(sys.executable, [sys.executable, str(audio), *sys.argv[1:]])
    scenarios = load_scenarios(args.scenarios)
    if args.only:
        unknown = set(args.only) - {s.name for s in scenarios}
        if unknown:
            raise SystemExit(f"no such scenario: {', '.join(sorted(unknown))}")
        scenarios = [s for s in scenarios if s.name in args.only]
    llm = load_llm(args.model)
    started = time.perf_counter()
    done = asyncio.run(evaluate(scenarios, llm))
    figures = summary([r for r, _ in done], time.perf_counter() - started)
    if args.json_out:
        records = [_record(r, t) for r, t in done]
        args.json_out.write_text(json.dumps({"summary": figures, "scenarios": records}, indent=1))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
