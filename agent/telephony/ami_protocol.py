"""The layer under :class:`agent.telephony.ami.Ami`: panoramisk adapted and made safe.

panoramisk's Manager reconnects and parses; here it learns to stop for good when
closed and to keep fractional delays, an Originate learns to say when it was
queued, and values are escaped the way Asterisk parses action headers.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Mapping
from typing import Any

from panoramisk import Manager
from panoramisk.actions import Action

from agent.errors import CartlineError


class AmiError(CartlineError):
    """An AMI action failed, or the AMI cannot be reached."""


class AmiLoginError(AmiError):
    """The AMI refused the username and secret."""


class OriginateAction(Action):  # type: ignore[misc]
    """An Originate that says when Asterisk has queued it, and hands on its OriginateResponse."""

    def __init__(self, fields: Mapping[str, Any], on_response: Callable[[Any], None]) -> None:
        super().__init__(fields)
        self.accepted: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._on_response = on_response

    def add_message(self, message: Any) -> Any:
        if not self.accepted.done():
            self.accepted.set_result(message)
        if str(message.get("Event", "")) == "OriginateResponse":
            # Called from the protocol's read, so the response takes its place
            # among the call's events in wire order.
            self._on_response(message)
        return super().add_message(message)


class ClosableManager(Manager):  # type: ignore[misc]
    """panoramisk's Manager with fractional delays, quiet for good once closed."""

    closing = False

    def __init__(self, *, reconnect_s: float, ping_s: float, **config: Any) -> None:
        super().__init__(**config)
        # panoramisk truncates these to whole seconds; keep the fractions.
        self.reconnect_timeout = reconnect_s
        self.ping_delay = self.ping_interval = ping_s

    def connect(self, *args: Any, **kwargs: Any) -> Any:
        if self.closing:
            return None
        return super().connect(*args, **kwargs)

    def connection_made(self, future: Any) -> None:
        if self.closing:
            # A connect that finished after close(): do not log in on it.
            if not future.cancelled() and future.exception() is None:
                future.result()[0].close()
            return
        super().connection_made(future)

    def ping(self) -> None:
        if not self.closing and self.protocol is not None:
            super().ping()


# Asterisk splits each Variable header at commas and strips quotes and
# backslashes (AST_STANDARD_APP_ARGS), so those are escaped in values.
_VARIABLE_SPECIALS = re.compile(r'([\\",()\[\]])')
_VARIABLE_NAME = re.compile(r"^_{0,2}[A-Za-z][A-Za-z0-9_]*(\([^,=()\r\n]*\))?$")


def variable_lines(values: Mapping[str, str]) -> list[str]:
    lines = []
    for name, value in values.items():
        if not _VARIABLE_NAME.match(name):
            raise AmiError(f"{name!r} is not a channel variable name")
        escaped = _VARIABLE_SPECIALS.sub(r"\\\1", str(value))
        lines.append(f"{name}={escaped}")
    return lines


def check_lines(fields: Mapping[str, str | list[str]]) -> None:
    # A line break would end the header early and let the rest pose as headers.
    for key, value in fields.items():
        for item in value if isinstance(value, list) else [value]:
            if "\r" in item or "\n" in item:
                raise AmiError(f"the {key} of an AMI action cannot contain a line break")


def message_fields(message: Any) -> dict[str, str]:
    fields = {}
    for key, value in message.items():
        if key == "content" and not value:
            continue  # panoramisk's own slot for a response body
        fields[str(key)] = "\n".join(map(str, value)) if isinstance(value, list) else str(value)
    return fields


def event_name(message: Any) -> str:
    getter = getattr(message, "get", None)
    return str(getter("Event", "")) if callable(getter) else ""
