"""Gold Delta tables: the marts that forecasting and the map read, exported from the warehouse.

Every consumer reads a versioned, time-travelable Delta table instead of the DuckDB file (which one process at a
time may open). Each export replaces the table in one commit and records the Delta version it made.
"""

import dagster as dg
import duckdb

from crimelake.lake import replace_table
from orchestration.defs.transform.dbt_assets import WAREHOUSE_POOL
from orchestration.lib.partitions import monthly_partitions
from orchestration.lib.resources import LakeResource

GOLD_MARTS = (
    "fct_incidents",
    "fct_cell_month_counts",
    "dim_cells",
    "dim_forces",
    "dim_crime_categories",
    "fct_area_quarter_indicators",
    "fct_outcomes",
    "fct_stop_search_cell_months",
)


def build_gold_asset(mart: str) -> dg.AssetsDefinition:
    @dg.asset(
        key=["gold", mart],
        deps=[dg.AssetKey(["marts", mart])],
        group_name="gold",
        kinds={"deltalake", "duckdb"},
        partitions_def=monthly_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=WAREHOUSE_POOL,
        automation_condition=dg.AutomationCondition.eager(),
        description=f"Gold Delta table `lake/gold/{mart}`: the dbt mart `marts.{mart}` exported whole after each "
                    "build, so readers get a versioned table. A run replaces the table; older versions stay "
                    "readable by time travel.",
    )
    def _gold(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        settings = lake.settings()
        con = duckdb.connect(str(settings.warehouse), read_only=True)
        try:
            table = con.sql(f"select * from marts.{mart}").to_arrow_table()
        finally:
            con.close()
        written = replace_table(settings.gold(mart), table)
        from crimelake import lineage

        lineage.emit(settings, f"gold/{mart}", context.run_id, inputs=[lineage.warehouse(settings, f"marts.{mart}")],
                     outputs=[lineage.delta(settings, written.path, written.version, written.rows)])
        context.log.info(f"exported marts.{mart}: {written.rows} rows to {written.path} (Delta version {written.version})")
        return dg.MaterializeResult(metadata={
            "dagster/row_count": written.rows,
            "delta_version": written.version,
            "table_uri": dg.MetadataValue.path(str(written.path)),
            "source_table": f"marts.{mart}",
        })

    return _gold


GOLD_ASSETS = [build_gold_asset(m) for m in GOLD_MARTS]


@dg.definitions
def gold_definitions() -> dg.Definitions:
    return dg.Definitions(assets=GOLD_ASSETS)
