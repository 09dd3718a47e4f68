"""dbt models as Dagster assets, downstream of the ingest assets; dbt tests become asset checks.

Sources are keyed [source, table], the same keys as the ingest assets, so staging sits right after ingest in one
lineage graph. A run over months M1..M2 passes them to dbt as vars (month_from, month_to): incremental models
rebuild those months only, a few months per dbt invocation when the range is long; `full_refresh` rebuilds
everything.
"""

import json
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets

from orchestration.defs.automation import checked_eager
from orchestration.lib.dbt import DBT_DIR, DBT_EXECUTABLE, dbt_project, prepare_if_dev
from orchestration.lib.dbt_checks import describe
from orchestration.lib.partitions import monthly_partitions
from orchestration.lib.resources import LakeResource

WAREHOUSE_POOL = "warehouse"


class CrimelakeDbtTranslator(DagsterDbtTranslator):
    """Groups models by layer (staging, intermediate, marts, seeds); each model rebuilds eagerly when the months
    it reads are updated and their blocking checks passed, so the lakehouse refreshes as data lands and a month held
    back at ingest goes no further."""

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project).replace_attributes(
            automation_condition=checked_eager()
        )
        node = manifest["nodes"].get(unique_id) or manifest["sources"].get(unique_id) or {}
        if node.get("resource_type") == "seed":
            return spec.replace_attributes(group_name="reference")
        fqn = node.get("fqn", [])
        if node.get("resource_type") == "model" and len(fqn) > 2:
            return spec.replace_attributes(group_name=fqn[1])
        return spec

    def get_asset_check_spec(self, asset_spec: dg.AssetSpec, manifest: Mapping[str, Any], unique_id: str,
                             project) -> dg.AssetCheckSpec | None:
        spec = super().get_asset_check_spec(asset_spec, manifest, unique_id, project)
        if spec is None:
            return None
        return spec._replace(description=describe(manifest["nodes"][unique_id]))


class DbtBuildConfig(dg.Config):
    full_refresh: bool = False


# Under `dagster dev` the manifest is parsed only when a project file is newer than it: code-location loads and run
# workers read a fresh manifest as it is, never running dbt or waiting on a lock.
prepare_if_dev()
if not dbt_project.manifest_path.exists():
    raise FileNotFoundError(
        f"{dbt_project.manifest_path} is missing: build it with `make install` (dbt parse), or call "
        "orchestration.lib.dbt.ensure_manifest() before loading the definitions"
    )


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=CrimelakeDbtTranslator(),
    partitions_def=monthly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=WAREHOUSE_POOL,
)
def crimelake_dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, lake: LakeResource,
                         config: DbtBuildConfig):
    from crimelake.ingest.engine import ensure_bronze_tables

    settings = lake.settings()  # points CRIMELAKE_HOME (read by the dbt profile and sources) at the home
    created = ensure_bronze_tables(settings)
    if created:
        context.log.info(f"no delivery yet from {', '.join(created)}: read as empty tables")
    if config.full_refresh:
        args = ["build", "--full-refresh"]
    else:
        first, last = context.partition_key_range
        chunks = month_chunks(first, last, chunk_months())
        # A long range (a first load, a backfill) is built a few months at a time, so DuckDB's working set is a
        # few months of data whatever the history: every chunk but the last builds the models without tests;
        # the last builds and tests, and its events are the run's.
        for a, b in chunks[:-1]:
            context.log.info(f"dbt: building {a}..{b} (models only; tests run with the last months)")
            dbt.cli(["build", "--exclude-resource-type", "test", "--vars",
                     json.dumps({"month_from": a, "month_to": b})], context=context).wait()
        a, b = chunks[-1]
        args = ["build", "--vars", json.dumps({"month_from": a, "month_to": b})]
    materialized = []
    for event in dbt.cli(args, context=context).stream():
        key = getattr(event, "asset_key", None)
        if key is not None:
            materialized.append(key)
        yield event
    _emit_lineage(settings, context.run_id, materialized)


def chunk_months() -> int:
    """Months per dbt invocation over a long range: `CRIMELAKE_DBT_CHUNK_MONTHS`, default 3 (about 1.5 million
    street rows nationally, well inside DuckDB's default memory cap)."""
    from crimelake.config import env_count

    return env_count("CRIMELAKE_DBT_CHUNK_MONTHS", 3)


def month_chunks(first: str, last: str, size: int) -> list[tuple[str, str]]:
    """`first`..`last` (YYYY-MM, inclusive) cut into consecutive ranges of at most `size` months."""
    from ml.cell_months import month_range

    months = month_range(first, last)
    return [(months[i], months[min(i + size, len(months)) - 1]) for i in range(0, len(months), size)]


def _emit_lineage(settings, run_id: str, keys) -> None:
    """One OpenLineage event per dbt node built: its parents (bronze Delta tables or warehouse relations) in,
    its warehouse relation out."""
    from crimelake import lake as delta
    from crimelake import lineage

    manifest = json.loads(dbt_project.manifest_path.read_text())
    by_key = {}
    for uid, node in manifest["nodes"].items():
        if node["resource_type"] in ("model", "seed"):
            by_key[(node["schema"], node["name"])] = uid

    def dataset(uid: str):
        if uid.startswith("source."):
            src = manifest["sources"][uid]
            path = settings.bronze(src["source_name"], src["name"])
            return lineage.delta(settings, path, delta.version(path))
        node = manifest["nodes"][uid]
        return lineage.warehouse(settings, f"{node['schema']}.{node['name']}")

    for key in keys:
        uid = by_key.get(tuple(key.path[-2:]))
        if uid is None:
            continue
        parents = [dataset(p) for p in manifest["parent_map"].get(uid, []) if p.startswith(("source.", "model.", "seed."))]
        lineage.emit(settings, "/".join(key.path), run_id, inputs=parents, outputs=[dataset(uid)])


@dg.definitions
def dbt_definitions() -> dg.Definitions:
    return dg.Definitions(
        assets=[crimelake_dbt_models],
        resources={"dbt": DbtCliResource(project_dir=str(DBT_DIR), profiles_dir=str(DBT_DIR),
                                         dbt_executable=DBT_EXECUTABLE)},
    )
