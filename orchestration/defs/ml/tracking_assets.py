"""Concentration and its movement: the law of crime concentration measured per force, group and month, and the
emerging hot spot class of every cell. Delta tables under lake/ml/, rebuilt when the gold tables change."""

import dagster as dg
import pandas as pd

from crimelake import lake as delta
from crimelake.forecasting import GROUPS
from orchestration.lib.resources import LakeResource

HOTSPOT_GROUP = "hotspots"

GOLD = [dg.AssetDep(dg.AssetKey(["gold", name]), partition_mapping=dg.AllPartitionMapping())
        for name in ("fct_cell_month_counts", "dim_cells")]


def _lineage(settings, job: str, run_id: str, counts_version: int, cells_version: int, written) -> None:
    from crimelake import lineage

    lineage.emit(settings, job, run_id,
                 inputs=[lineage.delta(settings, settings.gold("fct_cell_month_counts"), counts_version),
                         lineage.delta(settings, settings.gold("dim_cells"), cells_version)],
                 outputs=[lineage.delta(settings, written.path, written.version, written.rows)])


def _gold(settings, name: str) -> tuple[pd.DataFrame, int]:
    path = settings.gold(name)
    return delta.read(path).to_pandas(), delta.version(path)


@dg.asset(
    key=["ml", "concentration"],
    deps=GOLD,
    group_name=HOTSPOT_GROUP,
    kinds={"python", "deltalake"},
    automation_condition=dg.AutomationCondition.eager(),
    description="Crime concentration per force, forecast group and month: share of incidents in the top 1%, 5% "
                "and 10% of cells, the Gini coefficient and the Gini generalised for sparse counts (Bernasco and "
                "Steenbeek 2017). Delta table lake/ml/concentration, replaced on each run.",
)
def concentration(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    import pyarrow as pa

    from ml.concentration import concentration as measure

    settings = lake.settings()
    counts, counts_version = _gold(settings, "fct_cell_month_counts")
    cells, cells_version = _gold(settings, "dim_cells")
    table = measure(counts, cells)
    table["counts_delta_version"] = counts_version
    written = delta.replace_table(settings.lake / "ml" / "concentration", pa.Table.from_pandas(table, preserve_index=False))
    _lineage(settings, "ml/concentration", context.run_id, counts_version, cells_version, written)
    latest = table[table["month"] == table["month"].max()]
    median = latest.groupby("forecast_group")[["top1_share", "top5_share", "gini_corrected"]].median().round(3)
    return dg.MaterializeResult(metadata={
        "dagster/row_count": written.rows,
        "delta_version": written.version,
        "feature_table_versions": dg.MetadataValue.json({"fct_cell_month_counts": counts_version,
                                                         "dim_cells": cells_version}),
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
                "Delta table lake/ml/emerging_hotspots, replaced on each run.",
)
def emerging_hotspots(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    import pyarrow as pa

    from ml.emerging import emerging_hotspots as classify

    settings = lake.settings()
    counts, counts_version = _gold(settings, "fct_cell_month_counts")
    cells, _ = _gold(settings, "dim_cells")
    end = counts["month"].max()
    frames = []
    for force in sorted(counts["force"].unique()):
        for group in GROUPS:
            months = counts.loc[counts["force"] == force, "month"].nunique()
            if months < 3:
                context.log.warning(f"{force}: only {months} months, too few for a trend; skipped")
                continue
            frame = classify(counts, cells, force, group, window=min(12, months), end_month=end)
            frame.insert(0, "forecast_group", group)
            frame.insert(0, "force", force)
            frames.append(frame)
        context.log.info(f"classified {force}")
    table = pd.concat(frames, ignore_index=True)
    table["end_month"] = end
    table["counts_delta_version"] = counts_version
    written = delta.replace_table(settings.lake / "ml" / "emerging_hotspots",
                                  pa.Table.from_pandas(table, preserve_index=False))
    _lineage(settings, "ml/emerging_hotspots", context.run_id, counts_version, delta.version(settings.gold("dim_cells")),
             written)
    tally = table[table["forecast_group"] == "all_crime"]["category"].value_counts()
    return dg.MaterializeResult(metadata={
        "dagster/row_count": written.rows,
        "delta_version": written.version,
        "end_month": end,
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
