"""The release: the last step of every transform run, naming the version of each gold and public table that
readers see (crimelake.release). It depends on every export, so a failed export or a failed blocking check (the
dbt tests on the marts, the disclosure audit of a public table) skips it and readers keep the previous release."""

import dagster as dg

from crimelake import release
from orchestration.defs.automation import checked_eager
from orchestration.defs.serve.public import PUBLIC_ASSETS
from orchestration.defs.transform.coverage import COVERAGE_KEY
from orchestration.defs.transform.gold import GOLD_ASSETS
from orchestration.lib.partitions import run_months
from orchestration.lib.resources import LakeResource

RELEASE_GROUP = "release"
RELEASE_KEY = dg.AssetKey(["lake", "release"])


@dg.asset(
    key=RELEASE_KEY,
    deps=[*(a.key for a in GOLD_ASSETS), COVERAGE_KEY, *(a.key for a in PUBLIC_ASSETS)],
    group_name=RELEASE_GROUP,
    kinds={"deltalake"},
    automation_condition=checked_eager(whole_table=True),
    description="Release record `lake/releases`: one row per gold and public table with the Delta version readers "
                "see, appended in one commit once every export and every blocking check before it passed. The map, "
                "the models and hot spot tracking read through the newest release. Not partitioned: one release "
                "per run, naming the months the run covered.",
)
def lake_release(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    settings = lake.settings()
    months = "..".join(run_months(context) or ())
    r = release.publish(settings, context.run_id, months)
    context.log.info(f"release {r.release_id}: {len(r.versions)} tables "
                     + ", ".join(f"{k}@v{v}" for k, v in r.versions.items()))
    return dg.MaterializeResult(metadata={
        "release_id": r.release_id,
        "tables": dg.MetadataValue.json(r.versions),
        "releases_table": dg.MetadataValue.path(str(release.releases_path(settings))),
    })


@dg.definitions
def release_definitions() -> dg.Definitions:
    return dg.Definitions(assets=[lake_release])
