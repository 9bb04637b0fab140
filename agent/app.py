"""Where Cartline's concrete parts meet: the telephony core, wired from settings."""

from __future__ import annotations

import logging
from typing import Protocol

from agent.config import Settings
from agent.telephony.agi import AgiServer, InboundRouter, StaticInboundRouter
from agent.telephony.ami import Ami, AmiError
from agent.telephony.audiosocket import AudioSocketCall, AudioSocketServer
from agent.telephony.dialer import Dialer, PlacedCall

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

    async def transfer(self, call: PlacedCall, number: str) -> None:
        """Hands the customer to a person at ``number`` (AMI Redirect into cartline-transfer)."""
        channel = call.channel
        if channel is None:
            raise AmiError("the call has no channel yet; it cannot be transferred")
        call.tracker.mark_agent_hangup()
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
