"""Fixtures: every ledger test runs on SQLite, and on PostgreSQL too when LEDGER_TEST_POSTGRES_URL is set."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa

from ledger import IdentityLedger
from tests.helpers import Clock

# The buffered deployment's fixtures (projects, streams, servers), for every test that asks for them.
pytest_plugins = ["tests.buffer_helpers"]

POSTGRES_URL = os.environ.get("LEDGER_TEST_POSTGRES_URL")
BACKENDS = ["sqlite"] + (["postgres"] if POSTGRES_URL else [])


def backends_line() -> str:
    """Which backends this run covers: a run without PostgreSQL must not pass for a full one."""
    if POSTGRES_URL:
        return "ledger backends: SQLite and PostgreSQL (LEDGER_TEST_POSTGRES_URL is set)"
    return "ledger backends: SQLite only (set LEDGER_TEST_POSTGRES_URL to cover PostgreSQL too)"


@pytest.hookimpl(wrapper=True)
def pytest_sessionstart(session: pytest.Session) -> Iterator[None]:
    """The backends line goes under the session header, also with `-q` (the project's default),
    which hides pytest_report_header's lines."""
    yield
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(backends_line())


def fresh_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Callable[[], None]]:
    """A URL of an empty database, and how to throw it away."""
    if backend == "sqlite":
        path = tmp_path_factory.mktemp("ledger") / "ledger.db"
        return f"sqlite:///{path}", lambda: None
    assert POSTGRES_URL is not None
    schema = f"t_{uuid.uuid4().hex[:16]}"
    separator = "&" if "?" in POSTGRES_URL else "?"

    def drop() -> None:
        engine = sa.create_engine(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1))
        with engine.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()

    return f"{POSTGRES_URL}{separator}schema={schema}", drop


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def new_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[], str]]:
    """Makes URLs of fresh databases on the test's backend; drops them afterwards."""
    drops: list[Callable[[], None]] = []

    def make() -> str:
        url, drop = fresh_url(backend, tmp_path_factory)
        drops.append(drop)
        return url

    yield make
    for drop in drops:
        drop()


@pytest.fixture(autouse=True, scope="session")
def _key_files_in_scratch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """PostgreSQL ledgers keep their key files under the config dir: the tests' go to a scratch one."""
    previous = os.environ.get("XDG_CONFIG_HOME")
    os.environ["XDG_CONFIG_HOME"] = str(tmp_path_factory.mktemp("config"))
    yield
    if previous is None:
        del os.environ["XDG_CONFIG_HOME"]
    else:
        os.environ["XDG_CONFIG_HOME"] = previous


@pytest.fixture
def open_ledger(new_url: Callable[[], str]) -> Iterator[Callable[..., IdentityLedger]]:
    """Opens ledgers on fresh databases with a deterministic clock; closes them afterwards."""
    opened: list[IdentityLedger] = []

    def make(url: str | None = None, **options: object) -> IdentityLedger:
        options.setdefault("clock", Clock())
        ledger = IdentityLedger(url or new_url(), **options)  # type: ignore[arg-type]
        opened.append(ledger)
        return ledger

    yield make
    for ledger in opened:
        ledger.close()


@pytest.fixture
def clock() -> Clock:
    """The server clock of `lg`: a test moves it on (`clock.now += DAY`) to bring a deletion job's day."""
    return Clock()


@pytest.fixture
def lg(open_ledger: Callable[..., IdentityLedger], clock: Clock) -> IdentityLedger:
    return open_ledger(clock=clock)
