"""Concentration and its movement: the law of crime concentration measured per force, group and month, and the
emerging hot spot class of every cell. Delta tables under lake/ml/, rebuilt when the gold tables change.

Both read the gold tables with pyarrow (only the columns needed, one forecast group at a time), lay the sparse
counts out over dim_cells as (cells x months) arrays and leave out the force-months the coverage ledger does not
list as complete (without a ledger: the force-months with no count rows at all)."""

from typing import TYPE_CHECKING

import dagster as dg
import pandas as pd

from crimelake import lake as delta
from crimelake.forecasting import GROUPS
from orchestration.lib.resources import LakeResource

if TYPE_CHECKING:
    from ml.cell_months import CellMonths

HOTSPOT_GROUP = "hotspots"
WINDOW = 12  # months of the emerging hot spot analysis
CELL_COLUMNS = ["h3_cell", "force", "neighbours_ring1"]

GOLD = [dg.AssetDep(dg.AssetKey(["gold", name]), partition_mapping=dg.AllPartitionMapping())
        for name in ("fct_cell_month_counts", "dim_cells", "coverage")]


# The last inputs laid out in this process, by home and versions read: the two assets of a run read the same
# versions, so the second reuses the first's arrays (about 5 s nationally) and new data is never served stale.
_LAID_OUT: dict[tuple, "CellMonths"] = {}


def _inputs(settings):
    """(CellMonths of every group, the Delta versions read) from the gold tables. The arrays are shared with the
    other asset of the run: read them, never write into them."""
    from deltalake import DeltaTable

    from crimelake.forecasting import gold_version
    from crimelake.release import gold_versions
    from ml.cell_months import CellMonths

    # The released versions (crimelake.release), as the map and the models read them.
    released = gold_versions(settings)
    counts = DeltaTable(str(settings.gold("fct_cell_month_counts")),
                        version=gold_version(settings, "fct_cell_month_counts", released))
    cells_path, coverage_path = settings.gold("dim_cells"), settings.gold("coverage")
    cells_v = gold_version(settings, "dim_cells", released)
    ledger = delta.table_exists(coverage_path)
    coverage_v = gold_version(settings, "coverage", released) if ledger else None
    versions = {"fct_cell_month_counts": counts.version(), "dim_cells": cells_v}
    if ledger:
        versions["coverage"] = coverage_v
    key = (str(settings.home), tuple(sorted(versions.items())))
    if key not in _LAID_OUT:
        _LAID_OUT.clear()
        cells = delta.read(cells_path, columns=CELL_COLUMNS, version=cells_v)
        coverage = delta.read(coverage_path, columns=["force", "month", "status"], version=coverage_v) \
            if ledger else None
        panel = CellMonths.from_arrow(counts.to_pyarrow_dataset(), cells, GROUPS, coverage)
        for array in (*panel.counts.values(), panel.observed):
            array.flags.writeable = False  # shared: a write into them raises rather than alters the other asset's
        _LAID_OUT[key] = panel
    return _LAID_OUT[key], versions


def _lineage(settings, job: str, run_id: str, versions: dict[str, int], written) -> None:
    from crimelake import lineage

    lineage.emit(settings, job, run_id,
                 inputs=[lineage.delta(settings, settings.gold(name), v) for name, v in versions.items()],
                 outputs=[lineage.delta(settings, written.path, written.version, written.rows)])


def _coverage_metadata(panel, versions) -> dict:
    forces = panel.force_slices()
    unobserved = sum(int((~panel.observed[rows.start]).sum()) for rows in forces.values())
    return {
        "feature_table_versions": dg.MetadataValue.json(versions),
        "coverage_ledger": "coverage" in versions,
        "unobserved_force_months": unobserved,
        "count_rows_outside_study_area": panel.unmatched_rows,
    }


@dg.asset(
    key=["ml", "concentration"],
    deps=GOLD,
    group_name=HOTSPOT_GROUP,
    kinds={"python", "deltalake"},
    automation_condition=dg.AutomationCondition.eager(),
    description="Crime concentration per force, forecast group and observed month: share of incidents in the top "
                "1%, 5% and 10% of cells, the Gini coefficient and the Gini generalised for sparse counts (Bernasco "
                "and Steenbeek 2017). Force-months not delivered whole have no row. Delta table lake/ml/concentration, "
                "replaced on each run.",
)
def concentration(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    import pyarrow as pa

    from ml.concentration import concentration_frame

    settings = lake.settings()
    panel, versions = _inputs(settings)
    table = pd.concat([concentration_frame(panel, g) for g in GROUPS], ignore_index=True)
    table["counts_delta_version"] = versions["fct_cell_month_counts"]
    written = delta.replace_table(settings.lake / "ml" / "concentration", pa.Table.from_pandas(table, preserve_index=False))
    _lineage(settings, "ml/concentration", context.run_id, versions, written)
    latest = table[table["month"] == table["month"].max()]
    median = latest.groupby("forecast_group")[["top1_share", "top5_share", "gini_corrected"]].median().round(3)
    return dg.MaterializeResult(metadata={
        "dagster/row_count": written.rows,
        "delta_version": written.version,
        **_coverage_metadata(panel, versions),
        "latest_month_medians_across_forces": dg.MetadataValue.md(median.to_markdown()),
    })


@dg.asset(
    key=["ml", "emerging_hotspots"],
    deps=GOLD,
    group_name=HOTSPOT_GROUP,
    kinds={"python", "deltalake"},
    automation_condition=dg.AutomationCondition.eager(),
    description="Emerging hot spot class of every cell (new, consecutive, intensifying, persistent, diminishing, "
                "sporadic, oscillating, historical hot spots and their cold counterparts, as ArcGIS Pro's Emerging "
                "Hot Spot Analysis defines them) per force and forecast group over the last 12 months, from Getis-Ord "
                "Gi* on H3 ring-1 neighbourhoods with a false-discovery-rate correction and Mann-Kendall trends. "
                "Months a force did not deliver whole are left out of its series (final_month is the last one it "
                "did). Delta table lake/ml/emerging_hotspots, replaced on each run.",
)
def emerging_hotspots(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    import numpy as np
    import pyarrow as pa

    from ml.emerging import MIN_STEPS, emerging_table
    from ml.hotspots import gi_star_matrix

    settings = lake.settings()
    panel, versions = _inputs(settings)
    months = panel.months[-WINDOW:]
    observed = panel.observed[:, -WINDOW:]
    keep = np.ones(panel.n_cells, dtype=bool)
    for force, rows in panel.force_slices().items():
        steps = int(observed[rows.start].sum())
        if steps < MIN_STEPS:
            context.log.warning(f"{force}: only {steps} observed months in the window, too few for a trend; skipped")
            keep[rows] = False
    weights = panel.ring1()
    frames = []
    for group in GROUPS:
        x = panel.counts[group][:, -WINDOW:]
        z, _, _, bins = gi_star_matrix(x, weights, observed, areas=panel.force)
        frame = emerging_table(panel.cells, months, x, bins, z, observed)[keep]
        frame.insert(0, "forecast_group", group)
        frame.insert(0, "force", panel.force[keep])
        frames.append(frame)
        context.log.info(f"classified {group}")
    table = pd.concat(frames, ignore_index=True)
    table["end_month"] = months[-1]
    table["counts_delta_version"] = versions["fct_cell_month_counts"]
    written = delta.replace_table(settings.lake / "ml" / "emerging_hotspots",
                                  pa.Table.from_pandas(table, preserve_index=False))
    _lineage(settings, "ml/emerging_hotspots", context.run_id, versions, written)
    tally = table[table["forecast_group"] == "all_crime"]["category"].value_counts()
    return dg.MaterializeResult(metadata={
        "dagster/row_count": written.rows,
        "delta_version": written.version,
        "end_month": months[-1],
        **_coverage_metadata(panel, versions),
        "all_crime_categories": dg.MetadataValue.json({k: int(v) for k, v in tally.items()}),
    })


track_hotspots_job = dg.define_asset_job(
    "track_hotspots_job",
    selection=dg.AssetSelection.groups(HOTSPOT_GROUP),
    description="Measure concentration and classify emerging hot spots over the latest gold tables.",
)


@dg.definitions
def tracking_definitions() -> dg.Definitions:
    return dg.Definitions(assets=[concentration, emerging_hotspots], jobs=[track_hotspots_job])
