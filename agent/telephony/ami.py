"""A typed AMI client over panoramisk: originate, follow and control calls.

panoramisk speaks the protocol and reconnects by itself. This wrapper adds what a
call server needs on top: a login that fails loudly, an originate that returns
once Asterisk has queued the call (not when it is answered), one bounded event
stream per call (fed first from a short history, so events that arrived in the
same read are never missed), noise filtered out, and word to every call in
progress when the connection drops.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from agent.telephony.ami_events import (
    CALL_ID_KEYS,
    LOST_EVENT,
    NOISE,
    AmiEvent,
    CallEvents,
    NoiseFilter,
    is_noise,
)
from agent.telephony.ami_protocol import (
    AmiError,
    AmiLoginError,
    ClosableManager,
    OriginateAction,
    check_lines,
    event_name,
    message_fields,
    variable_lines,
)

log = logging.getLogger(__name__)


__all__ = [
    "CALL_ID_KEYS",
    "LOST_EVENT",
    "NOISE",
    "Ami",
    "AmiError",
    "AmiEvent",
    "AmiLoginError",
    "CallEvents",
    "NoiseFilter",
    "is_noise",
]


class Ami:
    """An AMI connection for a call server. Create and use it inside the running loop.

    ``noise`` decides which events never reach streams, listeners or history
    (``None`` keeps everything). ``clock`` stamps ``AmiEvent.received_at``.
    """

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
        stream_size: int = 1000,
        noise: NoiseFilter | None = is_noise,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._host, self._port = host, port
        self._username, self._secret = username, secret
        self._ping_delay_s = ping_delay_s
        self._reconnect_s = reconnect_s
        self._stream_size = stream_size
        self._noise = noise
        self._clock = clock
        self._manager: ClosableManager | None = None
        self._history: collections.deque[AmiEvent] = collections.deque(maxlen=history)
        self._streams: dict[str, list[CallEvents]] = {}
        self._waiters: list[tuple[Callable[[AmiEvent], bool], asyncio.Future[AmiEvent]]] = []
        self._listeners: list[Callable[[AmiEvent], None]] = []
        self._connected = asyncio.Event()
        self._inflight: set[asyncio.Future[Any]] = set()
        # By id: panoramisk's actions are mappings, which do not hash.
        self._originating: dict[int, OriginateAction] = {}
        self._closing = False
        self._lost = False
        self._shutdown_seen = False
        self.reconnects = 0

    # -- connection -----------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Logged in now (False from a connection loss until the next login)."""
        return self._connected.is_set()

    async def connect(self, timeout_s: float = 10.0) -> None:
        """Connects and logs in; raises AmiLoginError or AmiError saying why not."""
        where = f"{self._host}:{self._port}"
        self._closing = False
        manager = self._manager = ClosableManager(
            host=self._host,
            port=self._port,
            username=self._username,
            secret=self._secret,
            reconnect_s=self._reconnect_s,
            ping_s=self._ping_delay_s,
            loop=asyncio.get_running_loop(),
            on_login=self._on_login,
            on_disconnect=self._on_disconnect,
        )
        # A plain function: panoramisk calls it inside its read, in wire order.
        manager.register_event("*", self._on_event)
        try:
            async with asyncio.timeout(timeout_s):
                # Shielded: cancelling panoramisk's own futures breaks its callbacks.
                await asyncio.shield(manager.connect())
                # connect() only waits for TCP; the login is a future of its own.
                login = manager.authenticated_future
                if login is None:
                    raise AmiError(f"cannot log in to the AMI at {where}")
                response = await asyncio.shield(login)
                if not response.success:
                    raise AmiLoginError(
                        f"the AMI at {where} refused user {self._username!r}: "
                        "check the AMI username and secret"
                    )
                await self._connected.wait()
        except TimeoutError:  # before OSError, of which it is a subclass
            await self.close()
            raise AmiError(f"no AMI login at {where} within {timeout_s:g} s") from None
        except OSError as exc:
            await self.close()
            reason = exc.strerror or type(exc).__name__
            raise AmiError(f"cannot connect to the AMI at {where}: {reason}") from None
        except AmiError:
            await self.close()
            raise

    async def close(self) -> None:
        """Logs off for good: no reconnecting; open streams end, pending actions fail."""
        self._closing = True
        manager, self._manager = self._manager, None
        if manager is not None:
            manager.closing = True
            manager.close()
        self._connected.clear()
        self._fail_inflight(AmiError("the AMI client was closed"))
        for stream in _iter_streams(self._streams):
            stream._end()
        self._streams.clear()

    async def wait_connected(self, timeout_s: float) -> None:
        """Waits until logged in (again); TimeoutError after ``timeout_s``."""
        async with asyncio.timeout(timeout_s):
            await self._connected.wait()

    def _on_login(self, manager: Any) -> None:
        if manager is not self._manager:
            return
        self._connected.set()
        if self._lost:
            self.reconnects += 1
            log.info("AMI reconnected")
        self._lost = False
        self._shutdown_seen = False

    def _on_disconnect(self, manager: Any, exc: Any) -> None:
        if manager is not self._manager or self._closing:
            return
        was_up = self._connected.is_set()
        self._connected.clear()
        self._fail_inflight(AmiError("the AMI connection was lost"))
        if not was_up:
            # A reconnect attempt that failed: the loss was already reported.
            return
        self._lost = True
        shutdown = self._shutdown_seen or event_name(exc) == "Shutdown"
        log.warning(
            "AMI connection lost; reconnecting (%s)",
            "Asterisk shut down" if shutdown else "the connection dropped",
        )
        lost = AmiEvent(
            LOST_EVENT,
            {
                "Shutdown": "yes" if shutdown else "no",
                "Reason": "asterisk restarted" if shutdown else "AMI connection lost",
            },
            self._clock(),
        )
        for stream in _iter_streams(self._streams):
            stream._put(lost)
        self._notify_listeners(lost)

    def _fail_inflight(self, error: AmiError) -> None:
        # A future left pending would make panoramisk send its action again
        # after the reconnect; a second Originate is a second phone call.
        for fut in list(self._inflight):
            if not fut.done():
                fut.set_exception(error)
        for action in list(self._originating.values()):
            if not action.accepted.done():
                action.accepted.set_exception(error)
            action.future.cancel()
        self._originating.clear()

    # -- events -------------------------------------------------------------------------

    def _on_event(self, manager: Any, message: Any) -> None:
        if manager is self._manager:
            self._route(
                AmiEvent(str(message.get("Event", "")), message_fields(message), self._clock())
            )

    def _route(self, event: AmiEvent) -> None:
        if event.name == "Shutdown":
            self._shutdown_seen = True
        if self._noise is not None and self._noise(event.name, event.fields):
            return
        self._history.append(event)
        self._notify_listeners(event)
        for predicate, fut in list(self._waiters):
            if fut.done():
                continue
            try:
                if predicate(event):
                    fut.set_result(event)
            except Exception as exc:  # the waiter's bug, not the connection's
                fut.set_exception(exc)
        for call_id in event.call_ids:
            for stream in self._streams.get(call_id, ()):
                stream._put(event)

    def _notify_listeners(self, event: AmiEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                # Runs inside panoramisk's read: an exception there drops the connection.
                log.exception("AMI event listener failed on %s", event.name)

    def add_listener(self, listener: Callable[[AmiEvent], None]) -> None:
        """Calls ``listener`` with every event that is not noise. It must be quick."""
        self._listeners.append(listener)

    def call_events(self, call_id: str) -> CallEvents:
        """Subscribes to one call's events, starting with those already received.

        An event belongs to the call when its Uniqueid, Linkedid, DestUniqueid,
        DestLinkedid or CallId (the dialplan's UserEvents) is ``call_id``.
        """
        stream = CallEvents(self, call_id, self._stream_size)
        for event in self._history:
            if call_id in event.call_ids:
                stream._put(event)
        if self._closing:
            stream._end()
        else:
            self._streams.setdefault(call_id, []).append(stream)
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
        """The first event that matches: from the history when ``past``, else to come.

        Raises TimeoutError after ``timeout_s``.
        """
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

    def _require(self) -> ClosableManager:
        if self._manager is None or not self.connected:
            raise AmiError("the AMI is not connected")
        return self._manager

    async def action(self, fields: Mapping[str, str | list[str]], timeout_s: float = 10.0) -> Any:
        """Sends one action; returns panoramisk's response (a list for event lists).

        An Error response, a lost connection or no answer within ``timeout_s``
        raises AmiError.
        """
        name = str(fields.get("Action", "action"))
        # Without an explicit Async key panoramisk mis-reads "successfully queued".
        payload = {"Async": "false", **fields}
        check_lines(payload)
        fut = self._require().send_action(payload)
        self._inflight.add(fut)
        try:
            async with asyncio.timeout(timeout_s):
                response = await fut
        except TimeoutError:
            raise AmiError(f"no answer to {name} within {timeout_s:g} s") from None
        finally:
            self._inflight.discard(fut)
        first = response[0] if isinstance(response, list) else response
        if first.get("Response") == "Error":
            raise AmiError(f"{name} failed: {first.get('Message') or 'no reason given'}")
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
        queue_timeout_s: float = 10.0,
    ) -> None:
        """Asks Asterisk to place a call; returns once the call is queued.

        ``call_id`` becomes the channel's Uniqueid and Linkedid (and the channel
        variable CALL_ID), so the call's course arrives in :meth:`call_events`
        for it, OriginateResponse included. Raises AmiError when Asterisk
        refuses the call or does not queue it within ``queue_timeout_s``.
        """
        manager = self._require()
        fields: dict[str, str | list[str]] = {
            "Action": "Originate",
            "Channel": channel,
            "Context": context,
            "Exten": exten,
            "Priority": str(priority),
            "ChannelId": call_id,
            "Timeout": str(timeout_ms),
            # Explicit, or panoramisk fails on the "queued" response; with it,
            # panoramisk's future waits for the OriginateResponse.
            "Async": "true",
            "Variable": variable_lines({"CALL_ID": call_id, **(variables or {})}),
        }
        if caller_id:
            fields["CallerID"] = caller_id
        check_lines(fields)
        action = OriginateAction(fields, lambda message: self._originate_response(call_id, message))
        self._originating[id(action)] = action
        first: Any = None
        try:
            manager.send_action(action)
            async with asyncio.timeout(queue_timeout_s):
                first = await action.accepted
        except TimeoutError:
            raise AmiError(
                f"Asterisk did not queue the Originate within {queue_timeout_s:g} s"
            ) from None
        finally:
            self._originating.pop(id(action), None)
            if first is None or first.get("Response") == "Error":
                action.future.cancel()
        if first.get("Response") == "Error":
            raise AmiError(f"Asterisk refused the Originate: {first.get('Message') or 'no reason'}")

    def _originate_response(self, call_id: str, message: Any) -> None:
        fields = message_fields(message)
        fields["ChannelId"] = call_id
        if fields.get("Uniqueid", "") in ("", "<null>"):
            fields["Uniqueid"] = call_id
        self._route(AmiEvent("OriginateResponse", fields, self._clock()))

    async def hangup(self, channel: str, cause: int = 16) -> None:
        """Hangs up ``channel`` with a Q.850 cause (16: normal clearing)."""
        await self.action({"Action": "Hangup", "Channel": channel, "Cause": str(cause)})

    async def redirect(self, channel: str, context: str, exten: str, priority: int = 1) -> None:
        """Sends ``channel`` to another place in the dialplan."""
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
        self, to: str, from_: str, body: str, variables: Mapping[str, str] | None = None
    ) -> None:
        """Sends a text message (a SIP MESSAGE with PJSIP).

        ``to`` like ``pjsip:trunk/sip:+15551230001@host:port``. The body goes
        base64-encoded, so any text survives the AMI's line format.
        """
        fields: dict[str, str | list[str]] = {
            "Action": "MessageSend",
            "Destination": to,
            "From": from_,
            "Base64Body": base64.b64encode(body.encode()).decode(),
        }
        if variables:
            fields["Variable"] = variable_lines(variables)
        await self.action(fields)

    async def getvar(self, channel: str, name: str) -> str:
        """A channel variable or function value ("" when unset)."""
        response = await self.action({"Action": "Getvar", "Channel": channel, "Variable": name})
        return str(response.get("Value", ""))

    async def setvar(self, channel: str, name: str, value: str) -> None:
        """Sets a channel variable."""
        await self.action(
            {"Action": "Setvar", "Channel": channel, "Variable": name, "Value": value}
        )

    async def command(self, cli: str) -> list[str]:
        """Runs a CLI command (needs the AMI ``command`` right); returns its output lines."""
        response = await self.action({"Action": "Command", "Command": cli})
        output = response.get("Output", [])
        return (
            [str(line) for line in output] if isinstance(output, list) else str(output).split("\n")
        )


def _iter_streams(streams: Mapping[str, list[CallEvents]]) -> list[CallEvents]:
    return [s for group in streams.values() for s in group]
