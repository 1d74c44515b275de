"""A one-line progress bar on stderr: count (or bytes of input), percent, rate and time left.

It draws only when stderr is a terminal, so pipes, logs and tests see clean output.
"""

from __future__ import annotations

import shutil
import sys
import time
from typing import TextIO

REDRAW_SECONDS = 0.1


class ProgressBar:
    """Shows `done` of `total` (or a running count when the total is unknown)."""

    def __init__(self, label: str, unit: str, total: int | None = None, *,
                 stream: TextIO | None = None, enabled: bool | None = None) -> None:
        self.label = label
        self.unit = unit
        self.total = total
        self.done = 0
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self._started = time.perf_counter()
        self._drawn_at = 0.0
        self._shown = False

    def update(self, done: int, total: int | None = None) -> None:
        self.done = done
        if total is not None:
            self.total = total
        now = time.perf_counter()
        if self.enabled and now - self._drawn_at >= REDRAW_SECONDS:
            self._drawn_at = now
            self._draw(now - self._started)

    def line(self, elapsed: float) -> str:
        """The text of the bar after `elapsed` seconds (without terminal control codes)."""
        rate = self.done / elapsed if elapsed > 0 else 0.0
        speed = f"{self._amount(rate)}/s"
        if not self.total:
            return f"{self.label} {self._amount(self.done)}  {speed}"
        share = min(self.done / self.total, 1.0)
        eta = (self.total - self.done) / rate if rate > 0 else 0.0
        filled = int(share * 24)
        done, total = (f"{self.done / 1e6:,.1f}", f"{self.total / 1e6:,.1f} MB") if self.unit == "bytes" else \
            (f"{self.done:,}", f"{self.total:,} {self.unit}")
        return (f"{self.label} [{'#' * filled}{'.' * (24 - filled)}] {done}/{total}"
                f"  {share:4.0%}  {speed}  ETA {_duration(eta)}")

    def _amount(self, value: float) -> str:
        """A count in the bar's unit; bytes are shown in MB."""
        return f"{value / 1e6:,.1f} MB" if self.unit == "bytes" else f"{value:,.0f} {self.unit}"

    def _draw(self, elapsed: float) -> None:
        width = shutil.get_terminal_size((100, 20)).columns - 1
        self.stream.write("\r" + self.line(elapsed)[:width].ljust(width))
        self.stream.flush()
        self._shown = True

    def _clear(self) -> None:
        if self._shown:
            self.stream.write("\r\033[K")
            self._shown = False

    def write(self, message: str) -> None:
        """Print a message line without tearing the bar."""
        self._clear()
        print(message, file=self.stream)
        self._drawn_at = 0.0

    def close(self) -> None:
        """Draw the final state once, then leave the line to the next output."""
        if self.enabled:
            self._draw(time.perf_counter() - self._started)
            self.stream.write("\n")
            self.stream.flush()
            self._shown = False

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"
