"""Where Cartline's concrete parts meet: the telephony core, wired from settings."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Protocol

from aiohttp import web

from agent.campaigns.calling import ReturningCallers, StoreActions, default_policy, policy_for
from agent.campaigns.inbox import Inbox
from agent.campaigns.intake import Intake
from agent.campaigns.jobs import CallObserver, CallRequest, CallResult
from agent.campaigns.notify import keep_sending
from agent.campaigns.scheduler import Scheduler
from agent.campaigns.sms import TextInbox, TextSender
from agent.config import Settings
from agent.conversation.calls import Conversations
from agent.conversation.session import CallSession
from agent.privacy.crypto import RECORDING_CONTEXT, DataKeys, ensure_keys
from agent.privacy.retention import keep_purging
from agent.privacy.rotation import keep_resealing
from agent.speech.models import Speech
from agent.store.db import Database
from agent.store.tables import AttemptStatus
from agent.telephony.agi import AgiServer, InboundRouter, StaticInboundRouter
from agent.telephony.ami import Ami, AmiError
from agent.telephony.audiosocket import AudioSocketCall, AudioSocketServer
from agent.telephony.dialer import Dialer, PlacedCall
from agent.telephony.dialplan import pbx_instance
from agent.telephony.outcomes import Amd, CallOutcome, CallStatus
from agent.web.app import make_web_app
from agent.web.live import LiveCalls
from agent.web.metrics import Metrics

log = logging.getLogger(__name__)


class MediaHandler(Protocol):
    """Runs one call's audio; ``call`` is None for a call Cartline did not place."""

    async def __call__(self, conn: AudioSocketCall, call: PlacedCall | None) -> None: ...


class Telephony:
    """The AMI controller, the AudioSocket and FastAGI servers and the dialer, together."""

    def __init__(
        self,
        settings: Settings,
        media_handler: MediaHandler,
        router: InboundRouter | None = None,
    ) -> None:
        self.settings = settings
        a = settings.ami
        self.ami = Ami(
            a.host,
            a.port,
            a.username,
            a.secret.get_secret_value(),
            ping_delay_s=a.ping_delay_s,
            reconnect_s=a.reconnect_s,
        )
        self.dialer = Dialer(self.ami, settings.trunk, settings.calls, settings.recordings)
        s = settings.audiosocket
        self.audiosocket = AudioSocketServer(
            self._on_media,
            s.host,
            s.port,
            inbound_queue_frames=s.inbound_queue_frames,
            uuid_timeout_s=s.uuid_timeout_s,
            lead_frames=s.pacer_lead_frames,
        )
        self.agi = AgiServer(
            settings.fastagi.host, settings.fastagi.port, router or StaticInboundRouter(None)
        )
        self._media_handler = media_handler

    async def send_text(self, number: str, body: str) -> None:
        """Sends a text message to ``number`` over the trunk (SIP MESSAGE)."""
        t = self.settings.trunk
        await self.ami.message_send(
            f"pjsip:{t.name}/sip:{number}@{t.host}:{t.port}",
            f"sip:{t.caller_id}@{t.from_domain or t.sip_bind_host}",
            body,
        )

    async def hangup(self, call: PlacedCall) -> None:
        """Ends a call from Cartline's side over AMI (without its media connection)."""
        channel = call.channel
        if channel is None:
            raise AmiError("the call has no channel yet; it cannot be hung up")
        call.tracker.mark_agent_hangup()
        await self.ami.hangup(channel)

    async def transfer(
        self, call: PlacedCall, number: str, *, stop_recording: bool = False
    ) -> None:
        """Hands the customer to a person at ``number`` (AMI Redirect into cartline-transfer).

        ``stop_recording``: the recording ends here rather than with the call.
        """
        channel = call.channel
        if channel is None:
            raise AmiError("the call has no channel yet; it cannot be transferred")
        call.tracker.mark_agent_hangup()
        if stop_recording:
            await self.ami.setvar(channel, "CARTLINE_STOP_REC", "yes")
        await self.ami.redirect(channel, "cartline-transfer", number)

    async def hangup_channel(self, channel: str) -> None:
        """Ends a call that came in, by its channel name."""
        await self.ami.hangup(channel)

    async def transfer_channel(self, channel: str, number: str) -> None:
        """Hands a caller who came in to a person at ``number``."""
        await self.ami.redirect(channel, "cartline-transfer", number)

    async def _on_media(self, conn: AudioSocketCall) -> None:
        placed = self.dialer.attach_media(conn)
        await self._media_handler(conn, placed)

    async def start(self) -> None:
        await self.audiosocket.start()
        await self.agi.start()
        await self.ami.connect(timeout_s=self.settings.asterisk.start_timeout_s)

    async def stop(self) -> None:
        await self.dialer.close()
        await self.ami.close()
        await self.agi.stop()
        await self.audiosocket.stop()

    async def __aenter__(self) -> Telephony:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


_ATTEMPT_STATUS = {
    CallStatus.BUSY: AttemptStatus.BUSY,
    CallStatus.NO_ANSWER: AttemptStatus.NO_ANSWER,
}


def attempt_status(outcome: CallOutcome) -> AttemptStatus:
    """How the job queue sees a call's telephony outcome."""
    if outcome.answered:
        return AttemptStatus.VOICEMAIL if outcome.amd == Amd.MACHINE else AttemptStatus.ANSWERED
    return _ATTEMPT_STATUS.get(outcome.status, AttemptStatus.FAILED)


class CampaignCalls:
    """Places the scheduler's calls: the conversation is prepared, then the number dialled.

    Each call gets its own dialogue (the campaign's script and the request's
    shared fields) and ``make_actions``' performers for its effects.
    """

    def __init__(
        self,
        telephony: Telephony,
        conversations: Conversations,
        make_actions: Callable[[CallRequest], StoreActions],
    ) -> None:
        self.telephony = telephony
        self.conversations = conversations
        self.make_actions = make_actions
        # Set to seal each recording as soon as its call ends (encryption at rest).
        self.keys: DataKeys | None = None
        self.observers: list[CallObserver] = []
        # Live calls, with where a person answers for their campaign (None: nobody).
        self.live: dict[str, _LiveCall] = {}

    async def hand_over(self) -> int:
        """Transfers every live call that has a person to go to (shutdown); returns how many.

        A handed-over call's attempt ends at once, as answered and transferred: the
        customer talks on with a person, and the recording stops at the hand-over.
        """
        moved = 0
        for call_id, live in list(self.live.items()):
            if live.target is None or not live.placed.outcome.answered:
                continue
            try:
                await self.telephony.transfer(live.placed, live.target, stop_recording=True)
            except AmiError:
                log.warning("call %s: could not be handed over to a person", call_id)
                continue
            if live.session.record.outcome is None:
                live.session.record.outcome = "transferred"
            live.released.set()
            moved += 1
        if moved:
            log.info("handed %d live call(s) over to a person", moved)
        return moved

    def _notify(self, method: str, *args: object) -> None:
        for observer in self.observers:
            try:
                getattr(observer, method)(*args)
            except Exception:
                log.exception("a call observer failed on %s", method)

    async def place_call(self, request: CallRequest) -> CallResult:
        call_id = f"cl-a{request.attempt_id}-{uuid.uuid4().hex[:12]}"
        self._notify("call_started", request, call_id)
        try:
            result = await self._place(request, call_id)
        except BaseException:
            self._notify("call_ended", request, CallResult(AttemptStatus.FAILED, call_id=call_id))
            raise
        self._notify("call_ended", request, result)
        return result

    async def _place(self, request: CallRequest, call_id: str) -> CallResult:
        s = self.telephony.settings
        campaign = next((c for c in s.campaigns if c.name == request.campaign), None)
        if campaign is None:
            log.warning(
                "attempt %d: campaign %s is not configured", request.attempt_id, request.campaign
            )
            return CallResult(AttemptStatus.FAILED, call_id=call_id)
        policy = policy_for(campaign, s.merchant, request, self.conversations.speech.llm)
        actions = self.make_actions(request)
        placed, session = await self.conversations.place(
            self.telephony,
            request.phone_e164,
            policy=policy,
            actions=actions,
            call_id=call_id,
            on_event=lambda event: self._notify("call_event", request, event),
        )
        actions.call = placed
        live = _LiveCall(placed, session, campaign.script.transfer_to)
        self.live[placed.call_id] = live
        try:
            outcome = await live.wait(s.trunk.ring_timeout_s + s.calls.max_call_s + 30)
        finally:
            self.conversations.sessions.pop(placed.call_id, None)
            self.live.pop(placed.call_id, None)
        ended = dt.datetime.now(dt.UTC)
        answered_at = None
        if outcome.answered and outcome.answered_at:
            lasted = (outcome.ended_at or time.monotonic()) - outcome.answered_at
            answered_at = ended - dt.timedelta(seconds=lasted)
        turns = [
            {"speaker": "customer" if m.role == "user" else "agent", "text": m.content}
            for m in session.history
            if m.role != "system"
        ]
        recording = pbx_instance(s).host(PurePosixPath(s.recordings.dir) / f"{placed.call_id}.wav")
        size = 0
        if outcome.answered and recording.is_file():
            recording, size = await asyncio.to_thread(self._keep_recording, recording)
        status = attempt_status(outcome)
        if status == AttemptStatus.ANSWERED and session.record.outcome == "voicemail":
            # The policy heard a voicemail greeting that AMD missed: retried like one.
            status = AttemptStatus.VOICEMAIL
        return CallResult(
            status=status,
            call_id=placed.call_id,
            answered_at=answered_at,
            ended_at=ended,
            hangup_cause=outcome.hangup_cause,
            amd=outcome.amd.value if outcome.amd else None,
            outcome=session.record.outcome if outcome.answered else None,
            note=session.record.note() if outcome.answered else {},
            turns=turns if outcome.answered else [],
            recording=str(recording) if size else None,
            recording_bytes=size,
        )

    def _keep_recording(self, mix: Path) -> tuple[Path, int]:
        """Seals the call's recording files (mix, in, out) once Asterisk has closed them."""
        files = [mix.with_name(f"{mix.stem}{part}.wav") for part in ("", "-in", "-out")]
        _wait_settled(files)
        size = mix.stat().st_size
        if self.keys is None:
            return mix, size
        sealed = mix
        for f in files:
            if f.is_file():
                done = self.keys.seal_file(f, RECORDING_CONTEXT)
                sealed = done if f == mix else sealed
        return sealed, size


@dataclasses.dataclass
class _LiveCall:
    placed: PlacedCall
    session: CallSession
    target: str | None
    # Set when the call was handed to a person: its attempt ends there.
    released: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)

    async def wait(self, timeout_s: float) -> CallOutcome:
        """The call's outcome once it ends, or once it was handed over (still going)."""
        done = asyncio.ensure_future(self.placed.wait_done(timeout_s))
        released = asyncio.ensure_future(self.released.wait())
        try:
            await asyncio.wait({done, released}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            released.cancel()
            if not done.done():
                done.cancel()
        return done.result() if done.done() and not done.cancelled() else self.placed.outcome


def _wait_settled(files: list[Path], quiet_s: float = 0.3, limit_s: float = 5.0) -> None:
    # MixMonitor closes its files as the channel goes away, just after the hang-up
    # event: wait until their sizes stop changing.
    deadline = time.monotonic() + limit_s
    last: list[int] = []
    while time.monotonic() < deadline:
        sizes = [f.stat().st_size if f.is_file() else -1 for f in files]
        if sizes == last:
            return
        last = sizes
        time.sleep(quiet_s)


class Server:
    """``cartline serve``: telephony, the conversations, intake, the scheduler and the web server.

    Started in that order and stopped in reverse; on stop, live calls may finish
    for ``drain_s`` seconds, and any call still open is recorded as interrupted so
    its job is retried later rather than lost.
    """

    def __init__(self, settings: Settings, speech: Speech) -> None:
        self.settings = settings
        self.db = Database(settings.database_url, echo=settings.store.echo_sql)
        # A caller nobody knows hears the first campaign's script, with no customer facts.
        first = settings.campaigns[0]
        policy = default_policy(first, settings.merchant, speech.llm)
        self.conversations = Conversations(speech, policy, settings.speech.turn)
        # A customer calling back is recognised and hears about their last call.
        self.router = ReturningCallers(
            self.db,
            {c.name: c for c in settings.campaigns},
            settings.merchant,
            speech.llm,
            self.conversations,
            self._actions,
            fallback=None,
            default_region=settings.intake.default_region,
        )
        self.telephony = Telephony(settings, self.conversations, self.router)
        self.intake = Intake(self.db, settings)
        self._inbox_db = Database(settings.database_url, echo=settings.store.echo_sql)
        self.inbox = Inbox(self.db, self.intake, writer_db=self._inbox_db)
        self.placer = CampaignCalls(self.telephony, self.conversations, self._actions)
        # Customers' texts to the merchant's number: STOP, HELP and START are acted on at once.
        self.texts = TextInbox(
            self.db.run,
            self.telephony.send_text,
            settings.sms,
            settings.merchant,
            settings.intake.default_region,
        )
        self.telephony.ami.add_listener(self.texts.on_ami_event)
        # The merchant's own texts (the checkout link) go only to numbers that agreed.
        self.text_sender = TextSender(self.db.run, self.telephony.send_text, settings.sms)
        self.scheduler = Scheduler(
            self.db,
            settings.scheduler,
            settings.campaigns,
            self.placer,
            max_channels=settings.trunk.max_channels,
        )
        self.inbox.on_applied = lambda _: self.scheduler.wake()
        self.keys: DataKeys | None = None
        # The live view follows every campaign call (in memory only).
        self.live = LiveCalls()
        self.placer.observers.append(self.live)
        self.metrics = Metrics(self.db, (c.name for c in settings.campaigns))
        self.placer.observers.append(self.metrics)
        self.scheduler.outcome_webhooks = settings.web.outcome_webhooks
        self.web = make_web_app(self, live=self.live, metrics=self.metrics)
        self._runner: web.AppRunner | None = None
        self._scheduler_task: asyncio.Task[None] | None = None
        self._reseal_task: asyncio.Task[None] | None = None
        self._purge_task: asyncio.Task[None] | None = None
        self._notify_task: asyncio.Task[None] | None = None

    def _actions(self, request: CallRequest) -> StoreActions:
        return StoreActions(
            request, self.db, self.telephony, self.text_sender, self.settings.merchant
        )

    @property
    def ready(self) -> bool:
        return self.telephony.ami.connected and self._scheduler_task is not None

    async def start(self) -> None:
        await asyncio.to_thread(self.db.migrate)
        p = self.settings.privacy
        self.scheduler.keep_transcripts = p.keep_transcripts
        # The keys also seal the second factor of the dashboard's users.
        self.keys = keys = await asyncio.to_thread(ensure_keys, self.settings.keys_file)
        if p.encrypt_recordings or p.encrypt_transcripts:
            self.placer.keys = keys if p.encrypt_recordings else None
            self.scheduler.keys = keys if p.encrypt_transcripts else None
            self._reseal_task = asyncio.create_task(
                keep_resealing(self.db, keys, p.reseal_every_s), name="reseal"
            )
        self._purge_task = asyncio.create_task(keep_purging(self.db, p.retention), name="purge")
        if self.settings.web.outcome_webhooks:
            self._notify_task = asyncio.create_task(
                keep_sending(self.db, self.settings.web.outcome_webhooks), name="outcome-webhooks"
            )
        await self.telephony.start()
        self.inbox.start()
        self._runner = web.AppRunner(self.web, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.web.host, self.settings.web.port)
        await site.start()
        self._scheduler_task = asyncio.create_task(self.scheduler.run(), name="scheduler")
        log.info("serving on http://%s:%d", self.settings.web.host, self.settings.web.port)

    async def stop(self, drain_s: float = 0, *, hand_over: bool = False) -> None:
        """Stops taking work; live calls get ``drain_s`` to finish. ``hand_over``: those
        still live then are transferred to their campaign's ``script.transfer_to``; the
        rest are cut and their jobs retried later (interrupted)."""
        await self.scheduler.stop(
            drain_s=drain_s, hand_over=self.placer.hand_over if hand_over else None
        )
        for task in (self._reseal_task, self._purge_task, self._notify_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._scheduler_task is not None:
            self._scheduler_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._scheduler_task
        if self._runner is not None:
            await self._runner.cleanup()
        await self.inbox.stop()
        await self.telephony.stop()
        await asyncio.to_thread(self._inbox_db.close)
        await asyncio.to_thread(self.db.close)
