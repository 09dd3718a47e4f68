"""The coverage ledger on a small simulated lake with one force-month deleted and one truncated: the ledger flags
exactly those, its checks warn, the sparse counts equal a direct count, a one-month re-run rewrites only that
month's gold files, and `crimelake coverage` prints the grid."""

from __future__ import annotations

import json
import os

import dagster as dg
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from crimelake import lake
from crimelake.config import Settings
from tests.factories import query

pytestmark = [pytest.mark.integration]

FORCES = ["btp", "city-of-london", "cumbria"]
MONTHS = ["2024-01", "2024-02", "2024-03", "2024-04", "2024-05"]
MISSING = ("police_uk", "cumbria", "2024-03")
PARTIAL = ("police_uk", "btp", "2024-04")


@pytest.fixture(scope="module")
def gappy(tmp_path_factory):
    """Five months of three forces; Cumbria's street file of 2024-03 never arrived and BTP's of 2024-04 holds
    30% of its lines. Built by the real pipeline (ingest per month, then one transform run)."""
    from crimelake.pipeline import run_landed, run_transform
    from crimelake.simulate import generate

    saved = dict(os.environ)
    try:
        settings = Settings.from_env(tmp_path_factory.mktemp("coverage") / "home").prepare()
        generate(settings.landing, seed=11, forces=FORCES, months=len(MONTHS), incidents=300, defect_rate=0.0)
        (settings.landing_dir("police_uk", MISSING[2]) / f"{MISSING[2]}-{MISSING[1]}-street.csv").unlink()
        truncated = settings.landing_dir("police_uk", PARTIAL[2]) / f"{PARTIAL[2]}-{PARTIAL[1]}-street.csv"
        header, *lines = truncated.read_text().splitlines(keepends=True)
        truncated.write_text(header + "".join(lines[: int(len(lines) * 0.3)]))
        assert all(r.success for r in run_landed(settings))
        run = run_transform(settings)
        yield settings, run
    finally:
        os.environ.clear()
        os.environ.update(saved)



def test_the_ledger_flags_exactly_the_missing_and_the_partial_force_month(gappy):
    settings, run = gappy
    ledger = lake.read(settings.gold("coverage")).to_pylist()
    assert {r["source"] for r in ledger} == {"police_uk"}
    assert len(ledger) == len(FORCES) * len(MONTHS)  # the missing month is a row, not a gap
    flagged = {(r["source"], r["force"], r["month"]): r["status"] for r in ledger if r["status"] != "complete"}
    assert flagged == {MISSING: "missing", PARTIAL: "partial"}
    by_key = {(r["source"], r["force"], r["month"]): r for r in ledger}
    missing, partial = by_key[MISSING], by_key[PARTIAL]
    assert missing["rows"] == 0 and missing["geocoded_share"] is None and missing["flags"].split(",")[0] == "missing"
    assert partial["flags"].split(",")[0] == "partial" and partial["volume_ratio"] < 0.5
    assert 0 < partial["rows"] < partial["trailing_median_rows"] * 0.5
    # The first month has no history; later complete months sit near their trailing median.
    assert by_key[("police_uk", "btp", "2024-01")]["volume_ratio"] is None
    assert 0.5 <= by_key[("police_uk", "btp", "2024-03")]["volume_ratio"] <= 2


def test_coverage_checks_warn_without_failing_the_run(gappy):
    settings, run = gappy
    assert run.success and run.failed_checks == []
    assert {"gold/coverage:no_missing_force_months", "gold/coverage:no_partial_force_months"} <= set(run.warned_checks)
    instance = dg.DagsterInstance.get()
    record = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [dg.AssetCheckKey(dg.AssetKey(["gold", "coverage"]), "no_missing_force_months")]
    )[dg.AssetCheckKey(dg.AssetKey(["gold", "coverage"]), "no_missing_force_months")]
    evaluation = record.event.dagster_event.event_specific_data
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
    assert evaluation.metadata["listed"].value == ["/".join(MISSING)]


def test_status_check_passes_on_a_ledger_without_gaps():
    from orchestration.defs.transform.coverage import status_check

    ledger = pa.table({"source": ["police_uk"] * 2, "force": ["btp"] * 2, "month": ["2024-01", "2024-02"],
                       "status": ["complete", "partial"]})
    assert status_check("no_missing_force_months", ledger, "missing").passed
    failed = status_check("no_partial_force_months", ledger, "partial")
    assert not failed.passed and failed.metadata["force_months"].value == 1


def test_counts_are_sparse_and_equal_a_direct_count_of_the_incidents(gappy):
    settings, _ = gappy
    (zeros,), = query(settings, "select count(*) from marts.fct_cell_month_counts where incident_count <= 0")
    assert zeros == 0
    direct = query(settings, """
        select h3_cell, force, month, 'all_crime', count(*) from marts.fct_incidents
        where in_all_crime and h3_cell is not null group by all
        union all
        select h3_cell, force, month, 'violence', count(*) from marts.fct_incidents
        where in_violence and h3_cell is not null group by all""")
    counts = query(settings, "select h3_cell, force, month, forecast_group, incident_count "
                             "from marts.fct_cell_month_counts where forecast_group in ('all_crime', 'violence')")
    assert sorted(counts) == sorted(direct) and len(counts) > 0
    gold = lake.read(settings.gold("fct_cell_month_counts"))
    (total,), = query(settings, "select count(*) from marts.fct_cell_month_counts")
    assert gold.num_rows == total
    # The missing force-month has no count rows at all: unknown, not zero (the ledger says which).
    (rows,), = query(settings, f"select count(*) from marts.fct_cell_month_counts "
                               f"where force = '{MISSING[1]}' and month = '{MISSING[2]}'")
    assert rows == 0


def test_rerunning_one_month_rewrites_only_that_months_gold_files(gappy):
    from crimelake.pipeline import run_transform

    settings, _ = gappy
    path = settings.gold("fct_cell_month_counts")
    assert lake.partitioning(path) == ["month"]
    before = lake.version(path)
    assert run_transform(settings, ("2024-02", "2024-02")).success
    log = path / "_delta_log" / f"{before + 1:020d}.json"
    actions = [json.loads(line) for line in log.read_text().splitlines()]
    touched = {a[k]["path"].split("/")[0] for a in actions for k in ("add", "remove") if k in a}
    assert touched == {"month=2024-02"}
    assert lake.version(path) == before + 1
    assert lake.read(path, month="2024-02").num_rows > 0 and lake.read(path, month="2024-05").num_rows > 0


def test_the_coverage_command_prints_the_grid_and_json(gappy):
    from crimelake.cli import app

    settings, _ = gappy
    runner = CliRunner()
    out = runner.invoke(app, ["coverage", "--home", str(settings.home), "--months", "5"], terminal_width=200)
    assert out.exit_code == 0, out.output
    line = next(x for x in out.output.splitlines() if x.startswith("cumbria"))
    # One glyph per month, months of a year side by side (2024-01 to 2024-05).
    assert line.split()[1:] == ["●●✕●●"]
    assert "JFMAM" in out.output
    assert "1 missing, 1 partial" in out.output
    js = runner.invoke(app, ["coverage", "--home", str(settings.home), "--force", "btp", "--json"])
    assert js.exit_code == 0, js.output
    data = json.loads(js.output)
    assert data["totals"] == {"complete": 4, "partial": 1, "missing": 0}
    assert data["rows"][0]["months"]["2024-04"]["status"] == "partial"
    bad = runner.invoke(app, ["coverage", "--home", str(settings.home), "--force", "nowhere"])
    assert bad.exit_code == 2
