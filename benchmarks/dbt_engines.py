"""The benchmark's engine stages: one full `dbt build` of a home's bronze tables on DuckDB (`dbt_duckdb`) or on
Spark through a local Sail server (`dbt_spark`), so both engines are measured on the same work.

Each build runs in a scratch home beside the measured one whose `lake/bronze` is a link to the home's bronze: the
home's own warehouse and lake are left as they are. The Spark stage starts Sail itself (a child of the stage's
process, so `measure` counts its memory), writes the cells' geometry table the Spark models read, and builds into
an empty lake/spark, which is what a build on Sail is (crimelake.engine.clear_spark_output).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path

ENGINE_STAGES = {"duckdb": "dbt_duckdb", "spark": "dbt_spark"}
PASSED = {"success", "pass", "warn"}


def scratch_home(home: Path, engine: str) -> Path:
    """An empty home for one engine's build whose bronze is the home's (linked, not copied)."""
    scratch = home.parent / f"dbt-{engine}"
    shutil.rmtree(scratch, ignore_errors=True)
    (scratch / "lake").mkdir(parents=True)
    (scratch / "warehouse").mkdir()
    (scratch / "lake" / "bronze").symlink_to((home / "lake" / "bronze").resolve(), target_is_directory=True)
    return scratch


def bronze_rows(home: Path, through: str | None = None) -> int:
    """Rows of the bronze incident tables (of the months up to ``through``, when given), from their Delta logs
    (what the build reads, for a rate)."""
    from deltalake import DeltaTable

    from crimelake.engine import INCIDENT_TABLES

    total = 0
    for source, entity in INCIDENT_TABLES:
        path = home / "lake" / "bronze" / source / entity
        if DeltaTable.is_deltatable(str(path)):
            actions = DeltaTable(str(path)).get_add_actions(flatten=True)
            months = (actions.column("partition.month").to_pylist() if "partition.month" in actions.column_names
                      else [None] * actions.num_rows)
            total += int(sum(n or 0 for n, m in zip(actions.column("num_records").to_pylist(), months, strict=True)
                             if through is None or m is None or m <= through))
    return total


def _dbt(executable: str, scratch: Path, target: str, env: dict[str, str], through: str | None = None) -> dict:
    from orchestration.lib.dbt import DBT_DIR

    out = scratch / "dbt"
    command = [executable, "build", "--profiles-dir", str(DBT_DIR), "--project-dir", str(DBT_DIR),
               "--target", target, "--target-path", str(out / "target"), "--log-path", str(out / "logs")]
    if through:
        # A first build with a month range holds every month up to its end (crimelake.month_filter).
        command += ["--vars", json.dumps({"month_from": through, "month_to": through})]
    started = time.perf_counter()
    with (scratch / "dbt.log").open("wb") as log:
        code = subprocess.run(command, cwd=DBT_DIR, stdout=log, stderr=subprocess.STDOUT,
                              env={**os.environ, "CRIMELAKE_HOME": str(scratch.resolve()),
                                   "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", **env}).returncode
    seconds = time.perf_counter() - started
    results_path = out / "target" / "run_results.json"
    results = json.loads(results_path.read_text())["results"] if results_path.exists() else []
    statuses = Counter(str(r["status"]) for r in results)
    failed = [r["unique_id"] for r in results if str(r["status"]) not in PASSED]
    if code != 0 and not failed:
        failed = [f"dbt exited {code}: see {scratch / 'dbt.log'}"]
    return {"dbt_seconds": round(seconds, 1), "nodes": len(results), "statuses": dict(statuses), "failed": failed}


def dbt_full_build(home: Path, engine: str, through: str | None = None) -> dict:
    """A full `dbt build` of the home's bronze on `engine` (duckdb or spark), in a scratch home, of every month or
    of the months up to ``through``; what it did."""
    from crimelake import engine as engines
    from orchestration.lib.dbt import DBT_EXECUTABLE

    scratch = scratch_home(home, engine)
    rows = bronze_rows(home, through)
    if engine == "duckdb":
        return {"rows": rows, "engine": engine, "through": through,
                **_dbt(DBT_EXECUTABLE, scratch, engines.TARGETS[engine], {}, through)}
    if engine != "spark":
        raise ValueError(f"unknown engine {engine!r}: expected one of {', '.join(engines.ENGINES)}")
    dbt = engines.spark_tool("dbt")
    if dbt is None:
        raise RuntimeError("the dbt_spark stage needs dbt-spark and Sail (`make install` puts them in .venv-spark)")
    started = time.perf_counter()
    engines.clear_spark_output(scratch)
    cells = engines.write_cell_geometry(scratch)
    geometry_seconds = time.perf_counter() - started
    with engines.sail_server(log=scratch / "sail.log") as url:
        built = _dbt(dbt, scratch, engines.TARGETS[engine], {"SPARK_REMOTE": url}, through)
    return {"rows": rows, "engine": engine, "through": through, "cells": cells,
            "geometry_seconds": round(geometry_seconds, 1), **built}


def parse_engines(text: str) -> list[str]:
    """`--engines`: comma-separated engines (duckdb, spark), or `none` to skip the engine comparison."""
    if text.strip().lower() == "none":
        return []
    engines = [e.strip().lower() for e in text.split(",") if e.strip()]
    unknown = [e for e in engines if e not in ENGINE_STAGES]
    if unknown:
        raise ValueError(f"--engines: unknown {', '.join(unknown)}; expected a list of {', '.join(ENGINE_STAGES)} "
                         "or none")
    return engines


def compare_engines(home: Path, months: list[str], logs: Path, engines: list[str], say,
                    through: str | None = None) -> list[dict]:
    """A full dbt build of the home's lake (its months up to ``through``, when given) on each engine, measured as a
    stage (wall time, peak memory of the process tree, Sail's included)."""
    from benchmarks.national_stages import measure

    out = []
    if through:
        months = [m for m in months if m <= through]
    for engine in engines:
        r = measure(ENGINE_STAGES[engine], home, months, logs, {"through": through}) | {"phase": "engines"}
        out.append(r)
        say(f"  {r['stage']:<10} {r['seconds']:8.1f}s  peak {r['peak_rss_mb']:6,} MB  dbt {r['dbt_seconds']:.1f}s, "
            f"{r['nodes']} nodes {r['statuses']}")
    return out


def print_engines(console, records: list[dict], pipeline_dbt: float | None) -> None:
    from rich.table import Table

    t = Table(title="Full dbt build of the same lake, by engine (stage wall time includes starting Python"
                    + (" and, on Spark, Sail and the cells' geometry table)" if any(
                        r["engine"] == "spark" for r in records) else ")"))
    for col in ("engine", "stage seconds", "dbt seconds", "peak RSS MB", "nodes", "statuses"):
        t.add_column(col, justify="left" if col in ("engine", "statuses") else "right")
    for r in records:
        t.add_row(r["engine"], f"{r['seconds']:,.1f}", f"{r['dbt_seconds']:,.1f}", f"{r['peak_rss_mb']:,}",
                  str(r["nodes"]), ", ".join(f"{k} {v}" for k, v in sorted(r["statuses"].items())))
    console.print(t)
    if pipeline_dbt is not None:
        console.print(f"dbt steps of the pipeline's own runs (DuckDB, by month): {pipeline_dbt:,.1f}s in all")


def main(argv: list[str] | None = None) -> int:
    """`python -m benchmarks.dbt_engines --home HOME`: the engine comparison alone, on a home already built (for
    example the national benchmark's, kept with --keep); results in bench-results/engines.json."""
    import argparse

    from rich.console import Console

    p = argparse.ArgumentParser(prog="python -m benchmarks.dbt_engines", description=main.__doc__.split("\n\n")[0])
    p.add_argument("--home", type=Path, required=True, help="a crimelake home with bronze tables")
    p.add_argument("--engines", default="duckdb,spark", help="comma-separated engines (duckdb, spark)")
    p.add_argument("--through", help="build only the months up to this one (YYYY-MM), as a first build of them")
    a = p.parse_args(argv)
    from deltalake import DeltaTable

    street = a.home / "lake" / "bronze" / "police_uk" / "street"
    if not DeltaTable.is_deltatable(str(street)):
        p.error(f"{a.home} has no bronze street table: build the home first")
    months = sorted({m for m in DeltaTable(str(street)).get_add_actions(flatten=True)
                     .column("partition.month").to_pylist() if m})
    console = Console()
    records = compare_engines(a.home, months, a.home.parent / "engine-logs", parse_engines(a.engines),
                              lambda msg: console.print(msg), through=a.through)
    print_engines(console, records, None)
    out = Path("bench-results") / "engines.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"home": str(a.home), "through": a.through, "cpus": os.cpu_count(),
                               "records": records}, indent=2, default=str))
    console.print(f"Results written to {out}")
    return 0 if all(not r.get("failed") for r in records) else 1


if __name__ == "__main__":
    import sys

    sys.exit(main())
