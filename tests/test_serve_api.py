"""The map API over a lake built by the real pipeline: every endpoint for every role, refusals, paging, bad
requests and the disclosure rules of the public view."""

from __future__ import annotations

import gzip
import json
import math

import h3
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from crimelake import audit, lake
from crimelake.disclosure import PUBLIC_H3_RESOLUTION, RECORD_LEVEL_COLUMNS
from crimelake.serve.access import add_key, revoke_key
from crimelake.serve.app import create_app

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("map")]

DETAIL = 9


@pytest.fixture(scope="module")
def client(map_home, map_keys) -> TestClient:
    return TestClient(create_app(map_home, refresh_seconds=0))


@pytest.fixture(scope="module")
def as_role(map_keys):
    def headers(role: str) -> dict:
        return {} if role == "public" else {"Authorization": f"Bearer {map_keys[role]}"}
    return headers


@pytest.fixture(scope="module")
def gold_counts(map_home) -> pd.DataFrame:
    return lake.read(map_home.gold("fct_cell_month_counts")).to_pandas()


def _props(body: dict) -> list[dict]:
    return [f["properties"] for f in body["features"]]


def _assert_protected(values) -> None:
    """Published counts are null (suppressed) or a multiple of 5 that is 0 or at least 5."""
    for v in values:
        if v is None:
            continue
        assert v == 0 or (v >= 5 and v % 5 == 0), f"unprotected public count {v}"


def _entries(client: TestClient, settings) -> list[dict]:
    """The audit log once the app has written what it queued (it writes in batches off the request path)."""
    client.app.state.audits.flush()
    return audit.entries(settings)


def _refusals(client: TestClient, settings, path: str) -> list[dict]:
    return [e for e in _entries(client, settings) if e["action"] == "refused" and e["target"] == path]


# ----- meta and freshness ------------------------------------------------------------------------------------
def test_meta_describes_the_data_and_the_callers_reach(client, as_role, map_home, gold_counts):
    public = client.get("/api/meta").json()
    months = sorted(gold_counts["month"].unique())
    assert public["role"] == "public" and public["principal"] is None
    assert public["months"] == months and public["latest_month"] == months[-1]
    assert {f["slug"] for f in public["forces"]} == {"bedfordshire", "city-of-london"}
    assert public["detail_forces"] == [] and not public["can_trace"] and not public["can_see_emerging"]
    assert set(public["forecast"]) == {"all_crime", "asb"}
    fresh = public["freshness"]
    assert fresh["latest_month"] == months[-1] and fresh["landed_at"]
    versions = {t["table"]: t["version"] for t in fresh["tables"]}
    assert versions["gold/fct_cell_month_counts"] == lake.version(map_home.gold("fct_cell_month_counts"))
    assert versions["ml/predictions"] == lake.version(map_home.lake / "ml" / "predictions")

    analyst = client.get("/api/meta", headers=as_role("analyst")).json()
    assert (analyst["role"], analyst["analyst_force"], analyst["detail_forces"]) == \
        ("analyst", "bedfordshire", ["bedfordshire"])
    assert analyst["can_see_emerging"] and not analyst["can_trace"]
    auditor = client.get("/api/meta", headers=as_role("auditor")).json()
    assert sorted(auditor["detail_forces"]) == ["bedfordshire", "city-of-london"] and auditor["can_trace"]


# ----- counts ------------------------------------------------------------------------------------------------
def test_public_counts_are_the_protected_public_grid(client, map_home):
    body = client.get("/api/layers/counts").json()
    assert all(b % 5 == 0 for b in body["breaks"]), "public class boundaries follow the rounding to 5"
    assert body["resolution"] == PUBLIC_H3_RESOLUTION and body["group"] == "all_crime"
    latest = client.get("/api/meta").json()["latest_month"]
    assert body["month"] == latest
    props = _props(body)
    assert props and all(h3.get_resolution(p["h3_cell"]) == PUBLIC_H3_RESOLUTION for p in props)
    _assert_protected([p["count"] for p in props])
    assert all((p["count"] is None) == p["suppressed"] for p in props)
    # With all forces, a cell is one total across the forces whose area it covers: drawn once.
    public = lake.read(map_home.lake / "public" / "cell_month_counts_all_forces").to_pandas()
    month = public[(public["month"] == latest) & (public["forecast_group"] == "all_crime")]
    shown = month[(month["incident_count"] > 0) | month["incident_count_suppressed"]]
    assert body["numberMatched"] == len(shown) == len({p["h3_cell"] for p in props})
    assert sum(p["count"] or 0 for p in props) == int(shown["incident_count"].fillna(0).sum())
    assert any(p["suppressed"] for p in props), "the demo month should hold some suppressed cells"
    # With one force chosen, that force's own published counts.
    one = client.get("/api/layers/counts", params={"force": "city-of-london"}).json()
    by_force = lake.read(map_home.lake / "public" / "cell_month_counts").to_pandas()
    london = by_force[(by_force["month"] == latest) & (by_force["forecast_group"] == "all_crime")
                      & (by_force["force"] == "city-of-london")
                      & ((by_force["incident_count"] > 0) | by_force["incident_count_suppressed"])]
    assert {p["h3_cell"]: p["count"] for p in _props(one)} == dict(
        zip(london["h3_cell"], [None if pd.isna(v) else int(v) for v in london["incident_count"]], strict=True))


def test_paging_returns_every_feature_once(client):
    whole = client.get("/api/layers/counts", params={"group": "asb"}).json()
    seen, url, pages = [], "/api/layers/counts?group=asb&limit=40", 0
    while url:
        page = client.get(url).json()
        assert page["numberReturned"] <= 40 and page["numberMatched"] == whole["numberMatched"]
        seen += [f["id"] for f in page["features"]]
        url, pages = page["next"], pages + 1
    assert pages == math.ceil(whole["numberMatched"] / 40)
    assert sorted(seen) == sorted(f["id"] for f in whole["features"]) and len(set(seen)) == len(seen)


def test_analyst_sees_exact_street_level_counts_of_their_force_only(client, as_role, gold_counts, map_home):
    body = client.get("/api/layers/counts", params={"force": "bedfordshire", "month": "2024-06"},
                      headers=as_role("analyst")).json()
    assert body["resolution"] == DETAIL
    gold = gold_counts[(gold_counts["force"] == "bedfordshire") & (gold_counts["month"] == "2024-06")
                       & (gold_counts["forecast_group"] == "all_crime") & (gold_counts["incident_count"] > 0)]
    got = {p["h3_cell"]: p["count"] for p in _props(body)}
    assert got == dict(zip(gold["h3_cell"], gold["incident_count"].astype(int), strict=True))

    refused = client.get("/api/layers/counts", params={"force": "city-of-london", "resolution": 9},
                         headers=as_role("analyst"))
    assert refused.status_code == 403 and "bedfordshire only" in refused.json()["detail"]
    assert client.get("/api/layers/counts", params={"resolution": 9}, headers=as_role("analyst")).status_code == 403
    # Elsewhere the analyst gets the public view, as anyone does.
    other = client.get("/api/layers/counts", params={"force": "city-of-london"}, headers=as_role("analyst")).json()
    assert other["resolution"] == PUBLIC_H3_RESOLUTION
    refused = _refusals(client, map_home, "/api/layers/counts")
    assert any(e["detail"] and "city-of-london" in e["detail"] for e in refused)


def test_density_and_fixed_breaks(client, as_role):
    params = {"force": "bedfordshire", "measure": "per_km2"}
    a = client.get("/api/layers/counts", params={**params, "month": "2024-03"}, headers=as_role("analyst")).json()
    b = client.get("/api/layers/counts", params={**params, "month": "2025-09"}, headers=as_role("analyst")).json()
    assert a["breaks"] == b["breaks"] and len(a["breaks"]) == 5 and a["breaks"] == sorted(set(a["breaks"]))
    for p in _props(a):
        assert p["value"] == p["per_km2"] == pytest.approx(p["count"] / p["area_km2"], rel=1e-3)


def test_public_is_refused_street_level_and_the_refusal_is_logged(client, map_home):
    before = len(_refusals(client, map_home, "/api/layers/counts"))
    r = client.get("/api/layers/counts", params={"resolution": 9, "force": "bedfordshire"})
    assert r.status_code == 403 and "analyst, auditor or admin key" in r.json()["detail"]
    after = _refusals(client, map_home, "/api/layers/counts")
    assert len(after) == before + 1
    entry = json.loads(after[-1]["detail"])
    assert entry["status"] == 403 and entry["role"] == "public" and "resolution=9" in entry["query"]


@pytest.mark.parametrize(("query", "status", "words"), [
    ("force=atlantis", 404, "unknown force 'atlantis'"),
    ("month=2031-01", 400, "outside the data"),
    ("month=2024-13", 422, "month"),
    ("month=last", 422, "month"),
    ("group=burglary", 422, "group"),
    ("measure=rate", 422, "measure"),
    ("limit=5001", 422, "limit"),
    ("limit=0", 422, "limit"),
    ("offset=-1", 422, "offset"),
    ("resolution=8", 422, "resolution 8"),
    ("bbox=1,2,3", 422, "four numbers"),
    ("bbox=0,52,-1,53", 422, "minimum must be below"),
    ("bbox=10,40,11,41", 400, "outside England and Wales"),
])
def test_bad_requests_get_clear_4xx(client, query, status, words):
    r = client.get(f"/api/layers/counts?{query}")
    assert r.status_code == status, r.text
    assert words in r.json()["detail"]


def test_street_level_requests_are_bounded(client, as_role):
    auditor = as_role("auditor")
    r = client.get("/api/layers/counts", params={"resolution": 9}, headers=auditor)
    assert r.status_code == 400 and "need a force or a bbox" in r.json()["detail"]
    r = client.get("/api/layers/counts", params={"resolution": 9, "bbox": "-3,51,0,53"}, headers=auditor)
    assert r.status_code == 413 and "km²" in r.json()["detail"]
    small = client.get("/api/layers/counts", params={"resolution": 9, "bbox": "-0.5,52.0,-0.4,52.2",
                                                     "month": "2024-06"}, headers=auditor).json()
    assert small["numberMatched"] > 0
    for p in _props(small):
        lat, lng = h3.cell_to_latlng(p["h3_cell"])
        assert -0.5 <= lng <= -0.4 and 52.0 <= lat <= 52.2


# ----- forecast ----------------------------------------------------------------------------------------------
def test_forecast_layer_by_role(client, as_role, map_home):
    preds = lake.read(map_home.lake / "ml" / "predictions").to_pandas()
    preds = preds[(preds["forecast_group"] == "all_crime") & (preds["model_alias"] == "champion")]
    target = preds["target_month"].max()

    public = client.get("/api/layers/forecast").json()
    props = _props(public)
    assert public["target_month"] == target and public["resolution"] == PUBLIC_H3_RESOLUTION
    assert props and all(p["hotspot_5pct"] for p in props) and all("prediction_id" not in p for p in props)
    everything = client.get("/api/layers/forecast", params={"hotspots": "all"}).json()
    n = everything["numberMatched"]
    assert public["numberMatched"] == max(1, -(-n * 5 // 100))
    _assert_protected([p["predicted_count"] for p in _props(everything)])

    analyst = client.get("/api/layers/forecast", params={"force": "bedfordshire", "hotspots": "1"},
                         headers=as_role("analyst")).json()
    beds = preds[(preds["force"] == "bedfordshire") & preds["hotspot_1pct"]]
    assert analyst["resolution"] == DETAIL
    assert {p["h3_cell"] for p in _props(analyst)} == set(beds["h3_cell"])
    assert all("prediction_id" not in p for p in _props(analyst))
    assert {p["model_version"] for p in _props(analyst)} == set(beds["model_version"])
    auditor = client.get("/api/layers/forecast", params={"force": "bedfordshire"}, headers=as_role("auditor")).json()
    assert all(p["prediction_id"] in set(preds["prediction_id"]) for p in _props(auditor))

    missing = client.get("/api/layers/forecast", params={"group": "violence"})
    assert missing.status_code == 404 and "no published forecast for violence" in missing.json()["detail"]


# ----- emerging hot spots ------------------------------------------------------------------------------------
def test_emerging_layer_by_role(client, as_role, map_home):
    assert client.get("/api/layers/emerging").status_code == 403
    body = client.get("/api/layers/emerging", headers=as_role("analyst")).json()
    assert body["force"] == "bedfordshire"
    props = _props(body)
    table = lake.read(map_home.lake / "ml" / "emerging_hotspots").to_pandas()
    want = table[(table["force"] == "bedfordshire") & (table["forecast_group"] == "all_crime")
                 & (table["category"] != "No Pattern Detected")]
    assert body["numberMatched"] == len(want) and {p["category"] for p in props} == set(want["category"])
    assert client.get("/api/layers/emerging", params={"force": "city-of-london"},
                      headers=as_role("analyst")).status_code == 403
    assert client.get("/api/layers/emerging", params={"force": "city-of-london"},
                      headers=as_role("auditor")).status_code == 200
    r = client.get("/api/layers/emerging", params={"category": "Lukewarm Spot", "force": "bedfordshire"},
                   headers=as_role("auditor"))
    assert r.status_code == 422 and "Lukewarm Spot" in r.json()["detail"] and "one of" in r.json()["detail"]


# ----- one cell ----------------------------------------------------------------------------------------------
def test_public_cell_history_is_protected(client):
    props = _props(client.get("/api/layers/counts").json())
    cell = next(p for p in props if p["suppressed"])["h3_cell"]
    body = client.get(f"/api/cells/{cell}").json()
    assert body["resolution"] == PUBLIC_H3_RESOLUTION and body["trace_url"] is None
    assert body["incidents_url"] is None and body["emerging"] is None
    assert len(body["history"]) == 24
    _assert_protected([p["count"] for p in body["history"]])
    assert body["history"][-1]["suppressed"]


def test_street_level_cell_for_analyst_and_auditor(client, as_role, gold_counts, map_home):
    preds = lake.read(map_home.lake / "ml" / "predictions").to_pandas()
    row = preds[(preds["force"] == "bedfordshire") & (preds["forecast_group"] == "all_crime")
                & (preds["model_alias"] == "champion")].sort_values("rank").iloc[0]
    cell = row["h3_cell"]
    body = client.get(f"/api/cells/{cell}", headers=as_role("analyst")).json()
    g = gold_counts[(gold_counts["h3_cell"] == cell) & (gold_counts["forecast_group"] == "all_crime")]
    assert [p["count"] for p in body["history"]] == g.sort_values("month")["incident_count"].astype(int).tolist()
    assert body["forecast"]["model_version"] == row["model_version"]
    assert body["forecast"]["predicted_count"] == pytest.approx(row["predicted_count"], abs=1e-3)
    assert body["trace_url"] is None and body["incidents_url"] == f"/api/cells/{cell}/incidents"
    audited = client.get(f"/api/cells/{cell}", headers=as_role("auditor")).json()
    assert audited["trace_url"] == f"/api/trace/{row['prediction_id']}"
    assert client.get(f"/api/cells/{cell}").status_code == 403


def test_cell_forecast_carries_its_90pct_interval_where_the_forecast_is_exact(client, as_role, map_home):
    preds = lake.read(map_home.lake / "ml" / "predictions").to_pandas()
    row = preds[(preds["force"] == "bedfordshire") & (preds["forecast_group"] == "all_crime")
                & (preds["model_alias"] == "champion")].sort_values("rank").iloc[0]
    body = client.get(f"/api/cells/{row['h3_cell']}", headers=as_role("analyst")).json()
    fc = body["forecast"]
    assert fc["lower_90"] == pytest.approx(row["lower_90"], abs=1e-3)
    assert fc["upper_90"] == pytest.approx(row["upper_90"], abs=1e-3)
    assert fc["interval_level"] == 0.9 and 0 <= fc["lower_90"] <= fc["upper_90"]
    # The forecast month lies beyond the last month of the history it is drawn after.
    assert fc["target_month"] > body["history"][-1]["month"]
    # The public grid sums street-level forecasts: no interval there (a sum of bounds is not one), and the
    # published count stays protected.
    public_cell = h3.cell_to_parent(row["h3_cell"], PUBLIC_H3_RESOLUTION)
    public = client.get(f"/api/cells/{public_cell}").json()["forecast"]
    assert public is not None and public["lower_90"] is None and public["upper_90"] is None
    assert public["interval_level"] is None
    _assert_protected([public["predicted_count"]])


@pytest.mark.parametrize(("cell", "status"), [
    ("not-a-cell", 422),
    ("8" * 17, 422),  # more hex digits than an H3 index holds
    ("", 404),
    (h3.latlng_to_cell(52.1, -0.45, 8), 422),
    (h3.latlng_to_cell(53.5, -2.2, 9), 404),
])
def test_bad_cells(client, as_role, cell, status):
    assert client.get(f"/api/cells/{cell}", headers=as_role("auditor")).status_code == status


# ----- incidents ---------------------------------------------------------------------------------------------
def test_incidents_are_per_cell_paged_audited_and_match_the_count(client, as_role, map_home, gold_counts):
    incidents = lake.read(map_home.gold("fct_incidents")).to_pandas()
    beds = incidents[incidents["force"] == "bedfordshire"]
    (cell, month), _ = next(iter(beds.groupby(["h3_cell", "month"]).size().sort_values().tail(1).items()))
    url = f"/api/cells/{cell}/incidents"
    assert client.get(url, params={"month": month}).status_code == 403
    body = client.get(url, params={"month": month, "limit": 2}, headers=as_role("analyst")).json()
    want = beds[(beds["h3_cell"] == cell) & (beds["month"] == month) & beds["in_all_crime"]]
    assert body["numberMatched"] == len(want) and body["numberReturned"] == min(2, len(want))
    assert {i["incident_id"] for i in body["items"]} <= set(want["incident_id"])
    # Record-level for the analyst's own force: the reference and where it happened (no lineage columns).
    assert set(body["items"][0]) & RECORD_LEVEL_COLUMNS == {"incident_id", "longitude", "latitude"}
    assert {"recorded_month", "occurred_date", "outcome", "outcome_month"} <= set(body["items"][0])
    assert {i["recorded_month"] for i in body["items"]} == {month} and "occurred_date" in body["dates"]
    # The list is what the cell's count on the map is made of.
    count = gold_counts[(gold_counts["h3_cell"] == cell) & (gold_counts["month"] == month)
                        & (gold_counts["forecast_group"] == "all_crime")]["incident_count"].item()
    assert body["numberMatched"] == count
    export = client.get(url, params={"month": month, "format": "csv"}, headers=as_role("analyst"))
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    assert f'filename="incidents-{cell}-{month}-all_crime.csv"' in export.headers["content-disposition"]
    lines = export.text.splitlines()
    assert lines[0].startswith("incident_id,force,recorded_month,occurred_date") and len(lines) == len(want) + 1
    assert client.get(url, params={"month": month, "format": "csv"}).status_code == 403
    every = client.get(url, params={"month": month, "group": "any"}, headers=as_role("analyst")).json()
    assert every["numberMatched"] == int(((beds["h3_cell"] == cell) & (beds["month"] == month)).sum())
    views = [e for e in _entries(client, map_home) if e["action"] == "view" and e["target"] == cell]
    assert views and views[-1]["actor"] == "beds-analyst" and json.loads(views[-1]["detail"])["month"] == month
    assert client.get(url, params={"limit": 201}, headers=as_role("analyst")).status_code == 422
    r7 = h3.cell_to_parent(cell, 7)
    assert client.get(f"/api/cells/{r7}/incidents", headers=as_role("analyst")).status_code == 422
    london = incidents[incidents["force"] == "city-of-london"]["h3_cell"].dropna().iloc[0]
    assert client.get(f"/api/cells/{london}/incidents", headers=as_role("analyst")).status_code == 403


# ----- force totals ------------------------------------------------------------------------------------------
def test_force_totals_are_public_and_protected(client, map_home):
    body = client.get("/api/forces/totals", params={"force": "city-of-london"}).json()
    assert len(body["items"]) == 24 and {i["force"] for i in body["items"]} == {"city-of-london"}
    _assert_protected([i["count"] for i in body["items"]])
    assert client.get("/api/forces/totals", params={"force": "gotham"}).status_code == 404


# ----- trace, audit log, keys --------------------------------------------------------------------------------
def test_trace_for_auditors_only(client, as_role, map_home):
    preds = lake.read(map_home.lake / "ml" / "predictions").to_pandas()
    pid = preds.sort_values("rank")["prediction_id"].iloc[0]
    assert client.get(f"/api/trace/{pid}", headers=as_role("analyst")).status_code == 403
    body = client.get(f"/api/trace/{pid}", headers=as_role("auditor")).json()
    assert body["prediction_id"] == pid
    assert body["verified"] is True, [h for h in body["hops"] if not h["ok"]]
    assert [h["name"] for h in body["hops"]] == ["model", "feature tables", "feature rows", "dbt models",
                                                 "bronze rows", "extract files"]
    assert all(h["ok"] for h in body["hops"])
    assert client.get(f"/api/trace/{'0' * 32}", headers=as_role("auditor")).status_code == 404
    assert client.get("/api/trace/nonsense", headers=as_role("auditor")).status_code == 422


def test_trace_reads_this_homes_registry_whatever_mlflow_was_pointed_at(client, as_role, map_home, tmp_path):
    import mlflow

    preds = lake.read(map_home.lake / "ml" / "predictions").to_pandas()
    pid = preds.sort_values("rank")["prediction_id"].iloc[0]
    before = mlflow.get_registry_uri()
    # Another home trained in this process earlier: MLflow's process-wide registry points at its database.
    mlflow.set_registry_uri(f"sqlite:///{tmp_path / 'other-home.db'}")
    try:
        # rehash: asked again rather than remembered from the test before
        body = client.get(f"/api/trace/{pid}", params={"rehash": "true"}, headers=as_role("auditor")).json()
    finally:
        mlflow.set_registry_uri(before)
    assert body["verified"] is True, [h for h in body["hops"] if not h["ok"]]


def test_audit_log_and_key_list(client, as_role):
    assert client.get("/api/audit", headers=as_role("analyst")).status_code == 403
    client.get("/api/layers/emerging")  # a refusal to find
    body = client.get("/api/audit", params={"action": "refused"}, headers=as_role("auditor")).json()
    assert body["items"] and all(i["action"] == "refused" for i in body["items"])
    assert body["items"][0]["target"] == "/api/layers/emerging"
    assert client.get("/api/audit", params={"action": "nap"}, headers=as_role("auditor")).status_code == 422
    assert client.get("/api/access", headers=as_role("auditor")).status_code == 403
    keys = client.get("/api/access", headers=as_role("admin")).json()["keys"]
    assert {k["name"] for k in keys} >= {"beds-analyst", "auditor", "admin"}
    assert all("sha256" not in k and "key" not in k for k in keys)


def test_unknown_and_revoked_keys_are_refused(client, map_home):
    r = client.get("/api/meta", headers={"Authorization": "Bearer ck_wrong"})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    r = client.get("/api/meta", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert r.status_code == 401 and "Bearer <key>" in r.json()["detail"]
    key = add_key(map_home, "short-lived", "auditor")
    assert client.get("/api/meta", headers={"X-API-Key": key}).json()["role"] == "auditor"
    revoke_key(map_home, "short-lived")
    assert client.get("/api/meta", headers={"X-API-Key": key}).status_code == 401
    assert len(_refusals(client, map_home, "/api/meta")) >= 3


# ----- the page and the docs ---------------------------------------------------------------------------------
def test_page_assets_and_docs_are_served_locally(client):
    page = client.get("/")
    assert page.status_code == 200 and "/static/vendor/leaflet/leaflet.js" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "http" not in page.text.split("<body", 1)[0].replace("http-equiv", "")
    for asset in ("/static/vendor/leaflet/leaflet.js", "/static/vendor/leaflet/leaflet.css",
                  "/static/app/app.js", "/static/app/app.css", "/static/app/interventions.js",
                  "/static/vendor/swagger/swagger-ui-bundle.js"):
        assert client.get(asset).status_code == 200, asset
    assert "/static/vendor/swagger/swagger-ui-bundle.js" in client.get("/docs").text
    spec = client.get("/openapi.json").json()
    assert {"200", "400", "403", "413", "422"} <= set(spec["paths"]["/api/layers/counts"]["get"]["responses"])
    assert set(spec["components"]["securitySchemes"]) == {"HTTPBearer", "APIKeyHeader"}
    paths = set(spec["paths"])
    assert paths == {"/api/meta", "/api/layers/counts", "/api/layers/forecast", "/api/layers/emerging",
                     "/api/cells/{h3_cell}", "/api/cells/{h3_cell}/incidents", "/api/forces/totals",
                     "/api/trace/{prediction_id}", "/api/audit", "/api/access", "/api/geography/outline",
                     "/api/geography/forces", "/api/geography/places", "/api/geography/streets",
                     "/api/interventions", "/api/interventions/{intervention_id}/effect"}


def test_geography_is_gzipped_for_clients_that_accept_it(client):
    from crimelake.reference import build_geography
    from crimelake.serve.app import GZIP_MIN_BYTES

    for name, path in (("forces", build_geography.FORCE_AREAS), ("outline", build_geography.OUTLINE),
                       ("places", build_geography.PLACES)):
        with client.stream("GET", f"/api/geography/{name}", headers={"Accept-Encoding": "gzip"}) as r:
            raw = b"".join(r.iter_raw())
        assert r.status_code == 200 and r.headers["content-encoding"] == "gzip", name
        assert "accept-encoding" in r.headers["vary"].lower()
        decoded = gzip.decompress(raw)
        assert len(raw) < len(decoded) / 2, (name, len(raw), len(decoded))
        assert json.loads(decoded) == json.loads(path.read_bytes())
        # The cache validators still work through the compression.
        again = client.get(f"/api/geography/{name}", headers={"Accept-Encoding": "gzip",
                                                               "If-None-Match": r.headers["etag"]})
        assert again.status_code == 304 and not again.content
    plain = client.get("/api/geography/forces", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.content == build_geography.FORCE_AREAS.read_bytes()
    # A small answer (no streets in a corner of Wales the demo does not cover) is not worth compressing.
    small = client.get("/api/geography/streets", params={"bbox": "-4.01,52.0,-4.0,52.01"},
                       headers={"Accept-Encoding": "gzip"})
    assert small.status_code == 200 and small.json()["features"] == []
    assert len(small.content) < GZIP_MIN_BYTES and "content-encoding" not in small.headers
    # Only geography is compressed: the layers and lookups go as they are.
    meta = client.get("/api/meta", headers={"Accept-Encoding": "gzip"})
    assert len(meta.content) > GZIP_MIN_BYTES and "content-encoding" not in meta.headers


def _hls(colour: str) -> tuple[float, float, float]:
    import colorsys

    r, g, b = (int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5))
    h, lightness, s = colorsys.rgb_to_hls(r, g, b)
    return h * 360, lightness, s


def test_emerging_palette_hot_in_reds_cold_in_blues_none_grey(client):
    """Every class ml.emerging can produce has a colour on the page: hot ones red to orange, cold ones blue,
    none grey (grey reads as no data), no two alike, none taken from the count ramp."""
    import re

    from ml.emerging import COLD_CATEGORIES, HOT_CATEGORIES

    script = client.get("/static/app/app.js").text
    block = re.search(r"const EMERGING_COLOURS = \{(.*?)\};", script, re.S).group(1)
    colours = dict(re.findall(r'"([^"]+)": "(#[0-9a-fA-F]{6})"', block))
    assert set(colours) == set(HOT_CATEGORIES) | set(COLD_CATEGORIES)
    assert len(set(colours.values())) == len(colours)
    # The count ramp beneath is red too: no class may borrow one of its colours.
    ramp = set(re.findall(r"#[0-9a-fA-F]{6}", re.search(r"const YLORRD_6 = \[(.*?)\];", script).group(1)))
    assert len(ramp) == 6 and not ramp & set(colours.values())
    for category, colour in colours.items():
        hue, lightness, saturation = _hls(colour)
        assert saturation > 0.35, f"{category} {colour} is greyish (saturation {saturation:.2f})"
        if category in HOT_CATEGORIES:
            assert hue <= 45 or hue >= 340, f"{category} {colour}: hue {hue:.0f} is not red or orange"
        else:
            assert 185 <= hue <= 235, f"{category} {colour}: hue {hue:.0f} is not blue"
    hue, lightness, saturation = _hls(colours["Sporadic Hot Spot"])
    assert lightness > 0.4 and saturation > 0.8, colours["Sporadic Hot Spot"]


# ----- the public view as a whole ----------------------------------------------------------------------------
def test_the_public_view_holds_no_small_counts_or_records(client):
    meta = client.get("/api/meta").json()
    bodies = []
    for group in ("all_crime", "asb"):
        for month in meta["months"]:
            bodies.append(client.get("/api/layers/counts", params={"group": group, "month": month}).json())
        bodies.append(client.get("/api/layers/forecast", params={"group": group, "hotspots": "all"}).json())
        bodies.append(client.get("/api/forces/totals", params={"group": group}).json())
    cells = {p["h3_cell"] for b in bodies[:3] for p in _props(b)}
    bodies += [client.get(f"/api/cells/{c}").json() for c in sorted(cells)[:40]]
    counted = 0
    for body in bodies:
        for item in body.get("features", []) + body.get("items", []) + body.get("history", []):
            props = item.get("properties", item)
            assert not set(props) & RECORD_LEVEL_COLUMNS, props
            if "h3_cell" in props:
                assert h3.get_resolution(props["h3_cell"]) == PUBLIC_H3_RESOLUTION
            for key in ("count", "predicted_count"):
                if key in props:
                    _assert_protected([props[key]])
                    counted += 1
    assert counted > 1000


# ----- forces with no data -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gaps_client(map_home_with_gaps) -> TestClient:
    return TestClient(create_app(map_home_with_gaps, refresh_seconds=0))


def test_meta_and_layers_name_the_forces_with_no_data(gaps_client, client):
    from crimelake.serve.layers import FORCE_NAMES

    meta = gaps_client.get("/api/meta").json()
    months = meta["months"]
    assert meta["no_data_from"] == "gold/coverage"
    latest = meta["no_data_forces"][months[-1]]
    assert [(e["force"], e["name"], e["status"], e["volume_ratio"], e["note"]) for e in latest] == [
        ("bedfordshire", FORCE_NAMES["bedfordshire"], "missing", None, "not delivered"),
        ("city-of-london", FORCE_NAMES["city-of-london"], "partial", 0.38, "38% of usual volume")]
    assert [(e["force"], e["status"], e["volume_ratio"]) for e in meta["no_data_forces"][months[-2]]] == [
        ("bedfordshire", "partial", 0.45)]
    # A partial data.police.uk month beside a complete force extract is observed: not a gap.
    assert months[-3] not in meta["no_data_forces"] and len(meta["no_data_forces"]) == 2

    body = gaps_client.get("/api/layers/counts").json()
    assert body["month"] == months[-1] and body["no_data_forces"] == latest
    assert body["features"] and not any("bedfordshire" in f["properties"]["force"] for f in body["features"])
    one = gaps_client.get("/api/layers/counts", params={"force": "city-of-london", "month": months[-2]}).json()
    assert one["no_data_forces"] == []
    beds = gaps_client.get("/api/layers/counts", params={"force": "bedfordshire"}).json()
    assert beds["numberMatched"] == 0 and [e["force"] for e in beds["no_data_forces"]] == ["bedfordshire"]
    forecast = gaps_client.get("/api/layers/forecast").json()
    assert forecast["no_data_month"] == months[-1] and forecast["no_data_forces"] == latest

    # The demo lake's ledger lists every force-month complete.
    plain = client.get("/api/meta").json()
    assert plain["no_data_from"] == "gold/coverage" and plain["no_data_forces"] == {}
    assert client.get("/api/layers/counts").json()["no_data_forces"] == []


def test_a_cell_history_shows_a_missing_month_as_unknown_not_zero(gaps_client, map_home_with_gaps):
    months = gaps_client.get("/api/meta").json()["months"]
    previous = gaps_client.get("/api/layers/counts", params={"force": "bedfordshire", "month": months[-2]}).json()
    cell = next(f["properties"]["h3_cell"] for f in previous["features"] if not f["properties"]["suppressed"])
    history = {p["month"]: p for p in gaps_client.get(f"/api/cells/{cell}", params={"force": "bedfordshire"})
               .json()["history"]}
    assert history[months[-1]]["count"] is None and history[months[-1]]["no_data"]
    assert history[months[-2]]["count"] and history[months[-2]]["partial"] and not history[months[-2]]["no_data"]
    assert not history[months[-3]]["partial"] and not history[months[-3]]["no_data"]


def test_interventions_are_shown_to_the_forces_analyst_and_audited(client, as_role, map_home):
    """Through the app itself (its audit log's actions, its access rules) on a lake with planted interventions."""
    assert client.get("/api/interventions").status_code == 403
    shown = client.get("/api/interventions", headers=as_role("analyst")).json()
    forces = {f["properties"]["force"] for f in shown["features"]}
    assert forces == {"bedfordshire"}
    for f in shown["features"]:
        effect = client.get(f"/api/interventions/{f['properties']['intervention_id']}/effect",
                            headers=as_role("analyst"))
        assert effect.status_code == 200 and effect.json()["intervention_id"] == f["properties"]["intervention_id"]
    assert client.get("/api/interventions/no-such-id/effect", headers=as_role("analyst")).status_code == 404
