"""Which project a request belongs to: its API key selects the project, and only that project answers.

The server holds a `Projects` registry where it once held one ledger. Each project's
`ledger` is its `IdentityLedger` (direct mode) or a `BufferedLedger` publishing uploads
to NATS JetStream (buffered mode); the endpoints cannot tell the difference.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

from ledger.errors import InvalidRequest
from ledger.ledger import IdentityLedger
from ledger.server.credentials import Credentials
from ledger.server.projects import ProjectConfig, check_apart, one_project


@dataclass(frozen=True)
class Project:
    name: str
    credentials: Credentials
    ledger: Any  # IdentityLedger or BufferedLedger: the same methods


class Projects:
    """The hosted projects, found by API key."""

    def __init__(self, projects: Iterable[Project]) -> None:
        self.projects = list(projects)
        self._by_key = {key: project for project in self.projects for key in project.credentials.api_keys}

    @classmethod
    def single(cls, ledger: Any, api_keys: Iterable[str], secret_key: str) -> Projects:
        """One project (the `--api-key/--secret-key/--db` shorthand)."""
        config, = one_project(api_keys, secret_key, "")
        return cls([Project(config.name, config.credentials, ledger)])

    def uploading(self, api_key: str) -> Any | None:
        """The ledger an upload with this API key goes to; None for an unknown key."""
        project = self._by_key.get(api_key)
        return None if project is None else project.ledger

    def for_upload(self, api_key: str | None) -> Any:
        """The ledger an upload with this API key goes to, or the 400 Amplitude answers (missing or unknown key)."""
        if not api_key:
            raise InvalidRequest.missing_field("api_key")
        ledger = self.uploading(api_key)
        if ledger is None:
            raise InvalidRequest.invalid_api_key(api_key)
        return ledger

    def reading(self, api_key: str, secret_key: str) -> Any | None:
        """The ledger a query holding `api_key:secret_key` may read; None if they do not match."""
        project = self._by_key.get(api_key)
        return project.ledger if project is not None and project.credentials.admits(api_key, secret_key) else None


@contextmanager
def open_projects(configs: list[ProjectConfig], buffer: str | None = None) -> Iterator[Projects]:
    """Open every project's database, and with `buffer` (a NATS URL) publish uploads to it.

    Refuses (ServerConfigError) projects that are not kept apart (`check_apart`) before opening any."""
    check_apart(configs)
    with ExitStack() as stack:
        link = None
        if buffer is not None:
            from ledger.buffer.stream import BufferConfig, NatsLink

            link = stack.enter_context(NatsLink(BufferConfig.from_url(buffer)))
        projects = []
        for config in configs:
            ledger: Any = stack.enter_context(IdentityLedger(config.db))
            if link is not None:
                from ledger.buffer.publisher import BufferedLedger

                ledger = BufferedLedger(ledger, link, config.name)
            projects.append(Project(config.name, config.credentials, ledger))
        yield Projects(projects)
