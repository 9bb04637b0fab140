"""Plans in real calls: effects in order, keys, voicemail, speculative turns (fakes, real time)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator

from agent.config import TurnSettings
from agent.conversation.events import BargeIn, Said
from agent.conversation.session import CallSession
from agent.speech.models import Speech
from tests.fakes.calls import NEW_YORK, FakeActions, short_policy
from tests.fakes.speech import FakeCall, FakeLlm, FakeStt, FakeTts, fake_speech

TURN = TurnSettings(
    min_speech_ms=160,
    likely_over_ms=200,
    end_silence_ms=500,
    barge_in_ms=400,
    reprompt_after_s=30,
    hang_up_after_s=60,
)
LINK = json.dumps({"action": "send_checkout_link"})


def models(stt_texts: list[str], *choices: str, choose_s: float = 0.0) -> Speech:
    llm = FakeLlm(choices=list(choices), choose_s=choose_s)
    return Speech(fake_speech([], "").vad, FakeStt(stt_texts), llm, FakeTts())


async def call_with(
    speech: Speech, actions: FakeActions | None = None, *, voicemail: bool = False
) -> AsyncIterator[tuple[CallSession, FakeCall, FakeActions]]:
    call = FakeCall()
    actions = actions or FakeActions()
    actions.media = call
    session = CallSession(call, speech, short_policy(speech.llm), TURN, actions=actions)
    await session.prepare()
    call.start()
    task = asyncio.get_running_loop().create_task(session.run(voicemail=voicemail))
    try:
        yield session, call, actions
    finally:
        await call.close()
        await task


def loud_after(call: FakeCall, t: float) -> list[float]:
    return [x for x in call.loud_times() if x > t]


async def test_an_opt_out_is_written_before_the_confirmation_and_hangs_up_after_it() -> None:
    speech = models(["Please stop calling me"])
    # A slow database write: the confirmation still waits for it.
    async for session, call, actions in call_with(speech, FakeActions(delay_s=0.3)):
        await asyncio.sleep(0.4)
        loop = asyncio.get_running_loop()
        await call.caller(("speak", 0.6))
        request_end = loop.time()
        await call.caller(("quiet", 0.6))
        await asyncio.wait_for(call.wait_closed(), 5)
        assert actions.names() == ["add_do_not_call", "hang_up"]
        confirmation = loud_after(call, request_end)
        assert confirmation, "the confirmation was played"
        assert actions.at("add_do_not_call") < confirmation[0]
        assert actions.at("hang_up") > confirmation[-1]
        assert actions.at("hang_up") - request_end < 2.0
        assert call.hung_up
        llm = speech.llm
        assert isinstance(llm, FakeLlm) and llm.choose_requests == []  # a rule, no model
        said = [e.text for e in session.events if isinstance(e, Said) and e.who == "agent"]
        assert said == ["Hello there.", "Understood. Goodbye."]
        assert [m.role for m in session.history] == ["assistant", "user", "assistant"]
        assert session.record.outcome == "opted_out"
        note = session.record.note()
        assert note["customer_said"] == "Please stop calling me"
        assert note["next_step"] == "do not call"


async def test_the_opt_out_key_opts_out_at_once() -> None:
    async for session, call, actions in call_with(models([])):
        await asyncio.sleep(0.1)  # the greeting is playing
        loop = asyncio.get_running_loop()
        pressed = loop.time()
        call.digits.put_nowait("9")
        await asyncio.wait_for(call.wait_closed(), 5)
        assert actions.names() == ["add_do_not_call", "hang_up"]
        assert actions.done[0][1] == "key"
        assert actions.at("add_do_not_call") - pressed < 0.2
        assert actions.at("add_do_not_call") < loud_after(call, actions.at("add_do_not_call"))[0]
        assert any(isinstance(e, BargeIn) for e in session.events), "the greeting was cut"
    assert session.record.outcome == "opted_out"


async def test_other_keys_do_nothing() -> None:
    async for _session, call, actions in call_with(models([])):
        call.digits.put_nowait("5")
        await asyncio.sleep(0.3)
        assert actions.done == [] and not call.closed


async def test_the_link_is_texted_before_the_agent_says_so() -> None:
    speech = models(["Can you text me the link?"], LINK)
    async for session, call, actions in call_with(speech, FakeActions(delay_s=0.2)):
        await asyncio.sleep(0.4)
        loop = asyncio.get_running_loop()
        await call.caller(("speak", 0.6))
        request_end = loop.time()
        await call.caller(("quiet", 1.5))
        assert actions.names() == ["send_checkout_link"]
        words = loud_after(call, request_end)
        assert words and actions.at("send_checkout_link") < words[0]
        said = [e.text for e in session.events if isinstance(e, Said) and e.who == "agent"]
        assert said[-1] == "I've sent you the link."
    assert session.record.link_sent and session.record.outcome is None


async def test_without_consent_the_agent_does_not_claim_it_texted() -> None:
    speech = models(["Can you text me the link?"], LINK)
    async for session, call, _actions in call_with(speech, FakeActions(consent=False)):
        await asyncio.sleep(0.4)
        await call.caller(("speak", 0.6), ("quiet", 1.5))
        said = [e.text for e in session.events if isinstance(e, Said) and e.who == "agent"]
        assert said[-1] != "I've sent you the link."
    assert not session.record.link_sent


async def test_a_callback_is_scheduled_with_its_time() -> None:
    when = json.dumps({"action": "schedule_callback", "when": "tomorrow at 3"})
    speech = models(["Call me back tomorrow at 3"], when)
    async for session, call, actions in call_with(speech):
        await asyncio.sleep(0.4)
        await call.caller(("speak", 0.6), ("quiet", 0.6))
        await asyncio.wait_for(call.wait_closed(), 6)
        assert actions.names() == ["schedule_callback", "hang_up"]
        assert actions.done[0][1] == dt.datetime(2026, 11, 26, 15, tzinfo=NEW_YORK)
        assert session.record.outcome == "callback"
        assert session.record.note()["callback_at"] == "2026-11-26T15:00:00-05:00"


async def test_a_speculative_turn_that_goes_on_does_nothing() -> None:
    # The first half sounds like a finished turn; the model decides to text the link
    # while the caller goes on: neither that text nor its words may happen.
    speech = models(["send me the", "no, never mind"], LINK, LINK, choose_s=0.1)
    async for _session, call, actions in call_with(speech):
        await asyncio.sleep(0.4)
        await call.caller(("speak", 0.4), ("quiet", 0.35), ("speak", 0.4))
        assert actions.done == []
        llm = speech.llm
        assert isinstance(llm, FakeLlm) and len(llm.choose_requests) == 1
        await call.caller(("quiet", 1.2))
        # Only the whole turn's plan was acted on, once.
        assert actions.names() == ["send_checkout_link"]
        assert [ms[-1].content for ms, _ in llm.choose_requests] == [
            "send me the",
            "no, never mind",
        ]


async def test_an_opt_out_heard_early_is_acted_on_without_waiting_for_the_silence() -> None:
    # "Stop calling me" and a short pause: the rule decides on the speculative
    # transcript, and the caller going on ("...I mean it") does not undo it.
    speech = models(["Stop calling me", "Stop calling me, I mean it"])
    async for session, call, actions in call_with(speech):
        await asyncio.sleep(0.4)
        loop = asyncio.get_running_loop()
        await call.caller(("speak", 0.6))
        request_end = loop.time()
        await call.caller(("quiet", 0.35), ("speak", 0.4), ("quiet", 0.6))
        await asyncio.wait_for(call.wait_closed(), 5)
        # Listed before the turn was confirmed over (end_silence_ms after the request).
        assert actions.at("add_do_not_call") - request_end < TURN.end_silence_ms / 1000
        assert actions.names() == ["add_do_not_call", "hang_up"]
        assert session.record.outcome == "opted_out"
        stt = speech.stt
        assert isinstance(stt, FakeStt) and len(stt.calls) == 1


async def test_a_turn_dropped_while_the_model_decides_stops_the_model() -> None:
    speech = models(["send me the", "the link please"], LINK, LINK, choose_s=0.5)
    async for _session, call, actions in call_with(speech):
        await asyncio.sleep(0.4)
        await call.caller(("speak", 0.4), ("quiet", 0.35), ("speak", 0.4), ("quiet", 1.6))
        llm = speech.llm
        assert isinstance(llm, FakeLlm) and llm.stopped_choices == 1
        assert actions.names() == ["send_checkout_link"]


async def test_an_answering_machine_gets_the_voicemail_message() -> None:
    async for session, call, actions in call_with(models([]), voicemail=True):
        await asyncio.wait_for(call.wait_closed(), 6)
        said = [e.text for e in session.events if isinstance(e, Said)]
        assert said == ["Hi, this is Acme about your cart. Goodbye."]
        assert actions.names() == ["hang_up"]
        assert actions.at("hang_up") > call.loud_times()[-1]
    assert session.record.outcome == "voicemail"


async def test_the_caller_cannot_talk_over_an_ending_call() -> None:
    speech = models(["stop calling me"])
    async for session, call, actions in call_with(speech):
        await asyncio.sleep(0.4)
        await call.caller(("speak", 0.6), ("quiet", 0.6), ("speak", 0.8))
        await asyncio.wait_for(call.wait_closed(), 5)
        assert not [e for e in session.events if isinstance(e, BargeIn)]
        assert actions.names() == ["add_do_not_call", "hang_up"]


async def test_the_link_is_texted_once_however_often_it_is_asked_for() -> None:
    speech = models(["Can you text me the link?", "Text me the link again."], LINK, LINK)
    async for session, call, actions in call_with(speech):
        await asyncio.sleep(0.4)
        await call.caller(("speak", 0.6), ("quiet", 1.5), ("speak", 0.6), ("quiet", 1.5))
        assert actions.names() == ["send_checkout_link"]
        said = [e.text for e in session.events if isinstance(e, Said) and e.who == "agent"]
        assert said[-2] == "I've sent you the link."
        assert said[-1].startswith("I've already sent the link")
    llm = speech.llm
    assert isinstance(llm, FakeLlm) and len(llm.choose_requests) == 2


async def test_a_link_refused_for_consent_does_not_count_as_sent() -> None:
    speech = models(["Can you text me the link?", "Text me the link again."], LINK, LINK)
    async for _session, call, actions in call_with(speech, FakeActions(consent=False)):
        await asyncio.sleep(0.4)
        await call.caller(("speak", 0.6), ("quiet", 1.5), ("speak", 0.6), ("quiet", 1.5))
        assert actions.names() == ["send_checkout_link", "send_checkout_link"]
