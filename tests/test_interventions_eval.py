"""The intervention log evaluated over a small synthetic lake: gold count tables and a bronze log written with
deltalake, a planted effect recovered within its interval, the effects table's asset check, predictions that
flag cells under an intervention, a backtest scored without them, and the map API's access rules."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import h3
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from deltalake import write_deltalake
from fastapi import Request

from crimelake import interventions as ivs
from crimelake.ingest.quarantine import LINEAGE
from crimelake.intervention_reports import write_reports
from tests.panel_factories import CENTRE, disk, gold_frames

FORCE = "cambridgeshire"
START = "2022-01"
MONTHS = 36  # 2022-01 .. 2024-12
EFFECT = 0.5
# A 90% interval misses one seed in ten (17 of seeds 0-19 covered 0.5 here); this seed is one that covers.
SEED = 1
FAR = h3.grid_ring(CENTRE, 5)[0]  # the centre of a second, untreated area of seven cells
LSOA = "E01000099"  # the planted rate ratio: crime halves in the treated cells


def _gold_counts(rng: np.random.Generator) -> tuple[dict[str, np.ndarray], list[str], list[str]]:
    cells = disk(7)
    area = sorted(h3.grid_disk(CENTRE, 1))
    counts = rng.poisson(6.0, size=(len(cells), MONTHS)).astype(float)
    during = slice(24, 30)  # 2024-01 .. 2024-06
    for c in area:
        i = cells.index(c)
        counts[i, during] = rng.poisson(6.0 * EFFECT, size=6)
    return {"violence": counts, "all_crime": counts * 2}, cells, area


def write_log(settings, rows: list[dict], month: str = "2024-07") -> None:
    """The bronze intervention log as ingest writes it: the record's columns, lineage, delivery month."""
    n = len(rows)
    columns = {c: pa.array([r.get(c) for r in rows], pa.string()) for c in ivs.LOG_COLUMNS}
    columns["start_date"] = pa.array([r["start_date"] for r in rows], pa.string()).cast(pa.date32())
    columns["end_date"] = pa.array([r.get("end_date") for r in rows], pa.string()).cast(pa.date32())
    lineage = {"_source_file": pa.array(["landing/interventions/log.csv"] * n),
               "_source_sha256": pa.array(["0" * 64] * n), "_source_line": pa.array(range(2, n + 2), pa.int64()),
               "_contract": pa.array(["interventions.log"] * n), "_ingest_run_id": pa.array(["run-1"] * n),
               "_ingested_at": pa.array([datetime.now(UTC)] * n, pa.timestamp("us", tz="UTC"))}
    table = pa.table({**columns, **lineage, "month": pa.array([month] * n)})
    assert table.schema.names == [*ivs.LOG_COLUMNS, *LINEAGE.names, "month"]
    write_deltalake(str(ivs.log_path(settings)), table, mode="append", partition_by=["month"])


def record(**over) -> dict:
    return {"intervention_id": "iv-001", "kind": "hot_spot_patrol", "area_type": "h3",
            "area": ";".join(sorted(h3.grid_disk(CENTRE, 1))), "force": FORCE, "start_date": "2024-01-01",
            "end_date": "2024-06-30", "agency": "Cambridgeshire Constabulary", "target_groups": "violence",
            "description": "foot patrols, Friday and Saturday nights", **over}


@pytest.fixture(scope="session", autouse=True)
def dbt_manifest():
    """Only the Dagster definitions need the dbt manifest: the library tests run while it cannot be built."""
    from orchestration.lib.dbt import ensure_manifest

    try:
        return ensure_manifest()
    except RuntimeError:
        return None


@pytest.fixture
def lake(settings):
    """Gold counts, cells and the other gold inputs for one force over three years, violence halved in a
    seven-cell area during 2024-01..2024-06."""
    counts, cells, _ = _gold_counts(np.random.default_rng(SEED))
    fct, dim = gold_frames(counts, cells, force=FORCE, start=START)
    dim["lsoa_code"] = np.where(dim["h3_cell"].isin(h3.grid_disk(FAR, 1)), LSOA, "E01000000")
    write_deltalake(str(settings.gold("fct_cell_month_counts")), fct)
    write_deltalake(str(settings.gold("dim_cells")), dim)
    return settings


def test_a_planted_effect_is_recovered_within_its_interval_and_reported(lake):
    write_log(lake, [record(),
                     record(intervention_id="iv-lsoa", area_type="lsoa", area=LSOA, target_groups="violence;asb"),
                     record(intervention_id="iv-early", start_date="2022-06-01", end_date="2022-09-30"),
                     record(intervention_id="iv-away", force="bedfordshire"),
                     record(intervention_id="iv-bad", kind="drones")])
    out = ivs.evaluate_log(lake)
    assert not ivs.check_effects(out)
    row = out[(out["intervention_id"] == "iv-001")].iloc[0]
    assert row["status"] == "evaluated" and row["group"] == "violence"
    assert row["n_treated_cells"] == 7 and row["start_month"] == "2024-01" and row["end_month"] == "2024-06"
    assert row["rate_ratio_lo"] < EFFECT < row["rate_ratio_hi"] < 1
    assert row["gold_counts_version"] == 0 and row["bronze_log_version"] == 0
    assert row["_source_line"] == 2 and row["_ingest_run_id"] == "run-1"
    # Every record has rows: an LSOA area per target group; the rest say why there is no estimate.
    by = out.set_index(["intervention_id", "group"])
    assert by.loc[("iv-lsoa", "asb"), "status"] == "evaluated"
    assert by.loc[("iv-lsoa", "violence"), "n_treated_cells"] == 7
    assert np.isnan(by.loc[("iv-lsoa", "asb"), "rate_ratio"]) and "fewer than 10" in by.loc[("iv-lsoa", "asb"), "note"]
    assert "matching window" in by.loc[("iv-early", "violence"), "note"]
    assert "bedfordshire has no data" in by.loc[("iv-away", "violence"), "note"]
    assert "unknown kind" in by.loc[("iv-bad", "violence"), "note"]
    paths = write_reports(lake, out)
    text = (lake.home / "reports" / "interventions" / "iv-001.md").read_text()
    assert len(paths) == 5 and "hot_spot_patrol" in text and "90% interval" in text and "Pre-trend check" in text
    assert "WDQ" in text and "2024-01 to 2024-06" in text


def test_the_latest_delivery_of_an_intervention_wins_and_areas_resolve_three_ways(lake):
    write_log(lake, [record(end_date="2024-03-31")], month="2024-04")
    write_log(lake, [record()], month="2024-07")
    log, version = ivs.read_log(lake)
    assert len(log) == 1 and ivs.to_month(log.loc[0, "end_date"]) == "2024-06" and version == 1
    square = {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[
        [0.118, 52.203], [0.126, 52.203], [0.126, 52.208], [0.118, 52.208], [0.118, 52.203]]]}}
    cells = ivs.resolve_area("geojson", json.dumps(square), 9, {})
    assert cells and all(h3.get_resolution(c) == 9 for c in cells)
    tiny = {"type": "Polygon", "coordinates": [[[0.1218, 52.2053], [0.12181, 52.2053], [0.12181, 52.20531],
                                                [0.1218, 52.2053]]]}
    assert ivs.resolve_area("geojson", json.dumps(tiny), 9, {}) == {CENTRE}
    parent = h3.cell_to_parent(CENTRE, 8)
    assert ivs.resolve_area("h3", parent, 9, {}) == set(h3.cell_to_children(parent, 9))
    for kind, area, message in (("h3", "nonsense", "not an H3 cell"), ("lsoa", "E01999999", "E01999999"),
                                ("geojson", "{", "does not parse"), ("geojson", '{"type": "Point"}', "Polygon"),
                                ("wkt", "POLYGON", "unknown area_type")):
        with pytest.raises(ValueError, match=message):
            ivs.resolve_area(kind, area, 9, {})


def test_the_dagster_asset_writes_the_group_rows_and_its_check_fails_on_a_bad_row(lake):
    import dagster as dg

    from orchestration.defs.ml.interventions import effects_are_consistent, intervention_effects
    from orchestration.lib.resources import LakeResource

    resources = {"lake": LakeResource(home=str(lake.home))}
    # No log yet: an empty table, and the check has nothing to object to.
    assert dg.materialize([intervention_effects, effects_are_consistent], partition_key="asb",
                          resources=resources).success
    assert ivs.read_effects(lake).empty
    write_log(lake, [record(), record(intervention_id="iv-asb", target_groups="asb")])
    for group in ("violence", "asb", "violence"):  # a rerun replaces its group's rows, never duplicates them
        result = dg.materialize([intervention_effects, effects_are_consistent], partition_key=group,
                                resources=resources)
        assert result.success
        assert all(e.passed for e in result.get_asset_check_evaluations())
    table = ivs.read_effects(lake)
    assert sorted(zip(table["intervention_id"], table["group"], strict=True)) == [
        ("iv-001", "violence"), ("iv-asb", "asb")]
    assert (lake.home / "reports" / "interventions" / "iv-asb.md").exists()
    # An interval that does not contain its estimate: the check fails and names the intervention.
    bad = table.copy()
    bad.loc[bad["intervention_id"] == "iv-001", "rate_ratio_hi"] = 0.1
    write_deltalake(str(ivs.effects_path(lake)), ivs.to_arrow(bad), mode="overwrite")
    check = effects_are_consistent(lake=resources["lake"])
    assert not check.passed and "iv-001" in json.dumps(check.metadata["problems"].value)
    dropped = bad.drop(columns=["rate_ratio_lo"])
    write_deltalake(str(ivs.effects_path(lake)), pa.Table.from_pandas(dropped, preserve_index=False),
                    mode="overwrite", schema_mode="overwrite")
    assert "missing columns: rate_ratio_lo" in ivs.check_effects(ivs.read_effects(lake))
    assert not effects_are_consistent(lake=resources["lake"]).passed


def test_predictions_flag_the_cells_of_an_intervention_active_in_the_target_month(lake):
    from crimelake.forecasting import GoldInputs, MethodForecast, predictions_frame
    from crimelake.interventions import load_schedule
    from ml.predictions import ModelRef, to_arrow

    write_log(lake, [record(end_date=None),  # ongoing
                     record(intervention_id="iv-over", area=FAR, start_date="2023-01-01", end_date="2023-12-31")])
    dim = ivs.read_gold(lake).cells
    cells = dim["h3_cell"].to_numpy()
    nxt = MethodForecast("ewma", "2025-02", pd.DataFrame({
        "h3_cell": cells, "force": FORCE, "predicted_count": np.linspace(0, 5, len(cells)), "lower_90": 0.0,
        "upper_90": 9.0}), ("2022-01", "2024-12"), horizon=2)
    gold = GoldInputs({}, {"fct_cell_month_counts": 0}, {}, load_schedule(lake, dim))
    frame = predictions_frame(nxt, "violence", gold, ModelRef("m", "1", "champion", "run"))
    flagged = set(frame.loc[frame["under_intervention"], "h3_cell"])
    assert flagged == set(h3.grid_disk(CENTRE, 1))  # the ongoing one; the one that ended in 2023 flags nothing
    assert to_arrow(frame).schema.field("under_intervention").type == pa.bool_()


def test_the_backtest_scores_every_method_again_without_cells_under_an_intervention():
    from ml.backtest import EXCL_INTERVENTIONS, EXCL_METRICS, backtest
    from tests.panel_factories import make_panel

    counts, cells, area = _gold_counts(np.random.default_rng(SEED))
    counts["violence"][[cells.index(c) for c in area], :] += 30  # the hottest cells of the force are treated
    panel = make_panel(counts, cells, force=FORCE, start=START)
    intervened = np.zeros((panel.n_cells, panel.n_months), dtype=bool)
    rows = pd.Index(panel.cells).get_indexer(area)
    intervened[np.ix_(rows, np.arange(30, 36))] = True  # active in the last six months only
    methods = ["last_month", "rolling_3"]
    plain = backtest(panel, "violence", months=12, methods=methods)
    result = backtest(panel, "violence", months=12, methods=methods, intervened=intervened)
    pm = result.per_month.set_index(["method", "month"])
    assert not any(c.endswith(EXCL_INTERVENTIONS) for c in plain.per_month.columns)
    assert [m + EXCL_INTERVENTIONS for m in EXCL_METRICS] == [c for c in pm.columns if c.endswith(EXCL_INTERVENTIONS)]
    # Months with no active intervention score the same cells twice; months with one score fewer cells.
    before, during = ("last_month", "2024-06"), ("last_month", "2024-08")
    assert pm.loc[before, "pei_star_5" + EXCL_INTERVENTIONS] == pytest.approx(pm.loc[before, "pei_star_5"])
    assert pm.loc[during, "hit_rate_5" + EXCL_INTERVENTIONS] != pytest.approx(pm.loc[during, "hit_rate_5"])
    assert set(result.summary.index) == set(methods)
    assert result.summary["pei_star_5"].tolist() == pytest.approx(plain.summary["pei_star_5"].tolist())
    with pytest.raises(ValueError, match="cells x months"):
        backtest(panel, "violence", months=12, methods=methods, intervened=intervened[:, :5])


@pytest.fixture
def api(lake, monkeypatch):
    """The interventions router in a bare app, callers resolved from API keys as the map resolves them."""
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse
    from fastapi.testclient import TestClient

    from crimelake.serve.access import PUBLIC, KeyRing
    from crimelake.serve.interventions import interventions_router
    from crimelake.serve.layers import RequestError

    monkeypatch.setenv("CRIMELAKE_API_KEYS", json.dumps({"keys": [
        {"name": "cam", "role": "analyst", "force": FORCE, "key": "k-cam"},
        {"name": "beds", "role": "analyst", "force": "bedfordshire", "key": "k-beds"},
        {"name": "aud", "role": "auditor", "key": "k-aud"}]}))
    ring = KeyRing(lake)

    def principal(request: Request):
        key = request.headers.get("X-API-Key")
        return ring.resolve(key) if key else PUBLIC

    seen = []
    app = FastAPI()
    app.include_router(interventions_router(lake, principal, lambda *a: seen.append(a)))
    app.add_exception_handler(RequestError, lambda r, e: JSONResponse({"detail": str(e)}, e.status))
    write_log(lake, [record(), record(intervention_id="iv-beds", force="bedfordshire"),
                     record(intervention_id="iv-bad", area_type="lsoa", area="E01999999")])
    client = TestClient(app)
    client.seen = seen
    return client


def test_the_api_refuses_the_public_and_serves_the_forces_analyst(api, lake):
    import dagster as dg

    from orchestration.defs.ml.interventions import intervention_effects
    from orchestration.lib.resources import LakeResource

    for path in ("/api/interventions", "/api/interventions/iv-001/effect"):
        r = api.get(path)
        assert r.status_code == 403 and "operational" in r.json()["detail"]
    r = api.get("/api/interventions", headers={"X-API-Key": "k-cam"})
    assert r.status_code == 200
    body = r.json()
    assert [f["properties"]["intervention_id"] for f in body["features"]] == ["iv-001"]
    f = body["features"][0]
    assert f["geometry"]["type"] == "Polygon" and len(f["geometry"]["coordinates"]) == 1  # seven cells, one outline
    assert f["properties"]["kind"] == "hot_spot_patrol" and f["properties"]["end_month"] == "2024-06"
    assert [n["intervention_id"] for n in body["not_shown"]] == ["iv-bad"]
    assert api.get("/api/interventions?force=bedfordshire", headers={"X-API-Key": "k-cam"}).status_code == 403
    assert len(api.get("/api/interventions", headers={"X-API-Key": "k-aud"}).json()["features"]) == 2
    # Before evaluation the effect says so; afterwards it carries the estimate and its interval.
    r = api.get("/api/interventions/iv-001/effect", headers={"X-API-Key": "k-cam"})
    assert r.status_code == 200 and r.json()["evaluated"] is False
    assert dg.materialize([intervention_effects], partition_key="violence",
                          resources={"lake": LakeResource(home=str(lake.home))}).success
    effect = api.get("/api/interventions/iv-001/effect", headers={"X-API-Key": "k-cam"}).json()
    (row,) = effect["effects"]
    assert row["group"] == "violence" and row["rate_ratio_lo"] < row["rate_ratio"] < row["rate_ratio_hi"]
    assert row["wdq_reading"] and effect["start_month"] == "2024-01"
    # Another force's intervention is not found, not forbidden: its existence is not disclosed.
    assert api.get("/api/interventions/iv-001/effect", headers={"X-API-Key": "k-beds"}).status_code == 404
    assert api.get("/api/interventions/iv-none/effect", headers={"X-API-Key": "k-aud"}).status_code == 404
    # Recorded as the app records every view: action "view", what was seen in the detail.
    assert {a[1] for a in api.seen} == {"view"}
    assert {a[3]["what"] for a in api.seen} == {"interventions", "intervention_effect"}


CHROMIUM = "/usr/bin/chromium"
PAGE = """<!doctype html><html><head><link rel="stylesheet" href="/vendor/leaflet.css"></head><body>
<label class="check" id="layer-emerging-label"><input type="checkbox"> Emerging hot spots</label>
<div id="map" style="width: 800px; height: 600px"></div>
<script src="/vendor/leaflet.js"></script><script src="/static/interventions.js"></script>
<script>
  const map = L.map("map", { preferCanvas: false }).setView([52.2053, 0.1218], 15);
  async function api(url) {
    const res = await fetch(url, { headers: { "X-API-Key": "k-cam" } });
    const body = await res.json();
    if (!res.ok) throw new Error(body.detail);
    return body;
  }
  window.layer = CrimelakeInterventions.attach(map, { api });
  window.layer.update({ role: "analyst", analyst_force: "cambridgeshire" }, null);
</script></body></html>"""


@pytest.mark.browser
@pytest.mark.skipif(not __import__("os").path.exists(CHROMIUM), reason=f"no Chromium at {CHROMIUM}")
def test_the_map_toggle_draws_dashed_outlines_with_the_effect_in_the_popup(api, lake, tmp_path):
    from pathlib import Path

    import dagster as dg
    import js_lib_leaflet

    from orchestration.defs.ml.interventions import intervention_effects
    from orchestration.lib.resources import LakeResource

    sync_api = pytest.importorskip("playwright.sync_api")
    assert dg.materialize([intervention_effects], partition_key="violence",
                          resources={"lake": LakeResource(home=str(lake.home))}).success
    vendor = Path(js_lib_leaflet.__file__).parent / "static" / "js_lib_leaflet"
    static = Path(ivs.__file__).parent / "serve" / "static"

    def serve(route):
        path = route.request.url.split("//", 1)[1].split("/", 1)[1]
        if path == "":
            return route.fulfill(body=PAGE, content_type="text/html")
        if path.startswith("vendor/"):
            return route.fulfill(path=str(vendor / path.removeprefix("vendor/")))
        if path.startswith("static/"):
            return route.fulfill(path=str(static / path.removeprefix("static/")))
        r = api.get("/" + path, headers={"X-API-Key": route.request.headers.get("x-api-key", "")})
        return route.fulfill(status=r.status_code, body=r.content, content_type="application/json")

    env = {"XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, env=env, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--no-first-run"])
        page = browser.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.route("http://map.test/**", serve)
        page.goto("http://map.test/")
        toggle = page.locator("#layer-interventions")
        assert page.locator("#layer-interventions-label").is_visible() and not toggle.is_checked()
        assert page.locator(".leaflet-interventions-pane path").count() == 0
        toggle.check()
        outline = page.locator(".leaflet-interventions-pane path.intervention-area")
        outline.first.wait_for()
        assert outline.count() == 1 and outline.first.get_attribute("stroke-dasharray") == "7 5"
        outline.first.click(force=True)
        popup = page.locator(".intervention-popup")
        page.locator(".intervention-effect ul").wait_for()
        text = popup.inner_text()
        assert "hot spot patrol" in text and "2024-01 to 2024-06" in text and "90% interval" in text
        assert "WDQ" in text and "Cambridgeshire Constabulary" in text
        # Signed out: no toggle, nothing drawn.
        page.evaluate("window.layer.update({ role: 'public' }, null)")
        assert not page.locator("#layer-interventions-label").is_visible()
        assert page.locator(".leaflet-interventions-pane path").count() == 0
        assert not errors
        browser.close()
