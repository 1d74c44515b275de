"""The ledger's typed errors. Each maps to exactly one Amplitude-shaped HTTP reply."""

from __future__ import annotations

from typing import Any


class LedgerError(Exception):
    """Base of every error the ledger raises on purpose."""


class InvalidRequest(LedgerError):
    """A request the ledger refuses as a whole; nothing of it is stored.

    `status` is the HTTP status (400 or 413) and `body` the JSON reply Amplitude
    would give, so adapters never re-derive it.
    """

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body.get("error", "invalid request"))
        self.status = status
        self.body = body

    @classmethod
    def missing_field(cls, field: str) -> InvalidRequest:
        return cls(400, {"code": 400, "error": "Request missing required field", "missing_field": field})

    @classmethod
    def payload_too_large(cls) -> InvalidRequest:
        return cls(413, {"code": 413, "error": "Payload too large"})

    @classmethod
    def bad_body(cls, error: str = "Invalid JSON request body") -> InvalidRequest:
        return cls(400, {"code": 400, "error": error})

    @classmethod
    def invalid_api_key(cls, key: str) -> InvalidRequest:
        return cls(400, {"code": 400, "error": f"Invalid API key: {key}"})


class LedgerNotFound(LedgerError):
    """Opened with `create=False` where no ledger was ever written."""


class DatabaseUnavailable(LedgerError):
    """The database named by the URL could not be opened (down, refused, no permission...)."""


class ConflictRetriesExhausted(LedgerError):
    """Other writers kept winning the race for the same aggregates; the request was not stored."""


class BufferUnavailable(LedgerError):
    """The buffered deployment's log (NATS JetStream) did not take the request: nothing was stored."""
