"""Which assets are partitioned by month: the models rebuilt by month and what is exported from them; the seeds,
the table models and their exports are one table each, rebuilt whole, and carry no partitions. One transform run
over a range of months builds both kinds, the whole tables once."""

from __future__ import annotations

import json

import dagster as dg
import pytest

from crimelake.pipeline import run_landed, run_transform
from crimelake.simulate import generate

pytestmark = [pytest.mark.integration]

MONTHS = ["2024-01", "2024-02"]
SEEDS = ["contract_labels", "crime_categories", "forces", "report_kinds"]
TABLE_MODELS = ["staging/stg_interventions__log", "intermediate/int_cells_activity", "intermediate/int_cells_lsoas",
                "intermediate/int_cells_geometry", "marts/dim_cells", "marts/dim_forces",
                "marts/dim_crime_categories", "marts/fct_area_quarter_indicators", "marts/fct_coverage"]
MONTHLY_MODELS = ["staging/stg_police_uk__street_crimes", "staging/stg_la_reports__reports",
                  "intermediate/int_incidents_unioned", "intermediate/int_cell_force_months",
                  "marts/fct_incidents", "marts/fct_cell_month_counts", "marts/fct_outcomes"]


def _key(path: str) -> dg.AssetKey:
    return dg.AssetKey(path.split("/"))


@pytest.fixture
def graph(settings):
    from orchestration.definitions import defs as build

    return build().resolve_asset_graph()


def test_whole_tables_carry_no_partitions_and_monthly_models_do(graph):
    from orchestration.defs.transform.gold import GOLD_MARTS

    whole = ([f"reference/{s}" for s in SEEDS] + TABLE_MODELS
             + [f"gold/{m}" for m, col in GOLD_MARTS.items() if col is None]
             + ["gold/coverage", "public/area_quarter_indicators", "lake/release"])
    monthly = (MONTHLY_MODELS + [f"gold/{m}" for m, col in GOLD_MARTS.items() if col is not None]
               + ["public/cell_month_counts", "public/force_month_totals"])
    assert {p for p in whole if graph.get(_key(p)).partitions_def is not None} == set()
    assert {p for p in monthly if graph.get(_key(p)).partitions_def is None} == set()
    assert {m for m, col in GOLD_MARTS.items() if col is None} == {
        "dim_cells", "dim_forces", "dim_crime_categories", "fct_area_quarter_indicators"}


def test_every_dbt_model_is_monthly_exactly_when_it_uses_the_monthly_macro(graph):
    from orchestration.defs.transform.dbt_assets import MONTHLY_MACRO
    from orchestration.lib.dbt import dbt_project

    manifest = json.loads(dbt_project.manifest_path.read_text())
    for node in manifest["nodes"].values():
        if node["resource_type"] not in ("model", "seed"):
            continue
        key = dg.AssetKey([node["schema"], node["name"]])
        monthly = MONTHLY_MACRO in node["depends_on"]["macros"]
        assert (graph.get(key).partitions_def is not None) == monthly, key.to_user_string()


def test_no_check_of_a_monthly_model_waits_for_a_whole_table(graph):
    """A test of a monthly model that also reads a table model (a fact's key checked against a dimension built
    from the facts) runs in the tables' step: as a check of the monthly model it would never be evaluated there.
    Tests against a seed stay checks (seeds load first)."""
    seen = 0
    for path in MONTHLY_MODELS:
        key = _key(path)
        for spec in graph.assets_def_for_key(key).check_specs:
            if spec.asset_key != key:
                continue
            seen += 1
            whole = [d.asset_key.to_user_string() for d in spec.additional_deps
                     if graph.get(d.asset_key).partitions_def is None and d.asset_key.path[0] != "reference"]
            assert whole == [], (spec.name, whole)
    assert seen > 10


def _events(instance, run_id: str, kind: str):
    return [e for e in instance.all_logs(run_id) if e.dagster_event and e.dagster_event.event_type_value == kind]


def test_one_transform_run_builds_the_months_and_each_whole_table_once(settings):
    generate(settings.landing, seed=7, forces=["city-of-london"], months=len(MONTHS), incidents=60, defect_rate=0)
    assert all(r.success for r in run_landed(settings))
    instance = dg.DagsterInstance.get()

    for full_refresh in (False, True):
        tr = run_transform(settings, (MONTHS[0], MONTHS[-1]), full_refresh=full_refresh)
        assert tr.success and tr.failed_checks == [], (full_refresh, tr.problems)
        partitions: dict[str, list] = {}
        for e in _events(instance, tr.run_id, "ASSET_MATERIALIZATION"):
            mat = e.dagster_event.event_specific_data.materialization
            partitions.setdefault(mat.asset_key.to_user_string(), []).append(mat.partition)
        for path in [f"reference/{s}" for s in SEEDS] + TABLE_MODELS + ["gold/dim_cells", "gold/coverage",
                                                                        "lake/release"]:
            assert partitions.get(path) == [None], (path, partitions.get(path))
        for path in MONTHLY_MODELS + ["gold/fct_incidents", "gold/fct_cell_month_counts",
                                      "public/cell_month_counts"]:
            assert sorted(partitions.get(path, [])) == MONTHS, (path, partitions.get(path))
        # Seeds before the models that read them, the monthly models before the tables built from them.
        steps = [e.step_key for e in _events(instance, tr.run_id, "STEP_START")]
        assert steps.index("crimelake_dbt_seeds") < steps.index("crimelake_dbt_models") \
            < steps.index("crimelake_dbt_tables") < steps.index("gold__dim_cells")
    # The fact-to-dimension tests ran after their dimensions, in the tables' step, and passed.
    observed = {e.dagster_event.event_specific_data.asset_observation.asset_key.to_user_string()
                for e in _events(instance, tr.run_id, "ASSET_OBSERVATION")
                if e.step_key == "crimelake_dbt_tables"}
    assert {"marts/fct_incidents", "marts/dim_forces", "marts/fct_cell_month_counts", "marts/dim_cells"} <= observed


def test_a_reloaded_seed_requests_no_month_only_the_tables_that_read_it(settings):
    """Under the automation sensor: every transform run reloads the seeds, which must not request every month of
    the models that read them; the tables that read the seeds are rebuilt once."""
    from orchestration.definitions import defs as build

    generate(settings.landing, seed=7, forces=["city-of-london"], months=1, incidents=60, defect_rate=0)
    assert all(r.success for r in run_landed(settings))
    assert run_transform(settings).success
    defs = build()
    instance = dg.DagsterInstance.get()
    first = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    assert first.total_requested == 0

    seeds = [dg.AssetKey(["reference", s]) for s in SEEDS]
    job = defs.resolve_implicit_global_asset_job_def()
    assert job.execute_in_process(instance=instance, asset_selection=seeds).success
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
    requested = {k.to_user_string(): tick.get_requested_partitions(k) for k in defs.resolve_asset_graph()
                 .get_all_asset_keys() if k.path[0] != "ml" and tick.get_num_requested(k)}
    assert "staging/stg_police_uk__street_crimes" not in requested
    assert requested["marts/dim_forces"] == {None} and requested["marts/dim_crime_categories"] == {None}
    assert all(parts == {None} for parts in requested.values()), requested
