"""Human output: aligned tables, readable UTC times, and one person at a glance.

Everything here turns answers into text; nothing here decides anything about identities.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from ledger.domain.times import format_ms
from projections.models import AuditEntry, Correction, Identity, Merge, TimelineEvent

_NUMBER = re.compile(r"^-?[\d,]+(\.\d+)?$")
_NARROWEST = 8  # a text column is never cut narrower than this


def count(value: int) -> str:
    """A count with thousands separators (IDs are printed plain, never through this)."""
    return f"{value:,}"


def when(ms: int) -> str:
    """Milliseconds since the epoch as a UTC time to the second."""
    return format_ms(ms, "%Y-%m-%d %H:%M:%S")


def compact(value: Any) -> str:
    """A property object on one line."""
    return msgspec.json.encode(value).decode()


def table(rows: Iterable[Sequence[Any]], headers: Sequence[str] | None = None, width: int | None = None,
          cuttable: Sequence[str] = ()) -> str:
    """Columns padded to their widest cell; numeric columns right-aligned so digits line up.

    With `width`, the widest of the `cuttable` columns (named by header; every text column
    of a table without headers) are narrowed until each line fits, long cells cut with "…".
    """
    body = [["" if cell is None else str(cell) for cell in row] for row in rows]
    lines = ([list(headers)] if headers else []) + body
    if not lines:
        return ""
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    numeric = [all(_NUMBER.match(row[i]) or not row[i] for row in body) and any(row[i] for row in body)
               for i in range(len(widths))]
    if width is not None:
        may_cut = [not right and (not headers or headers[i] in cuttable) for i, right in enumerate(numeric)]
        widths = _narrowed(widths, may_cut, width)
        lines = [[_cut(cell, size) for cell, size in zip(line, widths, strict=True)] for line in lines]

    def fmt(line: list[str]) -> str:
        cells = [cell.rjust(width) if right else cell.ljust(width)
                 for cell, width, right in zip(line, widths, numeric, strict=True)]
        return "  ".join(cells).rstrip()

    out = [fmt(line) for line in lines]
    if headers:
        out.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(out)


def _narrowed(widths: list[int], may_cut: list[bool], width: int) -> list[int]:
    """Column widths whose table fits `width`: the widest cuttable column loses a character at a time."""
    widths = list(widths)
    while sum(widths) + 2 * (len(widths) - 1) > width:
        text = [i for i, cut in enumerate(may_cut) if cut and widths[i] > _NARROWEST]
        if not text:
            break
        widest = max(text, key=lambda i: widths[i])
        widths[widest] -= 1
    return widths


def _cut(cell: str, size: int) -> str:
    return cell if len(cell) <= size else cell[: size - 1] + "…"


def identity_table(identity: Identity) -> str:
    """Who one person is: live amplitude ID, user ID, devices, merged IDs, user properties, and any
    groups and user mappings (left out while empty, so most people's table is unchanged)."""
    rows: list[tuple[str, Any]] = [
        ("amplitude ID", identity.amplitude_id),
        ("user ID", identity.user_id or "(anonymous)"),
    ]
    rows += _listed("devices", identity.device_ids)
    rows += _listed("merged amplitude IDs", [str(merged) for merged in identity.merged_amplitude_ids])
    rows += _listed("user properties", [f"{key} = {compact(value)}" for key, value in identity.user_properties.items()])
    if identity.groups:
        rows += _listed("groups", [f"{group_type}: {name}" for group_type, names in identity.groups.items()
                                   for name in names])
    if identity.global_user_id is not None:
        rows.append(("mapped onto", identity.global_user_id))
    if identity.mapped_user_ids:
        rows += _listed("mapped here", identity.mapped_user_ids)
    return table(rows)


def _listed(label: str, values: list[str]) -> list[tuple[str, Any]]:
    if not values:
        return [(label, "-")]
    return [(label if index == 0 else "", value) for index, value in enumerate(values)]


_FACTS = {
    "created": "created",
    "bound": "user ID bound",
    "linked": "device linked",
    "pointer_moved": "pointer moved",
    "retracted": "user ID retracted",
    "retired": "amplitude ID retired",
}
#: Facts naming another amplitude ID (in `merged_amplitude_id`), by kind.
_RELATED = {
    "merged": "merged into {}",
    "merge_undone": "merge into {} undone",
    "split": "split off from {}",
    "rebound": "user ID moved from {}",
}


def fact(entry: AuditEntry) -> str:
    """An audit entry's kind in the words of docs/rules.md."""
    if entry.kind in _RELATED:
        text = _RELATED[entry.kind].format(entry.merged_amplitude_id)
    else:
        text = _FACTS.get(entry.kind, entry.kind)
    if entry.kind == "retracted" and entry.requester is not None:
        text += f" by {entry.requester}: {entry.reason}"
    return text if entry.correction is None else f"{text} (correction of {entry.correction!r})"


def audit_table(entries: Sequence[AuditEntry], width: int | None = None) -> str:
    return table(
        ((e.position, when(e.event_time), fact(e), e.amplitude_id, e.device_id, e.user_id or "", e.insert_id or "")
         for e in entries),
        ("position", "event time (UTC)", "fact", "amplitude ID", "device ID", "user ID", "insert ID"),
        width, ("device ID", "insert ID"),
    )


def merges_table(merges: Sequence[Merge]) -> str:
    """The merged-users table; a column for when a correction undid a merge, if one did."""
    undone = any(merge.undone_server_time is not None for merge in merges)
    return table(
        ((m.amplitude_id, m.merged_amplitude_id, when(m.merge_event_time), when(m.merge_server_time),
          *([when(m.undone_server_time) if m.undone_server_time is not None else ""] if undone else []))
         for m in merges),
        ("amplitude_id", "merged_amplitude_id", "merge_event_time (UTC)", "merge_server_time (UTC)",
         *(["undone (UTC)"] if undone else [])),
    )


def correction_text(correction: Correction) -> str:
    """What one correction did, in a few aligned lines."""
    changes = correction.changes
    split = "; ".join(f"{old} -> {', '.join(map(str, new)) or '(no events)'}" for old, new in changes.split.items())
    moved = "; ".join(f"{user_id!r}: {old} -> {new}" for user_id, (old, new) in changes.bindings_moved.items())
    undone = ", ".join(f"{merged} from {live}" for merged, live in changes.merges_undone.items())
    return (f"Retracted user ID {correction.user_id!r} at position {correction.position} "
            f"({when(correction.server_time)} UTC), asked by {correction.requester}: {correction.reason}\n" + table([
                ("calls re-resolved", count(changes.calls)),
                ("people before -> after", f"{count(changes.people_before)} -> {count(changes.people_after)}"),
                ("amplitude IDs split", split or "(none)"),
                ("events re-attributed", count(changes.events_reattributed)),
                ("merges undone", undone or "(none)"),
                ("user IDs re-bound", moved or "(none)"),
                ("device pointers moved", count(changes.pointers_moved)),
            ]))


def corrections_table(corrections: Sequence[Correction], width: int | None = None) -> str:
    return table(
        ((c.position, when(c.server_time), c.user_id, c.requester, c.changes.people_before, c.changes.people_after,
          c.changes.events_reattributed, c.reason) for c in corrections),
        ("position", "time (UTC)", "user ID", "requester", "people before", "after", "events moved", "reason"),
        width, ("user ID", "requester", "reason"),
    )


def timeline_table(events: Sequence[TimelineEvent], width: int | None = None) -> str:
    """Events with the amplitude ID they arrived with, and the live one if a merge moved them."""
    return table(
        ((e.position, when(e.time), e.event_type, _amplitude_ids(e), e.device_id, e.user_id or "",
          compact(e.event_properties) if e.event_properties else "")
         for e in events),
        ("position", "event time (UTC)", "event type", "amplitude ID", "device ID", "user ID", "event properties"),
        width, ("device ID", "event properties"),
    )


def _amplitude_ids(event: TimelineEvent) -> str:
    if event.original_amplitude_id == event.amplitude_id:
        return str(event.amplitude_id)
    return f"{event.original_amplitude_id} -> {event.amplitude_id}"


def person(identity: Identity, audit: Sequence[AuditEntry], latest: Sequence[TimelineEvent], total_events: int,
           width: int | None = None) -> str:
    """`ledger show`: identity, audit trail and latest events as three titled sections (within `width`)."""
    sections = [
        identity_table(identity),
        f"Audit trail ({len(audit)} facts)\n{audit_table(audit, width) or '(none)'}",
        f"Latest events ({len(latest)} of {count(total_events)})\n{timeline_table(latest, width) or '(none)'}",
    ]
    return "\n\n".join(sections)
