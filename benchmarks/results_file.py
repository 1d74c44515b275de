"""RESULTS.md: the suite's report, then the sections benchmarks run apart from it keep there.

`python -m benchmarks --write-results` rewrites the suite's part and keeps those sections;
such a benchmark's `--write-results` replaces its own section and keeps the rest. A kept
section runs from its header to the next kept header or the end of the file, so it uses
`###` and below inside.
"""

from __future__ import annotations

from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
#: The headers of the sections written apart from the suite, in the order they are kept.
KEPT = ("## Time travel",)


def _split(text: str) -> tuple[str, dict[str, str]]:
    """The suite's part, and each kept section by its header."""
    suite: list[str] = []
    sections: dict[str, list[str]] = {}
    current = suite
    for line in text.splitlines(keepends=True):
        header = next((kept for kept in KEPT if line.startswith(kept)), None)
        if header is not None:
            current = sections.setdefault(header, [])
        current.append(line)
    return "".join(suite), {header: "".join(lines) for header, lines in sections.items()}


def _join(suite: str, sections: dict[str, str]) -> str:
    kept = [sections[header].rstrip("\n") + "\n" for header in KEPT if header in sections]
    return "\n".join([suite.rstrip("\n") + "\n", *kept])


def write_suite(report: str, path: Path = RESULTS) -> None:
    """The suite's report, followed by the kept sections already in the file."""
    _, sections = _split(path.read_text() if path.exists() else "")
    path.write_text(_join(report, sections))


def write_section(header: str, body: str, path: Path = RESULTS) -> None:
    """Replace (or add) the kept section `header` with `body`, which starts with that header."""
    if header not in KEPT or not body.startswith(header):
        raise ValueError(f"not a kept section: {header!r}")
    suite, sections = _split(path.read_text() if path.exists() else "")
    path.write_text(_join(suite, {**sections, header: body}))
