"""RESULTS.md keeps the suite's report and the sections other benchmarks write, each replaced only by its own run."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.results_file import write_section, write_suite

SECTION = "## Time travel"


def test_the_suite_and_a_kept_section_replace_only_themselves(tmp_path: Path) -> None:
    path = tmp_path / "RESULTS.md"
    write_suite("# Benchmark results\n\n## Targets\n\nfirst run\n", path)
    write_section(SECTION, f"{SECTION} (one)\n\n### SQLite\n\n| a |\n", path)
    write_suite("# Benchmark results\n\n## Targets\n\nsecond run\n", path)
    assert path.read_text() == ("# Benchmark results\n\n## Targets\n\nsecond run\n\n"
                                f"{SECTION} (one)\n\n### SQLite\n\n| a |\n")
    write_section(SECTION, f"{SECTION} (two)\n", path)
    assert path.read_text() == f"# Benchmark results\n\n## Targets\n\nsecond run\n\n{SECTION} (two)\n"


def test_only_a_known_section_with_its_own_header_is_written(tmp_path: Path) -> None:
    path = tmp_path / "RESULTS.md"
    with pytest.raises(ValueError, match="not a kept section"):
        write_section("## Targets", "## Targets\n", path)
    with pytest.raises(ValueError, match="not a kept section"):
        write_section(SECTION, "something else\n", path)
    assert not path.exists()
