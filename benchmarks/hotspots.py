"""Hot spot tracking benchmark: concentration, Gi* and emerging hot spot classes on a synthetic national-size grid.

The grid is every H3 resolution-9 child of the 77 resolution-5 cells nearest the Midlands (184,877 cells with their real
ring-1 neighbours), split into 44 contiguous forces, with 36 months of Poisson counts for the five forecast
groups (cell rates drawn from a gamma, so there are real clusters) and a few force-months missing. The counts
are written as a sparse Delta table, as ``gold/fct_cell_month_counts`` is.

Measured in one command:

- ``per_cell`` / ``vectorised_small``: the per-cell reference (:mod:`ml.hotspot_reference`: esda's G_Local one
  month at a time, pymannkendall and the ArcGIS rules one cell at a time, as the pipeline used to run) and the
  vectorised code on the same subsample of whole forces (a few thousand cells, one group), with the classes
  compared cell by cell.
- ``national``: the vectorised pipeline of the tracking assets on the full grid in a fresh process (layout from
  Delta, weights, Gi*, Mann-Kendall, classes and concentration for all five groups over all 36 months), with its
  wall time and peak resident memory.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h3
import numpy as np

GROUPS = ("all_crime", "asb", "violence", "theft", "weapons")
GROUP_SHARE = {"all_crime": 1.0, "asb": 0.35, "violence": 0.3, "theft": 0.25, "weapons": 0.02}
N_PARENTS, N_FORCES, N_MONTHS, FIRST_MONTH = 77, 44, 36, "2022-01"


def national_grid(n_parents: int = N_PARENTS, n_forces: int = N_FORCES):
    """(cell ids, force per cell, neighbours_ring1 strings): res-9 children of res-5 cells over England."""
    centre = h3.latlng_to_cell(52.6, -1.5, 5)  # the Midlands: a contiguous block of England around it
    parents = sorted(h3.grid_disk(centre, 5), key=lambda c: (h3.grid_distance(centre, c), c))[:n_parents]
    order = np.argsort([h3.cell_to_latlng(p)[0] * 10 + h3.cell_to_latlng(p)[1] for p in parents])
    force_of_parent = {parents[i]: f"force-{k * n_forces // len(parents):02d}" for k, i in enumerate(order)}
    cells, forces = [], []
    for p in parents:
        kids = sorted(h3.cell_to_children(p, 9))
        cells += kids
        forces += [force_of_parent[p]] * len(kids)
    rings = [",".join(sorted(h3.grid_ring(c, 1))) for c in cells]
    return np.asarray(cells, dtype=object), np.asarray(forces, dtype=object), np.asarray(rings, dtype=object)


def synthetic_counts(n_cells: int, seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    rate = rng.gamma(0.4, 1.5, size=(n_cells, 1)) * np.exp(rng.normal(0, 0.1, size=(1, N_MONTHS)))
    return {g: rng.poisson(rate * s).astype(np.int64) for g, s in GROUP_SHARE.items()}


def missing_force_months(forces: np.ndarray, seed: int = 2) -> set[tuple[str, int]]:
    rng = np.random.default_rng(seed)
    names = sorted(set(forces))
    return {(names[i], int(t)) for i, t in zip(rng.choice(len(names), 6), rng.choice(N_MONTHS, 6), strict=True)}


def write_lake(folder: Path, cells, forces, rings, counts, missing) -> None:
    """Sparse counts and dim_cells as Delta tables (the months in ``missing`` have no rows for that force)."""
    import pyarrow as pa
    from deltalake import write_deltalake

    from ml.cell_months import month_range

    months = np.asarray(month_range(FIRST_MONTH, "2024-12"), dtype=object)
    dropped = np.zeros((len(cells), N_MONTHS), dtype=bool)
    for force, t in missing:
        dropped[forces == force, t] = True
    for k, group in enumerate(GROUPS):
        rows, cols = np.nonzero((counts[group] > 0) & ~dropped)
        table = pa.table({"h3_cell": pa.array(cells[rows], pa.string()), "force": pa.array(forces[rows], pa.string()),
                          "month": pa.array(months[cols], pa.string()),
                          "forecast_group": pa.array(np.full(rows.size, group, dtype=object), pa.string()),
                          "incident_count": pa.array(counts[group][rows, cols])})
        write_deltalake(str(folder / "fct_cell_month_counts"), table, mode="overwrite" if k == 0 else "append")
    write_deltalake(str(folder / "dim_cells"), pa.table({"h3_cell": cells.astype(str), "force": forces.astype(str),
                                                          "neighbours_ring1": rings.astype(str)}))


def run_national(folder: str) -> dict:
    """The tracking assets' computation over the Delta tables in ``folder`` (run in a fresh process)."""
    import resource

    from deltalake import DeltaTable

    from ml.cell_months import CellMonths
    from ml.concentration import concentration_frame
    from ml.emerging import emerging_table
    from ml.hotspots import gi_star_matrix

    timings = {}
    t0, cpu0 = time.perf_counter(), time.process_time()
    cells = DeltaTable(f"{folder}/dim_cells").to_pyarrow_table(columns=["h3_cell", "force", "neighbours_ring1"])
    panel = CellMonths.from_arrow(DeltaTable(f"{folder}/fct_cell_month_counts").to_pyarrow_dataset(), cells, GROUPS)
    timings["layout_s"] = time.perf_counter() - t0
    t = time.perf_counter()
    weights = panel.ring1()
    timings["weights_s"] = time.perf_counter() - t
    rows = 0
    for group in GROUPS:
        t = time.perf_counter()
        x = panel.counts[group]
        z, _, _, bins = gi_star_matrix(x, weights, panel.observed, areas=panel.force)
        timings[f"{group}_gi_star_s"] = time.perf_counter() - t
        t = time.perf_counter()
        rows += len(emerging_table(panel.cells, panel.months, x, bins, z, panel.observed))
        timings[f"{group}_emerging_s"] = time.perf_counter() - t
        t = time.perf_counter()
        concentration_frame(panel, group)
        timings[f"{group}_concentration_s"] = time.perf_counter() - t
    total = time.perf_counter() - t0
    return {"cells": panel.n_cells, "months": len(panel.months), "forces": len(panel.force_slices()),
            "unobserved_force_months": int(sum((~panel.observed[s.start]).sum() for s in panel.force_slices().values())),
            "classified_rows": rows, "seconds": round(total, 2), "cpu_seconds": round(time.process_time() - cpu0, 2),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "steps": {k: round(v, 2) for k, v in timings.items()}}


def compare_small(cells, forces, rings, counts, missing, n_cells: int = 4000) -> dict:
    """Per-cell reference against the vectorised code on whole forces totalling about ``n_cells`` cells."""
    from ml import hotspot_reference as reference
    from ml.cell_months import ring1_matrix
    from ml.emerging import CATEGORIES, classify_cells
    from ml.hotspots import gi_star_matrix
    from ml.trend import mann_kendall_matrix

    names = sorted(set(forces))
    chosen, size = [], 0
    for name in names:
        if size >= n_cells:
            break
        chosen.append(name)
        size += int((forces == name).sum())
    sel = np.isin(forces, chosen)
    x = counts["all_crime"][sel].astype(float)
    observed = np.ones(x.shape, dtype=bool)
    for force, t in missing:
        observed[forces[sel] == force, t] = False
    w = ring1_matrix(cells[sel], rings[sel], areas=forces[sel])

    t0, cpu0 = time.perf_counter(), time.process_time()
    expected = []
    for force in chosen:
        rows = np.flatnonzero(forces[sel] == force)
        sub_w = w[rows][:, rows]
        expected += reference.emerging_classes(x[rows], sub_w, observed[rows])
        for row in rows:  # the count trend, as the per-cell pipeline also tested it
            reference.mann_kendall(np.where(observed[row], x[row], np.nan))
    per_cell, per_cell_cpu = time.perf_counter() - t0, time.process_time() - cpu0

    t0, cpu0 = time.perf_counter(), time.process_time()
    z, _, _, bins = gi_star_matrix(x, w, observed, areas=forces[sel])
    got = np.asarray(CATEGORIES, dtype=object)[classify_cells(bins, z, observed)["category_code"]]
    mann_kendall_matrix(np.where(observed, x, np.nan))
    vectorised, vectorised_cpu = time.perf_counter() - t0, time.process_time() - cpu0
    order = np.concatenate([np.flatnonzero(forces[sel] == f) for f in chosen])
    same = int((got[order] == np.asarray(expected, dtype=object)).sum())
    return {"cells": int(sel.sum()), "forces": len(chosen), "months": N_MONTHS,
            "per_cell_s": round(per_cell, 2), "vectorised_s": round(vectorised, 3),
            "per_cell_cpu_s": round(per_cell_cpu, 2), "vectorised_cpu_s": round(vectorised_cpu, 3),
            "speedup": round(per_cell / vectorised, 1), "classes_equal": f"{same}/{int(sel.sum())}"}


def main(workdir: Path | None = None) -> dict:
    t0 = time.perf_counter()
    cells, forces, rings = national_grid()
    counts = synthetic_counts(len(cells))
    missing = missing_force_months(forces)
    setup = time.perf_counter() - t0
    small = compare_small(cells, forces, rings, counts, missing)
    with tempfile.TemporaryDirectory(prefix="crimelake-hotspots-", dir=workdir) as tmp:
        write_lake(Path(tmp), cells, forces, rings, counts, missing)
        del counts
        code = f"import json; from benchmarks.hotspots import run_national; print(json.dumps(run_national({tmp!r})))"
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).resolve().parents[1])
        national = json.loads(done.stdout.strip().splitlines()[-1])
    # Wall times suffer when the machine is shared; CPU seconds give the ratio that does not.
    scale = national["cells"] / small["cells"]
    return {"setup_s": round(setup, 1), "subsample_one_group": small, "national_all_groups": national,
            "per_cell_estimate_one_group_national_s": round(small["per_cell_s"] * scale),
            "per_cell_estimate_one_group_national_cpu_s": round(small["per_cell_cpu_s"] * scale),
            "cpu_ratio_per_cell_one_group_to_vectorised_all_groups": round(
                small["per_cell_cpu_s"] * scale / national["cpu_seconds"], 1)}


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
