"""Small measuring tools: a timed run, repeated runs summarised by their median, percentiles, RSS.

The machine is shared and noisy, so every figure is the median of repeated runs,
and comparisons are ratios of medians measured in the same invocation.
"""

from __future__ import annotations

import resource
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Run:
    """One timed run: how many items it processed in how many seconds of measured work."""

    items: int
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.items / self.seconds if self.seconds > 0 else 0.0


@dataclass
class Series:
    """Repeated runs of one measurement; the median rate is the figure we report."""

    name: str
    note: str = ""
    runs: list[Run] = field(default_factory=list)

    def add(self, run: Run) -> Run:
        self.runs.append(run)
        return run

    @property
    def median(self) -> float:
        return statistics.median(run.rate for run in self.runs) if self.runs else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "median_per_s": round(self.median, 1),
            "runs_per_s": [round(run.rate, 1) for run in self.runs],
            "items": self.runs[-1].items if self.runs else 0,
            "note": self.note,
            **(self.runs[-1].extra if self.runs else {}),
        }


def ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MiB.

    Linux's VmHWM belongs to this program alone; `ru_maxrss` would also count the RSS
    of the parent at the moment it forked us (the kernel carries it across exec).
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
