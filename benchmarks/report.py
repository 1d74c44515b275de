"""Results -> the targets check, one Markdown report (printed, and kept as RESULTS.md), and JSON."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The targets. Ingest counts the events sent; rebuild and the raw scan count log events.
MIN_INGEST_VS_RAW = {"sqlite": 0.5, "postgres": 0.4}
MIN_REBUILD_VS_SCAN = 0.5
#: Against the code before the lean event path, same run (benchmarks.versions).
MIN_SMALL_REQUESTS_VS_PREVIOUS = 2.0
MIN_STEADY_REBUILD_VS_PREVIOUS = 5.0
MAX_RESOLVE_P99_US = 50.0
MAX_PEAK_RSS_MB = 1024.0


@dataclass(frozen=True)
class Target:
    what: str
    target: str
    measured: str
    met: bool | None  # None: not measured in this run


def _median(section: dict[str, Any], key: str) -> float | None:
    entry = section.get(key) if isinstance(section, dict) else None
    return entry["median_per_s"] if entry else None


def _ratio(section: dict[str, Any], top: str, bottom: str) -> float | None:
    numerator, denominator = _median(section, top), _median(section, bottom)
    return numerator / denominator if numerator is not None and denominator else None


def ratios(section: dict[str, Any]) -> dict[str, float | None]:
    """The headline ratios of one backend's comparison."""
    return {
        "ingest_vs_raw": _ratio(section, "ingest_1000", "raw_insert"),
        "floor_vs_raw": _ratio(section, "floor", "raw_insert"),
        "ingest_vs_floor": _ratio(section, "ingest_1000", "floor"),
        "ingest_vs_naive": _ratio(section, "ingest_1000", "naive"),
        "ingest_10_vs_raw": _ratio(section, "ingest_10", "raw_insert"),
        "rebuild_vs_raw_scan": _ratio(section, "rebuild", "raw_scan"),
    }


def _check(what: str, target: str, value: float | None, ok: Callable[[float], bool], shown: str) -> Target:
    if value is None:
        return Target(what, target, "not measured", None)
    return Target(what, target, shown.format(value), ok(value))


def _versions(results: dict[str, Any]) -> list[Target]:
    found: list[Target] = []
    for backend in ("sqlite", "postgres"):
        summary = results.get("versions", {}).get(backend, {}).get("summary")
        if not summary:
            continue
        for what in ("ingest_10x4", "ingest_100x4"):
            size = what.split("_")[1].split("x")[0]
            found.append(_check(f"{backend}: ingest {size}/request, 4 threads, vs previous code",
                                f">= {MIN_SMALL_REQUESTS_VS_PREVIOUS:.0f}x", summary.get(what, {}).get("ratio"),
                                lambda v: v >= MIN_SMALL_REQUESTS_VS_PREVIOUS, "{:.2f}x"))
        found.append(_check(f"{backend}: rebuild of a log where <= 10% of calls change identity, vs previous code",
                            f">= {MIN_STEADY_REBUILD_VS_PREVIOUS:.0f}x",
                            summary.get("steady_rebuild", {}).get("ratio"),
                            lambda v: v >= MIN_STEADY_REBUILD_VS_PREVIOUS, "{:.1f}x"))
        page = summary.get("timeline", {})
        found.append(_check(f"{backend}: whole-person timeline page p99 (latest 100), previous/now",
                            ">= 1x (no slower)", 1 / page["ratio"] if page.get("ratio") else None,
                            lambda v: v >= 1.0, "{:.2f}x " + f"({_us(page, 'medians')})"))
    return found


def _sdk_targets(sdk: dict[str, Any]) -> list[Target]:
    """The SDK-traffic goals (benchmarks.sdk_traffic) that have a target, per backend."""
    goals = [(backend, goal) for backend, section in sdk.items() if isinstance(section, dict)
             for goal in section.get("goals", []) if goal["target"] is not None]
    return [_check(f"{backend}: {goal['what']}", f">= {goal['target']}x", goal["ratio"],
                   lambda v, wanted=goal["target"]: v >= wanted, "{:.3f}x") for backend, goal in goals]


def _sdk(sdk: dict[str, Any]) -> str:
    if not sdk:
        return "_not measured_"

    def render(backend: str, section: dict[str, Any]) -> str:
        rows = [[name, _per_s(rate["median_per_s"]), ", ".join(_per_s(v) for v in rate["runs_per_s"]),
                 f"{rate['p50_ms']} / {rate['p99_ms']}" if "p99_ms" in rate else "-"]
                for name, rate in section["rates"].items()]
        goals = [[goal["what"], "-" if goal["ratio"] is None else f"{goal['ratio']:.3f}x",
                  "reported" if goal["target"] is None else f">= {goal['target']}x"] for goal in section["goals"]]
        failed = [f"- {name} failed: {error}" for name, error in section.get("failed", {}).items()]
        return "\n\n".join([
            f"### {backend} ({section['events']:,} events, {section['clients']} clients, requests of "
            f"{section['small']} against {section['bulk']}, medians of {section['repeats']})",
            _table(["contender", "median events/s", "runs", "p50 / p99 ms per request"], rows),
            _table(["goal", "ratio", "wanted"], goals), *failed])

    return _per_backend(sdk, "rates", render)


def _us(entry: dict[str, Any], key: str) -> str:
    return ", ".join(f"{version} {value:,.0f} µs" for version, value in entry.get(key, {}).items())


def targets(results: dict[str, Any]) -> list[Target]:
    sqlite = results.get("sqlite", {})
    postgres = results.get("postgres", {})
    scaling = results.get("scaling", {})
    sizes = scaling.get("sizes", [])
    largest = sizes[-1] if sizes else {}
    resolve = scaling.get("resolve", {})
    rss_seen = [largest[key] for key in ("ingest_peak_rss_mb", "rebuild_peak_rss_mb") if key in largest]
    at = f" at {largest['events']:,} events" if largest else ""
    rss = _check(f"peak RSS, ingest and rebuild{at}", f"<= {MAX_PEAK_RSS_MB:.0f} MB",
                 max(rss_seen) if rss_seen else None, lambda v: v <= MAX_PEAK_RSS_MB, "{:.0f} MB")
    if "failed" in largest:
        rss = Target(rss.what, rss.target, f"{rss.measured} before {largest['failed']}",
                     False if rss.met is False else None)
    compared = len(sizes) > 1 and all("ingest_per_s" in row and "raw_insert_per_s" in row for row in sizes[-2:])
    drop = Target("ingest rate drop between the two largest sizes", "<= the raw limit's own drop",
                  "; ".join(scaling.get("flags", [])) or (scaling.get("drops", "") if compared else "not measured"),
                  (not scaling.get("flags")) if compared else None)
    checks = []
    for name, section in (("SQLite", sqlite), ("PostgreSQL", postgres)):
        wanted = MIN_INGEST_VS_RAW["sqlite" if name == "SQLite" else "postgres"]
        found = ratios(section) if isinstance(section, dict) else {}
        floor = found.get("floor_vs_raw")
        checks += [
            _check(f"ingest vs raw {name} (1000/request)", f">= {wanted}x", found.get("ingest_vs_raw"),
                   lambda v, wanted=wanted: v >= wanted,
                   "{:.2f}x" + (f" (its storage floor alone: {floor:.2f}x)" if floor is not None else "")),
            _check(f"rebuild vs raw scan + decode ({name})", f">= {MIN_REBUILD_VS_SCAN}x",
                   found.get("rebuild_vs_raw_scan"), lambda v: v >= MIN_REBUILD_VS_SCAN, "{:.2f}x"),
        ]
    return [
        *checks,
        *_sdk_targets(results.get("sdk", {})),
        *_versions(results),
        _check(f"resolve() p99, warm{' on ' + format(resolve['ledger_events'], ',') + ' events' if resolve else ''}",
               f"<= {MAX_RESOLVE_P99_US:.0f} µs", resolve.get("p99_us"),
               lambda v: v <= MAX_RESOLVE_P99_US, "{:.1f} µs"),
        rss,
        drop,
    ]


def _per_backend(found: dict[str, Any], measured: str, render: Callable[[str, dict[str, Any]], str]) -> str:
    """Each backend's section rendered, or the line saying why it holds no `measured` figures."""
    return "\n\n".join(render(backend, section) if measured in section
                       else f"{backend}: _{section.get('failed') or section.get('skipped')}_"
                       for backend, section in found.items())


def _versions_section(versions: dict[str, Any]) -> str:
    if not versions:
        return "_not measured: set LEDGER_BENCH_PREVIOUS to a checkout of the previous code_"

    def render(backend: str, found: dict[str, Any]) -> str:
        now, before = found["versions"]
        rows = []
        for what, entry in found["summary"].items():
            medians = entry["medians"]
            unit = "µs (p99 of a page)" if entry["measure"] == "page_p99_us" else "events/s"
            rows.append([what, unit, *(f"{medians.get(v, 0):,.0f}" for v in (now, before)),
                         f"{entry['ratio']:.2f}x" if "ratio" in entry else "-"])
        return (f"### {backend}\n\n" + _table(["measurement", "unit", now, before, f"{now}/{before}"], rows) + "\n\n"
                f"Plan: {found['plan']}. Rates are medians of interleaved repeats, each version in its own "
                "process on the same events; rebuild rates count each version's own log events.")

    return _per_backend(versions, "summary", render)


def _table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _per_s(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _comparison(section: dict[str, Any]) -> str:
    if "skipped" in section or "failed" in section:
        return f"_{section.get('skipped') or section.get('failed')}_"
    rows = [
        [entry["name"], _per_s(entry["median_per_s"]), ", ".join(_per_s(rate) for rate in entry["runs_per_s"]),
         entry["note"]]
        for entry in section.values() if isinstance(entry, dict) and "median_per_s" in entry
    ]
    found = ratios(section)
    lines = [_table(["measurement", "median /s", "runs /s", "on"], rows), ""]
    labels = {"ingest_vs_raw": "ledger/raw ingest", "floor_vs_raw": "storage floor/raw",
              "ingest_vs_floor": "ledger/storage floor", "ingest_vs_naive": "ledger/naive ingest",
              "ingest_10_vs_raw": "ledger at 10/request / raw at 1000",
              "rebuild_vs_raw_scan": "rebuild/raw scan"}
    lines.append("Ratios of medians: " + ", ".join(
        f"{labels[key]} **{value:.2f}x**" for key, value in found.items() if value is not None) + ".")
    ingest = section.get("ingest_1000", {})
    if "log_events_per_call" in ingest:
        lines.append(f"The ledger stores {ingest['log_events_per_call']} log events per event sent "
                     f"({ingest['duplicates']:,} duplicates dropped per run); rebuild and scan rates count log events.")
    return "\n".join(lines)


def _scaling(scaling: dict[str, Any]) -> str:
    columns = (("raw_insert_per_s", "{:,.0f}"), ("ingest_per_s", "{:,.0f}"), ("ingest_peak_rss_mb", "{:,.0f}"),
               ("log_events", "{:,}"), ("rebuild_per_s", "{:,.0f}"), ("rebuild_peak_rss_mb", "{:,.0f}"))
    rows = [[f"{row['events']:,}"] + [fmt.format(row[key]) if key in row else "-" for key, fmt in columns]
            for row in scaling.get("sizes", [])]
    text = _table(["events", "raw limit /s", "ingest /s", "ingest peak RSS MB", "log events", "rebuild /s",
                   "rebuild peak RSS MB"], rows)
    failures = [f"**{row['events']:,} events: {row['failed']}**" for row in scaling.get("sizes", []) if "failed" in row]
    flags = scaling.get("flags", [])
    verdict = "**Flagged:** " + "; ".join(flags) if flags else "No rate falls by more than 30%."
    return "\n\n".join([text, *failures, verdict])


def _resolve(resolve: dict[str, Any]) -> str:
    if not resolve:
        return "_not measured_"
    return (f"`resolve(device_id=...)` on a ledger of {resolve['ledger_events']:,} events, warm, "
            f"{resolve['lookups']:,} lookups: p50 **{resolve['p50_us']} µs**, p99 **{resolve['p99_us']} µs**, "
            f"max {resolve['max_us']} µs.")


def _http(http: dict[str, Any]) -> str:
    if "per_s" not in http:
        return f"_{http.get('skipped') or http.get('failed')}_"
    text = (f"**{http['per_s']:,.0f} events/s** through `POST /2/httpapi` ({http['clients']} client threads, "
            f"batches of {http['batch']}, {http['events']:,} events, server started with `{http['server']}`).")
    if http["requests_failed"]:
        text += f" {http['requests_failed']} requests failed, e.g. {http['first_failures'][0]}."
    return text


def _machine(machine: dict[str, Any]) -> str:
    packages = ", ".join(f"{name} {version}" for name, version in machine["packages"].items())
    return (f"{machine['cpu']}, {machine['cores']} cores, {machine['memory_gb']} GB; {machine['platform']}; "
            f"{machine['python']}; SQLite {machine['sqlite']}; {packages}; commit {machine['commit']}"
            f"{' with uncommitted changes' if machine['uncommitted_changes'] else ''}; "
            f"load average at start {machine['load_average']}.")


def markdown(results: dict[str, Any]) -> str:
    status = {True: "met", False: "**missed**", None: "-"}
    target_rows = [[t.what, t.target, t.measured, status[t.met]] for t in targets(results)]
    notes = "\n".join(f"- {note}" for note in results["notes"])
    return "\n\n".join([
        f"# Benchmark results ({results['mode']} mode, {results['machine']['python']})",
        f"Produced by `{results['command']}` on {results['started']} in {results['duration_s']:.0f} s.",
        f"Machine: {_machine(results['machine'])}",
        "## Targets", _table(["target", "wanted", "measured", "status"], target_rows),
        "## Ingest and rebuild on SQLite (same events, same run, medians of repeats)", _comparison(results["sqlite"]),
        "## Against the previous code (same run)", _versions_section(results.get("versions", {})),
        "## resolve() latency", _resolve(results["scaling"].get("resolve", {})),
        "## HTTP end-to-end", _http(results["http"]),
        "## SDK-shaped traffic (`benchmarks.sdk_traffic`)", _sdk(results.get("sdk", {})),
        "## Scaling (each size and phase in its own process)", _scaling(results["scaling"]),
        "## PostgreSQL", _comparison(results["postgres"]),
        "## Notes", notes,
    ]) + "\n"


def write_json(results: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")
