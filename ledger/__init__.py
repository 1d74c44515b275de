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
    DeletionRefused,
    InvalidRequest,
    KeyFileMissing,
    LedgerError,
    LedgerKeyError,
    LedgerNotFound,
    OutsideTheLedger,
    WrongKeyFile,
)
from ledger.ledger import IdentityLedger, IngestReport, JobRun, LedgerView
from projections.models import AuditEntry, Correction, CorrectionChanges, Identity, Merge, Stats, TimelineEvent

__all__ = [
    "AuditEntry",
    "ConflictRetriesExhausted",
    "Correction",
    "CorrectionChanges",
    "CorrectionRefused",
    "DatabaseUnavailable",
    "DeletionRefused",
    "Identity",
    "IdentityLedger",
    "IngestReport",
    "IngestWarning",
    "InvalidRequest",
    "JobRun",
    "KeyFileMissing",
    "LedgerError",
    "LedgerKeyError",
    "LedgerNotFound",
    "LedgerView",
    "Merge",
    "OutsideTheLedger",
    "Stats",
    "TimelineEvent",
    "WrongKeyFile",
]
