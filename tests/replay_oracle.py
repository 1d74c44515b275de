"""The test oracle for time travel: the ledger at a position, replayed from the log into a scratch database.

This was `as_of` before the read side kept its history (it costs a replay of the log). It
stays here, outside the library, so the history tables' answers can be compared with the
plainest possible past: every identity fact up to the position projected afresh.
"""

from __future__ import annotations

import shutil
import tempfile

import sqlalchemy as sa

from ledger import IdentityLedger
from ledger.reads import AnswersFromReadModel
from ledger.store.backends.sqlite import SQLiteBackend
from projections.queries import Reading, ReadModel
from projections.runner import ProjectionRunner


class Replayed(AnswersFromReadModel):
    """The read model over a scratch SQLite database holding the projections replayed up to `position`."""

    def __init__(self, lg: IdentityLedger, position: int) -> None:
        self._directory = tempfile.mkdtemp(prefix="replay-oracle-")
        engine = sa.create_engine(f"sqlite:///{self._directory}/as_of.db", connect_args={"check_same_thread": False})
        ProjectionRunner(engine, SQLiteBackend(), lg._context.log.read).catch_up(position)
        self._engine = engine
        reading = Reading(engine, lg._context.log, position)
        self.read_model = ReadModel(lambda: reading)

    def close(self) -> None:
        self._engine.dispose()
        shutil.rmtree(self._directory, ignore_errors=True)

    def __enter__(self) -> Replayed:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
