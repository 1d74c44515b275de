"""One unit of work's receipts: those stored for its calls (fetched once, in bulk) and those it adds.

A receipt is (device ID, insert_id) -> server time of the last stored call, kept under a key made
with the ledger's secret; it is how a retried call within the dedup window is known.
"""

from __future__ import annotations

from ledger.domain.calls import Call
from ledger.domain.groups import group_identify_sender
from ledger.domain.keys import Keys
from ledger.store.aggregate_cache import AggregateCache
from ledger.store.writer import COPY_FROM, RECEIPTS, Conflict, Transaction


class Receipts:
    """The receipts a unit of work reads and the ones it stores with its events."""

    def __init__(self, keys: Keys) -> None:
        self._receipt = keys.receipt
        self._stored: dict[bytes, int] = {}
        self._received: dict[bytes, int] = {}
        self._keys: dict[tuple[str, str], bytes] = {}

    def prefetch(self, calls: list[Call], cache: AggregateCache) -> None:
        """Fetch the stored receipts of these calls (their devices are already in `cache`).

        A device the store does not hold has no receipts: its calls were never stored (a
        concurrent writer storing one would also create the device, and our commit would conflict).
        A `$groupidentify` call creates no device: its receipts, under a name of their own, are asked for.
        """
        keys = self._keys
        receipt = self._receipt
        for call in calls:
            if call.insert_id is None:
                continue
            if call.is_group_identify:
                sender = group_identify_sender(call.device_id)
                keys[sender, call.insert_id] = receipt(sender, call.insert_id)
            elif cache.get(("device", call.device_id)) is not None:
                keys[call.device_id, call.insert_id] = receipt(call.device_id, call.insert_id)
        self._stored = cache.log.receipts(set(keys.values()))

    def _key(self, device_id: str, insert_id: str) -> bytes:
        """A call's receipt key: asked twice per call (`last_received`, `append`), an HMAC made once."""
        key = self._keys.get((device_id, insert_id))
        if key is None:
            key = self._keys[device_id, insert_id] = self._receipt(device_id, insert_id)
        return key

    def last_received(self, device_id: str, insert_id: str) -> int | None:
        key = self._key(device_id, insert_id)
        received = self._received.get(key)
        return self._stored.get(key) if received is None else received

    def receive(self, device_id: str, insert_id: str, server_time: int) -> None:
        self._received[self._key(device_id, insert_id)] = server_time

    def store(self, tx: Transaction) -> None:
        """New keys are inserted (a concurrent writer's insert makes ours conflict); expired ones renewed."""
        fresh = [(key, time) for key, time in self._received.items() if key not in self._stored]
        if tx.copy is not None and len(fresh) >= COPY_FROM:
            tx.copy(RECEIPTS, ("key", "server_time"), fresh)
        else:
            tx.executemany(f"INSERT INTO {RECEIPTS} (key, server_time) VALUES (?, ?)", fresh)
        for key, time in self._received.items():
            if key in self._stored:
                tx.execute(f"UPDATE {RECEIPTS} SET server_time = ? WHERE key = ? AND server_time = ?",
                           (time, key, self._stored[key]))
                if tx.changed() != 1:
                    raise Conflict("a receipt changed meanwhile")

    def discard(self) -> None:
        """Forget the receipts not stored."""
        self._received.clear()
