"""A seeded synthetic history for `ledger demo`: the identity situations Amplitude documents.

People browse anonymously, sign up, log in on several devices (their anonymous amplitude
IDs get merged), share devices with and without a proper logout-and-reset (never merged),
get user properties from the app (`$identify` events) and from a nightly CRM sync (Identify
API calls), have their clients retry requests (repeated insert_ids), and a few broken
integrations send blocked or too-short IDs. One scripted person, the worked example, goes
through the interesting cases on purpose.

Everything comes from one `random.Random(seed)` and plain dicts, so a seed always yields
the same calls. Calls are produced person by person but sent in arrival order; to keep
memory flat for any `--calls`, a large history is generated again for each window of days
and only that window's calls are kept and sorted (the same seed gives the same calls in
every pass, so the result is exactly what one pass holding everything would give).
"""

from __future__ import annotations

import bisect
import functools
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

DAY = 86_400_000
HOUR = 3_600_000
MINUTE = 60_000
START_MS = 1_709_510_400_000  # 2024-03-04 00:00 UTC
SPAN_DAYS = 28
REQUEST_SIZE = 1000
#: Arrivals held in memory at once; a history larger than this is generated in windows of days.
WINDOW_ARRIVALS = 100_000
DEFAULT_CALLS = 100_000
DEFAULT_SEED = 20240304

EXAMPLE_USER_ID = "ada@example.com"
HOUSEMATE_USER_ID = "grace@example.com"
EXAMPLE_STORY = (
    f"{EXAMPLE_USER_ID} browsed anonymously on a laptop, then signed up there; browsed anonymously on a phone "
    "before logging in there (that phone's amplitude ID was merged into hers, and the phone retried a request); "
    f"and logged in on a family tablet after {HOUSEMATE_USER_ID} without a reset (no merge: two people)."
)

_PAGES = ("/", "/pricing", "/docs", "/blog", "/features", "/changelog")
_ANONYMOUS = (
    [("page_viewed", {"page": page}) for page in _PAGES]
    + [("button_clicked", {"button": button}) for button in ("get_started", "watch_demo", "contact_sales")]
    + [("search_performed", {"query": query}) for query in ("sso", "export", "api limits", "cohorts")]
)
_SIGNED_IN = (
    _ANONYMOUS
    + [("project_created", {"template": template}) for template in ("blank", "funnel", "retention")]
    + [("report_viewed", {"report": report}) for report in ("weekly", "funnel", "revenue")]
    + [("invite_sent", {"role": role}) for role in ("viewer", "editor")]
    + [("purchase_completed", {"plan": "pro", "revenue": 49.0})]
)
_PLANS = ("free", "starter", "pro", "enterprise")
_COUNTRIES = ("DE", "FR", "GB", "IN", "JP", "US", "BR")
_BLOCKED_DEVICE_IDS = ("null", "undefined", "00000000-0000-0000-0000-000000000000", "{}")
_BLOCKED_USER_IDS = ("anonymous", "none", "nil", "0", "-1")
_SHORT_DEVICE_IDS = ("dev1", "abc", "x")
_SHORT_USER_IDS = ("42", "None", "u1")


@dataclass(frozen=True)
class Request:
    """One request as a server would receive it: events, or Identify API objects."""

    identify: bool
    calls: list[dict[str, Any]]


Arrival = tuple[int, Any]  # (arrival ms, an event dict or a list of Identify API objects)


class History:
    """`calls` calls from `people` people; `requests` streams them in arrival order, afresh each time."""

    def __init__(self, calls: int, people: int, arrivals: Callable[[], Iterator[Arrival]]) -> None:
        self.calls = calls
        self.people = people
        self._arrivals = arrivals

    @property
    def requests(self) -> Iterator[Request]:
        return _requests(self._arrivals(), self.calls)


class _Builder:
    """Collects calls stamped with their arrival time, person by person; keeps those `keep` accepts."""

    def __init__(self, rng: random.Random, keep: Any) -> None:
        self.rng = rng
        self.keep = keep
        self.arrivals: list[Arrival] = []
        self.per_day: dict[int, int] = {}  # arrivals per day since START_MS, kept or not
        self.signups: list[tuple[int, str]] = []
        self.people = 0
        self.events = 0
        self._users = 0

    def arrive(self, time: int, item: Any) -> None:
        day = (time - START_MS) // DAY
        self.per_day[day] = self.per_day.get(day, 0) + 1
        if self.keep(time):
            self.arrivals.append((time, item))

    def uuid(self) -> str:
        h = f"{self.rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"

    def user_id(self) -> str:
        self._users += 1
        return f"user-{self._users:06d}"

    def track(self, device: str, user: str | None, time: int, event_type: str,
              properties: dict[str, Any] | None = None) -> dict[str, Any]:
        event: dict[str, Any] = {"event_type": event_type, "device_id": device, "time": time, "insert_id": self.uuid()}
        if user is not None:
            event["user_id"] = user
        if properties:
            event["event_properties"] = properties
        self.arrive(time, event)
        self.events += 1
        return event

    def identify(self, device: str, user: str, time: int, user_properties: dict[str, Any]) -> None:
        """The SDK's identify: a `$identify` event carrying user property operations."""
        event = {"event_type": "$identify", "device_id": device, "user_id": user, "time": time,
                 "insert_id": self.uuid(), "user_properties": user_properties}
        self.arrive(time, event)
        self.events += 1

    def sign_up(self, device: str, user: str, time: int) -> None:
        self.identify(device, user, time, {
            "$set": {"plan": "free", "country": self.rng.choice(_COUNTRIES)},
            "$setOnce": {"signed_up_day": (time - START_MS) // DAY},
        })
        self.signups.append((time, user))

    def session(self, device: str, user: str | None, time: int, length: int) -> int:
        """A burst of events; sometimes the client retries its last request. Returns the end time."""
        catalog = _SIGNED_IN if user is not None else _ANONYMOUS
        sent = []
        for _ in range(length):
            time += self.rng.randint(5_000, 120_000)
            sent.append(self.track(device, user, time, *self.rng.choice(catalog)))
        if self.rng.random() < 0.03:
            self.retry(sent[-self.rng.randint(1, 5):], time + self.rng.randint(1_000, 60_000))
        return time

    def retry(self, events: list[dict[str, Any]], time: int) -> None:
        """The client got no acknowledgement and sends the same events (same insert_ids) again."""
        for event in events:
            self.arrive(time, event)
        self.events += len(events)

    def later(self, time: int) -> int:
        return time + self.rng.randint(2 * HOUR, 4 * DAY)


def _visitor(b: _Builder, time: int) -> None:
    """Browses anonymously and never signs up."""
    device = b.uuid()
    for _ in range(b.rng.randint(1, 3)):
        time = b.later(b.session(device, None, time, b.rng.randint(2, 8)))


def _member(b: _Builder, time: int, device: str | None = None, user: str | None = None) -> tuple[str, str, int]:
    """Browses anonymously, signs up on the same device, keeps coming back logged in."""
    device = device or b.uuid()
    user = user or b.user_id()
    time = b.session(device, None, time, b.rng.randint(1, 6))
    b.sign_up(device, user, time + MINUTE)
    for _ in range(b.rng.randint(2, 5)):
        time = b.session(device, user, b.later(time), b.rng.randint(3, 10))
    return device, user, time


def _sign_up(b: _Builder, time: int) -> None:
    """A member on one device."""
    _member(b, time)


def _multi_device(b: _Builder, time: int) -> None:
    """A member who later uses a phone (anonymously first, then logged in) and maybe a tablet."""
    _, user, time = _member(b, time)
    phone = b.uuid()
    time = b.session(phone, None, b.later(time), b.rng.randint(1, 4))
    time = b.session(phone, user, time, b.rng.randint(3, 8))  # logging in merges the phone's anonymous ID
    if b.rng.random() < 0.4:
        b.session(b.uuid(), user, b.later(time), b.rng.randint(2, 6))  # logged in from the first event


def _household(b: _Builder, time: int) -> None:
    """Two people on one device. With a reset the second gets a fresh device ID; without, the same one."""
    device, _, time = _member(b, time)
    b.people += 1
    if b.rng.random() < 0.5:
        device = b.uuid()  # proper logout-and-reset: the SDK regenerates the device ID
    _member(b, b.later(time), device=device)


def _broken_client(b: _Builder, time: int, kind: int | None = None) -> None:
    """A misconfigured integration: blocked IDs and too-short IDs."""
    kind = b.rng.randrange(4) if kind is None else kind
    device, user = b.uuid(), None
    if kind == 0:
        device = b.rng.choice(_BLOCKED_DEVICE_IDS)
    elif kind == 1:
        user = b.rng.choice(_BLOCKED_USER_IDS)
    elif kind == 2:
        device = b.rng.choice(_SHORT_DEVICE_IDS)  # nothing left after the length rule: rejected
    else:
        user = b.rng.choice(_SHORT_USER_IDS)  # the user ID is dropped, the event stays anonymous
    for _ in range(b.rng.randint(1, 4)):
        time += b.rng.randint(5_000, 60_000)
        b.track(device, user, time, *b.rng.choice(_ANONYMOUS))


_PERSONAS: tuple[tuple[float, Callable[[_Builder, int], None]], ...] = (
    (0.45, _visitor),
    (0.75, _sign_up),
    (0.92, _multi_device),
    (0.995, _household),
    (1.0, _broken_client),
)


def _worked_example(b: _Builder) -> None:
    """The scripted person the demo shows: every case in one life."""
    laptop, phone, tablet = b.uuid(), b.uuid(), b.uuid()
    ada, grace = EXAMPLE_USER_ID, HOUSEMATE_USER_ID

    def at(day: int, hour: int, minute: int) -> int:
        return START_MS + day * DAY + hour * HOUR + minute * MINUTE

    b.track(laptop, None, at(1, 9, 0), "page_viewed", {"page": "/"})
    b.track(laptop, None, at(1, 9, 2), "page_viewed", {"page": "/pricing"})
    b.identify(laptop, ada, at(1, 9, 5), {"$set": {"plan": "free", "country": "GB"}, "$setOnce": {"signed_up_day": 1}})
    b.track(laptop, ada, at(1, 9, 6), "project_created", {"template": "funnel"})
    b.track(phone, None, at(2, 8, 0), "page_viewed", {"page": "/docs"})
    b.track(phone, ada, at(2, 8, 3), "report_viewed", {"report": "funnel"})  # merges the phone's anonymous ID
    b.retry([b.track(phone, ada, at(2, 8, 4), "invite_sent", {"role": "editor"})], at(2, 8, 5))
    b.track(tablet, None, at(3, 19, 0), "page_viewed", {"page": "/"})
    b.identify(tablet, grace, at(3, 19, 2), {"$set": {"plan": "free", "country": "GB"}})
    b.track(tablet, grace, at(3, 19, 3), "project_created", {"template": "blank"})
    b.track(tablet, ada, at(3, 21, 0), "report_viewed", {"report": "weekly"})  # no reset: Grace stays separate
    b.track(tablet, None, at(3, 21, 30), "page_viewed", {"page": "/blog"})  # logged out: goes to Ada, the last user
    b.identify(laptop, ada, at(4, 10, 0), {"$set": {"plan": "pro"}, "$add": {"seats": 3}})
    b.track(laptop, ada, at(4, 10, 1), "purchase_completed", {"plan": "pro", "revenue": 49.0})
    b.people += 2  # not in `signups`: the CRM sync leaves the example's story alone


def _crm_syncs(b: _Builder) -> None:
    """Every night the CRM pushes plan changes for some members through the Identify API."""
    b.signups.sort()
    for day in range(1, SPAN_DAYS + 1):
        time = START_MS + day * DAY + 2 * HOUR
        known = bisect.bisect_left(b.signups, (time, ""))
        if known < 20:
            continue
        picked = b.rng.sample(b.signups[:known], min(known // 20, 150))
        b.arrive(time, [
            {"user_id": user, "time": time,
             "user_properties": {"$set": {"plan": b.rng.choice(_PLANS)}, "$add": {"crm_syncs": 1}}}
            for _, user in picked
        ])


def _in_days(low: int, high: int, time: int) -> bool:
    return low <= (time - START_MS) // DAY < high


def generate(calls: int = DEFAULT_CALLS, seed: int = DEFAULT_SEED) -> History:
    """Exactly `calls` calls in arrival order (the latest arrivals beyond that are cut off)."""
    first = _build(calls, seed, _UpTo(WINDOW_ARRIVALS))
    if first.keep.overflowed is False:  # small enough: one pass held it all
        kept = _sorted(first.arrivals)
        return History(calls, first.people, lambda: iter(kept))
    windows = _windows(first.per_day)

    def arrivals() -> Iterator[Arrival]:
        for low, high in windows:
            window = _build(calls, seed, functools.partial(_in_days, low, high))
            yield from _sorted(window.arrivals)

    return History(calls, first.people, arrivals)


class _UpTo:
    """Keeps the first `limit` arrivals; past that, keeps none (the pass then only counts)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.seen = 0
        self.overflowed = False

    def __call__(self, _: int) -> bool:
        self.seen += 1
        self.overflowed = self.overflowed or self.seen > self.limit
        return not self.overflowed


def _build(calls: int, seed: int, keep: Callable[[int], bool]) -> _Builder:
    """One generation pass over the whole history, keeping the arrivals `keep` accepts."""
    b = _Builder(random.Random(seed), keep)
    _worked_example(b)
    for kind in range(4):  # every kind of broken integration shows up, whatever the size
        _broken_client(b, START_MS + DAY + kind * HOUR, kind)
    while b.events < calls:
        b.people += 1
        pick = b.rng.random()
        persona = next(make for share, make in _PERSONAS if pick < share)
        persona(b, START_MS + b.rng.randrange(SPAN_DAYS * DAY))
    _crm_syncs(b)
    return b


def _sorted(arrivals: list[Arrival]) -> list[Arrival]:
    arrivals.sort(key=lambda arrival: arrival[0])  # stable: equal times keep generation order
    return arrivals


def _windows(per_day: dict[int, int]) -> list[tuple[int, int]]:
    """Consecutive days grouped into [low, high) windows of at most WINDOW_ARRIVALS arrivals (or one day)."""
    windows: list[tuple[int, int]] = []
    start, held = min(per_day), 0
    for day in range(min(per_day), max(per_day) + 1):
        count = per_day.get(day, 0)
        if held and held + count > WINDOW_ARRIVALS:
            windows.append((start, day))
            start, held = day, 0
        held += count
    windows.append((start, max(per_day) + 1))
    return windows


def _requests(arrivals: Iterator[Arrival], limit: int) -> Iterator[Request]:
    """Group calls into requests in arrival order; an Identify API batch is a request of its own."""
    pending: list[dict[str, Any]] = []
    total = 0
    for _, item in arrivals:
        if total >= limit:
            break
        if isinstance(item, list):
            if pending:
                yield Request(False, pending)
                pending = []
            item = item[: limit - total]
            yield Request(True, item)
            total += len(item)
            continue
        pending.append(item)
        total += 1
        if len(pending) == REQUEST_SIZE:
            yield Request(False, pending)
            pending = []
    if pending:
        yield Request(False, pending)
