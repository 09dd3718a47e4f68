"""Interventions as a source: CSV and GeoJSON logs through the ingest engine, the CLI, and the simulator's log."""

from __future__ import annotations

import json

import h3
import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable

from crimelake.ingest.engine import ingest_partition
from data_contracts.loader import default_contracts
from ml.interventions import KINDS
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
    for g in GROUPS:
        assert pc.match_substring_regex(g, LOG.column("target_groups").pattern).as_py()
    assert not pc.match_substring_regex("asb;burglary", LOG.column("target_groups").pattern).as_py()


def test_csv_log_loads_good_rows_and_quarantines_bad_ones(settings):
    rows = [
        f"IV-1,hot_spot_patrol,h3,{CELL},cheshire,2025-01-01,2025-04-30,Cheshire Police,violence;asb,Friday patrols",
        "IV-2,cctv,lsoa,E01012345;W01000001,north-wales,2024-11-01,,Council,theft,",
        f"IV-3,teleportation,h3,{CELL},cheshire,2025-01-01,,Police,asb,",  # line 4: unknown kind
        "IV-4,cctv,h3,not-a-cell,cheshire,2025-01-01,,Police,asb,",  # line 5: area is not cells
        f"IV-5,cctv,h3,{CELL},cheshire,2025-03-01,2025-02-01,Police,asb,",  # line 6: ends before it starts
        "IV-6,cctv,geojson,\"" + json.dumps(SQUARE).replace('"', '""') + "\",cheshire,2025-01-01,,Police,weapons,",
        "IV-7,closure_order,lsoa,E01018400,cheshire,2025-05-01,2025-05-31,Council,all_crime,\"Closure, 3 months\"",
    ]
    _land(settings, f"interventions-{MONTH}-chester.csv", HEADER + "\n" + "\n".join(rows) + "\n")
    r = _ingest(settings)
    assert r.counts_add_up and not r.held_back, r.summary()
    assert (r.rows_read, r.rows_loaded, r.rows_quarantined) == (7, 4, 3)
    bronze = DeltaTable(str(settings.bronze("interventions", "log"))).to_pyarrow_table()
    assert sorted(bronze.column("intervention_id").to_pylist()) == ["IV-1", "IV-2", "IV-6", "IV-7"]
    for name in ("intervention_id", "kind", "area_type", "area", "force", "start_date", "end_date", "agency",
                 "target_groups", "description", "month", "_source_file", "_source_line"):
        assert name in bronze.column_names
    q = {row["_source_line"]: row["reason"] for row in _quarantine(settings).to_pylist()}
    assert set(q) == {4, 5, 6}
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
