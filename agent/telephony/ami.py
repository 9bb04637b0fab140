"""A typed AMI client over panoramisk: originate, follow, control calls.

panoramisk does the protocol and the reconnecting; this wrapper adds what a
call server needs around it: login that fails loudly, originate that returns
once Asterisk has queued the call (not when it is answered), one event stream
per call (fed from a short history, so early events are never missed), noise
filtered out, and word to every call in progress when the connection drops.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from panoramisk import Manager
from panoramisk.actions import Action

from agent.errors import CartlineError

log = logging.getLogger(__name__)

LOST_EVENT = "CartlineAmiLost"
# Events that say nothing about a call's course; they are most of the stream.
NOISE = frozenset(
    {
        "VarSet",
        "Newexten",
        "RTCPSent",
        "RTCPReceived",
        "AGIExecStart",
        "AGIExecEnd",
        "NewConnectedLine",
        "NewCallerid",
        "NewAccountCode",
        "DeviceStateChange",
        "ChannelTalkingStart",
        "ChannelTalkingStop",
        "LocalBridge",
        "Cdr",
        "Cel",
        "SuccessfulAuth",
        "ChallengeSent",
        "RequestBadFormat",
    }
)
_CALL_KEYS = ("Uniqueid", "Linkedid", "DestUniqueid", "DestLinkedid", "CallId", "ChannelId")


class AmiError(CartlineError):
    """An AMI action failed or the AMI cannot be reached."""


class AmiLoginError(AmiError):
    """The AMI refused the username and secret."""


@dataclass(frozen=True)
class AmiEvent:
    """One AMI event (or a response folded into a call's events)."""

    name: str
    fields: Mapping[str, str]
    received_at: float

    def get(self, key: str, default: str = "") -> str:
        return self.fields.get(key, default)


def _is_noise(name: str, fields: Mapping[str, str]) -> bool:
    if name == "TestEvent":
        return fields.get("State") != "MIXMONITOR_END"
    return name in NOISE


class _Originate(Action):  # type: ignore[misc]
    """An Originate that also says when Asterisk has accepted it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.accepted: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    def add_message(self, message: Any) -> Any:
        if not self.accepted.done():
            self.accepted.set_result(message)
        return super().add_message(message)


class _Manager(Manager):  # type: ignore[misc]
    """panoramisk's Manager that stops reconnecting once closed."""

    closing = False

    def connect(self, *args: Any, **kwargs: Any) -> Any:
        if self.closing:
            return None
        return super().connect(*args, **kwargs)


class CallEvents:
    """The events of one call, as an async iterator. Bounded: drops the oldest when full."""

    def __init__(self, owner: Ami, call_id: str, maxsize: int = 1000) -> None:
        self.call_id = call_id
        self._owner = owner
        self._queue: collections.deque[AmiEvent] = collections.deque(maxlen=maxsize)
        self._ready = asyncio.Event()
        self._closed = False
        self.dropped = 0

    def _put(self, event: AmiEvent) -> None:
        if len(self._queue) == self._queue.maxlen:
            self.dropped += 1
        self._queue.append(event)
        self._ready.set()

    def __aiter__(self) -> AsyncIterator[AmiEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[AmiEvent]:
        while not self._closed:
            while self._queue:
                yield self._queue.popleft()
            self._ready.clear()
            await self._ready.wait()

    async def aclose(self) -> None:
        self._closed = True
        self._ready.set()
        self._owner._unsubscribe(self)


class Ami:
    """An AMI connection for a call server. Create and use it inside the running loop."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        secret: str,
        *,
        ping_delay_s: float = 10.0,
        reconnect_s: float = 2.0,
        history: int = 5000,
    ) -> None:
        self._host, self._port = host, port
        self._username, self._secret = username, secret
        self._ping_delay_s = ping_delay_s
        self._reconnect_s = reconnect_s
        self._manager: Any = None
        self._history: collections.deque[AmiEvent] = collections.deque(maxlen=history)
        self._streams: dict[str, list[CallEvents]] = collections.defaultdict(list)
        self._waiters: list[tuple[Callable[[AmiEvent], bool], asyncio.Future[AmiEvent]]] = []
        self._listeners: list[Callable[[AmiEvent], None]] = []
        self._connected = asyncio.Event()
        self._pending: set[asyncio.Future[Any]] = set()
        self._shutdown_seen = False
        self._was_lost = False
        self.reconnects = 0

    # -- connection -----------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def connect(self, timeout_s: float = 10.0) -> None:
        """Connects and logs in; raises AmiLoginError or AmiError with the reason."""
        loop = asyncio.get_running_loop()
        self._manager = _Manager(
            host=self._host,
            port=self._port,
            username=self._username,
            secret=self._secret,
            ping_delay=max(1, round(self._ping_delay_s)),
            ping_interval=max(1, round(self._ping_delay_s)),
            reconnect_timeout=max(1, round(self._reconnect_s)),
            loop=loop,
            on_login=self._on_login,
            on_disconnect=self._on_disconnect,
        )
        self._manager.register_event("*", self._on_event)
        try:
            async with asyncio.timeout(timeout_s):
                await self._manager.connect()
                login = self._manager.authenticated_future
                if login is None:
                    raise AmiError(f"cannot connect to the AMI at {self._host}:{self._port}")
                response = await login
                if not response.success:
                    raise AmiLoginError(
                        f"the AMI at {self._host}:{self._port} refused user {self._username!r}: "
                        "check ami.username and ami.secret"
                    )
                await self._connected.wait()
        except OSError as exc:
            await self.close()
            raise AmiError(
                f"cannot connect to the AMI at {self._host}:{self._port}: {exc.strerror or exc}"
            ) from None
        except TimeoutError:
            await self.close()
            raise AmiError(
                f"no AMI login at {self._host}:{self._port} within {timeout_s:.0f} s"
            ) from None
        except AmiError:
            await self.close()
            raise

    async def close(self) -> None:
        if self._manager is not None:
            self._manager.closing = True
            self._manager.close()
        self._connected.clear()
        for fut in self._pending:
            fut.cancel()

    async def wait_connected(self, timeout_s: float) -> None:
        async with asyncio.timeout(timeout_s):
            await self._connected.wait()

    def _on_login(self, manager: Any) -> None:
        self._connected.set()
        if self._was_lost:
            self.reconnects += 1
            log.info("AMI reconnected to %s:%d", self._host, self._port)
        self._was_lost = False
        self._shutdown_seen = False

    def _on_disconnect(self, manager: Any, exc: Any) -> None:
        if manager.closing:
            return
        restarted = self._shutdown_seen or _event_name(exc) == "Shutdown"
        self._connected.clear()
        self._was_lost = True
        log.warning(
            "AMI connection lost (%s); reconnecting every %d s",
            "Asterisk shut down" if restarted else "connection dropped",
            max(1, round(self._reconnect_s)),
        )
        lost = AmiEvent(
            LOST_EVENT,
            {"Reason": "asterisk restarted" if restarted else "AMI connection lost"},
            time.monotonic(),
        )
        for streams in list(self._streams.values()):
            for stream in streams:
                stream._put(lost)
        for fut in list(self._pending):
            if not fut.done():
                fut.set_exception(AmiError("the AMI connection was lost"))

    # -- events -------------------------------------------------------------------------

    def _on_event(self, manager: Any, message: Any) -> None:
        self._route(AmiEvent(str(message.get("Event", "")), dict(message), time.monotonic()))

    def _route(self, event: AmiEvent) -> None:
        if event.name == "Shutdown":
            self._shutdown_seen = True
        if _is_noise(event.name, event.fields):
            return
        self._history.append(event)
        for listener in self._listeners:
            listener(event)
        for predicate, fut in list(self._waiters):
            if not fut.done() and predicate(event):
                fut.set_result(event)
        for call_id in {event.fields.get(k) for k in _CALL_KEYS} - {None, ""}:
            for stream in self._streams.get(str(call_id), ()):
                stream._put(event)

    def add_listener(self, listener: Callable[[AmiEvent], None]) -> None:
        """Calls ``listener`` with every event that is not noise (keep it quick)."""
        self._listeners.append(listener)

    def call_events(self, call_id: str) -> CallEvents:
        """Subscribes to one call's events, starting with those already received."""
        stream = CallEvents(self, call_id)
        for event in self._history:
            if call_id in (event.fields.get(k) for k in _CALL_KEYS):
                stream._put(event)
        self._streams[call_id].append(stream)
        return stream

    def _unsubscribe(self, stream: CallEvents) -> None:
        streams = self._streams.get(stream.call_id, [])
        if stream in streams:
            streams.remove(stream)
        if not streams:
            self._streams.pop(stream.call_id, None)

    async def wait_event(
        self, predicate: Callable[[AmiEvent], bool], timeout_s: float, *, past: bool = True
    ) -> AmiEvent:
        """The first event (already received when ``past``, or to come) that matches."""
        if past:
            for event in self._history:
                if predicate(event):
                    return event
        fut: asyncio.Future[AmiEvent] = asyncio.get_running_loop().create_future()
        entry = (predicate, fut)
        self._waiters.append(entry)
        try:
            async with asyncio.timeout(timeout_s):
                return await fut
        finally:
            self._waiters.remove(entry)

    # -- actions ------------------------------------------------------------------------

    def _require(self) -> Any:
        if self._manager is None or not self.connected:
            raise AmiError("the AMI is not connected")
        return self._manager

    async def action(self, fields: Mapping[str, str], timeout_s: float = 10.0) -> Any:
        """Sends one action and returns its response; an Error response raises AmiError."""
        manager = self._require()
        # Without an explicit Async key panoramisk mis-parses some responses.
        payload = {"Async": "false", **fields}
        fut = manager.send_action(payload)
        self._pending.add(fut)
        try:
            async with asyncio.timeout(timeout_s):
                response = await fut
        finally:
            self._pending.discard(fut)
        first = response[0] if isinstance(response, list) else response
        if first.get("Response") == "Error":
            raise AmiError(f"{fields.get('Action')} failed: {first.get('Message', 'no reason')}")
        return response

    async def originate(
        self,
        *,
        channel: str,
        context: str,
        exten: str,
        call_id: str,
        priority: int = 1,
        variables: Mapping[str, str] | None = None,
        caller_id: str | None = None,
        timeout_ms: int = 30_000,
    ) -> None:
        """Asks Asterisk to place a call; returns once it is queued.

        The call's course (ringing, answer, failure) arrives in
        :meth:`call_events` for ``call_id``, which becomes the channel's
        Uniqueid and Linkedid; the OriginateResponse is delivered there too.
        """
        manager = self._require()
        fields: dict[str, Any] = {
            "Action": "Originate",
            "Channel": channel,
            "Context": context,
            "Exten": exten,
            "Priority": str(priority),
            "ChannelId": call_id,
            "Timeout": str(timeout_ms),
            "Async": "true",
            "Variable": [f"{k}={v}" for k, v in (variables or {}).items()],
        }
        if caller_id:
            fields["CallerID"] = caller_id
        action = _Originate(fields)
        done = manager.send_action(action)
        done.add_done_callback(lambda fut: self._originate_done(call_id, fut))
        async with asyncio.timeout(10):
            first = await action.accepted
        if first.get("Response") == "Error":
            raise AmiError(f"Originate refused: {first.get('Message', 'no reason')}")

    def _originate_done(self, call_id: str, fut: asyncio.Future[Any]) -> None:
        if fut.cancelled() or fut.exception() is not None:
            return
        result = fut.result()
        for message in result if isinstance(result, list) else [result]:
            if message.get("Event") == "OriginateResponse":
                fields = dict(message)
                fields.setdefault("Uniqueid", call_id)
                fields["ChannelId"] = call_id
                self._route(AmiEvent("OriginateResponse", fields, time.monotonic()))

    async def hangup(self, channel: str, cause: int = 16) -> None:
        await self.action({"Action": "Hangup", "Channel": channel, "Cause": str(cause)})

    async def redirect(self, channel: str, context: str, exten: str, priority: int = 1) -> None:
        await self.action(
            {
                "Action": "Redirect",
                "Channel": channel,
                "Context": context,
                "Exten": exten,
                "Priority": str(priority),
            }
        )

    async def message_send(
        self, destination: str, from_: str, body: str, variables: Mapping[str, str] | None = None
    ) -> None:
        """Sends a text message (SIP MESSAGE with PJSIP).

        ``destination`` like ``pjsip:trunk/sip:+15551230001@host:port``; the body
        goes base64-encoded, so any text survives the AMI's line format.
        """
        fields: dict[str, Any] = {
            "Action": "MessageSend",
            "Destination": destination,
            "From": from_,
            "Base64Body": base64.b64encode(body.encode()).decode(),
        }
        if variables:
            fields["Variable"] = [f"{k}={v}" for k, v in variables.items()]
        await self.action(fields)

    async def getvar(self, channel: str, name: str) -> str:
        response = await self.action({"Action": "Getvar", "Channel": channel, "Variable": name})
        return str(response.get("Value", ""))

    async def setvar(self, channel: str, name: str, value: str) -> None:
        await self.action(
            {"Action": "Setvar", "Channel": channel, "Variable": name, "Value": value}
        )

    async def command(self, cli: str) -> list[str]:
        """Runs a CLI command (needs the AMI ``command`` right); returns its output lines."""
        response = await self.action({"Action": "Command", "Command": cli})
        output = response.get("Output", [])
        return list(output) if isinstance(output, list) else str(output).splitlines()


def _event_name(message: Any) -> str:
    try:
        return str(message.get("Event", ""))
    except AttributeError:
        return ""
