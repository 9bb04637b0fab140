"""FastAGI: the dialplan asks Cartline about an inbound call and gets its answer
as channel variables (CALL_ID, AS_UUID, CARTLINE_CAMPAIGN, CARTLINE_KNOWN,
CARTLINE_ROUTE). There is no audio over FastAGI; that goes over AudioSocket.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

from panoramisk import fast_agi

log = logging.getLogger(__name__)

ROUTE_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class InboundCall:
    """What the dialplan tells us about a caller."""

    caller_id: str
    caller_name: str
    dialed: str
    channel: str
    uniqueid: str


@dataclass(frozen=True)
class InboundRoute:
    """Cartline's answer: which campaign takes the call, under which ids."""

    campaign: str | None
    call_id: str
    known_customer: bool = False
    reject: bool = False
    media_uuid: uuid.UUID = field(default_factory=uuid.uuid4)


class InboundRouter(Protocol):
    """Decides what happens to an inbound call (who is calling, which campaign)."""

    async def route(self, call: InboundCall) -> InboundRoute: ...


class StaticInboundRouter:
    """Sends every inbound call to one campaign (or none)."""

    def __init__(self, campaign: str | None) -> None:
        self.campaign = campaign

    async def route(self, call: InboundCall) -> InboundRoute:
        return InboundRoute(campaign=self.campaign, call_id=call.uniqueid)


def quote(value: str) -> str:
    """A value for ``SET VARIABLE``: quoted, with quotes and backslashes escaped."""
    cleaned = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")
    return f'"{cleaned}"'


class AgiServer:
    """Serves the ``inbound`` FastAGI script."""

    def __init__(self, host: str, port: int, router: InboundRouter) -> None:
        self.host = host
        self.port = port
        self.router = router
        self._server: asyncio.Server | None = None
        self.requests = 0
        self.failures = 0

    async def start(self) -> None:
        # panoramisk wants the loop given explicitly, and async handlers only.
        app = fast_agi.Application(loop=asyncio.get_running_loop())
        app.add_route("inbound", self._inbound)
        self._server = await asyncio.start_server(app.handler, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _inbound(self, request: Any) -> None:
        self.requests += 1
        h = request.headers
        call = InboundCall(
            caller_id=h.get("agi_callerid", ""),
            caller_name=h.get("agi_calleridname", ""),
            dialed=h.get("agi_dnid") or h.get("agi_extension", ""),
            channel=h.get("agi_channel", ""),
            uniqueid=h.get("agi_uniqueid", ""),
        )
        try:
            async with asyncio.timeout(ROUTE_TIMEOUT_S):
                route = await self.router.route(call)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The caller still gets an answer; the dialplan takes its fallback.
            self.failures += 1
            log.exception("inbound routing failed for call %s", call.uniqueid)
            await self._set(request, "CARTLINE_ROUTE", "fallback")
            await self._set(request, "CALL_ID", call.uniqueid)
            return
        log.info(
            "inbound call %s: campaign %s, known customer %s",
            route.call_id,
            route.campaign or "-",
            route.known_customer,
        )
        await self._set(request, "CALL_ID", route.call_id)
        await self._set(request, "AS_UUID", str(route.media_uuid))
        await self._set(request, "CARTLINE_CAMPAIGN", route.campaign or "")
        await self._set(request, "CARTLINE_KNOWN", "yes" if route.known_customer else "no")
        await self._set(request, "CARTLINE_ROUTE", "reject" if route.reject else "accept")

    @staticmethod
    async def _set(request: Any, name: str, value: str) -> None:
        await request.send_command(f"SET VARIABLE {name} {quote(value)}")
