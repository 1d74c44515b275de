"""The ledger's typed errors. Each maps to exactly one Amplitude-shaped HTTP reply."""

from __future__ import annotations

from typing import Any

#: A refusal of some events names them under these keys, each `{field: [event index, ...]}`.
INVALID_FIELDS = "events_with_invalid_fields"
MISSING_FIELDS = "events_with_missing_fields"
INVALID_ID_LENGTHS = "events_with_invalid_id_lengths"
BAD_EVENT_KEYS = (INVALID_FIELDS, MISSING_FIELDS, INVALID_ID_LENGTHS)


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
    def invalid_fields(cls, fields: dict[str, list[int]], error: str) -> InvalidRequest:
        """Amplitude's per-event refusal: `fields` maps a field to the indices of the events at fault."""
        return cls(400, {"code": 400, "error": error, "events_with_invalid_fields": fields})

    @classmethod
    def invalid_api_key(cls, key: str) -> InvalidRequest:
        return cls(400, {"code": 400, "error": f"Invalid API key: {key}"})

    @classmethod
    def bad_events(cls, found: dict[str, dict[str, list[int]]]) -> InvalidRequest:
        """Amplitude's reply naming bad events: the non-empty groups of `found`, in BAD_EVENT_KEYS order."""
        body: dict[str, Any] = {"code": 400, "error": "Invalid field values on some events"}
        for key in BAD_EVENT_KEYS:
            if found.get(key):
                body[key] = dict(found[key])
        return cls(400, body)

    def bad_event_indices(self) -> dict[str, dict[str, list[int]]]:
        """The bad events this refusal names, by reply key then field; empty when it names none."""
        return {key: self.body[key] for key in BAD_EVENT_KEYS if isinstance(self.body.get(key), dict)}

    def renumbered(self, origins: list[int]) -> InvalidRequest:
        """The same refusal with every bad-event index `i` replaced by `origins[i]`."""
        for key, fields in self.bad_event_indices().items():
            self.body[key] = {field: [origins[i] for i in found] for field, found in fields.items()}
        return self


class CrossSiteRequest(InvalidRequest):
    """A state-changing request a browser sent for a page of another site (CSRF): a 403, nothing stored."""

    @classmethod
    def because(cls, reason: str) -> CrossSiteRequest:
        return cls(403, {"code": 403, "error": f"Cross-site request refused: {reason}"})


class ReadAbandoned(LedgerError):
    """A long read stopped because whoever asked for it went away (an HTTP client hung up)."""


class LedgerNotFound(LedgerError):
    """Opened with `create=False` where no ledger was ever written."""


class DatabaseUnavailable(LedgerError):
    """The database named by the URL could not be opened (down, refused, no permission...)."""


class ConflictRetriesExhausted(LedgerError):
    """Other writers kept winning the race for the same aggregates; the request was not stored."""


class LedgerInUse(LedgerError):
    """An operation that needs the ledger to itself (rebuild) found another process writing to it."""


class LedgerFileReplaced(LedgerError):
    """The SQLite file this process opened was deleted or replaced: nothing more can be stored in it.

    Permanent until an operator restarts the process on the right file, so the server answers
    500 (not 503): clients keep the events unacknowledged and send them again later.
    """


class SchemaTooNew(LedgerError):
    """The database was written by a newer release of the ledger; this one cannot use it safely."""


class CannotListen(LedgerError):
    """`ledger serve` could not bind its address (in use, not permitted, no such host); nothing was opened."""

class BufferUnavailable(LedgerError):
    """The buffered deployment's log (NATS JetStream) did not take the request: nothing was stored."""


class LedgerKeyError(LedgerError):
    """The ledger's key file cannot be used; nothing was opened (see docs/privacy.md)."""


class KeyFileMissing(LedgerKeyError):
    """The ledger stores keyed IDs but its key file is not where it should be."""


class WrongKeyFile(LedgerKeyError):
    """The key file found is not the one this ledger was created with (or holds no secret)."""


class DeletionRefused(InvalidRequest):
    """A deletion request, listing or withdrawal the ledger refuses (a 400); nothing was stored."""

    def __str__(self) -> str:
        details = ", ".join(f"{key}={value}" for key, value in self.body.items() if key not in ("code", "error"))
        return f"{self.body['error']} ({details})" if details else str(self.body["error"])

    @classmethod
    def because(cls, error: str, **details: Any) -> DeletionRefused:
        return cls(400, {"code": 400, "error": error, **details})

    @classmethod
    def unknown_ids(cls, amplitude_ids: list[int], user_ids: list[str]) -> DeletionRefused:
        """Amplitude refuses IDs it does not know unless `ignore_invalid_id` is true; the reply names them."""
        return cls.because("Unknown IDs (set ignore_invalid_id to skip them)",
                           invalid_amplitude_ids=amplitude_ids, invalid_user_ids=user_ids)


class CorrectionRefused(InvalidRequest):
    """A correction the ledger refuses (docs/corrections.md); nothing was stored.

    400 for a bad argument (the body names it under `field`), 404 for a user ID no stored call
    carries, 409 for one already retracted, 422 for history a correction cannot re-resolve yet.
    """

    @classmethod
    def refused(cls, status: int, error: str, **extra: Any) -> CorrectionRefused:
        return cls(status, {"code": status, "error": error, **extra})

    @classmethod
    def bad_argument(cls, field: str, problem: str) -> CorrectionRefused:
        return cls.refused(400, f"Invalid {field}: {problem}", field=field)

    @classmethod
    def unknown_user_id(cls, user_id: str) -> CorrectionRefused:
        return cls.refused(404, f"No stored call carries user ID {user_id!r}")

    @classmethod
    def already_retracted(cls, user_id: str) -> CorrectionRefused:
        return cls.refused(409, f"User ID {user_id!r} is already retracted")

    @classmethod
    def property_limits(cls, user_id: str, problem: str) -> CorrectionRefused:
        return cls.refused(422, f"Re-resolving the people user ID {user_id!r} touches would break a user "
                                f"property limit: {problem}")

    @classmethod
    def legacy_history(cls, user_id: str) -> CorrectionRefused:
        return cls.refused(422, f"The people user ID {user_id!r} touches hold events stored by release 0.1.0, "
                                "which a correction cannot re-resolve yet")


class OutsideTheLedger(InvalidRequest):
    """A past position or time the ledger cannot answer at (past its end, in the future, no time zone):
    answering "now" instead would be a silent lie about the past."""

    def __str__(self) -> str:
        return str(self.body["error"])

    @classmethod
    def because(cls, problem: str) -> OutsideTheLedger:
        return cls(400, {"code": 400, "error": f"as_of: {problem}"})

