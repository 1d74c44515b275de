"""The seeded workload: one stream of Amplitude HTTP V2 events that every measurement shares.

The mix follows the issue (mostly anonymous traffic on known devices, plus new
devices, identifies, sign-ins, merges, shared devices and ~1% duplicates). New
devices arrive at a fixed share of calls, so the events per device, and with it
the cost per call, do not depend on how many calls are generated: a slice of the
stream is representative of the whole. The stream is produced lazily, so a
1M-event run never holds all of it in memory.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

#: Share of calls per kind; the rest are anonymous tracks on known devices (~70%).
MIX = {
    "new_device": 0.08,
    "signed_in_track": 0.06,
    "identify": 0.05,
    "sign_in_new_user": 0.04,
    "merge": 0.03,
    "shared_device": 0.02,
    "duplicate": 0.01,
}
#: A mature product's traffic: at most ~8% of calls change identity state (new devices, sign-ins,
#: merges, property updates); the rest are tracked events on known devices and users.
STEADY_MIX = {
    "new_device": 0.03,
    "signed_in_track": 0.10,
    "identify": 0.02,
    "sign_in_new_user": 0.015,
    "merge": 0.01,
    "shared_device": 0.005,
    "duplicate": 0.01,
}
MIXES = {"default": MIX, "steady": STEADY_MIX}
EVENT_TYPES = ("page_view", "button_click", "search", "add_to_cart", "checkout", "video_play",
               "share", "scroll", "form_submit", "purchase")
PLANS = ("free", "pro", "team", "enterprise")
START_MS = 1_700_000_000_000
DEFAULT_SEED = 20240601

Event = dict[str, Any]


class Workload:
    """A deterministic event stream: the same seed always yields the same events."""

    def __init__(self, seed: int = DEFAULT_SEED, mix: dict[str, float] = MIX) -> None:
        self._rng = random.Random(seed)
        self._devices: list[str] = []
        self._owner: dict[str, str | None] = {}  # device -> user last signed in on it
        self._anonymous: list[str] = []  # devices never signed in (checked lazily)
        self._users: list[tuple[str, str]] = []  # (user ID, its first device)
        self._recent: deque[Event] = deque(maxlen=1000)
        self._clock = START_MS
        thresholds, total = [], 0.0
        for kind, share in mix.items():
            total += share
            thresholds.append((total, kind))
        self._thresholds = thresholds

    def events(self, count: int) -> Iterator[Event]:
        """The next `count` events of the stream."""
        for _ in range(count):
            yield self._next()

    def _next(self) -> Event:
        self._clock += self._rng.randrange(1, 50)
        roll = self._rng.random()
        kind = next((name for limit, name in self._thresholds if roll < limit), "anonymous_track")
        if not self._devices:
            kind = "new_device"
        if kind == "duplicate" and self._recent:
            return dict(self._rng.choice(self._recent))
        event = getattr(self, "_" + kind, self._anonymous_track)()
        self._recent.append(event)
        return event

    # -- ids and payloads -------------------------------------------------------------

    def _uuid(self) -> str:
        value = f"{self._rng.getrandbits(128):032x}"
        return f"{value[:8]}-{value[8:12]}-4{value[13:16]}-a{value[17:20]}-{value[20:]}"

    def _track(self, device_id: str, user_id: str | None = None) -> Event:
        event: Event = {
            "event_type": self._rng.choice(EVENT_TYPES),
            "device_id": device_id,
            "time": self._clock,
            "insert_id": self._uuid(),
            "event_properties": {"page": f"/p/{self._rng.randrange(500)}",
                                 "duration_ms": self._rng.randrange(10_000)},
        }
        if user_id is not None:
            event["user_id"] = user_id
        return event

    def _new_user(self, device_id: str) -> str:
        user_id = f"user-{len(self._users):08d}"
        self._users.append((user_id, device_id))
        return user_id

    def _sign_in(self, device_id: str, user_id: str) -> Event:
        self._owner[device_id] = user_id
        return self._track(device_id, user_id)

    # -- the call kinds -----------------------------------------------------------------

    def _new_device(self) -> Event:
        device_id = self._uuid()
        self._devices.append(device_id)
        self._owner[device_id] = None
        self._anonymous.append(device_id)
        return self._track(device_id)

    def _anonymous_track(self) -> Event:
        return self._track(self._rng.choice(self._devices))

    def _signed_in_track(self) -> Event:
        if not self._users:
            return self._anonymous_track()
        user_id, device_id = self._rng.choice(self._users)
        return self._track(device_id, user_id)

    def _identify(self) -> Event:
        device_id = self._rng.choice(self._devices)
        event: Event = {
            "event_type": "$identify",
            "device_id": device_id,
            "time": self._clock,
            "insert_id": self._uuid(),
            "user_properties": {"$set": {"plan": self._rng.choice(PLANS)},
                                "$add": {"logins": 1}},
        }
        if self._owner[device_id] is not None:
            event["user_id"] = self._owner[device_id]
        return event

    def _take_anonymous_device(self) -> str | None:
        """A device never signed in, or None when there is none left."""
        anonymous = self._anonymous
        while anonymous:
            index = self._rng.randrange(len(anonymous))
            anonymous[index], anonymous[-1] = anonymous[-1], anonymous[index]
            device_id = anonymous.pop()
            if self._owner[device_id] is None:
                return device_id
        return None

    def _sign_in_new_user(self) -> Event:
        device_id = self._take_anonymous_device() or self._new_device()["device_id"]
        return self._sign_in(device_id, self._new_user(device_id))

    def _merge(self) -> Event:
        """A known user signs in on a device that was anonymous: Amplitude merges the two."""
        if not self._users:
            return self._sign_in_new_user()
        device_id = self._take_anonymous_device() or self._new_device()["device_id"]
        return self._sign_in(device_id, self._rng.choice(self._users)[0])

    def _shared_device(self) -> Event:
        """A second person signs in on a device someone else already used: no merge."""
        if not self._users:
            return self._sign_in_new_user()
        _, device_id = self._rng.choice(self._users)
        if self._rng.random() < 0.5:
            return self._sign_in(device_id, self._new_user(device_id))
        return self._sign_in(device_id, self._rng.choice(self._users)[0])


def requests(events: Iterable[Event], size: int) -> Iterator[list[Event]]:
    """Cut a stream of events into requests of `size` events (the last one may be shorter)."""
    batch: list[Event] = []
    for event in events:
        batch.append(event)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
