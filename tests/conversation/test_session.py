"""Turn-taking and barge-in with fake models, the dialogue policy and a real pacer (real time)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from agent.config import TurnSettings
from agent.conversation.events import BargeIn, CallEnded, Said, TurnTimings
from agent.conversation.script import ScriptSettings
from agent.conversation.session import CallSession
from agent.speech.models import Speech
from tests.fakes.calls import SCRIPT, FakeActions, answer, short_policy
from tests.fakes.speech import FakeCall, FakeLlm, FakeStt, FakeTts, fake_speech

TURN = TurnSettings(
    min_speech_ms=160,
    likely_over_ms=200,
    end_silence_ms=500,
    barge_in_ms=400,
    reprompt_after_s=30,
    hang_up_after_s=60,
)


def answering(stt_texts: list[str], *says: str, tts: FakeTts | None = None) -> Speech:
    """Fake models whose policy answers each caller turn with the next of ``says``."""
    llm = FakeLlm(choices=[answer(say) for say in says])
    return Speech(fake_speech([], "").vad, FakeStt(stt_texts), llm, tts or FakeTts())


async def start(
    speech: Speech, settings: TurnSettings = TURN, script: ScriptSettings = SCRIPT
) -> AsyncIterator[tuple[CallSession, FakeCall]]:
    call = FakeCall()
    actions = FakeActions(media=call)
    policy = short_policy(speech.llm, script)
    session = CallSession(call, speech, policy, settings, actions=actions)
    await session.prepare()
    call.start()
    task = asyncio.get_running_loop().create_task(session.run())
    try:
        yield session, call
    finally:
        await call.close()
        await task


@pytest.fixture
async def chat() -> AsyncIterator[tuple[CallSession, FakeCall]]:
    async for pair in start(
        answering(["I left shoes in my cart"], "Sure, I can help. It is here.")
    ):
        yield pair


async def test_greeting_starts_at_once(chat: tuple[CallSession, FakeCall]) -> None:
    session, call = chat
    await asyncio.sleep(0.3)
    assert call.loud_times(), "the greeting should be playing"
    assert call.loud_times()[0] - call.out[0][0] < 0.1
    assert isinstance(session.events[0], Said) and session.events[0].text == "Hello there."


async def test_a_caller_turn_gets_an_answer(chat: tuple[CallSession, FakeCall]) -> None:
    session, call = chat
    await asyncio.sleep(0.5)  # the greeting (240 ms) ends
    await call.caller(("speak", 0.6), ("quiet", 1.5))
    stt = session.speech.stt
    assert isinstance(stt, FakeStt) and len(stt.calls) == 1
    timings = [e for e in session.events if isinstance(e, TurnTimings)]
    assert len(timings) == 1
    t = timings[0]
    assert t.end_of_speech <= t.stt_done <= t.first_token <= t.first_audio
    assert [(m.role, m.content) for m in session.history] == [
        ("assistant", "Hello there."),
        ("user", "I left shoes in my cart"),
        ("assistant", "Sure, I can help. It is here."),
    ]
    tts = session.speech.tts
    assert isinstance(tts, FakeTts)
    # Sentence by sentence: the first plays while the second is synthesised.
    assert tts.texts[-2:] == ["Sure, I can help.", "It is here."]


async def test_transcription_starts_when_the_turn_is_likely_over(
    chat: tuple[CallSession, FakeCall],
) -> None:
    session, call = chat
    await asyncio.sleep(0.5)
    loop = asyncio.get_running_loop()
    await call.caller(("speak", 0.6))
    speech_end = loop.time()
    await call.caller(("quiet", 1.2))
    stt = session.speech.stt
    assert isinstance(stt, FakeStt)
    started = stt.calls[0][0]
    # Asked after about likely_over_ms of silence, well before end_silence_ms.
    assert 0.15 < started - speech_end < 0.45


async def test_a_pause_mid_sentence_drops_the_speculative_reply() -> None:
    speech = answering(["first half", "the whole sentence"], "Okay.", "Okay.")
    async for session, call in start(speech):
        await asyncio.sleep(0.4)
        await call.caller(("speak", 0.4), ("quiet", 0.3), ("speak", 0.4), ("quiet", 1.2))
        stt = speech.stt
        assert isinstance(stt, FakeStt) and len(stt.calls) == 2
        users = [m.content for m in session.history if m.role == "user"]
        assert users == ["the whole sentence"]
        # The dropped turn never reached a decision that was acted on.
        llm = speech.llm
        assert isinstance(llm, FakeLlm)
        assert [ms[-1].content for ms, _ in llm.choose_requests][-1] == "the whole sentence"


async def test_barge_in_stops_the_agent_and_its_speech() -> None:
    long_reply = "This is a long answer that goes on and on. And it goes on and on some more."
    speech = answering(["tell me more"], long_reply, tts=FakeTts(ms_per_word=250))
    async for session, call in start(speech):
        await asyncio.sleep(0.4)
        await call.caller(("speak", 0.5), ("quiet", 0.9))  # the agent starts its long answer
        loop = asyncio.get_running_loop()
        barge_start = loop.time()
        await call.caller(("speak", 0.7), ("quiet", 0.2))
        barge = [e for e in session.events if isinstance(e, BargeIn)]
        assert len(barge) == 1
        decided = barge[0].at
        assert decided - barge_start >= 0.4  # not before barge_in_ms of speech
        last_agent_audio = max(t for t in call.loud_times() if t < barge_start + 2)
        assert last_agent_audio - decided < 0.15
        heard = barge[0].heard
        assert heard and len(heard) < len(long_reply)
        assert session.history[-1].content == heard
        # The whole answer was queued at once: the history holds it once, as heard.
        assert [m.role for m in session.history][-2:] == ["user", "assistant"]


async def test_a_backchannel_does_not_interrupt() -> None:
    speech = answering(
        ["go on", "mm-hm"], "Here is a fairly long answer with quite a few words in it."
    )
    async for session, call in start(speech):
        await asyncio.sleep(0.4)
        await call.caller(("speak", 0.5), ("quiet", 0.8))
        await call.caller(("speak", 0.24), ("quiet", 0.8))  # "mm-hm" over the agent
        assert not [e for e in session.events if isinstance(e, BargeIn)]


async def test_silence_gets_a_reprompt_then_a_goodbye() -> None:
    settings = TURN.model_copy(update={"reprompt_after_s": 0.8, "hang_up_after_s": 1.8})
    async for session, call in start(answering([]), settings):
        await asyncio.wait_for(call.wait_closed(), 5)
        said = [e.text for e in session.events if isinstance(e, Said)]
        assert said == ["Hello there.", "Still there?", "Bye now."]
        assert call.hung_up
    assert isinstance(session.events[-1], CallEnded)


async def test_a_call_ending_mid_reply_leaves_no_task_running() -> None:
    speech = answering(["tell me everything"], "Sure, I can help. It is here.", tts=FakeTts(2000))
    async for _session, call in start(speech):
        await asyncio.sleep(0.4)
        await call.caller(("speak", 0.5), ("quiet", 0.9))  # a long reply is under way
    # The call closed mid-reply: the reply and the model's stream were stopped.
    await asyncio.sleep(0.05)
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert others == []


def slow_answer(choose_s: float, *says: str, stt: list[str] | None = None) -> Speech:
    speech = answering(stt or ["how big is the tent"], *says)
    assert isinstance(speech.llm, FakeLlm)
    speech.llm.choose_s = choose_s
    return speech


async def test_a_slow_decision_is_acknowledged_at_once() -> None:
    speech = slow_answer(1.0, "It sleeps two people.")
    async for session, call in start(speech):
        await asyncio.sleep(0.4)
        loop = asyncio.get_running_loop()
        await call.caller(("speak", 0.5))
        speech_end = loop.time()
        await call.caller(("quiet", 2.0))
        heard = [t for t in call.loud_times() if t > speech_end]
        # Turn over (500 ms) + acknowledge_after_ms (100), long before the 1 s decision.
        assert 0.5 < heard[0] - speech_end < 0.8
        t = next(e for e in session.events if isinstance(e, TurnTimings))
        assert t.acknowledged is not None and t.acknowledgement_s > 0
        assert t.response_s < 0.8 < t.answer_s
        # "Okay." is one fake word (120 ms): the answer follows it, not over it.
        assert t.answer_s >= t.acknowledged + t.acknowledgement_s - t.end_of_speech
        assert session.history[-1].content == "Okay. It sleeps two people."
        said = [e.text for e in session.events if isinstance(e, Said) and e.who == "agent"]
        assert said[-1] == "Okay. It sleeps two people."


async def test_a_quick_decision_needs_no_acknowledgement() -> None:
    speech = slow_answer(0.0, "It sleeps two people.")
    async for session, call in start(speech):
        await asyncio.sleep(0.4)
        await call.caller(("speak", 0.5), ("quiet", 1.5))
        t = next(e for e in session.events if isinstance(e, TurnTimings))
        assert t.acknowledged is None
        assert t.response_s == t.answer_s
        assert session.history[-1].content == "It sleeps two people."


async def test_acknowledgements_take_turns_and_can_be_switched_off() -> None:
    speech = slow_answer(0.9, "Two people.", "Four kilos.", stt=["how big", "and how heavy"])
    async for session, call in start(speech):
        await asyncio.sleep(0.4)
        await call.caller(("speak", 0.5), ("quiet", 2.0))
        await call.caller(("speak", 0.5), ("quiet", 2.0))
        agent = [m.content for m in session.history if m.role == "assistant"][1:]
        assert agent == ["Okay. Two people.", "Alright. Four kilos."]
    off = TURN.model_copy(update={"acknowledge_after_ms": None})
    speech = slow_answer(0.9, "Two people.")
    async for session, call in start(speech, off):
        await asyncio.sleep(0.4)
        await call.caller(("speak", 0.5), ("quiet", 2.0))
        assert session.history[-1].content == "Two people."


async def test_talking_over_the_acknowledgement_stops_the_decision() -> None:
    speech = slow_answer(3.0, "A long considered answer.")
    long_ack = SCRIPT.model_copy(update={"acknowledgements": ("Okay, let me look that up.",)})
    async for session, call in start(speech, script=long_ack):  # 0.72 s of acknowledgement
        await asyncio.sleep(0.4)
        await call.caller(("speak", 0.5), ("quiet", 0.75))  # the acknowledgement plays
        await call.caller(("speak", 0.6), ("quiet", 0.2))
        assert [e for e in session.events if isinstance(e, BargeIn)]
        llm = speech.llm
        assert isinstance(llm, FakeLlm)
        await asyncio.sleep(0.1)
        assert llm.stopped_choices == 1
        assert not [e for e in session.events if isinstance(e, TurnTimings)]
        # The interrupted turn's words were never answered: they go with the new ones.
        stt = speech.stt
        assert isinstance(stt, FakeStt)
        await call.caller(("quiet", 0.5))
        first, second = stt.calls[0][1], stt.calls[-1][1]
        assert second > first + 0.5 * 32000


async def test_the_model_reads_the_call_ahead_while_the_answer_plays() -> None:
    speech = slow_answer(0.0, "It sleeps two people.", stt=["how big is it", "and how heavy"])
    llm = speech.llm
    assert isinstance(llm, FakeLlm)
    async for session, call in start(speech):
        await asyncio.sleep(0.4)
        # The greeting's warm-up: the instructions and the greeting.
        assert [m.role for m in llm.requests[0]] == ["system", "assistant"]
        await call.caller(("speak", 0.5), ("quiet", 1.5))
        # Once the answer is synthesised, the model reads the call up to it.
        ahead = llm.requests[-1]
        assert [(m.role, m.content) for m in ahead[1:]] == [
            (m.role, m.content) for m in session.history
        ]
        assert ahead[-1].content == "It sleeps two people."
        # The next decision's prompt starts with what was read ahead.
        await call.caller(("speak", 0.5), ("quiet", 1.0))
        assert len(llm.choose_requests) == 2
        decided = llm.choose_requests[-1][0]
        assert decided[: len(ahead)] == ahead
        assert decided[-1].content == "and how heavy"
        # Reading ahead waits behind every decision of every call.
        assert llm.background == [True] * len(llm.requests)


async def test_a_decision_stops_the_reading_ahead_it_makes_needless() -> None:
    speech = slow_answer(0.0, "It sleeps two people.", stt=["how big is it"])
    llm = speech.llm
    assert isinstance(llm, FakeLlm)
    async for _session, call in start(speech):
        await asyncio.sleep(0.4)
        greeting_read = llm.stop_flags[0]
        assert not greeting_read.is_set
        # The caller's turn is decided on all the call's words: the greeting's
        # reading, had it not run yet, would only be work for nothing.
        await call.caller(("speak", 0.5), ("quiet", 0.4))
        assert greeting_read.is_set
        await call.caller(("quiet", 1.0))
        assert len(llm.stop_flags) == 2 and not llm.stop_flags[-1].is_set


async def test_an_answer_that_ends_the_call_is_not_read_ahead() -> None:
    speech = answering(["stop calling me"])  # an opt-out the rules hear
    llm = speech.llm
    assert isinstance(llm, FakeLlm)
    async for _session, call in start(speech):
        await asyncio.sleep(0.4)
        await call.caller(("speak", 0.5), ("quiet", 1.0))
        assert len(llm.requests) == 1  # the greeting's warm-up only
