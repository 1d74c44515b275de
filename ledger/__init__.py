"""An event-sourced identity ledger that resolves track and identify calls the way Amplitude does."""

from ledger.calls import IngestWarning
from ledger.errors import (
    ConflictRetriesExhausted,
    DatabaseUnavailable,
    InvalidRequest,
    LedgerError,
    LedgerNotFound,
)
from ledger.ledger import IdentityLedger, IngestReport, LedgerView
from projections.models import AuditEntry, Identity, Merge, TimelineEvent

__all__ = [
    "AuditEntry",
    "ConflictRetriesExhausted",
    "DatabaseUnavailable",
    "IdentityLedger",
    "Identity",
    "IngestReport",
    "IngestWarning",
    "InvalidRequest",
    "LedgerError",
    "LedgerNotFound",
    "LedgerView",
    "Merge",
    "TimelineEvent",
]
