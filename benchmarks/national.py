"""`make bench-national`: the pipeline at national scale, stage by stage, with wall time and peak memory.

Generates the national data set (44 forces at their real volumes, about 0.5M street rows a month, the Metropolitan
Police at its real share, realistic defects, a few missing and partial force-months) for `--months` months plus one,
then lands it into an empty home a month folder at a time, as deliveries arrive, and runs each stage of the
pipeline as its own process: ingest (one Dagster run per month), dbt (build and tests), gold exports, public
tables, the forecast models (all five groups) and hot spot tracking. Each stage's wall time includes starting
Python and loading the Dagster definitions, as `crimelake run` would; its peak memory is the larger of the
kernel's peak for any one process of the stage (`ru_maxrss` from `os.wait4`, dbt's process included) and the peak
of the whole process tree's resident memory sampled every half second (dbt runs beside the Dagster process).

One pass, no second build for the comparison at month 12: the lake is built to 12 months (build_12), month 13
lands and runs as the incremental month at 12 (incremental_13), months 14 to N land and run (build_to_N, the same
incremental path `crimelake run` takes), then month N+1 lands and runs (incremental_N+1). The build to N is the sum
of those first three phases: it includes one extra downstream pass (dbt to hot spots at months 12 and 13), so it
is an upper bound on a single-pass build. With N <= 12 there is no month-12 comparison. The raw baseline (pyarrow
reads the month's street CSVs, every column as text, and writes them with write_deltalake) runs on each incremental
month; crimelake's rate is its street ingest step's (from the Dagster run's step statistics) on the same files.

    python -m benchmarks.national [--months 36] [--forces all] [--home DIR] [--keep]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

STAGES = ("ingest", "dbt", "gold", "public", "models", "hotspots")
DBT_GROUPS = ("reference", "staging", "intermediate", "marts")
GAPS = 3  # missing and as many partial force-months
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024
RESULTS = Path("bench-results") / "national.json"


# --- one stage, in its own process -----------------------------------------------------------------------------------

def _materialized(instance, run_id: str) -> dict[str, dict]:
    import dagster as dg

    out = {}
    for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
        mat = e.asset_materialization
        out[mat.asset_key.to_user_string()] = {k: getattr(v, "value", v) for k, v in mat.metadata.items()}
    return out


def _rows_written(md: dict[str, dict]) -> int:
    return sum(int(m.get("dagster/row_count", 0) or 0) for m in md.values())


def _ingest(settings, months: list[str]) -> dict:
    import dagster as dg

    from crimelake.pipeline import run_landed

    instance = dg.DagsterInstance.get()
    per_month, failed = {}, []
    for month in months:
        t0 = time.perf_counter()
        (mr,) = run_landed(settings, months=[month]) or (None,)
        if mr is None:
            raise RuntimeError(f"nothing to ingest for {month}: was it landed?")
        seconds = time.perf_counter() - t0
        md = _materialized(instance, mr.run_id)
        steps = {s.step_key: s.end_time - s.start_time for s in instance.get_run_step_stats(mr.run_id)
                 if s.end_time and s.start_time}
        per_month[month] = {"seconds": round(seconds, 2), "rows_read": sum(int(m.get("rows_read", 0)) for m in md.values()),
                            "street_rows_read": int(md.get("police_uk/street", {}).get("rows_read", 0)),
                            "street_step_seconds": round(steps.get("police_uk__street", float("nan")), 2),
                            "failed_checks": mr.failed_checks}
        if not mr.success:
            failed.append(month)
    return {"rows": sum(m["rows_read"] for m in per_month.values()), "per_month": per_month, "failed": failed}


def _transform(settings, groups: tuple[str, ...], months: list[str]) -> dict:
    import dagster as dg

    from crimelake.pipeline import QUIET_LOGS
    from orchestration.lib.dbt import ensure_manifest

    ensure_manifest()
    from orchestration.definitions import defs

    d = defs()
    keys = list(dg.AssetSelection.groups(*groups).resolve(d.resolve_asset_graph()))
    config = {"ops": {"crimelake_dbt_models": {"config": {"full_refresh": False}}}} if "staging" in groups else {}
    instance = dg.DagsterInstance.get()
    # The same run `crimelake run` makes (transform_lakehouse_job over the months that changed), cut to one layer.
    result = d.resolve_job_def("transform_lakehouse_job").execute_in_process(
        instance=instance, asset_selection=keys, run_config={**QUIET_LOGS, **config}, raise_on_error=False,
        tags={"crimelake/trigger": "bench", "dagster/asset_partition_range_start": months[0],
              "dagster/asset_partition_range_end": months[-1]})
    md = _materialized(instance, result.run_id)
    return {"rows": _rows_written(md), "failed": [] if result.success else [result.run_id]}


def _models(settings) -> dict:
    from crimelake.forecasting import GROUPS
    from crimelake.pipeline import run_models

    runs = run_models(settings, list(GROUPS))
    rows = sum(int(r.metadata.get("ml/predictions", {}).get("dagster/row_count", 0) or 0) for r in runs)
    return {"rows": rows, "failed": [r.group for r in runs if not r.success]}


def _hotspots(settings) -> dict:
    from crimelake.pipeline import run_hotspot_tracking

    r = run_hotspot_tracking(settings)
    return {"rows": _rows_written(r.metadata), "failed": [] if r.success else [r.run_id]}


def _baseline(settings, month: str, out: Path) -> dict:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    from deltalake import write_deltalake

    from data_contracts.loader import default_contracts

    c = default_contracts()[("police_uk", "street")]
    files = sorted(p for p in settings.landing_dir("police_uk", month).iterdir() if c.filename_pattern.match(p.name))
    t0 = time.perf_counter()
    tables = [pacsv.read_csv(f, read_options=pacsv.ReadOptions(encoding=c.encoding),
                             parse_options=pacsv.ParseOptions(invalid_row_handler=lambda r: "skip"),
                             convert_options=pacsv.ConvertOptions(column_types={h: pa.string() for h in c.header}))
              for f in files]
    table = pa.concat_tables(tables, promote_options="permissive")
    write_deltalake(str(out), table, mode="overwrite")
    return {"rows": table.num_rows, "seconds_in_process": round(time.perf_counter() - t0, 2), "failed": []}


def _generate(landing: Path, months: int, start: str, forces: list[str] | None) -> dict:
    from crimelake.simulate import PRESETS, generate

    slots = len(forces or PRESETS["national"]["forces"]) * max(months - 3, 0)
    summary = generate(landing, scale="national", forces=forces, months=months, start=start,
                       gaps=min(GAPS, slots // 4))
    return {"rows": sum(summary.rows.values()), "street_rows": summary.rows.get(("police_uk", "street"), 0),
            "gaps": summary.gaps, "failed": []}


def run_stage(stage: str, home: Path, months: list[str], extra: dict) -> dict:
    from crimelake.config import Settings

    if stage == "generate":
        return _generate(Path(extra["landing"]), len(months), months[0], extra.get("forces"))
    settings = Settings.from_env(home).prepare()
    if stage == "ingest":
        return _ingest(settings, months)
    if stage in ("dbt", "gold", "public"):
        return _transform(settings, DBT_GROUPS if stage == "dbt" else (stage,), months)
    if stage == "models":
        return _models(settings)
    if stage == "hotspots":
        return _hotspots(settings)
    if stage == "baseline":
        return _baseline(settings, months[0], Path(extra["out"]))
    raise ValueError(f"unknown stage {stage!r}")


# --- measuring a stage from outside ----------------------------------------------------------------------------------

def _tree_rss_kib(root: int) -> int:
    """Resident memory of a process and all its descendants now."""
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = Path(f"/proc/{d}/stat").read_bytes()
            except OSError:
                continue
            children.setdefault(int(stat.rsplit(b")", 1)[1].split()[1]), []).append(int(d))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        with contextlib.suppress(OSError, IndexError):  # the process may have ended since the scan
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_KIB
    return total


def measure(stage: str, home: Path, months: list[str], logs: Path, extra: dict | None = None) -> dict:
    """Run one stage in a child process; wall seconds, peak memory and what the stage reported."""
    logs.mkdir(parents=True, exist_ok=True)
    name = f"{stage}-{months[0]}-{months[-1]}"
    out, log = logs / f"{name}.json", logs / f"{name}.log"
    cmd = [sys.executable, "-m", "benchmarks.national", "--stage", stage, "--home", str(home),
           "--stage-months", ",".join(months), "--stage-out", str(out), "--stage-extra", json.dumps(extra or {})]
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "DAGSTER_HOME", "CRIMELAKE_HOME")}
    t0 = time.perf_counter()
    with log.open("wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env)
    tree = 0
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        tree = max(tree, _tree_rss_kib(proc.pid))
        time.sleep(0.5)
    seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    report = json.loads(out.read_text()) if out.exists() else {"failed": ["no report"]}
    if proc.returncode != 0 or report.get("failed"):
        tail = log.read_text(errors="replace")[-3000:]
        raise StageFailed(f"stage {stage} ({months[0]}..{months[-1]}) failed (exit {proc.returncode}, "
                          f"{report.get('failed')}); log {log}:\n{tail}")
    peak_mb = max(usage.ru_maxrss, tree) / 1024
    rows = int(report.get("rows", 0))
    return {"stage": stage, "months": f"{months[0]}..{months[-1]}", "n_months": len(months),
            "seconds": round(seconds, 1), "peak_rss_mb": round(peak_mb), "ru_maxrss_mb": round(usage.ru_maxrss / 1024),
            "tree_rss_mb": round(tree / 1024), "rows": rows, "rows_per_s": round(rows / seconds) if seconds else None,
            **{k: v for k, v in report.items() if k not in ("rows", "failed")}}


class StageFailed(RuntimeError):
    pass


# --- the whole benchmark ---------------------------------------------------------------------------------------------

MODEL_MONTHS = 15  # the models' 12-month backtest needs 3 months of history before it
TARGETS = {
    "peak_rss_mb": 4096,  # every stage of the build and of every later month
    "incremental_ratio": 1.3,  # incremental month at N over the one at the comparison month
    "incremental_seconds": 300,
    "ingest_over_baseline": 0.4,  # crimelake's street rows/s over the raw baseline's
    "hotspots_seconds": 300,  # hot spot tracking, five groups
    "build_seconds": 45 * 60,  # the whole build to 36 months, on 2 cores
}


def month_labels(n: int, end: date | None = None) -> list[str]:
    """The n months ending with the last complete month (the newest month the pipeline partitions)."""
    from crimelake.simulate.dynamics import month_label

    end = end or date.today()
    last = end.year * 12 + end.month - 2
    return [month_label(i) for i in range(last - n + 1, last + 1)]


def phases(months: list[str], n: int, compare_at: int) -> list[tuple[str, list[str], bool]]:
    """(name, months landed, incremental?) in order; months has n + 1 labels."""
    if n <= compare_at:
        return [(f"build_1_{n}", months[:n], False), (f"month_{n + 1}", months[n:], True)]
    out = [(f"build_1_{compare_at}", months[:compare_at], False),
           (f"month_{compare_at + 1}", months[compare_at:compare_at + 1], True)]
    if n > compare_at + 1:
        out.append((f"build_{compare_at + 2}_{n}", months[compare_at + 1:n], False))
    return [*out, (f"month_{n + 1}", months[n:], True)]


def land(generated: Path, landing: Path, months: list[str]) -> None:
    """Move month folders into the home's landing folder, as deliveries arrive (file times kept)."""
    for src in sorted(p for p in generated.iterdir() if p.is_dir() and p.name != "reference"):
        for m in months:
            if (src / m).is_dir():
                (landing / src.name).mkdir(parents=True, exist_ok=True)
                os.rename(src / m, landing / src.name / m)


def _target(name: str, value, limit, met, note: str = "") -> dict:
    return {"target": name, "value": value, "limit": limit, "met": met, **({"note": note} if note else {})}


def evaluate(records: list[dict], n: int, compare_at: int) -> list[dict]:
    by_phase: dict[str, list[dict]] = {}
    for r in records:
        by_phase.setdefault(r["phase"], []).append(r)
    pipeline = [r for r in records if r["stage"] in STAGES]
    incs = [p for p in by_phase if p.startswith("month_")]
    first_inc, last_inc = by_phase[incs[0]], by_phase[incs[-1]]
    build_phases = [p for p in by_phase if p != incs[-1]]
    build_s = sum(r["seconds"] for p in build_phases for r in by_phase[p] if r["stage"] in STAGES)
    peak = max(r["peak_rss_mb"] for r in pipeline)
    out = [_target("peak RSS of every stage (MB)", peak, TARGETS["peak_rss_mb"], peak < TARGETS["peak_rss_mb"],
                   f"build to {n} months and month {n + 1}")]
    last_s = sum(r["seconds"] for r in last_inc if r["stage"] in STAGES)
    if len(incs) > 1:
        common = {r["stage"] for r in first_inc} & {r["stage"] for r in last_inc} & set(STAGES)
        a = sum(r["seconds"] for r in first_inc if r["stage"] in common)
        b = sum(r["seconds"] for r in last_inc if r["stage"] in common)
        out.append(_target(f"incremental month {n + 1} over month {compare_at + 1}", round(b / a, 2),
                           TARGETS["incremental_ratio"], b / a <= TARGETS["incremental_ratio"],
                           f"stages compared: {', '.join(s for s in STAGES if s in common)}"))
    else:
        out.append(_target("incremental month over early month", None, TARGETS["incremental_ratio"], None,
                           f"needs --months > {compare_at}"))
    out.append(_target(f"incremental month {n + 1} (s)", round(last_s, 1), TARGETS["incremental_seconds"],
                       last_s < TARGETS["incremental_seconds"],
                       "" if any(r["stage"] == "models" for r in last_inc) else "models skipped (too few months)"))
    ratios = [r["ingest_over_baseline"] for r in records if "ingest_over_baseline" in r]
    if ratios:
        out.append(_target("ingest street rows/s over raw baseline", min(ratios), TARGETS["ingest_over_baseline"],
                           min(ratios) >= TARGETS["ingest_over_baseline"], "worst incremental month"))
    hs = max(r["seconds"] for r in pipeline if r["stage"] == "hotspots")
    out.append(_target("hot spot tracking, five groups (s)", hs, TARGETS["hotspots_seconds"],
                       hs < TARGETS["hotspots_seconds"], "slowest run"))
    out.append(_target(f"build to {n} months (s)", round(build_s, 1), TARGETS["build_seconds"],
                       build_s < TARGETS["build_seconds"] if n >= 36 else None,
                       f"phases {', '.join(build_phases)}; includes one extra downstream pass"
                       + ("" if n >= 36 else f"; target is for 36 months, linear extrapolation "
                          f"{round(build_s * 36 / n)} s")))
    return out


def _print_table(console, records: list[dict], targets: list[dict]) -> None:
    from rich.table import Table

    t = Table(title="National benchmark: stages (wall time includes process start and Dagster definitions)")
    for col in ("phase", "stage", "months", "seconds", "peak RSS MB", "rows", "rows/s"):
        t.add_column(col, justify="left" if col in ("phase", "stage", "months") else "right")
    for r in records:
        t.add_row(r["phase"], r["stage"], r["months"], f"{r['seconds']:,.1f}", f"{r['peak_rss_mb']:,}",
                  f"{r['rows']:,}", f"{r['rows_per_s']:,}" if r.get("rows_per_s") is not None else "-")
    console.print(t)
    g = Table(title="Targets")
    for col in ("target", "value", "limit", "met", "note"):
        g.add_column(col)
    for x in targets:
        met = {True: "[green]yes[/green]", False: "[red]no[/red]", None: "n/a"}[x["met"]]
        g.add_row(x["target"], str(x["value"]), str(x["limit"]), met, x.get("note", ""))
    console.print(g)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.national", description=__doc__.split("\n\n")[0])
    p.add_argument("--months", type=int, default=36, help="months in the build (one more lands as the last month)")
    p.add_argument("--forces", default="all", help="'all' or comma-separated force slugs")
    p.add_argument("--home", type=Path, help="empty work folder (default: a temporary one)")
    p.add_argument("--keep", action="store_true", help="keep the work folder (home, generated data, logs)")
    p.add_argument("--compare-at", type=int, default=MODEL_MONTHS,
                   help="build this many months, time the next one for the comparison with the last month "
                        f"(default {MODEL_MONTHS}: the first month count at which the models can run)")
    p.add_argument("--stage", help=argparse.SUPPRESS)
    p.add_argument("--stage-months", help=argparse.SUPPRESS)
    p.add_argument("--stage-out", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--stage-extra", default="{}", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.stage:
        report = run_stage(a.stage, a.home, a.stage_months.split(","), json.loads(a.stage_extra))
        a.stage_out.write_text(json.dumps(report, default=str))
        return 1 if report.get("failed") else 0
    if a.months < 3:
        p.error("--months must be at least 3 (hot spot tracking needs 3 months)")
    from rich.console import Console

    from crimelake.reference.forces import FORCES, force_by_slug

    console = Console()
    forces = None if a.forces == "all" else a.forces.split(",")
    for s in forces or []:
        force_by_slug(s)
    work = a.home or Path(tempfile.mkdtemp(prefix="crimelake-national-"))
    if work.exists() and any(work.iterdir()):
        p.error(f"{work} is not empty: the benchmark starts from an empty home")
    home, generated, logs = work / "home", work / "generated", work / "logs"
    months = month_labels(a.months + 1)
    t_start = time.perf_counter()

    def say(msg: str) -> None:
        console.print(f"[dim]{time.strftime('%H:%M:%S')} +{time.perf_counter() - t_start:6.0f}s[/dim] {msg}")

    records: list[dict] = []
    say(f"generating {len(forces or FORCES)} forces x {len(months)} months ({months[0]}..{months[-1]}) into {generated}")
    try:
        gen = measure("generate", home, months, logs, {"landing": str(generated), "forces": forces})
        say(f"generated {gen['rows']:,} rows ({gen['street_rows']:,} street) in {gen['seconds']:.0f}s; gaps: "
            + ", ".join(f"{g['force']} {g['month']} {g['kind']}" for g in gen["gaps"]))
        shutil.copytree(generated / "reference", home / "landing" / "reference")
        for phase, landed, incremental in phases(months, a.months, a.compare_at):
            land(generated, home / "landing", landed)
            lake_months = months.index(landed[-1]) + 1
            say(f"[bold]{phase}[/bold]: landed {landed[0]}..{landed[-1]}; the lake will hold {lake_months} months")
            for stage in STAGES:
                if stage == "models" and lake_months < MODEL_MONTHS:
                    say(f"  models skipped: the 12-month backtest needs {MODEL_MONTHS} months")
                    continue
                r = measure(stage, home, landed, logs) | {"phase": phase}
                if stage == "ingest":
                    ingested = r["rows"]
                if stage == "dbt":  # dbt reports no row counts: its input is the rows ingested for its months
                    r["rows"], r["rows_per_s"] = ingested, round(ingested / r["seconds"])
                records.append(r)
                say(f"  {stage:<8} {r['seconds']:8.1f}s  peak {r['peak_rss_mb']:6,} MB  {r['rows']:>11,} rows")
            if incremental:
                b = measure("baseline", home, landed, logs, {"out": str(work / "baseline")}) | {"phase": phase}
                ing = next(r for r in records if r["phase"] == phase and r["stage"] == "ingest")["per_month"][landed[0]]
                b["crimelake_street_rows_per_s"] = round(ing["street_rows_read"] / ing["street_step_seconds"])
                b["baseline_rows_per_s"] = round(b["rows"] / b["seconds_in_process"])
                b["ingest_over_baseline"] = round(b["crimelake_street_rows_per_s"] / b["baseline_rows_per_s"], 3)
                records.append(b)
                say(f"  baseline {b['seconds_in_process']:8.1f}s  {b['rows']:,} street rows; crimelake street step "
                    f"{ing['street_step_seconds']}s: ratio {b['ingest_over_baseline']}")
    except StageFailed as e:
        console.print(f"[red]{e}[/red]")
        return 1
    targets = evaluate(records, a.months, a.compare_at)
    result = {"months": a.months, "forces": len(forces or FORCES), "compare_at": a.compare_at, "cpus": os.cpu_count(),
              "generate": gen, "stages": records, "targets": targets,
              "total_seconds": round(time.perf_counter() - t_start, 1)}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2, default=str))
    _print_table(console, [r for r in records if r["stage"] != "baseline"], targets)
    console.print(f"Results written to {RESULTS}" + (f"; work folder kept at {work}" if a.keep else ""))
    if not a.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
