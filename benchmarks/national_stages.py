"""One stage of the national benchmark in its own process, and the measuring of it from outside.

`measure()` starts `python -m benchmarks.national_stages --stage <name> ...`, samples the resident memory of the
child's whole process tree every half second while it runs, and takes the kernel's peak for any one of its processes
(`ru_maxrss` from `os.wait4`) when it ends. The child runs the stage through the pipeline's public functions and the
Dagster definitions, writes what it did (rows, per-month figures, failures) as JSON and exits non-zero on failure.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.dbt_engines import ENGINE_STAGES, dbt_full_build

GAPS = 3  # missing and as many partial force-months
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def _materialized(instance, run_id: str) -> dict[str, dict]:
    import dagster as dg

    out = {}
    for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
        mat = e.asset_materialization
        out[mat.asset_key.to_user_string()] = {k: getattr(v, "value", v) for k, v in mat.metadata.items()}
    return out


def _rows_written(md: dict[str, dict]) -> int:
    return sum(int(m.get("dagster/row_count", 0) or 0) for m in md.values())


def _step_seconds(instance, run_id: str) -> dict[str, float]:
    return {s.step_key: s.end_time - s.start_time for s in instance.get_run_step_stats(run_id)
            if s.end_time and s.start_time}


def _layer(step_key: str) -> str:
    """The pipeline layer a transform step belongs to (its asset key's first part; the dbt op is 'dbt', the release
    record is counted with the public tables it closes)."""
    head = step_key.split("__", 1)[0]
    return {"gold": "gold", "public": "public", "lake": "public"}.get(head, "dbt")


def _run(settings, months: list[str]) -> dict:
    """What `crimelake run` does, in one process: ingest the landed months (one Dagster run each), then dbt, the gold
    exports and the public tables over them (one transform run). Seconds per layer come from Dagster's step
    statistics; the ingest's from its runs' wall time."""
    import dagster as dg

    from crimelake import lake
    from crimelake.pipeline import run_landed, run_transform

    instance = dg.DagsterInstance.get()
    built = lake.table_exists(settings.gold("fct_cell_month_counts"))
    per_month, failed, started = {}, [], {}

    def on_start(month: str, n: int) -> None:
        started[month] = time.perf_counter()

    def on_month(mr) -> None:
        md = _materialized(instance, mr.run_id)
        steps = _step_seconds(instance, mr.run_id)
        per_month[mr.month] = {
            "seconds": round(time.perf_counter() - started[mr.month], 2),
            "rows_read": sum(int(m.get("rows_read", 0)) for m in md.values()),
            "street_rows_read": int(md.get("police_uk/street", {}).get("rows_read", 0)),
            "street_step_seconds": round(steps.get("police_uk__street", float("nan")), 2),
            "failed_checks": mr.failed_checks}
        if not mr.success:
            failed.append(mr.month)

    t0 = time.perf_counter()
    runs = run_landed(settings, months=months, on_month=on_month, on_start=on_start)
    if len(runs) != len(months):
        raise RuntimeError(f"ingested {[r.month for r in runs]}, expected {months}: were they landed?")
    layers = {"ingest": round(time.perf_counter() - t0, 1)}
    t1 = time.perf_counter()
    tr = run_transform(settings, (months[0], months[-1]) if built else None)
    layers["transform"] = round(time.perf_counter() - t1, 1)
    for key, sec in _step_seconds(instance, tr.run_id).items():
        layers[_layer(key)] = round(layers.get(_layer(key), 0.0) + sec, 1)
    if not tr.success:
        failed.append(f"transform {tr.run_id}: {tr.failed_checks}")
    return {"rows": sum(m["rows_read"] for m in per_month.values()), "per_month": per_month, "layers": layers,
            "failed": failed}


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


ROUNDS = 3  # interleaved rounds of the raw baseline and of crimelake's ingest, after one warm-up round of each


def _baseline(settings, month: str, out: Path, rounds: int = ROUNDS) -> dict:
    """The raw baseline (pyarrow reads the month's street CSVs, every column as text, and writes them with
    write_deltalake) and crimelake's ingest of the same files (``ingest_partition`` as the ingest asset calls it:
    parse, contract checks, the great-expectations suite, quarantine, lineage columns and the three Delta commits,
    into a scratch home whose landing folder links to the month), alternated in this process, ``rounds`` times each
    after a warm-up round (the first writes create the tables). Medians are reported with every round."""
    import statistics

    import pyarrow as pa
    import pyarrow.csv as pacsv
    from deltalake import write_deltalake

    from crimelake.config import Settings
    from crimelake.ingest.engine import ingest_partition
    from data_contracts.loader import default_contracts
    from orchestration.defs.ingest.assets import month_suite

    c = default_contracts()[("police_uk", "street")]
    files = sorted(p for p in settings.landing_dir("police_uk", month).iterdir() if c.filename_pattern.match(p.name))
    # pyarrow lets an unbalanced quote swallow the lines after it silently: both rates are over the lines read.
    lines = sum(f.read_bytes().count(b"\n") - 1 for f in files)
    scratch = Settings.from_env(out / "home").prepare()
    linked = scratch.landing_dir("police_uk", month)
    linked.parent.mkdir(parents=True, exist_ok=True)
    if not linked.exists():
        linked.symlink_to(settings.landing_dir("police_uk", month).resolve(), target_is_directory=True)

    def raw() -> tuple[float, int]:
        t0 = time.perf_counter()
        tables = [pacsv.read_csv(f, read_options=pacsv.ReadOptions(encoding=c.encoding),
                                 parse_options=pacsv.ParseOptions(invalid_row_handler=lambda r: "skip"),
                                 convert_options=pacsv.ConvertOptions(column_types={h: pa.string() for h in c.header}))
                  for f in files]
        table = pa.concat_tables(tables, promote_options="permissive")
        write_deltalake(str(out / "baseline"), table, mode="overwrite")
        return time.perf_counter() - t0, table.num_rows

    def ours() -> tuple[float, int]:
        t0 = time.perf_counter()
        r = ingest_partition(scratch, c, month, validate=month_suite(c))
        seconds = time.perf_counter() - t0
        if not r.counts_add_up or r.held_back:
            raise RuntimeError(f"ingest of {month} did not add up or was held back: {r.held_back}")
        return seconds, r.rows_read

    raw(), ours()
    rounds_out = []
    for _ in range(rounds):
        (b, returned), (x, read) = raw(), ours()
        rounds_out.append({"baseline_seconds": round(b, 3), "crimelake_seconds": round(x, 3)})
    b = statistics.median(r["baseline_seconds"] for r in rounds_out)
    x = statistics.median(r["crimelake_seconds"] for r in rounds_out)
    return {"rows": lines, "rows_returned": returned, "crimelake_rows_read": read, "seconds_in_process": b,
            "crimelake_seconds_in_process": x, "rounds": rounds_out, "failed": []}


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
    if stage == "run":
        return _run(settings, months)
    if stage == "models":
        return _models(settings)
    if stage == "hotspots":
        return _hotspots(settings)
    if stage == "baseline":
        return _baseline(settings, months[0], Path(extra["out"]))
    if stage in ENGINE_STAGES.values():
        return dbt_full_build(settings.home, stage.removeprefix("dbt_"), extra.get("through"))
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


def _steal_seconds() -> float:
    """Seconds of all cores the hypervisor has given to other guests since boot (0 where not reported)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def measure(stage: str, home: Path, months: list[str], logs: Path, extra: dict | None = None) -> dict:
    """Run one stage in a child process; wall seconds, peak memory and what the stage reported."""
    logs.mkdir(parents=True, exist_ok=True)
    name = f"{stage}-{months[0]}-{months[-1]}"
    out, log = logs / f"{name}.json", logs / f"{name}.log"
    cmd = [sys.executable, "-m", "benchmarks.national_stages", "--stage", stage, "--home", str(home),
           "--months", ",".join(months), "--out", str(out), "--extra", json.dumps(extra or {})]
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "DAGSTER_HOME", "CRIMELAKE_HOME")}
    stolen = _steal_seconds()
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
    stolen = _steal_seconds() - stolen
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
            "tree_rss_mb": round(tree / 1024),
            # CPU time of the stage's processes, and the time the machine's host gave its cores to others meanwhile
            # (/proc/stat "steal"): wall time on a shared machine varies with the second, the first much less.
            "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1), "steal_seconds": round(stolen, 1), "rows": rows, "rows_per_s": round(rows / seconds) if seconds else None,
            **{k: v for k, v in report.items() if k not in ("rows", "failed")}}


class StageFailed(RuntimeError):
    pass


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.national_stages")
    p.add_argument("--stage", required=True)
    p.add_argument("--home", type=Path, required=True)
    p.add_argument("--months", required=True, help="comma-separated YYYY-MM")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--extra", default="{}", help="JSON: stage-specific arguments")
    a = p.parse_args(argv)
    report = run_stage(a.stage, a.home, a.months.split(","), json.loads(a.extra))
    a.out.write_text(json.dumps(report, default=str))
    return 1 if report.get("failed") else 0


if __name__ == "__main__":
    sys.exit(main())
