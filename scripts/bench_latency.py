"""Voice-to-voice latency of real calls, measured at the customer's ear.

Real calls go through Cartline's Asterisk and the customer simulator's, with the
default speech models. The simulated customers speak Piper-made lines and wait
for the agent like a person does (until it has spoken and paused). Printed per
number of simultaneous calls: voice-to-voice latency (end of the customer's
line to the first agent audio heard, an acknowledgement such as "Okay." if the
answer was still being decided) p50/p95, the same to the answer's own first
words, with the per-stage breakdown from
the agent's own timings, the greeting delay after the answer, the barge-in delay
(the agent's decision to yield to the first silence at the customer's ear, and
from the customer's first word), and the peak RSS. The last line is one JSON object.

Each customer is a shopper with a cart, as a campaign call knows them: the lab
campaign's script with the merchant's shipping and returns lines and one offer,
and the customer's name, cart, total and checkout link. A link the agent sends
is counted, not texted.

    scripts/bench-latency [--calls 1,2,4] [--turns 20]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import math
import os
import resource
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.app import Telephony
from agent.audio.frames import sounding_end
from agent.campaigns.calling import UTC, opening_prompt
from agent.campaigns.settings import CampaignSettings, MerchantSettings
from agent.conversation.calls import Conversations
from agent.conversation.events import BargeIn, Said, TurnTimings
from agent.conversation.facts import CustomerFacts
from agent.conversation.policy import DialoguePolicy
from agent.conversation.script import OfferSettings, TopicSettings
from agent.conversation.session import CallSession
from agent.simulator.customer import CustomerSimulator, SimulatedCall, _loud
from agent.simulator.lab import Lab, lab_settings
from agent.simulator.scenario import AwaitReply, Hangup, Pause, Say, Scenario
from agent.speech.models import Speech, load_speech
from agent.speech.weights import prepare_llm

LINES = [
    "Hi, I left some running shoes in my cart. Can you send me the link?",
    "What colors do the shoes come in?",
    "Is shipping free for this order?",
    "Okay, and how long does delivery take?",
    "Can I return them if they don't fit?",
    "Do you have a discount code for me?",
    "I think I will buy them tonight.",
    "Thanks, that is all I needed.",
]


CART = CustomerFacts.from_checkout(
    currency="USD",
    first_name="Dana",
    items=[{"title": "Trail running shoes", "quantity": 1, "unit_price": "89.00"}],
    total="89.00",
    checkout_url="https://store.example/checkouts/bench",
)
TOPICS = TopicSettings(
    shipping="Shipping is 4.99 dollars and takes 3 to 5 business days.",
    returns="Returns are free within 30 days.",
)
OFFER = OfferSettings(name="welcome", code="WELCOME10", percent=10)


def customer_policy(
    campaign: CampaignSettings, merchant: MerchantSettings, speech: Speech
) -> DialoguePolicy:
    """A call's dialogue with the bench's shopper (a fresh one per call: it keeps call state)."""
    script = campaign.script.model_copy(update={"topics": TOPICS, "offers": (OFFER,)})
    return DialoguePolicy(
        script,
        merchant,
        CART,
        campaign.customer_fields,
        speech.llm,
        tz=UTC,
        now=lambda: dt.datetime.now(dt.UTC),
    )


class BenchActions:
    """What the bench's calls do: the link counts as sent (no text goes out); hanging up is real."""

    def __init__(self) -> None:
        self.session: CallSession | None = None  # set once the call is placed

    async def add_do_not_call(self, why: str) -> None:
        pass

    async def send_checkout_link(self) -> bool:
        return True

    async def schedule_callback(self, at: dt.datetime) -> None:
        pass

    async def transfer(self, target: str) -> None:
        pass

    async def hang_up(self) -> None:
        assert self.session is not None
        await self.session.media.hangup()


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _measured(value: Any) -> Any:
    """The figures as JSON allows them: a figure with nothing measured (NaN) is null."""
    if isinstance(value, dict):
        return {k: _measured(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_measured(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def first_loud_after(call: SimulatedCall, after: float) -> float | None:
    return next((f.at for f in call.heard if f.at >= after and _loud(f.pcm)), None)


MAX_ROUNDS = 12
PATIENCE_S = 3.0  # quiet after the agent's audio before the customer speaks again


async def place_round(
    agent: Conversations,
    tel: Telephony,
    sim: CustomerSimulator,
    policy: Callable[[], DialoguePolicy],
    calls: int,
    turns: int,
    lines: list[bytes],
    round_no: int,
) -> list[tuple[str, Any, Any]]:
    """``calls`` simultaneous calls, each with its share of ``turns`` lines to say."""
    per_call = max(1, turns // calls)
    placed = []
    for c in range(calls):
        number = f"1555{calls:02d}{round_no:02d}{c:04d}"
        # The customer waits out an "Okay." and the pause before the answer, so that
        # each line's answer is heard before the next line.
        steps: list[Any] = [AwaitReply()]
        for t in range(per_call):
            line = lines[(round_no + c + t) % len(lines)]
            steps += [Say(pcm=line, label=f"turn{t}"), AwaitReply(silence_s=PATIENCE_S)]
        steps += [Pause(0.5), Hangup()]
        sim.book.add(number, Scenario(steps=tuple(steps), max_call_s=600))
        actions = BenchActions()
        call, session = await agent.place(
            tel, number, policy=policy(), actions=actions, amd=False, record=False
        )
        actions.session = session
        placed.append((number, call, session))
    return placed


async def run_calls(
    tel: Telephony,
    agent: Conversations,
    sim: CustomerSimulator,
    policy: Callable[[], DialoguePolicy],
    calls: int,
    turns: int,
    lines: list[bytes],
    show: bool = False,
) -> dict[str, Any]:
    v2v: list[float] = []
    answers: list[float] = []  # to the answer's first words, after any acknowledgement
    acknowledged = 0
    unmatched = 0  # heard turns the agent's timings could not be matched to
    missed = 0
    greeting: list[float] = []
    stages: dict[str, list[float]] = {"stt": [], "llm_first_token": [], "tts_first_audio": []}
    intents: Counter[str] = Counter()  # what the agent did at each turn
    rounds = 0
    # The dialogue policy may end a call before its lines run out ("that is all I
    # needed"): more rounds of calls until enough turns were measured.
    while len(v2v) + missed < turns and rounds < MAX_ROUNDS:
        placed_all = await place_round(agent, tel, sim, policy, calls, turns, lines, rounds)
        rounds += 1
        for number, placed, session in placed_all:
            await placed.wait_done(900)
            call = await sim.wait_call(number)
            await call.wait_done(10)
            assert call.connected_at is not None
            if show:
                for event in session.events:
                    if isinstance(event, Said):
                        print(f"  {number} {event.who}: {event.text}", flush=True)
                    elif isinstance(event, TurnTimings):
                        ack = event.acknowledged
                        print(
                            f"  {number} turn {event.turn}: transcript "
                            f"{event.stt_done - event.end_of_speech:.2f} s, first token "
                            f"{event.first_token - event.end_of_speech:.2f} s, acknowledged "
                            + (f"{ack - event.end_of_speech:.2f} s" if ack else "no")
                            + f", answer {event.answer_s:.2f} s",
                            flush=True,
                        )
            first = first_loud_after(call, call.connected_at)
            if first is not None:
                greeting.append(first - call.connected_at)
            timings = [e for e in session.events if isinstance(e, TurnTimings)]
            intents.update(note.intent for note in session.record.notes)
            for i, line in enumerate(call.said):
                # The reply counts only if it came before the customer's next line.
                limit = call.said[i + 1].started_at if i + 1 < len(call.said) else float("inf")
                # The end of the line's speech, not of the quiet Piper ends it with.
                spoken_end = line.started_at + sounding_end(line.pcm) / 16000
                heard = first_loud_after(call, spoken_end)
                if heard is None or heard >= limit:
                    missed += 1
                    continue
                v2v.append(heard - spoken_end)
                # The agent's own timing of this turn: how much later than its first sound
                # the answer's words started (0 without an acknowledgement).
                turn = next(
                    (t for t in timings if spoken_end - 0.5 < t.end_of_speech < heard), None
                )
                if turn is None:
                    unmatched += 1
                    continue
                answers.append(heard - spoken_end + turn.answer_s - turn.response_s)
                acknowledged += turn.acknowledged is not None
            for timing in timings:
                stages["stt"].append(timing.stt_done - timing.end_of_speech)
                stages["llm_first_token"].append(timing.first_token - timing.stt_done)
                stages["tts_first_audio"].append(timing.first_audio - timing.first_token)
    return {
        "calls": calls,
        "turns": len(v2v),
        "unanswered_turns": missed,
        "voice_to_voice_s": {
            "p50": pct(v2v, 0.5),
            "p95": pct(v2v, 0.95),
            "max": max(v2v, default=0),
        },
        "answer_s": {"p50": pct(answers, 0.5), "p95": pct(answers, 0.95)},
        "acknowledged_turns": acknowledged,
        "turns_without_agent_timing": unmatched,
        "stages_p50_s": {k: pct(v, 0.5) for k, v in stages.items()},
        "greeting_delay_s": {"p50": pct(greeting, 0.5), "max": max(greeting, default=0)},
        "intents": dict(intents.most_common()),
    }


async def barge_in(
    tel: Telephony, agent: Conversations, sim: CustomerSimulator, speech: Speech
) -> dict[str, Any]:
    interruption = await speech.render("Sorry, wait, wait. I have a question.")
    decisions: list[float] = []
    from_word: list[float] = []
    for i in range(3):
        number = f"1555990{i:04d}"
        sim.book.add(
            number, Scenario(steps=(Pause(2.0), Say(pcm=interruption), Pause(3.0), Hangup()))
        )
        placed, session = await agent.place(tel, number, amd=False, record=False)
        await placed.wait_done(60)
        call = await sim.wait_call(number)
        events = [e for e in session.events if isinstance(e, BargeIn)]
        if not events:
            continue
        decided = events[0].at
        said = call.said[0]
        agent_audio = [
            f.at for f in call.heard if said.started_at - 1 < f.at < said.ended_at and _loud(f.pcm)
        ]
        stop = max((t for t in agent_audio if t < decided + 1.0), default=decided)
        decisions.append(stop - decided)
        from_word.append(stop - said.started_at)
    return {
        "decision_to_silence_s": {"p50": pct(decisions, 0.5), "max": max(decisions, default=0)},
        "first_word_to_silence_s": {"p50": pct(from_word, 0.5), "max": max(from_word, default=0)},
    }


async def main_async(
    calls: list[int],
    turns: int,
    state: Path,
    turn_overrides: dict[str, int | None],
    show: bool = False,
) -> dict[str, Any]:
    settings = lab_settings(state, tag=f"lat{os.getpid() % 10000}")
    if turn_overrides:
        turn = settings.speech.turn.model_copy(update=turn_overrides)
        speech_settings = settings.speech.model_copy(update={"turn": turn})
        settings = settings.model_copy(update={"speech": speech_settings})
    with Lab(settings):
        prepare_llm(settings.speech.models_dir)
        campaign = settings.campaigns[0]
        speech = await load_speech(settings.speech, opening_prompt(campaign, settings.merchant))
        lines = [await speech.render(text) for text in LINES]

        def policy() -> DialoguePolicy:
            return customer_policy(campaign, settings.merchant, speech)

        agent = Conversations(speech, policy(), settings.speech.turn)
        out: dict[str, Any] = {"runs": {}}
        async with CustomerSimulator(settings.simulator) as sim, Telephony(settings, agent) as tel:
            for n in calls:
                result = await run_calls(tel, agent, sim, policy, n, turns, lines, show)
                out["runs"][str(n)] = result
                v = result["voice_to_voice_s"]
                st = result["stages_p50_s"]
                a = result["answer_s"]
                print(
                    f"{n} call(s), {result['turns']} turns ({result['unanswered_turns']} "
                    f"unanswered): voice-to-voice p50 {v['p50']:.2f} s, "
                    f"p95 {v['p95']:.2f} s; the answer's first words p50 {a['p50']:.2f} s, "
                    f"p95 {a['p95']:.2f} s ({result['acknowledged_turns']} turns acknowledged "
                    f"first); stages p50: end of speech to transcript "
                    f"{st['stt']:.2f} s, to first token {st['llm_first_token']:.2f} s, to first "
                    f"audio {st['tts_first_audio']:.2f} s; greeting "
                    f"{result['greeting_delay_s']['p50']:.2f} s after answer; the agent's "
                    f"actions: {result['intents']}",
                    flush=True,
                )
            out["barge_in"] = await barge_in(tel, agent, sim, speech)
            b = out["barge_in"]
            print(
                f"barge-in: decision to silence at the ear p50 "
                f"{b['decision_to_silence_s']['p50'] * 1000:.0f} ms, from the customer's first "
                f"word {b['first_word_to_silence_s']['p50'] * 1000:.0f} ms",
                flush=True,
            )
    out["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    out["turn_settings"] = settings.speech.turn.model_dump()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--calls", default="1,2,4")
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--likely-over-ms", type=int, help="override speech.turn.likely_over_ms")
    parser.add_argument("--end-silence-ms", type=int, help="override speech.turn.end_silence_ms")
    parser.add_argument(
        "--no-acknowledgement",
        action="store_true",
        help='never say "Okay." while the answer is decided (speech.turn.acknowledge_after_ms)',
    )
    parser.add_argument(
        "--show", action="store_true", help="print what each call's customer and agent said"
    )
    args = parser.parse_args()
    overrides: dict[str, int | None] = {
        k: v
        for k, v in (
            ("likely_over_ms", args.likely_over_ms),
            ("end_silence_ms", args.end_silence_ms),
        )
        if v is not None
    }
    if args.no_acknowledgement:
        overrides["acknowledge_after_ms"] = None
    with tempfile.TemporaryDirectory(prefix="cartline-latency-") as tmp:
        figures = asyncio.run(
            main_async(
                [int(x) for x in args.calls.split(",")], args.turns, Path(tmp), overrides, args.show
            )
        )
    print(f"peak RSS {figures['peak_rss_gib']:.2f} GiB")
    print(json.dumps(_measured(figures)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
