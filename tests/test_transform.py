"""dbt on the demo data inside the test suite: conformed counts against bronze, checks in Dagster, per-month
rebuilds equal to a full refresh, and an unmapped label caught and reported."""

from __future__ import annotations

import json
import subprocess

import dagster as dg
import duckdb
import pyarrow as pa
import pytest

from crimelake import lake
from crimelake.pipeline import run_landed, run_transform
from crimelake.simulate import generate
from tests.factories import query

pytestmark = [pytest.mark.integration]

MONTHS = ["2024-01", "2024-02", "2024-03"]


@pytest.fixture
def built(settings):
    generate(settings.landing, seed=5, forces=["bedfordshire", "cambridgeshire", "city-of-london"], months=3,
             incidents=400, defect_rate=0.0)
    runs = run_landed(settings)
    assert all(r.success for r in runs)
    return settings



def snapshot(settings, table: str, order: str) -> pa.Table:
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        return con.sql(f"select * exclude (_ingest_run_id) from marts.{table} order by {order}").to_arrow_table() \
            if table == "fct_incidents" else con.sql(f"select * from marts.{table} order by {order}").to_arrow_table()
    finally:
        con.close()


def test_monthly_builds_match_a_full_refresh_and_conform_every_bronze_row(built):
    settings = built
    for m in MONTHS:
        tr = run_transform(settings, (m, m))
        assert tr.success, tr.failed_checks
        assert tr.failed_checks == []
    by_month = {t: snapshot(settings, t, o) for t, o in
                [("fct_incidents", "incident_id"), ("fct_cell_month_counts", "h3_cell, force, month, forecast_group"),
                 ("fct_area_quarter_indicators", "lsoa_code, quarter")]}

    full = run_transform(settings, full_refresh=True)
    assert full.success and full.failed_checks == []
    for t, o in [("fct_incidents", "incident_id"), ("fct_cell_month_counts", "h3_cell, force, month, forecast_group"),
                 ("fct_area_quarter_indicators", "lsoa_code, quarter")]:
        assert snapshot(settings, t, o).equals(by_month[t]), t

    # Conformed counts against bronze: every bronze incident row is a fact, superseded, or (never here) unmapped.
    bronze = sum(lake.read(settings.bronze(s, e)).num_rows
                 for s, e in [("police_uk", "street"), ("force_rms_ho", "crimes"), ("force_rms_text", "crimes")])
    (facts,), = query(settings, "select count(*) from marts.fct_incidents")
    (superseded,), = query(settings, "select count(*) from intermediate.int_incidents_deduplicated where is_superseded")
    assert facts + superseded == bronze
    assert superseded > 0  # bedfordshire and cambridgeshire send force exports that duplicate data.police.uk
    # Bedfordshire's export wins: its crimes come from force_rms_ho, its anti-social behaviour from data.police.uk.
    rows = dict(query(settings, "select source, count(*) from marts.fct_incidents where force = 'bedfordshire' "
                                "group by source"))
    assert set(rows) == {"force_rms_ho", "police_uk"}
    (non_asb,), = query(settings, "select count(*) from marts.fct_incidents where force = 'bedfordshire' "
                                  "and source = 'police_uk' and category_slug <> 'anti-social-behaviour'")
    assert non_asb == 0

    # Feedback-loop guard: police-discovered offences stay out of all_crime; where a source flags knife-enabled
    # offences, weapons counts those (victim-reported) and not possession offences found by patrols.
    (leaked,), = query(settings, "select count(*) from marts.fct_incidents where police_discovered and in_all_crime")
    assert leaked == 0
    (flagged_possession,), = query(settings, "select count(*) from marts.fct_incidents where knife_enabled is not null "
                                             "and category_slug = 'possession-of-weapons' and in_weapons")
    assert flagged_possession == 0
    (knife,), = query(settings, "select count(*) from marts.fct_incidents where knife_enabled and in_weapons")
    assert knife > 0
    (unflagged,), = query(settings, "select count(*) from marts.fct_incidents where knife_enabled is null "
                                    "and category_slug = 'possession-of-weapons' and not in_weapons")
    assert unflagged == 0

    # Sparse: one row per cell, recording force, month and group that holds an incident; zeros are never stored.
    (grid,), = query(settings, "select count(*) from marts.fct_cell_month_counts")
    (occupied,), = query(settings, """
        select count(*) from (
            select distinct h3_cell, force, month, g from marts.fct_incidents,
                (select unnest(['all_crime', 'asb', 'violence', 'theft', 'weapons']) as g) as groups
            where h3_cell is not null and case g when 'all_crime' then in_all_crime when 'asb' then in_asb
                when 'violence' then in_violence when 'theft' then in_theft else in_weapons end)""")
    (smallest,), = query(settings, "select min(incident_count) from marts.fct_cell_month_counts")
    assert grid == occupied and smallest >= 1
    (cells,), = query(settings, "select count(*) from marts.dim_cells")
    (counted_cells,), = query(settings, "select count(distinct h3_cell) from marts.fct_cell_month_counts")
    assert 0 < counted_cells <= cells

    # Gold Delta tables hold the marts, with the version recorded in Dagster.
    gold = lake.read(settings.gold("fct_cell_month_counts"))
    assert gold.num_rows == grid
    instance = dg.DagsterInstance.get()
    event = instance.get_latest_materialization_event(dg.AssetKey(["gold", "fct_cell_month_counts"]))
    assert event.asset_materialization.metadata["delta_version"].value == lake.version(settings.gold("fct_cell_month_counts"))

    # Public outputs: aggregates only, nothing below the threshold, everything rounded.
    from crimelake.disclosure import check_public
    from orchestration.defs.serve.public import PUBLIC_TABLES, count_columns

    for name in PUBLIC_TABLES:
        public = lake.read(settings.lake / "public" / name).to_pandas()
        assert len(public) > 0, name
        assert check_public(public, count_columns(public)) == [], name

    # OpenLineage: every dbt model and gold export emitted a run event with its inputs and outputs.
    from crimelake import lineage

    events = lineage.events(settings)
    jobs = {e["job"]["name"] for e in events}
    assert {"staging/stg_police_uk__street_crimes", "marts/fct_incidents", "gold/fct_cell_month_counts"} <= jobs
    stg = next(e for e in events if e["job"]["name"] == "staging/stg_police_uk__street_crimes")
    assert "bronze/police_uk/street" in [i["name"] for i in stg["inputs"]]
    gold_ev = [e for e in events if e["job"]["name"] == "gold/fct_cell_month_counts"][-1]
    assert gold_ev["outputs"][0]["facets"]["version"]["datasetVersion"] == str(
        lake.version(settings.gold("fct_cell_month_counts")))


def test_dbt_tests_are_dagster_checks_on_the_models_they_test(built):
    from orchestration.definitions import defs

    graph = defs().resolve_asset_graph()
    checks = {k.name for k in graph.get_check_keys_for_assets({dg.AssetKey(["marts", "fct_incidents"])})}
    assert {"assert_no_incident_counted_twice", "assert_every_bronze_row_accounted_for",
            "unique_fct_incidents_incident_id"} <= checks
    unioned = {k.name for k in graph.get_check_keys_for_assets({dg.AssetKey(["intermediate", "int_incidents_unioned"])})}
    assert "assert_every_source_label_mapped" in unioned
    # Source keys equal the ingest keys: staging sits downstream of ingest in one graph.
    parents = graph.get(dg.AssetKey(["staging", "stg_police_uk__street_crimes"])).parent_keys
    assert dg.AssetKey(["police_uk", "street"]) in parents


def test_a_label_no_contract_maps_fails_its_check_and_names_the_row(built):
    settings = built
    assert run_transform(settings).success
    # A bronze row carrying a label the contract does not map (as an older contract version would have let in).
    path = settings.bronze("police_uk", "street")
    month = lake.read(path, month="2024-02")
    bad = month.slice(0, 1)
    bad = bad.set_column(bad.schema.get_field_index("crime_type"), "crime_type", pa.array(["Cyber crime"]))
    bad = bad.set_column(bad.schema.get_field_index("_source_line"), "_source_line", pa.array([99999], pa.int64()))
    lake.replace_month(path, pa.concat_tables([month, bad]), "2024-02")

    tr = run_transform(settings, ("2024-02", "2024-02"))
    assert "intermediate/int_incidents_unioned:assert_every_source_label_mapped" in tr.failed_checks
    assert not tr.success  # an error-severity dbt test fails the build
    (row,) = query(settings, "select source_label, _source_line from staging.stg_police_uk__street_crimes "
                             "where category_slug is null")
    assert row == ("Cyber crime", 99999)


def test_long_month_ranges_are_built_a_few_months_at_a_time(monkeypatch):
    from orchestration.defs.transform.dbt_assets import chunk_months, month_chunks

    assert month_chunks("2024-11", "2025-04", 3) == [("2024-11", "2025-01"), ("2025-02", "2025-04")]
    assert month_chunks("2024-11", "2025-05", 3)[-1] == ("2025-05", "2025-05")
    assert month_chunks("2025-01", "2025-01", 3) == [("2025-01", "2025-01")]
    monkeypatch.setenv("CRIMELAKE_DBT_CHUNK_MONTHS", "0")
    with pytest.raises(ValueError, match="at least 1"):
        chunk_months()


def test_a_cells_force_and_lsoa_never_change_after_its_first_month(built):
    settings = built
    sql = "select h3_cell, force, lsoa_code from marts.dim_cells order by h3_cell"
    assert run_transform(settings, (MONTHS[0], MONTHS[0])).success
    first = {c: (f, lsoa) for c, f, lsoa in query(settings, sql)}
    assert run_transform(settings, (MONTHS[1], MONTHS[2])).success
    later = {c: (f, lsoa) for c, f, lsoa in query(settings, sql)}
    assert len(later) > len(first)  # later months bring new cells
    # A cell keeps its force; its LSOA, once a data.police.uk row has named one, never changes (a cell first seen
    # in a force export has none until then).
    assert {c: later[c][0] for c in first} == {c: f for c, (f, _) in first.items()}
    named = {c: lsoa for c, (_, lsoa) in first.items() if lsoa is not None}
    assert named and {c: later[c][1] for c in named} == named
    # Each attribute is the one the cell's first month named most (checked against the per-month aggregates).
    (wrong,), = query(settings, """
        with f as (select h3_cell, min(month) as m from intermediate.int_cell_lsoa_months group by h3_cell),
        top as (select p.h3_cell, max(p.rows_seen) as n from intermediate.int_cell_lsoa_months p
                join f on p.h3_cell = f.h3_cell and p.month = f.m group by p.h3_cell)
        select count(*) from marts.dim_cells d join top on d.h3_cell = top.h3_cell
        where not exists (select 1 from intermediate.int_cell_lsoa_months p join f on p.h3_cell = f.h3_cell
                          and p.month = f.m where p.h3_cell = d.h3_cell and p.lsoa_code = d.lsoa_code
                          and p.rows_seen = top.n)""")
    assert wrong == 0
    # The month that named it is recorded, so a forecast made before that month does not use it.
    (unnamed, misdated), = query(settings, """
        with f as (select h3_cell, min(month) as m from intermediate.int_cell_lsoa_months group by h3_cell)
        select count(*) filter (where (d.lsoa_code is null) <> (d.lsoa_month is null)),
               count(*) filter (where d.lsoa_month is distinct from f.m)
        from marts.dim_cells d left join f on d.h3_cell = f.h3_cell""")
    assert (unnamed, misdated) == (0, 0)


def _dbt_test(settings, tmp_path, select: str, months: dict | None = None) -> subprocess.CompletedProcess:
    from orchestration.lib.dbt import DBT_DIR, DBT_EXECUTABLE

    argv = [DBT_EXECUTABLE, "test", "--project-dir", str(DBT_DIR), "--profiles-dir", str(DBT_DIR),
            "--target-path", str(tmp_path / "target"), "--select", select]
    if months:
        argv += ["--vars", json.dumps(months)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=600)


def _repeat_a_january_incident(settings) -> None:
    con = duckdb.connect(str(settings.warehouse))
    try:
        con.execute("insert into marts.fct_incidents select * from marts.fct_incidents "
                    "where month = '2024-01' limit 1")
    finally:
        con.close()


def test_checks_of_a_monthly_model_read_the_months_the_run_built(built, tmp_path):
    """A run's checks cost the months it wrote, not the whole history: a repeated incident in January fails the
    checks of a run that built January (or of a full build), not those of a run that built March alone."""
    settings = built
    assert run_transform(settings).success
    _repeat_a_january_incident(settings)
    select = "unique_fct_incidents_incident_id"
    march = _dbt_test(settings, tmp_path, select, {"month_from": "2024-03", "month_to": "2024-03"})
    assert march.returncode == 0, march.stdout
    january = _dbt_test(settings, tmp_path, select, {"month_from": "2024-03", "month_to": "2024-03",
                                                     "check_from": "2024-01"})
    assert january.returncode == 1 and "Got 1 result" in january.stdout, january.stdout
    everything = _dbt_test(settings, tmp_path, select)
    assert everything.returncode == 1, everything.stdout


def test_months_in_the_environment_scope_the_checks_as_vars_do_and_keep_the_home_parse_state(built, tmp_path):
    """How Dagster gives dbt a run's months (orchestration.lib.dbt): in the environment, with the home's parse
    state, so that a new month is not a full parse of the project. The checks read the same months as with vars."""
    from orchestration.lib.dbt import DBT_DIR, DBT_EXECUTABLE, PARSE_STATE, invocation_target, months_in_env

    settings = built
    assert run_transform(settings).success  # its dbt invocations leave the home's parse state
    state = settings.home / "cache" / "dbt" / PARSE_STATE
    assert state.exists()
    _repeat_a_january_incident(settings)

    def test_months(months: dict) -> subprocess.CompletedProcess:
        with invocation_target(settings.home) as target, months_in_env(months):
            return subprocess.run([DBT_EXECUTABLE, "test", "--project-dir", str(DBT_DIR), "--profiles-dir",
                                   str(DBT_DIR), "--target-path", str(target), "--select",
                                   "unique_fct_incidents_incident_id"], capture_output=True, text=True, timeout=600)

    march = test_months({"month_from": "2024-03", "month_to": "2024-03"})
    assert march.returncode == 0, march.stdout
    january = test_months({"month_from": "2024-03", "month_to": "2024-03", "check_from": "2024-01"})
    assert january.returncode == 1 and "Got 1 result" in january.stdout, january.stdout
    for out in (march, january):
        assert "Unable to do partial parsing" not in out.stdout, out.stdout
    assert not [p for p in (settings.home / "cache" / "dbt" / "runs").iterdir()]  # each folder removed after use
