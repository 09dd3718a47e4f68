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


def bronze_rows(home: Path) -> int:
    """Rows of the bronze incident tables, from their Delta logs (what the build reads, for a rate)."""
    from deltalake import DeltaTable

    from crimelake.engine import INCIDENT_TABLES

    total = 0
    for source, entity in INCIDENT_TABLES:
        path = home / "lake" / "bronze" / source / entity
        if DeltaTable.is_deltatable(str(path)):
            actions = DeltaTable(str(path)).get_add_actions(flatten=True)
            total += int(sum(n or 0 for n in actions.column("num_records").to_pylist()))
    return total


def _dbt(executable: str, scratch: Path, target: str, env: dict[str, str]) -> dict:
    from orchestration.lib.dbt import DBT_DIR

    out = scratch / "dbt"
    command = [executable, "build", "--profiles-dir", str(DBT_DIR), "--project-dir", str(DBT_DIR),
               "--target", target, "--target-path", str(out / "target"), "--log-path", str(out / "logs")]
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


def dbt_full_build(home: Path, engine: str) -> dict:
    """A full `dbt build` of the home's bronze on `engine` (duckdb or spark), in a scratch home; what it did."""
    from crimelake import engine as engines
    from orchestration.lib.dbt import DBT_EXECUTABLE

    scratch = scratch_home(home, engine)
    rows = bronze_rows(home)
    if engine == "duckdb":
        return {"rows": rows, "engine": engine, **_dbt(DBT_EXECUTABLE, scratch, engines.TARGETS[engine], {})}
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
        built = _dbt(dbt, scratch, engines.TARGETS[engine], {"SPARK_REMOTE": url})
    return {"rows": rows, "engine": engine, "cells": cells, "geometry_seconds": round(geometry_seconds, 1), **built}


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


def compare_engines(home: Path, months: list[str], logs: Path, engines: list[str], say) -> list[dict]:
    """A full dbt build of the home's lake on each engine, measured as a stage (wall time, peak memory of the
    process tree, Sail's included)."""
    from benchmarks.national_stages import measure

    out = []
    for engine in engines:
        r = measure(ENGINE_STAGES[engine], home, months, logs) | {"phase": "engines"}
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
