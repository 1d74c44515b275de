"""The request contract: Amplitude HTTP V2 events in, validated calls out.

The wire shape is declared once as msgspec Structs and checked at decode time; the
rules msgspec cannot express (blocked IDs, `min_id_length`, nesting depth) follow
The order docs/rules.md gives: blocked IDs first, then the length rule, then "an ID must remain".
One bad event fails the whole request with every bad index listed per field.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import defaultdict
from collections.abc import Iterable
from typing import Annotated, Any

import msgspec

from ledger.domain.groups import GROUP_IDENTIFY, Groups, group_operations, groups_problem, normalise_groups
from ledger.domain.properties import MAX_INT, MIN_INT, Operations, normalise_operations, operations_problem
from ledger.errors import INVALID_FIELDS, INVALID_ID_LENGTHS, MISSING_FIELDS, InvalidRequest

MAX_EVENTS = 2000
MAX_STRING = 1024
MAX_DEPTH = 40
DEFAULT_MIN_ID_LENGTH = 5
IDENTIFY = "$identify"
MAX_TIME_MS = 253402300799999  # 9999-12-31T23:59:59.999Z

BLOCKED_IDS = frozenset(
    {
        "anonymous",
        "nil",
        "none",
        "null",
        "n/a",
        "na",
        "undefined",
        "unknown",
        '""',
        "00000000-0000-0000-0000-000000000000",
        "{}",
        "lmy47d",
        "0",
        "-1",
    }
)
_PLACEHOLDER_IDS = frozenset(value.lower() for value in BLOCKED_IDS)

Text = Annotated[str, msgspec.Meta(max_length=MAX_STRING)]
Millis = Annotated[int, msgspec.Meta(ge=0, le=MAX_TIME_MS)]


class EventIn(msgspec.Struct, kw_only=True):
    """One Amplitude HTTP V2 event: the fields the ledger uses (others are ignored)."""

    event_type: Text | None = None
    user_id: Text | None = None
    device_id: Text | None = None
    time: Millis | None = None
    insert_id: Text | None = None
    event_properties: dict[str, Any] | None = None
    user_properties: dict[str, Any] | None = None
    groups: Any = None
    group_properties: Any = None


class Call(msgspec.Struct, frozen=True, kw_only=True):
    """One validated track or identify call, IDs normalised, ready for resolution."""

    device_id: str
    user_id: str | None
    event_type: str
    time: int
    insert_id: str | None
    event_properties: dict[str, Any]
    operations: Operations
    #: The groups the call names (its person is a member of each from this call on).
    groups: Groups = {}
    #: A `$groupidentify` call's operations on the properties of the groups it names.
    group_operations: Operations = {}

    @property
    def is_identify(self) -> bool:
        return self.event_type == IDENTIFY

    @property
    def is_group_identify(self) -> bool:
        return self.event_type == GROUP_IDENTIFY


class IngestWarning(msgspec.Struct, frozen=True):
    """A call that was stored but looks wrong (e.g. a placeholder ID), by its index in the request."""

    index: int
    message: str

    def __str__(self) -> str:
        return f"event {self.index}: {self.message}"


class Accepted(msgspec.Struct, frozen=True):
    """A request's calls after validation, with the warnings worth telling the sender."""

    calls: list[Call]
    warnings: list[IngestWarning]


_FIELD_AT = re.compile(r"at `\$\.(\w+)")


def device_id_for_user(user_id: str) -> str:
    """Amplitude's documented rule: a call with only a user ID gets a device ID hashed from it."""
    return hashlib.sha256(user_id.encode()).hexdigest()[:32]


_INT_RANGE = range(MIN_INT, MAX_INT + 1)  # signed 64-bit: what every store and SQL column can hold
#: PostgreSQL text cannot hold U+0000, so no string the ledger stores may contain it, on any backend.
NUL = "\x00"
_STRING_FIELDS = ("event_type", "user_id", "device_id", "insert_id")
_ID_FIELDS = ("user_id", "device_id")


def _storable(value: Any, depth: int) -> bool:
    """Whether a property value keeps the contract: strings up to 1024 characters without NUL,
    objects and lists up to 40 deep, string keys, signed 64-bit integers and finite floats.
    Hot: every event's properties go through it, so scalars are checked inline rather than
    by a call each.
    """
    kind = type(value)
    if kind is str:
        return len(value) <= MAX_STRING and NUL not in value
    if kind is int:
        return value in _INT_RANGE
    if kind is float:
        return math.isfinite(value)
    if value is None or kind is bool:
        return True
    if kind is dict:
        if depth > MAX_DEPTH:
            return False
        for key, item in value.items():
            if type(key) is not str or len(key) > MAX_STRING or NUL in key:
                return False
            if type(item) is str:
                if len(item) > MAX_STRING or NUL in item:
                    return False
            elif not _storable(item, depth + 1):
                return False
        return True
    if kind is list:
        return depth <= MAX_DEPTH and all(_storable(item, depth + 1) for item in value)
    return False


def storable(value: Any) -> bool:
    """Whether a value (properties) keeps the contract of `_storable`."""
    return _storable(value, 1)


def _decode(event: Any) -> EventIn:
    if isinstance(event, msgspec.Raw):
        return msgspec.json.decode(event, type=EventIn)
    return msgspec.convert(event, EventIn)


class _Problems:
    """Collects bad event indices per field, in Amplitude's three reply keys."""

    def __init__(self) -> None:
        self.invalid: dict[str, list[int]] = defaultdict(list)
        self.missing: dict[str, list[int]] = defaultdict(list)
        self.id_lengths: dict[str, list[int]] = defaultdict(list)

    def raise_if_any(self) -> None:
        if not (self.invalid or self.missing or self.id_lengths):
            return
        raise InvalidRequest.bad_events(
            {INVALID_FIELDS: self.invalid, MISSING_FIELDS: self.missing, INVALID_ID_LENGTHS: self.id_lengths}
        )


def check_min_id_length(value: Any) -> int:
    """The per-request `min_id_length` option: a small non-negative integer."""
    if value is None:
        return DEFAULT_MIN_ID_LENGTH
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_STRING:
        raise InvalidRequest(
            400, {"code": 400, "error": "Invalid options: min_id_length must be an integer from 0 to 1024"}
        )
    return value


def accept(
    events: Iterable[Any],
    *,
    server_time: int,
    min_id_length: int | None = DEFAULT_MIN_ID_LENGTH,
    identify: bool = False,
) -> Accepted:
    """Validate a whole request and turn it into calls, or raise InvalidRequest.

    `identify=True` reads every item as an Identify API object (no event_type needed).
    """
    min_id_length = check_min_id_length(min_id_length)
    events = list(events)
    if len(events) > MAX_EVENTS:
        raise InvalidRequest.payload_too_large()
    problems = _Problems()
    calls: list[Call] = []
    warnings: list[IngestWarning] = []
    for index, raw in enumerate(events):
        call = _accept_one(index, raw, server_time, min_id_length, identify, problems, warnings)
        if call is not None:
            calls.append(call)
    problems.raise_if_any()
    return Accepted(calls, warnings)


def _accept_one(
    index: int,
    raw: Any,
    server_time: int,
    min_id_length: int,
    identify: bool,
    problems: _Problems,
    warnings: list[IngestWarning],
) -> Call | None:
    try:
        event = _decode(raw)
    except msgspec.ValidationError as error:
        found = _FIELD_AT.search(str(error))
        problems.invalid[found.group(1) if found else "event"].append(index)
        return None
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        # Not JSON, not UTF-8, or nested past what the decoder will follow.
        problems.invalid["event"].append(index)
        return None

    bad = False
    for field in _STRING_FIELDS:
        value = getattr(event, field)
        if value is not None and (NUL in value or (field in _ID_FIELDS and value in BLOCKED_IDS)):
            problems.invalid[field].append(index)
            bad = True
    for field in ("event_properties", "user_properties"):
        value = getattr(event, field)
        if value is not None and not _storable(value, 1):
            problems.invalid[field].append(index)
            bad = True
    operations: Operations = {}
    if event.user_properties and not (bad and index in problems.invalid.get("user_properties", ())):
        try:
            operations = normalise_operations(event.user_properties)
            problem = operations_problem(operations)
        except ValueError:
            problem = "malformed"
        if problem is not None:
            problems.invalid["user_properties"].append(index)
            bad = True
    event_type = IDENTIFY if identify else event.event_type
    groups: Groups | None = {}
    operations_of_groups: Operations | None = {}
    if event.groups is not None or event_type == GROUP_IDENTIFY:  # most events name no group
        groups, operations_of_groups = _group_fields(index, event, event_type, problems)
        bad = bad or groups is None or operations_of_groups is None
    if not event_type:
        problems.missing["event_type"].append(index)
        bad = True
    if event.user_id is None and event.device_id is None:
        problems.missing["user_id"].append(index)
        problems.missing["device_id"].append(index)
        return None
    if bad:
        return None

    user_id = event.user_id if event.user_id is None or len(event.user_id) >= min_id_length else None
    device_id = event.device_id if event.device_id is None or len(event.device_id) >= min_id_length else None
    if user_id is None and device_id is None:
        # Every ID it had was too short: the event is left with none.
        for field in ("user_id", "device_id"):
            if getattr(event, field) is not None:
                problems.id_lengths[field].append(index)
        return None
    for field, value in (("user_id", user_id), ("device_id", device_id)):
        if value is not None and value.lower() in _PLACEHOLDER_IDS:
            warnings.append(IngestWarning(
                index, f"{field} {value!r} looks like a placeholder; everyone who sends it is grouped as one person"
            ))
    assert event_type is not None
    return Call(
        device_id=device_id if device_id is not None else device_id_for_user(user_id or ""),
        user_id=user_id,
        event_type=event_type,
        time=event.time if event.time is not None else server_time,
        insert_id=event.insert_id,
        event_properties=event.event_properties or {},
        operations=operations,
        groups=groups or {},
        group_operations=operations_of_groups or {},
    )


def _group_fields(index: int, event: EventIn, event_type: str | None,
                  problems: _Problems) -> tuple[Groups | None, Operations | None]:
    """The event's groups and, on a `$groupidentify` event, its group property operations;
    None for a field that is bad (its index is then listed under that field)."""
    groups: Groups | None = {}
    if event.groups is not None:
        if groups_problem(event.groups) is None:
            groups = normalise_groups(event.groups)
        else:
            problems.invalid["groups"].append(index)
            groups = None
    operations: Operations | None = {}
    if event_type == GROUP_IDENTIFY:
        if not event.groups:
            problems.missing["groups"].append(index)
            groups = None
        try:
            if event.group_properties is not None and not _storable(event.group_properties, 1):
                raise ValueError("not storable")
            operations = group_operations(event.group_properties if event.group_properties is not None else {})
        except ValueError:
            problems.invalid["group_properties"].append(index)
            operations = None
    return groups, operations
