"""Errors that reach the user: each carries a plain sentence that says what to do."""

from __future__ import annotations

from dataclasses import dataclass


class CartlineError(Exception):
    """Base class of the errors Cartline reports to its user without a traceback."""


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong in a configuration file, located by its YAML path."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ConfigError(CartlineError):
    """The configuration cannot be used; ``problems`` lists every reason found."""

    def __init__(self, source: str, problems: list[ConfigProblem]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s) in the configuration:\n{lines}")


class AsteriskError(CartlineError):
    """Asterisk could not be installed, configured, started or reached."""
