"""Public outputs: aggregates only, small counts suppressed and every count rounded (crimelake.disclosure).

The public map and any open-data release read these tables, never gold or bronze.
"""

import dagster as dg
import pandas as pd
import pyarrow as pa

from crimelake import lake as delta
from crimelake.disclosure import check_public, forces_covering, protect, public_cells
from orchestration.defs.transform.dbt_assets import WAREHOUSE_POOL
from orchestration.lib.partitions import monthly_partitions
from orchestration.lib.resources import LakeResource

PUBLIC_GROUP = "public"


def cell_month_counts(counts: pd.DataFrame) -> pd.DataFrame:
    counts = counts.assign(h3_cell_r7=public_cells(counts["h3_cell"]))
    grouped = counts.groupby(["h3_cell_r7", "force", "month", "forecast_group"], as_index=False)["incident_count"].sum()
    return protect(grouped.rename(columns={"h3_cell_r7": "h3_cell"}), ["incident_count"])


def cell_month_counts_all_forces(counts: pd.DataFrame) -> pd.DataFrame:
    """One count per public cell whatever force recorded it: a cell on a force boundary, or one that holds a
    station policed by British Transport Police, is one total (rounded from the true sum), not one row per force.
    `forces` lists the forces whose area the cell covers."""
    counts = counts.assign(h3_cell_r7=public_cells(counts["h3_cell"]))
    counts = counts.assign(forces=forces_covering(counts, "h3_cell_r7"))
    grouped = counts.groupby(["h3_cell_r7", "forces", "month", "forecast_group"], as_index=False)["incident_count"].sum()
    return protect(grouped.rename(columns={"h3_cell_r7": "h3_cell"}), ["incident_count"])


def force_month_totals(counts: pd.DataFrame) -> pd.DataFrame:
    grouped = counts.groupby(["force", "month", "forecast_group"], as_index=False)["incident_count"].sum()
    return protect(grouped, ["incident_count"])


def area_quarter_indicators(areas: pd.DataFrame) -> pd.DataFrame:
    return protect(areas, count_columns(areas))


KEYS = {"h3_cell", "force", "forces", "month", "forecast_group", "lsoa_code", "quarter", "local_authority_code"}


def count_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c not in KEYS and not c.endswith("_suppressed")]


PUBLIC_TABLES = {
    "cell_month_counts": ("fct_cell_month_counts", cell_month_counts),
    "cell_month_counts_all_forces": ("fct_cell_month_counts", cell_month_counts_all_forces),
    "force_month_totals": ("fct_cell_month_counts", force_month_totals),
    "area_quarter_indicators": ("fct_area_quarter_indicators", area_quarter_indicators),
}


def build_public_asset(name: str) -> dg.AssetsDefinition:
    source, make = PUBLIC_TABLES[name]

    @dg.asset(
        key=["public", name],
        deps=[dg.AssetKey(["gold", source])],
        group_name=PUBLIC_GROUP,
        kinds={"deltalake"},
        partitions_def=monthly_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=WAREHOUSE_POOL,
        automation_condition=dg.AutomationCondition.eager(),
        check_specs=[dg.AssetCheckSpec("disclosure_rules", asset=dg.AssetKey(["public", name]), blocking=True,
                                       description="No count below the threshold, every count rounded, no "
                                                   "record-level column.")],
        description=f"Public table `lake/public/{name}` from gold/{source}: aggregates only, counts below the "
                    "disclosure threshold suppressed and every count rounded to the nearest 5.",
    )
    def _public(context: dg.AssetExecutionContext, lake: LakeResource):
        settings = lake.settings()
        frame = make(delta.read(settings.gold(source)).to_pandas())
        problems = check_public(frame, count_columns(frame))
        written = delta.replace_table(settings.lake / "public" / name, pa.Table.from_pandas(frame, preserve_index=False))
        return dg.MaterializeResult(
            metadata={"dagster/row_count": written.rows, "delta_version": written.version,
                      "suppressed_values": int(frame[[c for c in frame.columns if c.endswith("_suppressed")]]
                                               .to_numpy().sum())},
            check_results=[dg.AssetCheckResult(check_name="disclosure_rules", passed=not problems,
                                               metadata={"problems": dg.MetadataValue.json(problems)})],
        )

    return _public


PUBLIC_ASSETS = [build_public_asset(n) for n in PUBLIC_TABLES]


@dg.definitions
def public_definitions() -> dg.Definitions:
    return dg.Definitions(assets=PUBLIC_ASSETS)
