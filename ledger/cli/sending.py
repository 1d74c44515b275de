"""Sending calls the way a careful Amplitude client does.

The ledger refuses a whole request when one call in it is bad, and lists the bad
indices per field. Like the official SDKs, the sender drops exactly those calls,
reports each with where it came from and why, and resends the rest; with `strict`
it keeps only the calls before the first bad one and stops there.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ledger.errors import INVALID_FIELDS, INVALID_ID_LENGTHS, MISSING_FIELDS, InvalidRequest
from ledger.ledger import IngestReport

#: Sends one request of calls to the ledger (`IdentityLedger.ingest` or `.identify`).
Submit = Callable[[list[dict[str, Any]]], IngestReport]
#: A call to send, with where it came from ("events.jsonl:12").
Located = tuple[str, dict[str, Any]]

#: How each kind of bad event in a refusal reads to a person.
_REASONS = {
    INVALID_FIELDS: "invalid {field}{value}",
    MISSING_FIELDS: "missing {field}",
    INVALID_ID_LENGTHS: "{field}{value} shorter than min_id_length",
}
_SHOWN_VALUE = 40


@dataclass(frozen=True)
class Problem:
    """A call or line worth reporting (not stored, or stored with a warning): where it came from, and why."""

    where: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


@dataclass
class Tally:
    """What a run of requests did, summed over all of them."""

    requests: int = 0
    rejected_requests: int = 0
    ingested: int = 0
    duplicates: int = 0
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)


class Sender:
    """Sends requests and keeps the tally; `stopped` turns true when strict mode meets a problem."""

    def __init__(self, *, strict: bool = False) -> None:
        self.strict = strict
        self.stopped = False
        self.tally = Tally()

    def problem(self, where: str, reason: str) -> None:
        """Record a call (or line) that was not stored."""
        self.tally.problems.append(Problem(where, reason))
        if self.strict:
            self.stopped = True

    def send(self, submit: Submit, calls: list[Located]) -> None:
        """Send one request; if it is refused, drop the calls it names and resend the rest."""
        first_attempt = True
        while calls:
            self.tally.requests += 1
            try:
                report = submit([call for _, call in calls])
            except InvalidRequest as error:
                if first_attempt:
                    self.tally.rejected_requests += 1
                first_attempt = False
                calls = self._drop_rejected(error, calls)
                continue
            self._count(report, calls)
            return

    def _drop_rejected(self, error: InvalidRequest, calls: list[Located]) -> list[Located]:
        """The calls still worth sending after a refusal, each dropped one reported."""
        reasons = rejected_calls(error, [call for _, call in calls])
        if not reasons:  # refused as a whole, no call named: nothing can be resent
            for where, _ in calls:
                self.problem(where, str(error))
            return []
        if self.strict:
            first_bad = min(reasons)
            self.problem(calls[first_bad][0], reasons[first_bad])
            return calls[:first_bad]
        for index in sorted(reasons):
            self.problem(calls[index][0], reasons[index])
        return [call for index, call in enumerate(calls) if index not in reasons]

    def _count(self, report: IngestReport, calls: list[Located]) -> None:
        self.tally.ingested += report.ingested
        self.tally.duplicates += report.duplicates
        for warning in report.warnings:
            self.tally.warnings.append(Problem(calls[warning.index][0], warning.message))


def rejected_calls(error: InvalidRequest, calls: list[dict[str, Any]]) -> dict[int, str]:
    """The refusal's bad indices, each with a readable reason naming the offending values."""
    reasons: dict[int, list[str]] = defaultdict(list)
    for key, fields in error.bad_event_indices().items():
        template = _REASONS[key]
        for name, indices in fields.items():
            for index in indices:
                if 0 <= index < len(calls):
                    reasons[index].append(_reason(template, name, calls[index]))
    return {index: ", ".join(found) for index, found in reasons.items()}


def _reason(template: str, name: str, call: dict[str, Any]) -> str:
    value = call.get(name) if isinstance(call, dict) else None
    shown = f" {value!r}" if isinstance(value, str) and len(value) <= _SHOWN_VALUE else ""
    return template.format(field=name, value=shown)
