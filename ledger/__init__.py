"""An event-sourced identity ledger that resolves track and identify calls the way Amplitude does.

The public names are loaded on first use, so that the read side (`projections`), which
imports `ledger.domain`, can be imported first without a circular import.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_WHERE = {
    "IngestWarning": "ledger.domain.calls",
    "ConflictRetriesExhausted": "ledger.errors",
    "DatabaseUnavailable": "ledger.errors",
    "InvalidRequest": "ledger.errors",
    "LedgerError": "ledger.errors",
    "LedgerNotFound": "ledger.errors",
    "IdentityLedger": "ledger.ledger",
    "IngestReport": "ledger.ledger",
    "LedgerView": "ledger.ledger",
    "AuditEntry": "projections.models",
    "Identity": "projections.models",
    "Merge": "projections.models",
    "TimelineEvent": "projections.models",
}
__all__ = sorted(_WHERE)

if TYPE_CHECKING:
    from ledger.domain.calls import IngestWarning
    from ledger.errors import ConflictRetriesExhausted, DatabaseUnavailable, InvalidRequest, LedgerError, LedgerNotFound
    from ledger.ledger import IdentityLedger, IngestReport, LedgerView
    from projections.models import AuditEntry, Identity, Merge, TimelineEvent


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'ledger' has no attribute {name!r}")
    return getattr(import_module(_WHERE[name]), name)
