"""The Dagster code location: what the UI shows, and real in-process runs of the ingest assets."""

from __future__ import annotations

import dagster as dg
import pytest

from crimelake import lake
from crimelake.pipeline import pending, run_landed
from data_contracts.loader import default_contracts
from orchestration.defs.ingest.automation import landing_sensor
from tests.factories import contract, csv_text, land, street_row, street_rows

pytestmark = pytest.mark.integration


@pytest.fixture
def defs(settings):
    from orchestration.definitions import defs as build

    return build()


def test_one_ingest_asset_per_contract_keyed_like_its_dbt_source(defs):
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    expected = {f"{c.source}/{c.entity}" for c in default_contracts().values()}
    assert expected <= keys


def test_each_ingest_asset_carries_its_checks_and_monthly_partitions(defs):
    graph = defs.resolve_asset_graph()
    street = dg.AssetKey(["police_uk", "street"])
    checks = {k.name for k in graph.get_check_keys_for_assets({street})}
    assert checks == {"rows_accounted_for", "no_rejected_files", "contract_expectations"}
    node = graph.get(street)
    assert node.partitions_def.get_first_partition_key() == "2010-12"
    assert {s.name for s in defs.sensors} == {"landing_sensor", "refresh_downstream_sensor"}
    auto = next(s for s in defs.sensors if s.name == "refresh_downstream_sensor")
    assert auto.default_status == dg.DefaultSensorStatus.RUNNING
    assert {s.name for s in defs.schedules} == {"ingest_landing_job_schedule", "maintain_lake_job_schedule"}


def test_run_loads_landed_months_through_dagster_and_records_runs(settings, defs):
    street = contract("police_uk", "street")
    land(settings, street, "2024-03", "2024-03-bedfordshire-street.csv",
         csv_text(street, street_rows(29) + [street_row(**{"Crime type": "Cyber crime"})]))
    land(settings, street, "2024-03", "2024-03-cheshire-street.csv", "not,a,street,file\n1,2,3,4\n")
    assert list(pending(settings)) == ["2024-03"]

    runs = run_landed(settings)
    assert len(runs) == 1 and runs[0].success
    # The broken Cheshire file fails its check without holding back Bedfordshire.
    assert runs[0].failed_checks == ["police_uk/street:no_rejected_files"]
    assert lake.read(settings.bronze("police_uk", "street")).num_rows == 29
    assert lake.read(settings.quarantine("police_uk", "street")).num_rows == 1

    instance = dg.DagsterInstance.get()
    mat = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(["police_uk", "street"]), asset_partitions=["2024-03"]), limit=1
    ).records[0].asset_materialization
    md = {k: v.value for k, v in mat.metadata.items()}
    assert (md["rows_read"], md["rows_loaded"], md["rows_quarantined"]) == (30, 29, 1)
    assert md["delta_version"] == lake.version(settings.bronze("police_uk", "street"))
    assert "2024-03-cheshire-street.csv | rejected" in md["files"]
    assert instance.get_runs_count() == 1
    # The materialization also emitted an OpenLineage event: landing files in, Delta versions out.
    from crimelake import lineage

    ev = [e for e in lineage.events(settings) if e["job"]["name"] == "police_uk/street"][-1]
    assert [i["name"] for i in ev["inputs"]] == ["landing/police_uk/2024-03/2024-03-bedfordshire-street.csv"]
    out = {o["name"]: o["facets"]["version"]["datasetVersion"] for o in ev["outputs"]}
    assert out["bronze/police_uk/street"] == str(md["delta_version"])
    # Loaded and unchanged: nothing is pending any more.
    assert pending(settings) == {}


def test_sensor_requests_a_run_for_new_or_changed_files_only(settings, defs):
    street = contract("police_uk", "street")
    ctx = dg.build_sensor_context(instance=dg.DagsterInstance.get(), definitions=defs)
    assert isinstance(landing_sensor(ctx), dg.SkipReason)

    land(settings, street, "2024-05", "2024-05-bedfordshire-street.csv", csv_text(street, [street_row(Month="2024-05")]))
    requests = landing_sensor(ctx)
    assert [(r.partition_key, sorted(k.to_user_string() for k in r.asset_selection)) for r in requests] == [
        ("2024-05", ["police_uk/outcomes", "police_uk/stop_and_search", "police_uk/street"])
    ]
    run_landed(settings)
    assert isinstance(landing_sensor(ctx), dg.SkipReason)
    land(settings, street, "2024-05", "2024-05-bedfordshire-street.v2.csv",
         csv_text(street, street_rows(2, Month="2024-05")))
    again = landing_sensor(ctx)
    assert [r.partition_key for r in again] == ["2024-05"]
    assert again[0].run_key != requests[0].run_key


def test_contract_breach_blocks_the_run(settings, defs):
    street = contract("police_uk", "street")
    rows = [street_row(**{"Crime type": "Cyber crime"})] * 3 + [street_row()]
    land(settings, street, "2024-06", "2024-06-bedfordshire-street.csv", csv_text(street, rows))
    runs = run_landed(settings, months=["2024-06"])
    assert "police_uk/street:contract_expectations" in runs[0].failed_checks
    assert not runs[0].success


def test_maintain_lake_job_compacts_the_small_files_of_monthly_loads(settings, defs):
    import pyarrow as pa

    path = settings.bronze("police_uk", "street")
    for n in range(3):
        lake.append(path, pa.table({"month": ["2024-03"], "n": [n]}))
    lake.replace_table(settings.gold("fct_x"), pa.table({"month": ["2024-03"], "n": [1]}))
    result = defs.resolve_job_def("maintain_lake_job").execute_in_process(
        instance=dg.DagsterInstance.get(),
        run_config={"ops": {"compact_and_vacuum_lake": {"config": {"retention_hours": 0}}}})
    assert result.success
    md = {k: v.value for k, v in _step_output_metadata(result).items()}
    assert md["tables"] == 2 and md["files_before"] == 4 and md["files_after"] == 2
    assert lake.read(path).num_rows == 3


def _step_output_metadata(result) -> dict:
    event = next(e for e in result.all_events if e.event_type_value == "STEP_OUTPUT")
    return event.event_specific_data.metadata
