"""`python -m benchmarks [--quick] [--write-results]`: run the suite, print the report, keep the JSON."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from sqlalchemy.engine import make_url

from benchmarks.report import markdown, write_json
from benchmarks.results_file import write_suite
from benchmarks.suite import FULL, MEDIUM, QUICK, run
from benchmarks.workload import DEFAULT_SEED

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, under 2 minutes, for checks")
    parser.add_argument("--medium", action="store_true", help="half the full sizes, scaling up to 300k events")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="workload seed")
    parser.add_argument("--json", type=Path, default=HERE / "results" / "latest.json", help="where to write JSON")
    parser.add_argument("--write-results", action="store_true",
                        help="also write benchmarks/RESULTS.md (keeping the sections other benchmarks wrote there)")
    args = parser.parse_args()
    postgres_url = os.environ.get("LEDGER_BENCH_POSTGRES_URL")
    shown_url = make_url(postgres_url).render_as_string(hide_password=True) if postgres_url else ""
    prefix = [f"LEDGER_BENCH_POSTGRES_URL={shlex.quote(shown_url)}"] if postgres_url else []
    command = " ".join([*prefix, "python -m benchmarks", *sys.argv[1:]])
    previous = os.environ.get("LEDGER_BENCH_PREVIOUS")
    if previous:
        command = f"LEDGER_BENCH_PREVIOUS={shlex.quote(previous)} {command}"
    plan = QUICK if args.quick else MEDIUM if args.medium else FULL
    results = run(plan, args.seed, postgres_url, command, Path(previous) if previous else None)
    report = markdown(results)
    print(report)
    write_json(results, args.json)
    if args.write_results:
        write_suite(report)


if __name__ == "__main__":
    main()
