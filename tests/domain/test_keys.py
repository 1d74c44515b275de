"""Stored keys are a public format: the ledger's own HMAC must give the standard one's bytes."""

from __future__ import annotations

import hashlib
import hmac
from uuid import UUID

from hypothesis import given
from hypothesis import strategies as st

from ledger.domain.keys import SECRET_BYTES, HmacSha256, Keys


@given(key=st.binary(max_size=200), message=st.binary(max_size=300))
def test_the_precomputed_mac_is_rfc_2104_hmac_sha256(key: bytes, message: bytes) -> None:
    # Keys longer than SHA-256's 64-byte block are hashed first; the strategy reaches past it.
    assert HmacSha256(key).digest(message) == hmac.digest(key, message, "sha256")


@given(secret=st.binary(min_size=SECRET_BYTES, max_size=SECRET_BYTES), device_id=st.text(max_size=40),
       insert_id=st.text(max_size=40))
def test_keyed_ledgers_derive_the_keys_they_always_did(secret: bytes, device_id: str, insert_id: str) -> None:
    """The derivation written since erasure came, spelled out with the standard library."""
    keys = Keys(secret)

    def mac(text: str) -> bytes:
        return hmac.digest(secret, text.encode("utf-8", "surrogatepass"), "sha256")

    assert keys.device(device_id) == UUID(bytes=mac("device:" + device_id)[:16])
    assert keys.user(device_id) == UUID(bytes=mac("user:" + device_id)[:16])
    assert keys.receipt(device_id, insert_id) == mac(f"receipt:{len(device_id)}:{device_id}{insert_id}")[:16]
    assert keys.check() == hmac.digest(secret, b"identity-ledger key check v1", hashlib.sha256).hex()
