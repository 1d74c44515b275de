"""Who may talk to the server: API keys upload, an API key plus the secret key reads.

API keys ship inside client apps (as Amplitude's do), so they are not secrets; the
secret key guards the query API, which answers who every user is. Every key check of
the server is here, each with the refusal its API documents.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from dataclasses import dataclass

from ledger.errors import InvalidRequest, LedgerError
from ledger.server.replies import HttpError

#: The secret key guards every read of who each user is: short ones are guessed.
MIN_SECRET_LENGTH = 16
#: Different characters a secret key needs: `aaaaaaaaaaaaaaaa` or `abababababababab` is long but guessed.
MIN_SECRET_VARIETY = 10
GOOD_SECRET = 'make one with: python -c "import secrets; print(secrets.token_urlsafe(32))"'


class ServerConfigError(LedgerError):
    """The server was asked to start open to everyone, or unusable; the message says what to set."""


def check_secret_strength(secret_key: str, api_keys: Iterable[str]) -> None:
    """Refuse a secret key that holds an API key or is easy to guess, saying how to make a good one.

    API keys ship inside client apps, so a secret that equals or contains one (ignoring case and
    whitespace) is as public as they are; a short or repetitive one is guessed.
    """
    secret = _folded(secret_key)
    if any(_folded(key) and _folded(key) in secret for key in api_keys):
        raise ServerConfigError("the secret key must differ from every API key and not contain one (ignoring case and"
                                f" spaces): API keys ship inside client apps; {GOOD_SECRET}")
    if not secret_key.strip() or len(secret_key) < MIN_SECRET_LENGTH:
        raise ServerConfigError(
            f"the secret key must be at least {MIN_SECRET_LENGTH} characters and not blank: it guards the query API,"
            f" which answers who every user is, and a short one can be guessed; {GOOD_SECRET}"
        )
    if len(set(secret_key)) < MIN_SECRET_VARIETY:
        raise ServerConfigError(f"the secret key must hold at least {MIN_SECRET_VARIETY} different characters:"
                                f" a repetitive one can be guessed; {GOOD_SECRET}")


def _folded(text: str) -> str:
    """`text` without whitespace, in lower case: how a key is compared with the secret."""
    return "".join(text.split()).casefold()


@dataclass(frozen=True)
class Credentials:
    api_keys: frozenset[str]
    secret_key: str

    @classmethod
    def configured(cls, api_keys: Iterable[str], secret_key: str) -> Credentials:
        """Checked configuration, or ServerConfigError: never an open door."""
        keys = frozenset(key.strip() for key in api_keys if key.strip())
        if not keys:
            raise ServerConfigError(
                "no API key configured: pass --api-key KEY or set LEDGER_API_KEY (comma-separated)"
            )
        if not secret_key:
            raise ServerConfigError("no secret key configured: pass --secret-key SECRET or set LEDGER_SECRET_KEY")
        check_secret_strength(secret_key, keys)
        return cls(keys, secret_key)

    def knows(self, api_key: str) -> bool:
        return api_key in self.api_keys

    def admits(self, api_key: str, secret_key: str) -> bool:
        """Query API access: a known API key and the secret key (compared in constant time)."""
        return self.knows(api_key) and hmac.compare_digest(secret_key.encode(), self.secret_key.encode())

    def check_upload_key(self, api_key: str | None) -> None:
        """An Amplitude upload's `api_key` field: missing or unknown is Amplitude's 400."""
        if not api_key:
            raise InvalidRequest.missing_field("api_key")
        if not self.knows(api_key):
            raise InvalidRequest.invalid_api_key(api_key)

    def check_basic(self, given: tuple[str, str] | None, *, reading: bool) -> None:
        """HTTP Basic credentials, or a 401: an API key as the user name uploads (Segment's
        write key); reading also needs the secret key as the password."""
        user, password = given or ("", "")
        if not (self.admits(user, password) if reading else self.knows(user)):
            raise HttpError.unauthorized()
