"""Jobs over the transform layer: dbt models and their gold exports."""

import dagster as dg

from orchestration.lib.partitions import monthly_partitions

TRANSFORM_GROUPS = ("reference", "staging", "intermediate", "marts", "gold", "public", "release")

transform_lakehouse_job = dg.define_asset_job(
    "transform_lakehouse_job",
    selection=dg.AssetSelection.groups(*TRANSFORM_GROUPS),
    partitions_def=monthly_partitions,
    description="Run dbt (staging, intermediate, marts, tests) for a range of months and export the gold tables.",
)


@dg.definitions
def transform_jobs() -> dg.Definitions:
    return dg.Definitions(jobs=[transform_lakehouse_job])
