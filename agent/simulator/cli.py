"""Commands that place calls through the customer simulator."""

from __future__ import annotations

from typing import Any


def add_commands(sub: Any) -> None:
    del sub
