"""The dialogue evaluation in audio mode: every scripted customer on a real call.

The scenarios of ``tests/conversation/eval/scenarios.yaml`` (the text mode's,
see scripts/eval_dialogue.py), each on its own call through a private pair of
Asterisk instances: ``cartline serve``'s server with the default models, one
campaign per scenario (its script), the scenario's cart sent as a signed
webhook, and the customer simulator speaking the lines in the Piper voice.
What the text mode feeds the policy as text, the agent here has to hear:
Whisper's errors, end of turn, barge-in and timing all count.

How the customer behaves: "Hello?" on answering (so answering-machine detection
hears a person; a voicemail scenario's first line is its greeting instead), then
each line after the agent has spoken and paused; a line spoken over the agent
starts as soon as the agent is talking; a silence is 9 s of quiet (the agent
reprompts after 7 s, and the next line follows the pause at once); a key is
pressed as DTMF. When the lines run out the customer waits for the agent's
answer and hangs up 4 s later, unless the agent has ended the call.

Scored per scenario, from the database and what the customer's phone recorded:
the outcome (the call's stored outcome; with none, "completed" when the agent
hung up, else "caller_hung_up" or "open" as in text mode), the actions the
scenario expects appearing among the call's intents, opt-out compliance (the
number on the do-not-call list, written before the confirmation reached the
customer's ear, and the call ended; the time from the end of the customer's
line to the hang-up is kept), invented facts in anything the agent said, link
texts received (at most one), and each turn's voice-to-voice time. The last
line printed is one JSON object.

    scripts/eval-dialogue --audio [--only NAME ...] [--json-out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import functools
import json
import secrets
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlmodel import Session, col, select

sys.path.insert(0, str(Path(__file__).resolve().parent))
import eval_dialogue as text_mode  # noqa: E402

from agent.app import Server  # noqa: E402
from agent.campaigns.placement import CallRequest, CallResult  # noqa: E402
from agent.campaigns.settings import (  # noqa: E402
    CampaignSettings,
    IntakeSettings,
    RetrySettings,
    SchedulerSettings,
    StoreSettings,
)
from agent.config import Settings  # noqa: E402
from agent.conversation.events import Said, TurnTimings  # noqa: E402
from agent.demo.shop import DemoShop  # noqa: E402
from agent.privacy.settings import PrivacySettings  # noqa: E402
from agent.simulator import analysis  # noqa: E402
from agent.simulator.customer import CustomerSimulator, SimulatedCall  # noqa: E402
from agent.simulator.lab import Lab, lab_settings  # noqa: E402
from agent.simulator.scenario import (  # noqa: E402
    AwaitReply,
    Dtmf,
    Hangup,
    Pause,
    Say,
    Scenario,
    Step,
)
from agent.speech.models import Speech, load_speech  # noqa: E402
from agent.speech.weights import prepare_llm  # noqa: E402
from agent.store.tables import CallAttempt, Checkout, DoNotCall, Outcome  # noqa: E402

FIRST_NUMBER = 12125550300
SILENCE_S = 9.0
CALL_LIMIT_S = 240.0


@dataclass
class Heard:
    """What Cartline's side reported of one call."""

    agent: list[tuple[float, str]] = field(default_factory=list)
    caller: list[str] = field(default_factory=list)
    response_s: list[float] = field(default_factory=list)
    ended: asyncio.Event = field(default_factory=asyncio.Event)


class Listener:
    """Follows the calls (a call observer): the agent's words and each turn's timing."""

    def __init__(self) -> None:
        self.calls: dict[str, Heard] = {}

    def heard(self, phone: str) -> Heard:
        return self.calls.setdefault(phone, Heard())

    def call_started(self, request: CallRequest, call_id: str) -> None:
        self.heard(request.phone_e164)

    def call_event(self, request: CallRequest, event: object) -> None:
        heard = self.heard(request.phone_e164)
        if isinstance(event, Said):
            if event.who == "agent":
                heard.agent.append((event.at, event.text))
            else:
                heard.caller.append(event.text)
        elif isinstance(event, TurnTimings):
            heard.response_s.append(event.response_s)

    def call_ended(self, request: CallRequest, result: CallResult) -> None:
        self.heard(request.phone_e164).ended.set()


def number_of(index: int) -> str:
    return f"+{FIRST_NUMBER + index}"


def campaign_name(index: int) -> str:
    return f"eval-{index:03d}"


def eval_settings(base: Settings, scenarios: list[text_mode.Scenario], state: Path) -> Settings:
    """The lab's settings with one campaign per scenario and a database of its own."""
    campaigns = tuple(
        CampaignSettings(
            name=campaign_name(i),
            delay_min=0,
            min_spacing_min=0,
            max_attempts=1,
            retry=RetrySettings(),
            window_start=dt.time(0, 0),
            window_end=dt.time(23, 59, 59),
            customer_fields=text_mode.CUSTOMER_FIELDS,
            script=s.script,
        )
        for i, s in enumerate(scenarios)
    )
    return base.model_copy(
        update={
            "campaigns": campaigns,
            "merchant": scenarios[0].merchant,
            "intake": IntakeSettings(generic_secret=SecretStr(secrets.token_hex(16))),
            "store": StoreSettings(url=f"sqlite:///{state / 'eval.db'}"),
            "privacy": PrivacySettings(keys_file=state / "keys" / "data.keys"),
            "scheduler": SchedulerSettings(poll_s=0.5, voice_slots=1, server_id="eval"),
        }
    )


def checkout_event(index: int, scenario: text_mode.Scenario) -> dict[str, Any]:
    c = scenario.customer
    now = dt.datetime.now(dt.UTC)
    consent_at = (now - dt.timedelta(minutes=5)).isoformat()
    return {
        "id": f"eval-{index}-{secrets.token_hex(4)}",
        "type": "checkout",
        "data": {
            "id": f"eval-{index}",
            "phone": number_of(index),
            "first_name": c.first_name,
            "address": {"country": "US", "region": "NY"},
            "items": [
                {"title": i.title, "quantity": i.quantity, "unit_price": str(i.unit_price)}
                for i in c.items
            ],
            "total": str(c.total if c.total is not None else 0),
            "currency": c.currency,
            "checkout_url": c.checkout_url,
            "abandoned_at": now.isoformat(),
            "campaign": campaign_name(index),
            "consents": [
                {"channel": ch, "granted": True, "text_version": "eval", "captured_at": consent_at}
                for ch in ("call", "sms")
            ],
        },
    }


async def customer(scenario: text_mode.Scenario, speech: Speech) -> Scenario:
    """The simulator's script for ``scenario``: its lines, spoken as the module doc says."""
    steps: list[Step] = []
    voicemail = "voicemail" in scenario.categories
    if not voicemail:
        steps += [Say(pcm=await speech.render("Hello?"), label="hello")]
    after_silence = False
    for number, line in enumerate(scenario.lines, 1):
        # After a silence the agent has already spoken (its reprompt, during the pause).
        if not (voicemail and number == 1) and not after_silence:
            # Over the agent: as soon as it is talking; otherwise once it has paused.
            steps.append(AwaitReply(silence_s=0.1 if line.over_agent else 1.2, timeout_s=45.0))
        if line.hangs_up:
            steps.append(Hangup())
            break
        after_silence = line.silence
        if line.silence:
            steps.append(Pause(SILENCE_S))
        elif line.key is not None:
            steps.append(Dtmf(line.key))
        else:
            steps.append(Say(pcm=await speech.render(line.text), label=f"line{number}"))
    else:
        steps += [AwaitReply(silence_s=1.2, timeout_s=45.0), Pause(4.0), Hangup()]
    return Scenario(steps=tuple(steps), max_call_s=CALL_LIMIT_S, name=scenario.name)


@dataclass
class AudioResult:
    name: str
    expected: tuple[str, ...]
    outcome: str
    intents: list[str]
    actions_right: int
    actions_expected: int
    opt_out_ok: bool | None
    hang_up_s: float | None
    link_texts: int
    violations: list[str]
    response_s: list[float]
    failures: list[str]
    hung_up_by: str = ""  # "customer" or "agent"
    heard: list[str] = field(default_factory=list)  # the customer's lines as Whisper heard them
    said: list[str] = field(default_factory=list)  # what the agent said

    @property
    def passed(self) -> bool:
        return not self.failures


def score(
    index: int,
    scenario: text_mode.Scenario,
    s: Session,
    *,
    call: SimulatedCall | None,
    heard: Heard,
    texts: int,
    offset: float,
) -> AudioResult:
    """One scenario's score (``offset``: wall time minus the monotonic clock)."""
    phone = number_of(index)
    checkout = s.exec(select(Checkout).where(Checkout.external_id == f"eval-{index}")).first()
    attempt = None
    if checkout is not None:
        attempt = s.exec(
            select(CallAttempt)
            .where(CallAttempt.campaign == campaign_name(index))
            .order_by(col(CallAttempt.id).desc())
        ).first()
    stored = (
        s.exec(select(Outcome).where(Outcome.attempt_id == attempt.id)).first()
        if attempt is not None
        else None
    )
    # An answered call the conversation gave no verdict is stored as "answered".
    if stored is not None and stored.code != "answered":
        outcome = stored.code
    elif call is None:
        outcome = "not_called"
    elif not call.hung_up_by_customer:
        outcome = "completed"
    else:
        last = scenario.lines[-1] if scenario.lines else None
        outcome = text_mode.CALLER_HUNG_UP if last and last.hangs_up else text_mode.OPEN
    intents = list(stored.note.get("intents", [])) if stored is not None else []
    # The rule that answers "who is this?" notes its own intent for the answer_question action.
    actions = ["answer_question" if i == "about_call" else i for i in intents]
    failures = []
    if outcome not in scenario.outcome:
        failures.append(f"outcome {outcome}, expected {'/'.join(scenario.outcome)}")
    right = expected = 0
    for number, line in enumerate(scenario.lines, 1):
        if line.expect:
            expected += 1
            if any(a in actions for a in line.expect):
                right += 1
            else:
                failures.append(f"line {number}: none of {'/'.join(line.expect)} in {intents}")
    opt_out_ok, hang_up_s = None, None
    if scenario.opt_out_by is not None:
        dnc = s.exec(select(DoNotCall).where(DoNotCall.phone_e164 == phone)).first()
        opt_out_ok = dnc is not None and call is not None and call.ended_at is not None
        if dnc is not None and call is not None and call.ended_at is not None:
            listed = dnc.created_at.replace(tzinfo=dt.UTC).timestamp() - offset
            # From the end of the request: the last line said, or key pressed, before it.
            ends = [line.ended_at for line in call.said] + [at for at, _ in call.dtmf_sent]
            before = [t for t in ends if t <= listed]
            if before:
                hang_up_s = call.ended_at - max(before)
            after = [f.at for f in call.heard if f.at > listed and analysis.level_dbfs(f.pcm) > -45]
            # Nothing the agent said after the listing reached the ear before it.
            opt_out_ok = opt_out_ok and bool(after)
        if not opt_out_ok:
            failures.append("opt-out not honoured")
    found = []
    facts = scenario.facts()
    for _, said in heard.agent:
        found += text_mode.violations(said, facts, scenario.forbid)
    failures += [f"said: {v}" for v in found]
    if texts > 1:
        failures.append(f"link texted {texts} times")
    return AudioResult(
        name=scenario.name,
        expected=scenario.outcome,
        outcome=outcome,
        intents=intents,
        actions_right=right,
        actions_expected=expected,
        opt_out_ok=opt_out_ok,
        hang_up_s=hang_up_s,
        link_texts=texts,
        violations=found,
        response_s=heard.response_s,
        failures=failures,
        hung_up_by="" if call is None else ("customer" if call.hung_up_by_customer else "agent"),
        heard=heard.caller,
        said=[text for _, text in heard.agent],
    )


def summary(results: list[AudioResult], seconds: float) -> dict[str, Any]:
    opting = [r for r in results if r.opt_out_ok is not None]
    hang_ups = [r.hang_up_s for r in opting if r.hang_up_s is not None]
    responses = sorted(x for r in results for x in r.response_s)
    right = sum(r.actions_right for r in results)
    expected = sum(r.actions_expected for r in results)

    def pct(q: float) -> float | None:
        return (
            round(responses[min(len(responses) - 1, int(q * len(responses)))], 3)
            if responses
            else None
        )

    return {
        "mode": "audio",
        "scenarios": len(results),
        "passed": sum(r.passed for r in results),
        "outcome_accuracy": text_mode._ratio(
            sum(r.outcome in r.expected for r in results), len(results)
        ),
        "action_recall": text_mode._ratio(right, expected),
        "opt_out_compliance": text_mode._ratio(
            sum(bool(r.opt_out_ok) for r in opting), len(opting)
        ),
        "opt_out_hang_up_s_max": round(max(hang_ups), 3) if hang_ups else None,
        "invented_facts": sum(len(r.violations) for r in results),
        "calls_texting_link_twice": sum(r.link_texts > 1 for r in results),
        "median_turns": statistics.median(len(r.intents) for r in results) if results else 0,
        "voice_to_voice_p50_s": pct(0.5),
        "voice_to_voice_p95_s": pct(0.95),
        "seconds": round(seconds, 1),
    }


async def evaluate(
    scenarios: list[text_mode.Scenario], base: Settings, state: Path
) -> list[AudioResult]:
    settings = eval_settings(base, scenarios, state)
    prepare_llm(settings.speech.models_dir)
    from agent.campaigns.calling import opening_prompt

    speech = await load_speech(
        settings.speech, opening_prompt(settings.campaigns[0], settings.merchant)
    )
    listener = Listener()
    server = Server(settings, speech)
    server.placer.observers.append(listener)
    simulator = CustomerSimulator(settings.simulator, cache_dir=state / "voice")
    for i, scenario in enumerate(scenarios):
        simulator.book.add(number_of(i), await customer(scenario, speech))
    await server.start()
    await simulator.start()
    offset = time.time() - time.monotonic()
    secret = settings.intake.generic_secret
    assert secret is not None
    web = settings.web
    shop = DemoShop(f"http://{web.host}:{web.port}", secret.get_secret_value())
    results = []
    print(f"{'scenario':<44} {'expected':<26} {'got':<16} {'ok':<4} hang-up-s")
    try:
        # One at a time: each call has the machine to itself, as a latency figure should.
        for i, scenario in enumerate(scenarios):
            await shop.send(checkout_event(i, scenario))
            heard = listener.heard(number_of(i))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(heard.ended.wait(), CALL_LIMIT_S + 60)
            call = next(
                (c for c in simulator.calls if c.number.lstrip("+") == number_of(i).lstrip("+")),
                None,
            )
            if call is not None:
                await asyncio.wait_for(call.done.wait(), 30)
            await asyncio.sleep(1.0)  # the outcome and the note are written as the call ends
            texts = sum(m.to.lstrip("+") == number_of(i).lstrip("+") for m in simulator.messages)
            result = await server.db.run(
                functools.partial(
                    score, i, scenario, call=call, heard=heard, texts=texts, offset=offset
                )
            )
            hang = "" if result.hang_up_s is None else f"{result.hang_up_s:.2f}"
            print(
                f"{scenario.name:<44} {'/'.join(result.expected):<26} {result.outcome:<16} "
                f"{'pass' if result.passed else 'FAIL':<4} {hang:>9}",
                flush=True,
            )
            for failure in result.failures:
                print(f"    {failure}", flush=True)
            results.append(result)
    finally:
        await server.stop(drain_s=5)
        await simulator.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--audio", action="store_true", help="(the mode this script runs)")
    parser.add_argument("--only", action="append", help="run only this scenario (repeatable)")
    parser.add_argument("--json-out", type=Path, help="write each scenario's result here")
    args = parser.parse_args()
    scenarios = text_mode.load_scenarios()
    if args.only:
        unknown = set(args.only) - {s.name for s in scenarios}
        if unknown:
            sys.exit(f"eval-dialogue: no scenario named {', '.join(sorted(unknown))}")
        scenarios = [s for s in scenarios if s.name in args.only]
    # Stopped from outside: unwind, so the lab's Asterisk instances are stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cartline-eval-") as tmp:
        state = Path(tmp)
        with Lab(lab_settings(state, tag="evalaudio")) as lab:
            results = asyncio.run(evaluate(scenarios, lab.settings, state))
    figures = summary(results, time.perf_counter() - started)
    if args.json_out:
        records = [r.__dict__ for r in results]
        args.json_out.write_text(json.dumps({"summary": figures, "scenarios": records}, indent=2))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
