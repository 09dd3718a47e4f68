"""Access by force of record: in a cell two forces share (a railway station British Transport Police polices inside
a territorial force's cell), each force's analyst gets their own force's records and counts, never the other's."""

from __future__ import annotations

import datetime as dt

import h3
import pandas as pd
import pyarrow as pa
import pytest

from crimelake import lake
from crimelake.serve.access import Principal
from crimelake.serve.layers import Forbidden, Layers
from crimelake.serve.store import LakeView

SHARED = h3.latlng_to_cell(52.136, -0.468, 9)  # Bedford station
BEDS_ONLY = h3.latlng_to_cell(52.0, -0.5, 9)
MONTH = "2025-03"


def _incident(i: int, cell: str, force: str) -> dict:
    return {"incident_id": f"{force}-{i}", "h3_cell": cell, "force": force, "month": MONTH,
            "occurred_date": dt.date(2025, 3, 1 + i % 28), "category_name": "Theft from the person",
            "source": "police_uk", "knife_enabled": False, "police_discovered": False, "in_all_crime": True,
            "longitude": -0.468, "latitude": 52.136}


@pytest.fixture
def layers(settings) -> Layers:
    rows = ([_incident(i, SHARED, "bedfordshire") for i in range(7)]
            + [_incident(i, SHARED, "btp") for i in range(5)]
            + [_incident(i + 20, BEDS_ONLY, "bedfordshire") for i in range(3)])
    incidents = pd.DataFrame(rows)
    lake.replace_table(settings.gold("fct_incidents"), pa.Table.from_pandas(incidents, preserve_index=False))
    counts = (incidents.groupby(["h3_cell", "force", "month"], as_index=False).size()
              .rename(columns={"size": "incident_count"}).assign(forecast_group="all_crime"))
    lake.replace_table(settings.gold("fct_cell_month_counts"), pa.Table.from_pandas(counts, preserve_index=False))
    # The shared cell's force of record is Bedfordshire (it recorded most there).
    cells = pd.DataFrame({"h3_cell": [SHARED, BEDS_ONLY], "force": "bedfordshire",
                          "centre_latitude": [52.136, 52.0], "centre_longitude": [-0.468, -0.5]})
    lake.replace_table(settings.gold("dim_cells"), pa.Table.from_pandas(cells, preserve_index=False))
    return Layers(LakeView(settings, refresh_seconds=0))


BEDS = Principal("beds", "analyst", "bedfordshire")
BTP = Principal("btp", "analyst", "btp")
AUDITOR = Principal("aud", "auditor")


def test_each_analyst_gets_only_their_own_forces_records_in_a_shared_cell(layers):
    beds = layers.incidents(BEDS, SHARED, month=MONTH)
    btp = layers.incidents(BTP, SHARED, month=MONTH)
    assert beds["numberMatched"] == 7 and {i["force"] for i in beds["items"]} == {"bedfordshire"}
    # The minority force is not refused its own records in a cell another force holds most of.
    assert btp["numberMatched"] == 5 and {i["force"] for i in btp["items"]} == {"btp"}
    assert layers.incidents(AUDITOR, SHARED, month=MONTH)["numberMatched"] == 12
    with pytest.raises(Forbidden, match="btp has recorded no incident"):
        layers.incidents(BTP, BEDS_ONLY, month=MONTH)


def test_a_shared_cells_history_is_the_callers_force_only(layers):
    beds = layers.cell(BEDS, SHARED)
    btp = layers.cell(BTP, SHARED)
    assert [p["count"] for p in beds["history"]] == [7]
    assert [p["count"] for p in btp["history"]] == [5]
    with pytest.raises(Forbidden):
        layers.cell(BTP, SHARED, force="bedfordshire")
    with pytest.raises(Forbidden):
        layers.cell(BTP, BEDS_ONLY)


def test_the_csv_export_holds_only_the_callers_force(layers, settings, monkeypatch):
    from fastapi.testclient import TestClient

    from crimelake.serve.access import add_key
    from crimelake.serve.app import create_app

    key = add_key(settings, "btp-analyst", "analyst", "btp")
    client = TestClient(create_app(settings, refresh_seconds=0))
    r = client.get(f"/api/cells/{SHARED}/incidents", params={"month": MONTH, "format": "csv"},
                   headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200, r.text
    rows = r.text.splitlines()
    assert len(rows) == 1 + 5 and all(",btp," in line for line in rows[1:])
    client.app.state.audits.flush()
    from crimelake import audit

    exported = [e for e in audit.entries(settings) if e["action"] == "export" and e["target"] == SHARED]
    assert exported and exported[-1]["actor"] == "btp-analyst"

