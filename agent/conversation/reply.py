"""The agent's answer to one caller turn: transcribe, decide, then act and speak in order.

A reply may start speculatively, when the caller has probably finished: it
transcribes and lets the policy decide, but does nothing the caller would
notice (no words, no side effect) until the session confirms the turn is over
(:meth:`Reply.go`). Cancelling a reply stops its model work through the stop
flag; a side effect already under way is let finish, so a database write is
never left half done.

While the model decides, the caller is not left in silence: once the turn is
over, a plan not ready within the acknowledgement's delay is preceded by a
short ready-made line ("Okay."), which goes into the history with the answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from agent.audio.resample import resample
from agent.conversation.events import Said, SessionEvent, TurnTimings
from agent.conversation.performers import CallActions, CallRecord
from agent.conversation.policy import (
    AddToDoNotCall,
    Effect,
    HangUp,
    ScheduleCall,
    SendCheckoutSms,
    Speak,
    Transfer,
    TurnPlan,
)
from agent.conversation.turn import sentences
from agent.speech.models import TELEPHONE_RATE, Speech
from agent.speech.protocols import ChatMessage
from agent.speech.worker import StopFlag

log = logging.getLogger(__name__)

LEAD_MS = 40  # audio the pacer has already written ahead: heard even when cleared
HANG_UP_AFTER_WORDS_S = 0.1  # the pacer runs 2 to 3 frames ahead of the caller's ear

__all__ = ["Acknowledgement", "Policy", "Reply", "Speech", "heard_part"]


class Policy(Protocol):
    """A call's dialogue (a :class:`~agent.conversation.policy.DialoguePolicy` fits)."""

    def system_prompt(self) -> str: ...
    def greeting(self) -> str: ...
    def acknowledgements(self) -> Sequence[str]: ...
    def reprompt(self) -> str: ...
    def goodbye(self) -> str: ...
    def link_not_sent(self) -> str: ...
    def note_link_sent(self) -> None: ...
    async def warm_up(self, stop: StopFlag, history: Sequence[ChatMessage] = ()) -> None: ...
    def on_voicemail(self) -> TurnPlan: ...
    def on_key(self, digit: str) -> TurnPlan | None: ...
    async def decide(
        self,
        history: Sequence[ChatMessage],
        said: str,
        stop: StopFlag,
        *,
        elapsed_s: float = 0.0,
    ) -> TurnPlan: ...


def heard_part(spoken: list[tuple[str, float]], dropped_ms: int) -> str:
    """The words of ``spoken`` (text, ms) that played before the last ``dropped_ms`` were cut.

    Words within a sentence are assumed evenly spread: good enough to keep the
    model's history honest about what the caller heard.
    """
    total = sum(ms for _, ms in spoken)
    heard_ms = max(0.0, total - dropped_ms + LEAD_MS)
    words: list[str] = []
    elapsed = 0.0
    for text, ms in spoken:
        if elapsed + ms <= heard_ms:
            words += text.split()
        else:
            part = text.split()
            share = max(0.0, (heard_ms - elapsed) / ms) if ms else 0.0
            words += part[: int(len(part) * share)]
            break
        elapsed += ms
    return " ".join(words)


@dataclass
class _Spoken:
    text: str
    ms: float


@dataclass(frozen=True)
class Acknowledgement:
    """A short line ("Okay.") said at once when the answer is still being decided.

    ``after_s``: how long after the end of the caller's turn the plan may take
    before the acknowledgement is said; ``pcm`` is ready-made telephone audio.
    """

    text: str
    pcm: bytes
    after_s: float


async def _one(text: str) -> AsyncIterator[str]:
    yield text + " "


@dataclass
class Reply:
    """One turn of the agent. ``plan`` given: a turn decided without words (a key, voicemail)."""

    turn: int
    utterance: bytes
    speech: Speech
    media: object
    history: list[ChatMessage]
    policy: Policy
    actions: CallActions
    record: CallRecord
    clock: Callable[[], float]
    emit: Callable[[SessionEvent], None]
    speculative: bool
    end_of_speech: float
    started_at: float = 0.0  # when the call began, for the policy's time limit
    plan: TurnPlan | None = None
    acknowledgement: Acknowledgement | None = None
    # Called once the plan's words are out and the call goes on (the model may read ahead).
    on_spoken: Callable[[], None] | None = None
    finished: bool = False
    transcript: str = ""
    _stop: StopFlag = field(default_factory=StopFlag)
    _go: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None
    _spoken: list[_Spoken] = field(default_factory=list)
    _play_until: float = 0.0
    _acting: bool = False
    _slot: int | None = None  # where the agent's words went in the history
    _kept: int = 0  # how many of the plan's lines are in the history
    _acknowledged: float | None = None  # when the acknowledgement started playing
    _timed: bool = False
    _transcribed: asyncio.Event = field(default_factory=asyncio.Event)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def go(self) -> None:
        """The caller's turn is over: the reply may act and speak."""
        self.speculative = False
        self._go.set()

    @property
    def speaking(self) -> bool:
        return bool(self._spoken) and (not self.finished or self.clock() < self._play_until)

    @property
    def acting(self) -> bool:
        """Whether the plan is under way (its words or effects): past the point of no return."""
        return self._acting

    @property
    def ending(self) -> bool:
        """The plan under way ends the call: the caller's words no longer stop it."""
        ends = self.plan is not None and any(
            isinstance(e, HangUp | Transfer) for e in self.plan.effects
        )
        return ends and self._acting

    async def cancel(self) -> None:
        self._stop.set()
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def wait(self) -> None:
        """Until the reply has done all it will do."""
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    def heard_text(self, dropped_ms: int) -> str:
        """What the caller heard of this reply, when ``dropped_ms`` of it were cut."""
        return heard_part([(s.text, s.ms) for s in self._spoken], dropped_ms)

    def interrupted(self, dropped_ms: int) -> str:
        """Keeps in the history only what was heard of this reply; returns it."""
        heard = self.heard_text(dropped_ms)
        if self._slot is not None:
            self.history[self._slot] = ChatMessage("assistant", heard or "...")
        elif heard:
            self.history.append(ChatMessage("assistant", heard))
            self.emit(Said("agent", heard, self.clock()))
        self._slot = len(self.history)  # nothing more of this reply goes in
        return heard

    async def _run(self) -> None:
        waiter = None
        if self.acknowledgement is not None and self.plan is None:
            waiter = asyncio.get_running_loop().create_task(self._acknowledge(self.acknowledgement))
        try:
            await self._respond()
        finally:
            if waiter is not None:
                waiter.cancel()
            self.finished = True

    async def _respond(self) -> None:
        stt_done = self.clock()
        if self.plan is None:
            transcript = await self.speech.stt.transcribe(self.utterance)
            stt_done = self.clock()
            self.transcript = transcript.text.strip()
            self._transcribed.set()
            log.debug(
                "turn %d: %d characters transcribed in %.2f s",
                self.turn,
                len(self.transcript),
                stt_done - self.end_of_speech,
            )
            if not self.transcript:
                self._keep([])  # an acknowledgement said before the words came to nothing
                return
            elapsed = self.clock() - self.started_at
            self.plan = await self.policy.decide(
                list(self.history), self.transcript, self._stop, elapsed_s=elapsed
            )
        decided = self.clock()
        log.debug(
            "turn %d: %s (%s) decided after %.2f s",
            self.turn,
            self.plan.action,
            self.plan.source,
            decided - stt_done,
        )
        if self.plan.source == "rule" and self.plan.outcome == "opted_out":
            # An opt-out the rules heard is acted on at once, without waiting for the
            # caller's silence to confirm the turn: whatever follows cannot undo it.
            self.go()
        # Nothing is done for a turn that may yet go on: a speculative reply stops here.
        await self._go.wait()
        self._acting = True
        if self.transcript:
            self.history.append(ChatMessage("user", self.transcript))
            self.emit(Said("caller", self.transcript, self.end_of_speech))
        self.record.add(self.plan)
        said: list[str] = []
        link_failed = False
        for effect in self.plan.effects:
            if isinstance(effect, Speak):
                text = self.policy.link_not_sent() if link_failed else effect.text
                link_failed = False
                await self._say(text, stt_done, decided)
                said.append(text)
            else:
                # The words so far are history before the call may end with this effect.
                if said:
                    self._keep(said)
                link_failed = not await self._perform(effect)
        self._keep(said)
        if self.on_spoken is not None and not self.ending:
            self.on_spoken()

    async def _acknowledge(self, ack: Acknowledgement) -> None:
        """Says ``ack`` if the plan is not ready ``ack.after_s`` after the turn is over.

        It does not wait for the transcript, which takes longest on a busy machine,
        except on the caller's first turn: those words may be an answering machine's
        greeting, to be recognised before anything is said.
        """
        await self._go.wait()
        await asyncio.sleep(ack.after_s)
        if not any(m.role == "user" for m in self.history):
            await self._transcribed.wait()
        if self.plan is not None or (self._transcribed.is_set() and not self.transcript):
            return
        self._acknowledged = self.clock()
        log.debug("turn %d: acknowledged while the plan is decided", self.turn)
        self.media.play(ack.pcm)  # type: ignore[attr-defined]
        ms = len(ack.pcm) / 16
        self._spoken.append(_Spoken(ack.text, ms))
        self._play_until = max(self._play_until, self.clock()) + ms / 1000

    def _keep(self, said: list[str]) -> None:
        if self.acknowledgement is not None and self._acknowledged is not None:
            said = [self.acknowledgement.text, *said]
        if len(said) <= self._kept:
            return
        self._kept = len(said)
        text = " ".join(said)
        if self._slot is None:
            self._slot = len(self.history)
            self.history.append(ChatMessage("assistant", text))
        elif self._slot < len(self.history):
            self.history[self._slot] = ChatMessage("assistant", text)
        else:
            return  # interrupted: the history already holds what was heard
        self.emit(Said("agent", text, self.clock()))

    async def _perform(self, effect: Effect) -> bool:
        # Shielded: once begun, an effect finishes even if the caller talks over it.
        if isinstance(effect, AddToDoNotCall):
            await asyncio.shield(self.actions.add_do_not_call(effect.why))
        elif isinstance(effect, SendCheckoutSms):
            return await asyncio.shield(self._send_link())
        elif isinstance(effect, ScheduleCall):
            self.record.callback_at = effect.at
            await asyncio.shield(self.actions.schedule_callback(effect.at))
        elif isinstance(effect, Transfer):
            await self._words_played()
            await asyncio.shield(self.actions.transfer(effect.target))
        elif isinstance(effect, HangUp):
            await self._words_played()
            await asyncio.shield(self.actions.hang_up())
        return True

    async def _send_link(self) -> bool:
        # Noted inside the shield: a text that went out while the reply was cancelled counts.
        sent = await self.actions.send_checkout_link()
        self.record.link_sent = self.record.link_sent or sent
        if sent:
            self.policy.note_link_sent()
        return sent

    async def _words_played(self) -> None:
        left = self._play_until - self.clock()
        if self._spoken:
            await asyncio.sleep(max(0.0, left) + HANG_UP_AFTER_WORDS_S)

    async def _say(self, text: str, stt_done: float, decided: float) -> None:
        async with contextlib.aclosing(sentences(_one(text))) as parts:
            async for sentence in parts:
                await self._speak(sentence, stt_done, decided)

    async def _speak(self, sentence: str, stt_done: float, decided: float) -> None:
        chunks = self.speech.tts.synthesize(sentence, self._stop)
        async with contextlib.aclosing(chunks) as stream:
            async for chunk in stream:
                pcm = resample(chunk.pcm, chunk.rate, TELEPHONE_RATE)
                if not self._timed:
                    self._timed = True
                    now = self.clock()
                    ack = self.acknowledgement
                    self.emit(
                        TurnTimings(
                            self.turn,
                            self.end_of_speech,
                            stt_done,
                            decided,
                            now,
                            acknowledged=self._acknowledged,
                            acknowledgement_s=len(ack.pcm) / 16000 if ack is not None else 0.0,
                        )
                    )
                self.media.play(pcm)  # type: ignore[attr-defined]
                ms = len(pcm) / 16
                self._spoken.append(_Spoken(sentence, ms))
                self._play_until = max(self._play_until, self.clock()) + ms / 1000
