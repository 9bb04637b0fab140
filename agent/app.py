"""Where Cartline's concrete parts meet: the telephony core, wired from settings."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

from aiohttp import web

from agent.campaign_calls import CampaignCalls
from agent.campaigns.calling import ReturningCallers, StoreActions, default_policy
from agent.campaigns.inbox import Inbox
from agent.campaigns.intake import Intake
from agent.campaigns.notify import keep_sending
from agent.campaigns.placement import CallRequest
from agent.campaigns.scheduler import Scheduler
from agent.campaigns.sms import TextInbox, TextSender
from agent.config import Settings
from agent.conversation.calls import Conversations
from agent.privacy.crypto import DataKeys, ensure_keys
from agent.privacy.retention import keep_purging
from agent.privacy.rotation import keep_resealing
from agent.speech.models import Speech
from agent.store.db import Database
from agent.telephony.agi import AgiServer, InboundRouter, StaticInboundRouter
from agent.telephony.ami import Ami, AmiError
from agent.telephony.audiosocket import AudioSocketCall, AudioSocketServer
from agent.telephony.dialer import Dialer, PlacedCall
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
