"""Ingest benchmark: one national-scale month, crimelake against a plain pyarrow + write_deltalake script.

The baseline reads the same landed files (duplicate deliveries included, as a plain script would) with pyarrow's
CSV reader (every column as text, bad lines skipped) and writes one Delta table per source entity. crimelake does
more (typing, every contract rule, reprojection, H3 cells, quarantine with raw text, rejected-file records, the
great-expectations suite); the ratio says what that costs.

Both are run `repeats` times, alternating, each time into empty tables, and the best run of each counts: on a
shared machine the best run is the one least slowed by other work. CPU seconds (this process, all its threads) are
reported beside wall seconds, with the rows-per-CPU-second ratio, which other processes disturb less.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
from deltalake import write_deltalake

from crimelake.config import Settings
from crimelake.ingest.engine import bronze_schema, ensure_bronze_tables, ingest_partition
from crimelake.ingest.landing import landed_months
from data_contracts.loader import default_contracts


def baseline(settings: Settings, out: Path) -> tuple[float, int]:
    rows = 0
    t0 = time.perf_counter()
    for c in default_contracts().values():
        months = landed_months(settings, c.source)
        if not months:  # a source the simulator does not deliver (crimelake's side reads nothing of it either)
            continue
        folder = settings.landing_dir(c.source, months[0])
        tables = []
        for f in sorted(folder.iterdir()):
            if not c.filename_pattern.match(f.name):
                continue
            try:
                t = pacsv.read_csv(
                    f,
                    read_options=pacsv.ReadOptions(encoding=c.encoding),
                    parse_options=pacsv.ParseOptions(delimiter=c.delimiter, invalid_row_handler=lambda r: "skip"),
                    convert_options=pacsv.ConvertOptions(column_types={h: pa.string() for h in c.header},
                                                         include_columns=c.header),
                )
            except (pa.ArrowInvalid, KeyError):
                continue
            tables.append(t)
        if tables:
            t = pa.concat_tables(tables, promote_options="permissive")
            rows += t.num_rows
            write_deltalake(str(out / c.source / c.entity), t, mode="overwrite")
    return time.perf_counter() - t0, rows


def crimelake_engine(settings: Settings) -> tuple[float, float, int, int, int]:
    """Seconds in all, seconds of them in the great-expectations step (the ingest asset's own blocking suite, which
    runs while the month's bronze file is written, so the two overlap), rows read, loaded and quarantined. The
    bronze tables exist, empty, before the clock starts, as they do for every month after a home's first."""
    from orchestration.defs.ingest.assets import month_suite

    read = loaded = quarantined = 0
    gx_s = [0.0]
    ensure_bronze_tables(settings)

    def validator(c):
        suite = month_suite(c)

        def validate(r):
            t1 = time.perf_counter()
            report = suite(r)
            gx_s[0] += time.perf_counter() - t1
            return report
        return validate

    t0 = time.perf_counter()
    for c in default_contracts().values():
        for month in landed_months(settings, c.source):
            # As the ingest asset runs it.
            r = ingest_partition(settings, c, month, validate=validator(c))
            read += r.rows_read
            loaded += r.rows_loaded
            quarantined += r.rows_quarantined
    return time.perf_counter() - t0, gx_s[0], read, loaded, quarantined


def warm() -> None:
    """Pay one-off costs before timing: importing great-expectations (seconds, more without bytecode caches),
    its context and every contract's suite, on empty partitions."""
    from data_contracts.expectations import validate_frame

    for c in default_contracts().values():
        validate_frame(c, bronze_schema(c).empty_table(), rows_read=0, rows_quarantined=0, before_filtering=True)


def main(workdir: Path | None = None, months: int = 1, repeats: int = 2) -> dict:
    from crimelake.simulate import generate

    work = Path(workdir or tempfile.mkdtemp(prefix="crimelake-bench-"))
    settings = Settings.from_env(work / "home").prepare()
    t0 = time.perf_counter()
    summary = generate(settings.landing, scale="national", months=months, start="2024-01")
    gen_s = time.perf_counter() - t0
    files = len(summary.files)
    csvs = [p for p in settings.landing.rglob("*.csv") if p.parent.name != "reference"]
    mb = sum(p.stat().st_size for p in csvs) / 1e6
    data_lines = sum(max(sum(1 for _ in p.open("rb")) - 1, 0) for p in csvs)

    # Warm both paths on nothing-sized work so imports and first-call costs are not timed.
    warm()

    base, cl = [], []
    for i in range(repeats):
        c0 = time.process_time()
        base_s, base_rows = baseline(settings, work / f"baseline-{i}")
        base.append((base_s, time.process_time() - c0, base_rows))
        shutil.rmtree(settings.lake, ignore_errors=True)
        c0 = time.process_time()
        run = crimelake_engine(settings)
        cl.append((run, time.process_time() - c0))
    base_s = min(b[0] for b in base)
    base_cpu = min(b[1] for b in base)
    base_rows = base[0][2]
    (cl_s, gx_s, read, loaded, quarantined), _ = min(cl, key=lambda r: r[0][0])
    cl_cpu = min(r[1] for r in cl)
    result = {
        "files": files,
        "megabytes": round(mb, 1),
        "generate_seconds": round(gen_s, 1),
        "input_data_lines": data_lines,
        "repeats": repeats,
        "baseline_seconds": round(base_s, 2),
        "baseline_cpu_seconds": round(base_cpu, 2),
        "baseline_rows": base_rows,
        "baseline_rows_per_second": round(base_rows / base_s),
        # pyarrow's reader lets an unbalanced quote swallow the lines after it, silently: rows it never returned.
        "baseline_rows_missing": data_lines - base_rows,
        "crimelake_seconds": round(cl_s, 2),
        "crimelake_cpu_seconds": round(cl_cpu, 2),
        "crimelake_rows_read": read,
        "crimelake_rows_loaded": loaded,
        "crimelake_rows_quarantined": quarantined,
        "crimelake_rows_per_second": round(read / cl_s),
        "crimelake_expectations_seconds": round(gx_s, 2),
        "ratio_crimelake_to_baseline_time": round(cl_s / base_s, 2),
        "ratio_crimelake_to_baseline_rows_per_second": round((read / cl_s) / (base_rows / base_s), 2),
        "ratio_crimelake_to_baseline_rows_per_cpu_second": round((read / cl_cpu) / (base_rows / base_cpu), 2),
        # The same rate counting every data line each side read: the baseline read all of them, returned fewer.
        "ratio_crimelake_to_baseline_lines_per_second": round((read / cl_s) / (data_lines / base_s), 2),
        "counts_add_up": read == loaded + quarantined,
    }
    return result


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
