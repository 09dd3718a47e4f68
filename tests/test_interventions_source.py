"""Interventions as a source: CSV and GeoJSON logs through the ingest engine, the CLI, and the simulator's log."""

from __future__ import annotations

import json

import h3
import pytest
from deltalake import DeltaTable

from crimelake.ingest.engine import ingest_partition
from data_contracts.loader import default_contracts, load_taxonomy
from ml.interventions import KINDS, displacement_ring
from ml.panel import GROUPS
from orchestration.defs.ingest.assets import month_suite

LOG = default_contracts()[("interventions", "log")]
MONTH = "2025-06"
CELL = h3.latlng_to_cell(53.19, -2.89, 9)  # Chester, Cheshire
HEADER = "intervention_id,kind,area_type,area,force,start_date,end_date,agency,target_groups,description"
SQUARE = {"type": "Polygon", "coordinates": [[[-2.90, 53.18], [-2.88, 53.18], [-2.88, 53.20], [-2.90, 53.20],
                                              [-2.90, 53.18]]]}


def _land(settings, name: str, text: str):
    folder = settings.landing_dir("interventions", MONTH)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)


def _ingest(settings):
    return ingest_partition(settings, LOG, MONTH, validate=month_suite(LOG))


def _quarantine(settings):
    return DeltaTable(str(settings.quarantine("interventions", "log"))).to_pyarrow_table()


def test_contract_lists_match_the_shared_definitions():
    from crimelake.reference.forces import FORCES

    assert LOG.column("kind").enum == KINDS
    assert set(LOG.column("force").enum) == {f.slug for f in FORCES}
    assert set(load_taxonomy().forecast_groups) == set(GROUPS)  # what the forecastGroups rule checks against


def test_csv_log_loads_good_rows_and_quarantines_bad_ones(settings):
    rows = [
        f"IV-1,hot_spot_patrol,h3,{CELL},cheshire,2025-01-01,2025-04-30,Cheshire Police,violence;asb,Friday patrols",
        "IV-2,cctv,lsoa,E01012345;W01000001,north-wales,2024-11-01,,Council,theft,",
        f"IV-3,teleportation,h3,{CELL},cheshire,2025-01-01,,Police,asb,",  # line 4: unknown kind
        "IV-4,cctv,h3,not-a-cell,cheshire,2025-01-01,,Police,asb,",  # line 5: area is not cells
        f"IV-5,cctv,h3,{CELL},cheshire,2025-03-01,2025-02-01,Police,asb,",  # line 6: ends before it starts
        "IV-6,cctv,geojson,\"" + json.dumps(SQUARE).replace('"', '""') + "\",cheshire,2025-01-01,,Police,weapons,",
        "IV-8,cctv,lsoa,E01018400,cheshire,2025-05-01,,Council,asb;burglary,",  # line 8: not a forecast group
        "IV-9,cctv,lsoa,E01018400,cheshire,2025-05-01,,Council,theft,",
        "IV-10,cctv,lsoa,E01018400,cheshire,2025-05-01,,Council,theft,",
        "IV-7,closure_order,lsoa,E01018400,cheshire,2025-05-01,2025-05-31,Council,all_crime,\"Closure, 3 months\"",
    ]
    _land(settings, f"interventions-{MONTH}-chester.csv", HEADER + "\n" + "\n".join(rows) + "\n")
    r = _ingest(settings)
    assert r.counts_add_up and not r.held_back, r.summary()
    assert (r.rows_read, r.rows_loaded, r.rows_quarantined) == (10, 6, 4)
    bronze = DeltaTable(str(settings.bronze("interventions", "log"))).to_pyarrow_table()
    assert sorted(bronze.column("intervention_id").to_pylist()) == ["IV-1", "IV-10", "IV-2", "IV-6", "IV-7", "IV-9"]
    for name in ("intervention_id", "kind", "area_type", "area", "force", "start_date", "end_date", "agency",
                 "target_groups", "description", "month", "_source_file", "_source_line"):
        assert name in bronze.column_names
    q = {row["_source_line"]: row["reason"] for row in _quarantine(settings).to_pylist()}
    assert set(q) == {4, 5, 6, 8}
    assert "['burglary'] not forecast groups" in q[8]
    assert "kind" in q[4] and "teleportation" in q[4]
    assert "not H3 cells" in q[5]
    assert "end_date" in q[6] and "before" in q[6]


def _feature(props: dict, geometry=SQUARE) -> dict:
    return {"type": "Feature", "properties": props, "geometry": geometry}


def test_geojson_log_loads_features_and_quarantines_bad_ones_by_position(settings):
    base = {"kind": "street_lighting", "force": "cheshire", "start_date": "2025-02-01", "end_date": "",
            "agency": "Cheshire West and Chester", "target_groups": ["theft", "violence"], "description": "LED"}
    outside = {"type": "Polygon", "coordinates": [[[2.30, 48.85], [2.35, 48.85], [2.35, 48.90], [2.30, 48.85]]]}
    bowtie = {"type": "Polygon", "coordinates": [[[-2.9, 53.1], [-2.8, 53.2], [-2.8, 53.1], [-2.9, 53.2],
                                                  [-2.9, 53.1]]]}
    features = [
        _feature({"intervention_id": "GJ-1", **base}),
        _feature({"intervention_id": "GJ-2", **base}, outside),  # 2: Paris
        _feature({"intervention_id": "GJ-3", **base}, {"type": "Point", "coordinates": [-2.9, 53.19]}),  # 3
        _feature({"intervention_id": "GJ-4", **base}, bowtie),  # 4: self-intersecting
        {"type": "Feature", "properties": {"intervention_id": "GJ-5", "colour": "red", **base}, "geometry": SQUARE},
        _feature({"intervention_id": "GJ-6", **base, "area_type": "h3", "area": CELL}, None),
        _feature({"intervention_id": "GJ-7", **base}, {"type": "MultiPolygon", "coordinates": [SQUARE["coordinates"]]}),
        _feature({"intervention_id": "GJ-8", **base, "end_date": "2025-12-31"}),
        _feature({"intervention_id": "GJ-9", **base, "area_type": "lsoa", "area": ["E01018400", "E01018401"]},
                 None),
    ]
    _land(settings, f"interventions-{MONTH}-lighting.geojson",
          json.dumps({"type": "FeatureCollection", "features": features}, indent=2))
    r = _ingest(settings)
    assert r.counts_add_up and not r.held_back, r.summary()
    assert (r.rows_counted, r.rows_loaded, r.rows_quarantined) == (9, 5, 4)
    bronze = DeltaTable(str(settings.bronze("interventions", "log"))).to_pyarrow_table().sort_by("intervention_id")
    got = bronze.to_pylist()
    assert [g["intervention_id"] for g in got] == ["GJ-1", "GJ-6", "GJ-7", "GJ-8", "GJ-9"]
    assert got[0]["area_type"] == "geojson" and json.loads(got[0]["area"]) == SQUARE
    assert got[0]["target_groups"] == "theft;violence" and got[0]["end_date"] is None
    assert got[1]["area"] == CELL and got[4]["area"] == "E01018400;E01018401"
    q = {row["_source_line"]: (row["reason"], row["raw_text"]) for row in _quarantine(settings).to_pylist()}
    assert set(q) == {2, 3, 4, 5}
    assert "outside England and Wales" in q[2][0]
    assert "Point" in q[3][0]
    assert "not a valid geometry" in q[4][0]
    assert "colour" in q[5][0] and json.loads(q[5][1])["properties"]["intervention_id"] == "GJ-5"


def test_geojson_that_is_not_a_feature_collection_is_rejected_whole(settings):
    _land(settings, f"interventions-{MONTH}-broken.geojson", '{"type": "Feature"')
    r = _ingest(settings)
    assert [f.status for f in r.files] == ["rejected"] and "GeoJSON" in r.files[0].reason
    assert r.counts_add_up and r.rows_loaded == 0


# ---- the simulator's interventions -------------------------------------------------------------------------------

def _targeted_counts(landing, force: str, group: str) -> dict[tuple[str, str], int]:
    """Street rows of the targeted group per (H3 cell, month) in one force's generated files."""
    import csv

    from crimelake.simulate.catalogue import CATEGORIES
    from data_contracts.loader import load_taxonomy

    tax = load_taxonomy()
    in_group = {name for slug, name, _ in CATEGORIES if group in tax.by_slug(slug).groups}
    out: dict[tuple[str, str], int] = {}
    for path in sorted((landing / "police_uk").glob(f"*/*-{force}-street.csv")):
        with path.open() as f:
            for row in csv.DictReader(f):
                if row["Crime type"] in in_group and row["Latitude"]:
                    key = (h3.latlng_to_cell(float(row["Latitude"]), float(row["Longitude"]), 9), row["Month"])
                    out[key] = out.get(key, 0) + 1
    return out


def _rate(counts, cells, months) -> float:
    return sum(counts.get((c, m), 0) for c in cells for m in months) / len(months)


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """The same run with four interventions and without any."""
    from crimelake.simulate import generate

    base = tmp_path_factory.mktemp("planted")
    kw = dict(seed=21, forces=["cheshire"], start="2024-01", months=18, incidents=8000, defect_rate=0)
    generate(base / "with", interventions=4, **kw)
    generate(base / "without", interventions=0, **kw)
    return base / "with", base / "without"


def test_generate_writes_the_log_and_the_truth(planted, settings):
    import csv

    with_iv, without = planted
    truth = list(csv.DictReader((with_iv / "reference" / "interventions_truth.csv").open()))
    assert [(t["intervention_id"], t["group"], float(t["true_rate_ratio"]), float(t["displacement_share"]))
            for t in truth] == [("DEMO-01", "violence", 0.75, 0.0), ("DEMO-02", "all_crime", 0.75, 0.0),
                                ("DEMO-03", "theft", 1.0, 0.0), ("DEMO-04", "all_crime", 0.75, 0.5)]
    assert not (without / "interventions").exists() and not (without / "reference" / "interventions_truth.csv").exists()
    # The log is a delivery like any other: it loads whole through the contract.
    logs = list((with_iv / "interventions").glob("*/*.csv"))
    assert [p.parent.name for p in logs] == ["2025-06"]
    folder = settings.landing_dir("interventions", "2025-06")
    folder.mkdir(parents=True)
    (folder / logs[0].name).write_bytes(logs[0].read_bytes())
    r = ingest_partition(settings, LOG, "2025-06", validate=month_suite(LOG))
    assert (r.rows_loaded, r.rows_quarantined, r.held_back) == (4, 0, [])


def test_generated_incidents_carry_the_planted_effect(planted):
    import csv

    from crimelake.simulate.dynamics import month_index, month_label

    with_iv, without = planted
    log = {row["intervention_id"]: row for row in csv.DictReader(next((with_iv / "interventions").glob("*/*.csv")).open())}
    for t in csv.DictReader((with_iv / "reference" / "interventions_truth.csv").open()):
        iv = log[t["intervention_id"]]
        cells = iv["area"].split(";")
        first, start, end = month_index("2024-01"), month_index(t["start_month"]), month_index(t["end_month"])
        before = [month_label(m) for m in range(first, start)]
        during = [month_label(m) for m in range(start, end + 1)]
        a, b = (_targeted_counts(p, t["force"], t["group"]) for p in (with_iv, without))
        assert _rate(a, cells, before) == _rate(b, cells, before)  # untouched before it starts
        # During against before in the treated cells, relative to the same ratio had nothing been done.
        ratio = (_rate(a, cells, during) / _rate(a, cells, before)) / (_rate(b, cells, during) / _rate(b, cells, before))
        n = _rate(b, cells, during) * len(during)
        assert n >= 100, (t, "too few targeted crimes for the check to mean anything")
        rr = float(t["true_rate_ratio"])
        # Each crime is prevented or not independently: the ratio's spread is binomial.
        assert abs(ratio - rr) < max(0.05, 3.5 * (rr * (1 - rr) / n) ** 0.5), (t, ratio)
        # The truth's tally of the draw is what the published street rows show.
        assert abs(int(t["targeted_without"]) - n) <= 0.03 * n and abs(int(t["prevented"]) - (n - _rate(a, cells, during)
                                                                                              * len(during))) <= 0.03 * n
        prevented = (_rate(b, cells, during) - _rate(a, cells, during)) * len(during)
        ring = sorted(displacement_ring(cells, 1))
        moved = (_rate(a, ring, during) - _rate(b, ring, during)) * len(during)
        share = float(t["displacement_share"])
        if share:
            assert abs(moved / prevented - share) < 3.5 * (share * (1 - share) / prevented) ** 0.5, (t, moved, prevented)
        else:
            assert abs(moved) <= 0.05 * max(prevented, 20), (t, moved)


# ---- the CLI -----------------------------------------------------------------------------------------------------

def test_cli_add_then_list_round_trip(settings, tmp_path):
    from datetime import UTC, datetime

    from typer.testing import CliRunner

    from crimelake.cli import app

    run = CliRunner()
    home = ["--home", str(settings.home)]
    common = ["--kind", "cctv", "--force", "cheshire", "--start", "2025-01-01", "--agency", "Cheshire West"]
    first = run.invoke(app, ["interventions", "add", "--id", "CHE-1", *common, "--groups", "theft,asb",
                             "--area", f"{CELL},{h3.grid_ring(CELL, 1)[0]}", *home])
    assert first.exit_code == 0, first.output
    area = tmp_path / "area.geojson"
    area.write_text(json.dumps({"type": "FeatureCollection", "features": [_feature({}, SQUARE)]}))
    second = run.invoke(app, ["interventions", "add", "--id", "CHE-2", *common, "--groups", "violence",
                              "--area-file", str(area), "--end", "2025-03-31", *home])
    assert second.exit_code == 0, second.output
    # A correction of CHE-1 in the same month is a new delivery that supersedes the first.
    again = run.invoke(app, ["interventions", "add", "--id", "CHE-1", *common, "--groups", "theft",
                             "--area", CELL, "--description", "corrected", *home])
    assert again.exit_code == 0, again.output
    bad = run.invoke(app, ["interventions", "add", "--id", "CHE-3", *common, "--groups", "theft;burglary",
                           "--area", CELL, "--end", "2024-12-31", *home])
    assert bad.exit_code == 2
    assert "target_groups" in bad.output and "burglary" in bad.output and "end_date" in bad.output
    month = datetime.now(UTC).strftime("%Y-%m")
    files = sorted(p.name for p in settings.landing_dir("interventions", month).iterdir())
    assert files == [f"interventions-{month}-CHE-1.csv", f"interventions-{month}-CHE-1.v2.csv",
                     f"interventions-{month}-CHE-2.csv"]

    r = ingest_partition(settings, LOG, month, validate=month_suite(LOG))
    assert (r.rows_loaded, r.rows_quarantined, r.held_back) == (2, 0, [])
    assert [f.status for f in r.files].count("superseded") == 1
    listed = run.invoke(app, ["interventions", "list", *home])
    assert listed.exit_code == 0, listed.output
    assert "CHE-1" in listed.output and "CHE-2" in listed.output and "Polygon" in listed.output
    assert "1 cell" in listed.output and "ongoing" in listed.output and "CHE-3" not in listed.output
    other = run.invoke(app, ["interventions", "list", "--force", "north-wales", *home])
    assert "Interventions (0)" in other.output and "CHE-1" not in other.output
