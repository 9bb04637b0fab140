"""FastAGI: the dialplan asks Cartline about an inbound call and gets its answer
as channel variables (CALL_ID, AS_UUID, CARTLINE_CAMPAIGN, CARTLINE_KNOWN,
CARTLINE_ROUTE = accept | reject | fallback). There is no audio over FastAGI;
that goes over AudioSocket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from panoramisk import fast_agi

log = logging.getLogger(__name__)

_MAX_HEADERS = 16 * 1024


@dataclass(frozen=True)
class InboundCall:
    """What the dialplan tells us about a caller ("" where Asterisk says "unknown")."""

    caller_id: str
    caller_name: str
    dialed: str
    channel: str
    uniqueid: str


@dataclass(frozen=True)
class InboundRoute:
    """Cartline's answer: which campaign takes the call, under which ids; or reject it."""

    campaign: str | None
    call_id: str
    known_customer: bool = False
    reject: bool = False
    media_uuid: uuid.UUID = field(default_factory=uuid.uuid4)


class InboundRouter(Protocol):
    """Decides what happens to an inbound call (who is calling, which campaign)."""

    async def route(self, call: InboundCall) -> InboundRoute: ...


class StaticInboundRouter:
    """Sends every inbound call to one campaign (or none), under Asterisk's Uniqueid."""

    def __init__(self, campaign: str | None) -> None:
        self.campaign = campaign

    async def route(self, call: InboundCall) -> InboundRoute:
        return InboundRoute(campaign=self.campaign, call_id=call.uniqueid)


def quote(value: str) -> str:
    """A value for ``SET VARIABLE``: quoted, backslashes and quotes escaped, one line."""
    cleaned = value.replace("\\", "\\\\").replace('"', '\\"')
    cleaned = cleaned.replace("\r", " ").replace("\n", " ")
    return f'"{cleaned}"'


class _ChannelGone(Exception):
    """Asterisk stopped taking commands (the caller hung up, or the socket closed)."""


Handler = Callable[[Any], Awaitable[None]]


class AgiServer:
    """Serves the ``inbound`` FastAGI script: ``AGI(agi://host:port/inbound)``.

    ``port`` 0 picks a free port; ``port`` holds the bound one after :meth:`start`.
    A router that fails or takes longer than ``route_timeout_s`` gets the call
    CARTLINE_ROUTE=fallback, so the dialplan still answers it.
    """

    def __init__(
        self,
        host: str,
        port: int,
        router: InboundRouter,
        *,
        route_timeout_s: float = 3.0,
        request_timeout_s: float = 10.0,
    ) -> None:
        self.host = host
        self.port = port
        self.router = router
        self.route_timeout_s = route_timeout_s
        self.request_timeout_s = request_timeout_s
        self.requests = 0
        self.failures = 0
        self._app: Any = None
        self._routes: dict[str, Handler] = {"inbound": self._inbound}
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        # Built inside the running loop and given it: panoramisk would otherwise
        # ask for the current event loop, which is deprecated outside one.
        self._app = fast_agi.Application(loop=asyncio.get_running_loop())
        # panoramisk's Application.handler is not used: at EOF before the blank
        # line it spins without yielding (freezing the loop), it catches
        # BaseException (so stop() could not cancel it) and it has no timeout.
        self._server = await asyncio.start_server(self._connection, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stops listening and ends the requests in progress."""
        if self._server is None:
            return
        self._server.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # The work runs in a task of its own that stop() cancels: on Python 3.11
        # asyncio's stream server logs an error for a callback that ends cancelled.
        work = asyncio.create_task(self._serve(reader, writer))
        self._tasks.add(work)
        try:
            await work
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
        finally:
            self._tasks.discard(work)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(self.request_timeout_s):
                headers = await _read_headers(reader)
                script = headers.get("agi_network_script", "")
                handler = self._routes.get(script)
                if handler is None:
                    log.warning("FastAGI request for an unknown script %r", script[:40])
                    return
                request = fast_agi.Request(self._app, headers, reader, writer)
                await handler(request)
        except (_ChannelGone, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            log.info("FastAGI request ended early: %s", type(exc).__name__)
        except (TimeoutError, ConnectionError) as exc:
            log.warning("FastAGI request abandoned: %s", type(exc).__name__)
        except Exception:
            # One request's end; the server goes on with the others.
            log.exception("FastAGI request failed")
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _inbound(self, request: Any) -> None:
        self.requests += 1
        h = request.headers
        call = InboundCall(
            caller_id=_known(h.get("agi_callerid", "")),
            caller_name=_known(h.get("agi_calleridname", "")),
            dialed=_known(h.get("agi_dnid", "")) or _known(h.get("agi_extension", "")),
            channel=h.get("agi_channel", ""),
            uniqueid=h.get("agi_uniqueid", ""),
        )
        try:
            async with asyncio.timeout(self.route_timeout_s):
                route = await self.router.route(call)
        except Exception as exc:
            # The exception's text may carry the caller's number: name its type only.
            self.failures += 1
            log.warning(
                "inbound call %s: routing failed (%s); the dialplan takes its fallback",
                call.uniqueid,
                type(exc).__name__,
            )
            log.debug("routing failure of inbound call %s", call.uniqueid, exc_info=True)
            await _set(request, "CALL_ID", call.uniqueid)
            await _set(request, "AS_UUID", str(uuid.uuid4()))
            await _set(request, "CARTLINE_ROUTE", "fallback")
            return
        log.info(
            "inbound call %s: %s, campaign %s, known customer %s",
            route.call_id,
            "reject" if route.reject else "accept",
            route.campaign or "-",
            route.known_customer,
        )
        await _set(request, "CALL_ID", route.call_id)
        await _set(request, "AS_UUID", str(route.media_uuid))
        await _set(request, "CARTLINE_CAMPAIGN", route.campaign or "")
        await _set(request, "CARTLINE_KNOWN", "yes" if route.known_customer else "no")
        await _set(request, "CARTLINE_ROUTE", "reject" if route.reject else "accept")


async def _read_headers(reader: asyncio.StreamReader) -> dict[str, str]:
    """The ``agi_*: value`` lines up to the blank line that ends them."""
    raw = b""
    while not raw.endswith(b"\n\n") and raw != b"\n":
        line = await reader.readline()
        if not line.endswith(b"\n"):
            raise asyncio.IncompleteReadError(raw + line, None)
        raw += line
        if len(raw) > _MAX_HEADERS:
            raise asyncio.LimitOverrunError("FastAGI headers too long", len(raw))
    headers = {}
    for text in raw.decode("utf-8", "replace").splitlines():
        key, sep, value = text.partition(": ")
        if sep:
            headers[key] = value
    return headers


async def _set(request: Any, name: str, value: str) -> None:
    try:
        result = await request.send_command(f"SET VARIABLE {name} {quote(value)}")
    except ValueError as exc:  # panoramisk cannot parse the empty reply at EOF
        raise _ChannelGone("connection closed") from exc
    if "error" in result:
        raise _ChannelGone(str(result["error"]))


def _known(value: str) -> str:
    return "" if value == "unknown" else value
