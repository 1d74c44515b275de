"""The walk-throughs of README.md and docs/cli.md, run from `examples/`: every command a block shows
is run in order and must print what the block shows, so the docs cannot drift from the code.

A console block is run when the comment line right above it names a walk-through:
`<!-- walkthrough NAME -->`, or `<!-- walkthrough NAME; first: COMMAND -->` to run COMMAND (not
shown) before the block. Blocks of one NAME in one document share a scratch directory holding a
copy of `examples/`. Times that come from the clock vary by run: any `YYYY-MM-DD HH:MM:SS[.ffffff]`
and any 13-digit millisecond count are compared by their width only. `[exit N]` is the exit code
the block shows; a block that shows none expects 0, or an error when it ends with `ledger: error:`.
A line `...` ends what is compared of an output.
"""

from __future__ import annotations

import io
import re
import shlex
import shutil
import sys
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest

from ledger.cli.commands import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
DOCUMENTS = ["README.md", "docs/cli.md"]
_MARKER = re.compile(r"^<!-- walkthrough (?P<name>[\w-]+)(?:; first: (?P<first>.+?))? -->$")
_CLOCK = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d{6})?|\b1\d{12}\b")
_EXIT = re.compile(r"^\[exit (\d+)\]$")


@dataclass
class Step:
    command: str
    output: list[str]
    exit_code: int | None
    prefix_only: bool = False


def walkthroughs(document: str) -> dict[str, list[Step]]:
    """The document's walk-throughs by name: their steps in order."""
    found: dict[str, list[Step]] = {}
    lines = (ROOT / document).read_text().splitlines()
    for index, line in enumerate(lines):
        marker = _MARKER.match(line)
        if marker is None:
            continue
        assert lines[index + 1] == "```console", f"{document}:{index + 1}: the marker must sit right above ```console"
        steps = found.setdefault(marker["name"], [])
        if marker["first"] and not steps:
            steps.append(Step(marker["first"], [], None, prefix_only=True))
        end = lines.index("```", index + 2)
        steps.extend(_steps(lines[index + 2:end]))
    return found


def _steps(block: list[str]) -> list[Step]:
    steps: list[Step] = []
    for line in block:
        if line.startswith("$ "):
            steps.append(Step(line[2:], [], None))
        elif (code := _EXIT.match(line)) is not None:
            steps[-1].exit_code = int(code[1])
        elif line == "...":
            steps[-1].prefix_only = True
        else:
            steps[-1].output.append(line)
    for step in steps:
        while step.output and not step.output[-1].strip():
            step.output.pop()
    return steps


def run(command: str, monkeypatch: pytest.MonkeyPatch) -> tuple[int, list[str]]:
    """One shown command in the current directory: `ledger ...`, `cat FILE` or `cat FILE | ledger ... -`,
    stdout and stderr together, in the order they were written."""
    source, _, command = command.rpartition(" | ") if " | " in command else ("", "", command)
    argv = shlex.split(command, comments=True)
    if argv[0] == "cat":
        return 0, Path(argv[1]).read_text().splitlines()
    assert argv[0] == "ledger", command
    if source:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(Path(shlex.split(source)[1]).read_bytes())))
    printed = io.StringIO()
    with redirect_stdout(printed), redirect_stderr(printed):
        code = main(argv[1:])
    return code, printed.getvalue().splitlines()


def _clockless(lines: list[str]) -> list[str]:
    return [_CLOCK.sub(lambda match: "T" * len(match[0]), line.rstrip()) for line in lines]


CASES = [(document, name) for document in DOCUMENTS for name in walkthroughs(document)]


def test_the_walkthroughs_are_found() -> None:
    assert CASES == [("README.md", "none-accident"), ("docs/cli.md", "import"), ("docs/cli.md", "retraction")]


@pytest.mark.parametrize(("document", "name"), CASES)
def test_a_walkthrough_prints_what_the_docs_show(document: str, name: str, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(EXAMPLES, tmp_path, dirs_exist_ok=True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LEDGER_DB", raising=False)
    for step in walkthroughs(document)[name]:
        code, printed = run(step.command, monkeypatch)
        shown = _clockless(printed[:len(step.output)] if step.prefix_only else printed)
        assert shown == _clockless(step.output), f"{document}: $ {step.command}"
        if step.exit_code is not None:
            assert code == step.exit_code, f"{document}: $ {step.command}"
        elif step.output and step.output[-1].startswith("ledger: error:"):
            assert code != 0, f"{document}: $ {step.command}"
        else:
            assert code == 0, f"{document}: $ {step.command}\n" + "\n".join(printed)
