"""One call's conversation: listen, understand, answer, and yield when interrupted.

A :class:`CallSession` owns a task group for the call: caller audio in (resampled
to 16 kHz, VAD, end-of-turn), the silence watchdog, and at most one
:class:`~agent.conversation.reply.Reply` at a time, the agent's current answer.
Inference never runs on the audio path: the models work on their own threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Protocol

from agent.audio.frames import sounding_end
from agent.audio.resample import Resampler
from agent.audio.segmenter import Segment, Segmenter, SegmenterSettings, should_interrupt
from agent.config import TurnSettings
from agent.conversation.events import BargeIn, CallEnded, Said, SessionEvent, TurnTimings
from agent.conversation.performers import CallActions, CallRecord, HangUpOnly
from agent.conversation.policy import TurnPlan
from agent.conversation.reply import Acknowledgement, Policy, Reply, Speech, heard_part
from agent.speech.protocols import VAD_RATE, VAD_WINDOW_SAMPLES, ChatMessage
from agent.speech.worker import StopFlag

log = logging.getLogger(__name__)
WINDOW_BYTES = VAD_WINDOW_SAMPLES * 2
PRE_ROLL_MS = 500  # audio kept from before the turn started: the onset of its first word
ACK_TAIL_BYTES = 640  # 40 ms of an acknowledgement's trailing quiet is kept


class Media(Protocol):
    """What a session needs of a call's audio connection (an AudioSocketCall fits)."""

    def audio(self) -> object: ...  # AsyncIterator[bytes]
    def play(self, pcm: bytes) -> None: ...
    def clear_playout(self) -> int: ...
    @property
    def closed(self) -> bool: ...
    async def hangup(self) -> None: ...
    async def wait_closed(self) -> None: ...
    def dtmf(self) -> object: ...  # AsyncIterator[str]


class CallSession:
    """Runs the conversation of one call until it ends.

    Each caller turn becomes the ``policy``'s plan, performed in order through
    ``actions`` (by default the call can only hang up); ``record`` gathers the
    call's outcome and notes.
    """

    def __init__(
        self,
        media: Media,
        speech: Speech,
        policy: Policy,
        settings: TurnSettings,
        *,
        on_event: Callable[[SessionEvent], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        actions: CallActions | None = None,
    ) -> None:
        self.media = media
        self.speech = speech
        self.policy = policy
        self.actions = actions
        self.record = CallRecord()
        self.settings = settings
        self.clock = clock
        self.history: list[ChatMessage] = []
        self.events: list[SessionEvent] = []
        self._on_event = on_event
        self._segmenter = Segmenter(
            SegmenterSettings(
                threshold=settings.vad_threshold,
                release_threshold=max(0.05, settings.vad_threshold - 0.15),
                min_speech_ms=settings.min_speech_ms,
                likely_over_ms=settings.likely_over_ms,
                end_silence_ms=settings.end_silence_ms,
            )
        )
        self._vad = speech.vad.stream()
        self._to_16k = Resampler(8000, VAD_RATE)
        self._window = b""
        self._utterance = bytearray()
        self._pre_roll: deque[bytes] = deque(maxlen=PRE_ROLL_MS // 32)
        self._reply: Reply | None = None
        self._greeting: bytes | None = None
        self._acknowledgements: list[Acknowledgement] = []
        self._last_activity = clock()
        self._started_at = clock()
        self._bot_until = clock()
        self._last_speech_at = clock()
        self._reprompted = False
        self._turn = 0
        self._background: set[asyncio.Task[None]] = set()
        # The model's reading of the call so far: stopped when a decision starts
        # (which reads it all anyway) and when the call ends.
        self._reading = StopFlag()
        # A fixed line being played (greeting, reprompt): its text, length and history slot.
        self._line: tuple[str, float, int] | None = None

    # -- events -----------------------------------------------------------------------

    def emit(self, event: SessionEvent) -> None:
        self.events.append(event)
        if self._on_event is not None:
            self._on_event(event)

    # -- life of the call -------------------------------------------------------------

    async def prepare(self) -> None:
        """Synthesises the greeting and the acknowledgements before the call is answered."""
        self._greeting = await self.speech.render(self.policy.greeting())
        after_ms = self.settings.acknowledge_after_ms
        if after_ms is not None:
            for text in self.policy.acknowledgements():
                pcm = await self.speech.render_fixed(text)
                # Without the synthesized quiet at its end: the answer follows sooner.
                pcm = pcm[: sounding_end(pcm) + ACK_TAIL_BYTES]
                self._acknowledgements.append(Acknowledgement(text, pcm, after_ms / 1000))

    async def run(self, *, voicemail: bool = False) -> None:
        """Speaks the greeting at once, then converses until the call ends.

        ``voicemail``: an answering machine took the call; the policy's voicemail
        plan runs instead of the greeting.
        """
        if self.actions is None:
            self.actions = HangUpOnly(self.media)
        self._started_at = self._last_activity = self.clock()
        if voicemail:
            self._start_plan(self.policy.on_voicemail())
        else:
            if self._greeting is None:
                await self.prepare()
            assert self._greeting is not None
            self._play_line(self.policy.greeting(), self._greeting)
            # The model reads its instructions while the greeting plays.
            self._read_ahead()
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._listen())
                keys = tg.create_task(self._keys())
                watchdog = tg.create_task(self._watch_silence())
                await self.media.wait_closed()
                watchdog.cancel()
                keys.cancel()
        finally:
            self._reading.set()
            if self._reply is not None:
                await self._reply.cancel()
            if self._background:
                await asyncio.gather(*self._background, return_exceptions=True)
            self.emit(CallEnded(self.clock()))

    @property
    def bot_speaking(self) -> bool:
        playing = self._reply is not None and self._reply.speaking
        return playing or self.clock() < self._bot_until

    # -- listening ----------------------------------------------------------------------

    async def _listen(self) -> None:
        async for frame in self.media.audio():  # type: ignore[attr-defined]
            self._window += self._to_16k.process(frame)
            while len(self._window) >= WINDOW_BYTES:
                window, self._window = self._window[:WINDOW_BYTES], self._window[WINDOW_BYTES:]
                self._on_window(window)

    def _on_window(self, window: bytes) -> None:
        probability = self._vad.probability(window)
        if probability >= self.settings.vad_threshold:
            self._last_speech_at = self.clock()
        in_turn = self._segmenter.in_turn
        events = self._segmenter.feed(probability, 32)
        if in_turn or Segment.SPEECH_STARTED in events:
            self._utterance += window
        else:
            self._pre_roll.append(window)
        for event in events:
            self._on_segment(event)
        if self._segmenter.in_turn and should_interrupt(
            self._segmenter.speech_ms, self.bot_speaking, self.settings.barge_in_ms
        ):
            self._barge_in()

    def _on_segment(self, event: Segment) -> None:
        now = self.clock()
        log.debug(
            "%s (agent speaking: %s, reply under way: %s)",
            event,
            self.bot_speaking,
            self._reply is not None,
        )
        self._last_activity = now
        if event is Segment.SPEECH_STARTED:
            self._utterance = bytearray(b"".join(self._pre_roll)) + self._utterance
            self._pre_roll.clear()
        elif event is Segment.TURN_LIKELY_OVER:
            if self.bot_speaking:
                return  # a backchannel while the agent talks: not a turn
            self._start_reply(bytes(self._utterance), speculative=True)
        elif event is Segment.TURN_RESUMED:
            if self._reply is not None and self._reply.speculative:
                reply, self._reply = self._reply, None
                self._spawn(reply.cancel())
        elif event is Segment.TURN_OVER:
            utterance, self._utterance = bytes(self._utterance), bytearray()
            if self._reply is not None and self._reply.speculative:
                self._reply.go()
            elif not self.bot_speaking:
                self._start_reply(utterance, speculative=False).go()

    def _start_reply(
        self, utterance16k: bytes, *, speculative: bool, plan: TurnPlan | None = None
    ) -> Reply:
        self._turn += 1
        assert self.actions is not None
        self._reading.set()  # not needed once the decision reads the call
        reply = Reply(
            turn=self._turn,
            utterance=utterance16k,
            speech=self.speech,
            media=self.media,
            history=self.history,
            policy=self.policy,
            actions=self.actions,
            record=self.record,
            clock=self.clock,
            emit=self.emit,
            speculative=speculative,
            end_of_speech=self._last_speech_at,
            started_at=self._started_at,
            plan=plan,
            acknowledgement=self._next_acknowledgement() if plan is None else None,
            on_spoken=self._read_ahead,
        )
        self._reply = reply
        reply.start()
        return reply

    def _next_acknowledgement(self) -> Acknowledgement | None:
        if not self._acknowledgements:
            return None
        # One after the other, by the caller's turns so far.
        turns = sum(m.role == "user" for m in self.history)
        return self._acknowledgements[turns % len(self._acknowledgements)]

    def _start_plan(self, plan: TurnPlan) -> None:
        """Runs a plan decided without the caller's words (a key, voicemail) at once."""
        self._start_reply(b"", speculative=False, plan=plan).go()

    def _read_ahead(self) -> None:
        # The model reads the call so far while the agent's words play, so the
        # next decision evaluates only the caller's new words.
        self._reading.set()
        self._reading = StopFlag()
        self._spawn(self._warm_up(self._reading, list(self.history)))

    async def _warm_up(self, stop: StopFlag, history: list[ChatMessage]) -> None:
        try:
            await self.policy.warm_up(stop, history)
        except Exception:
            # A cold model only makes the first answer slower.
            log.exception("warming the model up failed")

    async def _keys(self) -> None:
        digits = getattr(self.media, "dtmf", None)
        if digits is None:
            return
        async for digit in digits():
            plan = self.policy.on_key(digit)
            if plan is None:
                continue
            current = self._reply
            if current is not None and current.ending:
                continue  # the call is already ending
            if current is not None or self.bot_speaking:
                self._barge_in()
            if self._reply is not None:
                reply, self._reply = self._reply, None
                await reply.cancel()
            self._start_plan(plan)

    def _barge_in(self) -> None:
        reply = self._reply
        if reply is not None and reply.ending:
            return  # the goodbye of an opt-out or a callback is said in full
        dropped = self.media.clear_playout()
        self._bot_until = self.clock()
        heard = ""
        if self._line is not None and reply is None:
            text, ms, slot = self._line
            heard = heard_part([(text, ms)], dropped)
            # The history keeps only what the caller actually heard.
            self.history[slot] = ChatMessage("assistant", heard or "...")
            self._line = None
        elif reply is not None and not reply.speculative:
            self._reply = None
            # The history keeps only what the caller actually heard.
            heard = reply.interrupted(dropped)
            self._spawn(reply.cancel())
            if not reply.acting:
                # Interrupted before its plan was acted on (during an acknowledgement):
                # its words join the caller's new ones, to be answered together.
                self._utterance = bytearray(reply.utterance) + self._utterance
        self.emit(BargeIn(self.clock(), dropped, heard))

    def _spawn(self, work: Coroutine[None, None, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- silence ------------------------------------------------------------------------

    async def _watch_silence(self) -> None:
        while not self.media.closed:
            await asyncio.sleep(0.2)
            if self.bot_speaking or self._segmenter.in_turn or self._reply is not None:
                # A reply is over once its last words have played, not once they were queued.
                if self._reply is not None and self._reply.finished and not self._reply.speaking:
                    self._reply = None
                    self._last_activity = self.clock()
                else:
                    self._last_activity = max(self._last_activity, self.clock())
                continue
            quiet = self.clock() - self._last_activity
            if quiet >= self.settings.hang_up_after_s:
                await self._say_and_hang_up(self.policy.goodbye())
                return
            if quiet >= self.settings.reprompt_after_s and not self._reprompted:
                self._reprompted = True
                await self._say(self.policy.reprompt())

    async def _say(self, text: str) -> float:
        return self._play_line(text, await self.speech.render(text))

    def _play_line(self, text: str, pcm: bytes) -> float:
        self.media.play(pcm)
        seconds = len(pcm) / 16000
        self._line = (text, seconds * 1000, len(self.history))
        self.history.append(ChatMessage("assistant", text))
        self.emit(Said("agent", text, self.clock()))
        self._bot_until = self.clock() + seconds
        return seconds

    async def _say_and_hang_up(self, text: str) -> None:
        seconds = await self._say(text)
        await asyncio.sleep(seconds + 0.3)
        with contextlib.suppress(OSError):
            await self.media.hangup()


__all__ = ["CallSession", "Media", "Policy", "TurnTimings"]
