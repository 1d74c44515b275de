"""How a device ID, a user ID or a duplicate key becomes a stored key: keyed, or 0.1.0's plain hash.

Stored keys must not reveal IDs: with `uuid5(namespace, "user:" + user_id)` anyone holding
the database could hash a guessed email and find its rows. A ledger created since erasure
was added derives its keys with HMAC-SHA256 under a 32-byte secret of its own, kept outside
the database (`ledger.store.key_file`); after a person is forgotten nothing links their IDs
to any row. Ledgers written before keep their unkeyed keys (`Keys(None)`), so they still open.
Pure computation: the secret is handed in, never read here.
"""

from __future__ import annotations

import hashlib
from uuid import UUID, uuid5

#: 0.1.0's namespace for uuid5 keys (unkeyed ledgers).
NAMESPACE = UUID("6f1e0c55-3c1a-4b8e-9a57-1d2f0e7a9b31")
SECRET_BYTES = 32
#: The message whose MAC, stored in the database, tells whether a key file is this ledger's.
_CHECK = b"identity-ledger key check v1"


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _receipt_text(device_id: str, insert_id: str) -> bytes:
    """(device ID, insert_id), length-prefixed so that no two pairs meet."""
    return _utf8(f"{len(device_id)}:{device_id}{insert_id}")


class HmacSha256:
    """HMAC-SHA256 under one fixed key (RFC 2104), its two padded key blocks hashed once.

    Every stored event costs one or two MACs; `hmac.digest` rehashes both key blocks each
    time, and on OpenSSL 3 fetches the digest anew: twice the cost of copying the states.
    """

    __slots__ = ("_inner", "_outer")
    _BLOCK = 64

    def __init__(self, key: bytes) -> None:
        if len(key) > self._BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(self._BLOCK, b"\0")
        self._inner = hashlib.sha256(bytes(byte ^ 0x36 for byte in key))
        self._outer = hashlib.sha256(bytes(byte ^ 0x5C for byte in key))

    def digest(self, message: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


class Keys:
    """The key derivation of one ledger: keyed by `secret`, or 0.1.0's unkeyed one when None."""

    __slots__ = ("_mac", "secret")

    def __init__(self, secret: bytes | None) -> None:
        if secret is not None and len(secret) != SECRET_BYTES:
            raise ValueError(f"a ledger secret is {SECRET_BYTES} bytes")
        self.secret = secret
        self._mac = None if secret is None else HmacSha256(secret)

    @property
    def keyed(self) -> bool:
        return self.secret is not None

    def _uuid(self, text: str) -> UUID:
        if self._mac is None:
            return uuid5(NAMESPACE, text)
        return UUID(bytes=self._mac.digest(_utf8(text))[:16])

    def device(self, device_id: str) -> UUID:
        return self._uuid("device:" + device_id)

    def user(self, user_id: str) -> UUID:
        return self._uuid("user:" + user_id)

    def mapping(self, user_id: str) -> UUID:
        """The stored ID of a user ID's mapping stream (`ledger.domain.mappings`)."""
        return self._uuid("mapping:" + user_id)

    def receipt(self, device_id: str, insert_id: str) -> bytes:
        """The duplicate key (device ID, insert_id) as 16 bytes."""
        text = _receipt_text(device_id, insert_id)
        if self._mac is None:
            return hashlib.blake2b(text, digest_size=16).digest()
        return self._mac.digest(b"receipt:" + text)[:16]

    def check(self) -> str:
        """A value that tells whether a secret is this one, and reveals nothing of it."""
        if self._mac is None:
            raise ValueError("an unkeyed ledger has no check value")
        return self._mac.digest(_CHECK).hex()


UNKEYED = Keys(None)
