"""Progress on long work, for the command line."""

from __future__ import annotations

import sys
import time


class ProgressBar:
    """A progress bar on stderr (a line per 10 % when stderr is not a terminal)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.tty = sys.stderr.isatty()
        self.shown = -1
        self.started = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        pct = int(100 * done / total) if total else 100
        if self.tty:
            filled = pct // 4
            sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (25 - filled)}] {pct:3d} %")
            if done >= total:
                sys.stderr.write(f" ({time.monotonic() - self.started:.1f} s)\n")
        elif pct // 10 != self.shown // 10 or done >= total:
            sys.stderr.write(f"{self.label}: {pct} %\n")
        self.shown = pct
        sys.stderr.flush()
