"""dbt models as Dagster assets, downstream of the ingest assets; dbt tests become asset checks.

Sources are keyed [source, table], the same keys as the ingest assets, so staging sits right after ingest in one
lineage graph. The models rebuilt by month (configured with the project's `monthly_incremental` macro) are
partitioned by month: a run over months M1..M2 passes them to dbt as vars (month_from, month_to) and rebuilds those
months only, a few months per dbt invocation when the range is long. The seeds and the table models are one table
each, rebuilt whole on every run, so they are not partitioned: the seeds run before the monthly models (which read
them), the tables after (they read the monthly models). `full_refresh` rebuilds everything.

With CRIMELAKE_ENGINE=spark the same steps run dbt-spark over Spark Connect (SPARK_REMOTE): the first dbt step of a
run builds the whole project on Spark and each step reports its own nodes from that build (see
orchestration.lib.spark_build for why a build on Sail is one full build per run).
"""

import json
from collections.abc import Mapping
from contextlib import contextmanager
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets

from orchestration.defs.automation import checked_eager
from orchestration.lib.dbt import dbt_project, dbt_resource, invocation_target, months_in_env, prepare_if_dev
from orchestration.lib.dbt_checks import describe
from orchestration.lib.partitions import monthly_partitions, run_months
from orchestration.lib.resources import LakeResource
from orchestration.lib.spark_build import ensure_full_build, on_spark, report

WAREHOUSE_POOL = "warehouse"
# The macro that configures a model rebuilt by month: the models calling it are the monthly-partitioned ones.
MONTHLY_MACRO = "macro.crimelake.monthly_incremental"
SEEDS_GROUP = "reference"


def is_monthly(node: Mapping[str, Any]) -> bool:
    """Whether a manifest node is a model rebuilt by month (configured with `monthly_incremental`)."""
    return node.get("resource_type") == "model" and MONTHLY_MACRO in node.get("depends_on", {}).get("macros", [])


def reads_a_whole_table(manifest: Mapping[str, Any], test_id: str) -> bool:
    """Whether a test of a model rebuilt by month also reads a table model (a fact's keys checked against a
    dimension built from the facts): it can run only once that table is rebuilt, so it runs with the tables."""
    nodes = manifest["nodes"]
    attached = nodes.get(nodes[test_id].get("attached_node") or "", {})
    parents = [nodes[p] for p in manifest["parent_map"].get(test_id, []) if p in nodes]
    return is_monthly(attached) and any(p["resource_type"] == "model" and not is_monthly(p) for p in parents)


def monthly_selection(manifest: Mapping[str, Any]) -> str:
    """dbt selection of the models rebuilt by month, by name."""
    names = sorted(n["name"] for n in manifest["nodes"].values() if is_monthly(n))
    if not names:
        raise ValueError(f"no dbt model calls {MONTHLY_MACRO}: the monthly-partitioned assets would be empty")
    return " ".join(names)


class CrimelakeDbtTranslator(DagsterDbtTranslator):
    """Groups models by layer (staging, intermediate, marts, seeds); each model rebuilds eagerly when what it reads
    is updated and their blocking checks passed, so the lakehouse refreshes as data lands and a month held back at
    ingest goes no further. A model rebuilt by month does not rebuild every month when a seed is reloaded (every
    transform run reloads them; a change of their content comes with a full refresh); a table model waits for the
    run of the months it reads (`checked_eager`)."""

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project) -> dg.AssetSpec:
        node = manifest["nodes"].get(unique_id) or manifest["sources"].get(unique_id) or {}
        spec = super().get_asset_spec(manifest, unique_id, project).replace_attributes(
            automation_condition=checked_eager(whole_table=not is_monthly(node))
        )
        if node.get("resource_type") == "seed":
            return spec.replace_attributes(group_name=SEEDS_GROUP)
        fqn = node.get("fqn", [])
        if node.get("resource_type") == "model" and len(fqn) > 2:
            return spec.replace_attributes(group_name=fqn[1])
        return spec

    def get_asset_check_spec(self, asset_spec: dg.AssetSpec, manifest: Mapping[str, Any], unique_id: str,
                             project) -> dg.AssetCheckSpec | None:
        # Not a check of the monthly model: the tables' step runs it (after the table it reads) and records its
        # result as an observation; a failure fails that step.
        if reads_a_whole_table(manifest, unique_id):
            return None
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
MONTHLY_SELECT = monthly_selection(json.loads(dbt_project.manifest_path.read_text()))
TRANSLATOR = CrimelakeDbtTranslator()


def _bronze_ready(context: dg.AssetExecutionContext, lake: LakeResource):
    """The home's settings, with an empty bronze table standing in for every source that has delivered nothing."""
    from crimelake.ingest.engine import ensure_bronze_tables

    settings = lake.settings()  # points CRIMELAKE_HOME (read by the dbt profile and sources) at the home
    created = ensure_bronze_tables(settings)
    if created:
        context.log.info(f"no delivery yet from {', '.join(created)}: read as empty tables")
    return settings


def indirect_selection(context: dg.AssetExecutionContext) -> list[str]:
    """dbt's `buildable` indirect selection: a step runs the tests whose every parent it builds or has built
    upstream (a seed step never runs a test of a model not built yet; a test of a monthly model that reads a table
    waits for the tables' step). Left to dagster-dbt when some checks of the selected assets are deselected: it
    then names the tests to run and turns indirect selection off."""
    checks = {spec.key for spec in context.assets_def.node_check_specs_by_output_name.values()}
    deselected = checks - set(context.selected_asset_check_keys)
    if any(k.asset_key in context.selected_asset_keys for k in deselected):
        return []
    return ["--indirect-selection", "buildable"]


@contextmanager
def _invocation(context: dg.AssetExecutionContext, dbt: DbtCliResource, settings, args: list[str],
                months: dict[str, str] | None):
    """`dbt <args>` started with the run's ``months`` in its environment, in a target folder of the home's
    (``invocation_target``), which outlives the block only if the block fails."""
    with invocation_target(settings.home) as target:
        with months_in_env(months):
            invocation = dbt.cli(args, context=context, target_path=target)
        yield invocation


def _build(context: dg.AssetExecutionContext, dbt: DbtCliResource, settings, args: list[str],
           months: dict[str, str] | None = None):
    """`dbt <args>` over the step's selection with the run's ``months`` (orchestration.lib.dbt.RUN_VARS), its
    events yielded, then lineage for every node it built."""
    materialized = []
    with _invocation(context, dbt, settings, [*args, *indirect_selection(context)], months) as invocation:
        for event in invocation.stream():
            key = getattr(event, "asset_key", None)
            if key is not None:
                materialized.append(key)
            yield event
    _emit_lineage(settings, context.run_id, materialized)


def _spark_step(context: dg.AssetExecutionContext, dbt: DbtCliResource, settings):
    """The step on Spark: the run's full build (made by whichever dbt step of the run comes first), this step's
    nodes reported from it, lineage emitted for the models it reports. The run's months and `full_refresh` do not
    change what is built: every build on Sail is a full one."""
    out = ensure_full_build(context, dbt, settings.home, dbt_project.manifest_path)
    manifest = json.loads(dbt_project.manifest_path.read_text())
    all_checks = {key for assets in DBT_ASSETS for key in assets.check_keys}
    materialized = []
    for event in report(context, out, manifest, TRANSLATOR, dbt_project, is_monthly, all_checks):
        if isinstance(event, dg.Output) and event.output_name:
            materialized.append(context.assets_def.keys_by_output_name[event.output_name])
        yield event
    _emit_lineage(settings, context.run_id, materialized, spark=True)


def _build_whole(context: dg.AssetExecutionContext, dbt: DbtCliResource, lake: LakeResource,
                 config: DbtBuildConfig):
    """Seeds and table models: rebuilt whole, every month they read, whatever the run's months. In a run over
    months they are told those months: a model rebuilt by quarter (fct_area_quarter_indicators) rebuilds theirs,
    and the tests of monthly models that run here read them."""
    settings = _bronze_ready(context, lake)
    if on_spark(dbt):
        yield from _spark_step(context, dbt, settings)
        return
    months = None if config.full_refresh else run_months(context)
    args = ["build", "--full-refresh"] if config.full_refresh else ["build"]
    yield from _build(context, dbt, settings, args, {"month_from": months[0], "month_to": months[1],
                                                     "check_from": months[0]} if months else None)


# Three steps, in the order of their dependencies: seeds, the monthly models (which read them), the table models
# (which read the monthly ones). The seeds and the tables are separate definitions, not one Dagster would split
# around the monthly step: each step has a fixed name, which the run's `full_refresh` config addresses.
@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    select="resource_type:seed",
    name="crimelake_dbt_seeds",
    dagster_dbt_translator=TRANSLATOR,
    pool=WAREHOUSE_POOL,
)
def crimelake_dbt_seeds(context: dg.AssetExecutionContext, dbt: DbtCliResource, lake: LakeResource,
                        config: DbtBuildConfig):
    yield from _build_whole(context, dbt, lake, config)


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    select=MONTHLY_SELECT,
    dagster_dbt_translator=TRANSLATOR,
    partitions_def=monthly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=WAREHOUSE_POOL,
)
def crimelake_dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, lake: LakeResource,
                         config: DbtBuildConfig):
    settings = _bronze_ready(context, lake)
    if on_spark(dbt):
        yield from _spark_step(context, dbt, settings)
        return
    if config.full_refresh:
        yield from _build(context, dbt, settings, ["build", "--full-refresh"])
        return
    first, last = context.partition_key_range
    chunks = month_chunks(first, last, chunk_months())
    # A long range (a first load, a backfill) is built a few months at a time, so DuckDB's working set is a
    # few months of data whatever the history: every chunk but the last builds the models without tests;
    # the last builds and tests, and its events are the run's.
    for a, b in chunks[:-1]:
        context.log.info(f"dbt: building {a}..{b} (models only; tests run with the last months)")
        with _invocation(context, dbt, settings, ["build", "--exclude-resource-type", "test"],
                         {"month_from": a, "month_to": b}) as invocation:
            invocation.wait()
    a, b = chunks[-1]
    # The tests read every month the run built (check_from, dbt_project/macros/checked_months.sql).
    yield from _build(context, dbt, settings, ["build"], {"month_from": a, "month_to": b, "check_from": first})


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    select="resource_type:model",
    exclude=MONTHLY_SELECT,
    name="crimelake_dbt_tables",
    dagster_dbt_translator=TRANSLATOR,
    pool=WAREHOUSE_POOL,
)
def crimelake_dbt_tables(context: dg.AssetExecutionContext, dbt: DbtCliResource, lake: LakeResource,
                         config: DbtBuildConfig):
    yield from _build_whole(context, dbt, lake, config)


DBT_ASSETS = [crimelake_dbt_seeds, crimelake_dbt_models, crimelake_dbt_tables]


def chunk_months() -> int:
    """Months per dbt invocation over a long range: `CRIMELAKE_DBT_CHUNK_MONTHS`, default 3 (about 1.5 million
    street rows nationally, well inside DuckDB's default memory cap)."""
    from crimelake.config import env_count

    return env_count("CRIMELAKE_DBT_CHUNK_MONTHS", 3)


def month_chunks(first: str, last: str, size: int) -> list[tuple[str, str]]:
    """`first`..`last` (YYYY-MM, inclusive) cut into consecutive ranges of at most `size` months."""
    from crimelake.lake import period_chunks

    return period_chunks(first, last, size)


def _emit_lineage(settings, run_id: str, keys, spark: bool = False) -> None:
    """One OpenLineage event per dbt node built: its parents (bronze Delta tables or warehouse relations) in,
    its warehouse relation out. On Spark the relations are the Delta tables under lake/spark."""
    from crimelake import lake as delta
    from crimelake import lineage
    from crimelake.engine import SPARK_OUTPUT

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
        if spark:
            path = settings.home / SPARK_OUTPUT / node["schema"] / node["name"]
            return lineage.delta(settings, path, delta.version(path))
        return lineage.warehouse(settings, f"{node['schema']}.{node['name']}")

    for key in keys:
        uid = by_key.get(tuple(key.path[-2:]))
        if uid is None:
            continue
        parents = [dataset(p) for p in manifest["parent_map"].get(uid, []) if p.startswith(("source.", "model.", "seed."))]
        lineage.emit(settings, "/".join(key.path), run_id, inputs=parents, outputs=[dataset(uid)])


@dg.definitions
def dbt_definitions() -> dg.Definitions:
    return dg.Definitions(assets=DBT_ASSETS, resources={"dbt": dbt_resource()})
