"""The HTTP adapter's tests: one uvicorn server per session, a fresh ledger behind it per test."""

from __future__ import annotations

import pytest

from ledger import IdentityLedger
from tests.helpers import event
from tests.server_helpers import http, query, shared_server, url

__all__ = ["http", "merged", "query", "shared_server", "url"]


@pytest.fixture
def merged(lg: IdentityLedger) -> IdentityLedger:
    """Documented case 5 (docs/rules.md): Y/David, Z/-, Z/David, Z/- gives 1, 2, 1, 1 and merges 2 into 1."""
    for device_id, user_id in [("device-Y", "user-David"), ("device-Z", None), ("device-Z", "user-David"),
                               ("device-Z", None)]:
        lg.ingest([event(device_id, user_id)])
    return lg
