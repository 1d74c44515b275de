"""Running the `ledger` command in-process and checking its contract (exit code, one-line errors)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
import pytest

from ledger.cli.commands import main


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return msgspec.json.decode(self.out)


def ledger(capsys: pytest.CaptureFixture[str], *argv: str) -> Result:
    """`ledger ARGV...` through the real entry point, with its output captured."""
    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


def assert_one_line_error(result: Result, code: int, *words: str) -> None:
    """The CLI's failure contract: the exit code, one line on stderr, no traceback."""
    assert result.code == code, result
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert "Traceback" not in result.err
    for word in words:
        assert word in lines[0], lines[0]
