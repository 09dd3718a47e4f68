"""Gold Delta tables: the marts that forecasting and the map read, exported from the warehouse.

Every consumer reads a versioned, time-travelable Delta table instead of the DuckDB file (which one process at a
time may open). A mart with a month is partitioned by it and a run replaces only the months of its partition range
(one commit, streamed from DuckDB in record batches); the small whole-table marts are one unpartitioned asset
each, replaced whole by every run. Each export records the Delta version it made.
"""

import dagster as dg

from orchestration.defs.automation import checked_eager
from orchestration.defs.transform.dbt_assets import WAREHOUSE_POOL
from orchestration.lib.partitions import monthly_partitions
from orchestration.lib.resources import LakeResource
from orchestration.lib.warehouse import export_engine_mart

# Mart -> the month column it is partitioned by (None: replaced whole).
GOLD_MARTS = {
    "fct_incidents": "month",
    "fct_cell_month_counts": "month",
    "dim_cells": None,
    "dim_forces": None,
    "dim_crime_categories": None,
    "fct_area_quarter_indicators": None,
    "fct_outcomes": "outcome_month",
    "fct_stop_search_cell_months": "month",
}


def export(context: dg.AssetExecutionContext, settings, mart: str, table: str, partition_column: str | None,
           whole: bool = False) -> dict:
    """Export marts.<mart> to gold/<table> for the run's months; lineage emitted, metadata returned."""
    from crimelake import lineage

    months = None if whole or not context.has_partition_key_range else tuple(context.partition_key_range)
    written, replaced, source = export_engine_mart(settings, mart, settings.gold(table),
                                                   partition_column=partition_column, months=months)
    lineage.emit(settings, f"gold/{table}", context.run_id, inputs=[source],
                 outputs=[lineage.delta(settings, written.path, written.version, written.rows)])
    context.log.info(f"exported marts.{mart} ({replaced}): {written.rows} rows to {written.path} "
                     f"(Delta version {written.version})")
    return {
        "dagster/row_count": written.rows,
        "delta_version": written.version,
        "replaced": replaced,
        "table_uri": dg.MetadataValue.path(str(written.path)),
        "source_table": f"marts.{mart}",
    }


# What every gold export shares: its group, kinds, the warehouse pool and an eager refresh after the marts (never
# past a failed blocking check). A whole-table mart's export is one unpartitioned asset, replaced whole.
GOLD_ASSET_ARGS = dict(
    group_name="gold",
    kinds={"deltalake", "duckdb"},
    pool=WAREHOUSE_POOL,
    automation_condition=checked_eager(whole_table=True),
)
# A mart with a month is exported by month: monthly partitions, a range of them run as one.
MONTHLY_GOLD_ASSET_ARGS = dict(
    GOLD_ASSET_ARGS,
    partitions_def=monthly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    automation_condition=checked_eager(),
)


def build_gold_asset(mart: str, partition_column: str | None) -> dg.AssetsDefinition:
    how = (f"partitioned by {partition_column}; a run replaces the months of its partition range only"
           if partition_column else "one table, not partitioned, replaced whole on each run")

    @dg.asset(
        key=["gold", mart],
        deps=[dg.AssetKey(["marts", mart])],
        **(MONTHLY_GOLD_ASSET_ARGS if partition_column else GOLD_ASSET_ARGS),
        description=f"Gold Delta table `lake/gold/{mart}`: the dbt mart `marts.{mart}`, {how}. Older versions "
                    "stay readable by time travel.",
    )
    def _gold(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata=export(context, lake.settings(), mart, mart, partition_column,
                                                    whole=partition_column is None))

    return _gold


GOLD_ASSETS = [build_gold_asset(m, col) for m, col in GOLD_MARTS.items()]


@dg.definitions
def gold_definitions() -> dg.Definitions:
    return dg.Definitions(assets=GOLD_ASSETS)
