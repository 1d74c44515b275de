"""An event-sourced identity ledger that resolves track and identify calls the way Amplitude does.

Imports point one way: `ledger` (the write side and the application service) uses
`projections` (the read side), which never imports `ledger`.
"""

from __future__ import annotations

from ledger.domain.calls import IngestWarning
from ledger.errors import (
    ConflictRetriesExhausted,
    CorrectionRefused,
    DatabaseUnavailable,
    InvalidRequest,
    LedgerError,
    LedgerNotFound,
)
from ledger.ledger import IdentityLedger, IngestReport, LedgerView
from projections.models import AuditEntry, Correction, CorrectionChanges, Identity, Merge, Stats, TimelineEvent

__all__ = [
    "AuditEntry",
    "ConflictRetriesExhausted",
    "Correction",
    "CorrectionChanges",
    "CorrectionRefused",
    "DatabaseUnavailable",
    "Identity",
    "IdentityLedger",
    "IngestReport",
    "IngestWarning",
    "InvalidRequest",
    "LedgerError",
    "LedgerNotFound",
    "LedgerView",
    "Merge",
    "Stats",
    "TimelineEvent",
]
