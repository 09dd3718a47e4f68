"""The map's building blocks on their own: API keys, the version-aware lake view, bounding boxes, class breaks,
public forecasts and the optional tile server."""

from __future__ import annotations

import h3
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from crimelake import lake
from crimelake.disclosure import PUBLIC_H3_RESOLUTION, check_public
from crimelake.serve.access import AccessError, KeyRing, Principal, add_key, keys_file, list_keys, revoke_key
from crimelake.serve.layers import BBox, RequestError, _breaks
from crimelake.serve.store import LakeView, public_forecast
from crimelake.serve.tiles import tile_server
from orchestration.defs.serve.public import cell_month_counts, cell_month_counts_all_forces


# ----- keys --------------------------------------------------------------------------------------------------
def test_keys_are_stored_as_digests_and_resolve_to_roles(settings):
    key = add_key(settings, "beds-1", "analyst", "bedfordshire")
    text = keys_file(settings).read_text()
    assert key not in text and "sha256" in text
    assert oct(keys_file(settings).stat().st_mode & 0o777) == "0o600"
    ring = KeyRing(settings)
    assert ring.resolve(key) == Principal("beds-1", "analyst", "bedfordshire")
    assert ring.resolve(key + "x") is None
    revoke_key(settings, "beds-1")
    assert ring.resolve(key) is None, "a revoked key must stop working without a restart"
    with pytest.raises(AccessError, match="no key named 'beds-1'"):
        revoke_key(settings, "beds-1")


@pytest.mark.parametrize(("args", "message"), [
    (("x", "analyst", None), "needs the slug of a force"),
    (("x", "analyst", "gotham"), "needs the slug of a force"),
    (("x", "superuser", None), "role must be one of analyst, auditor, admin"),
    (("x", "auditor", "bedfordshire"), "only analyst keys are tied to a force"),
])
def test_bad_keys_are_refused_with_reasons(settings, args, message):
    with pytest.raises(AccessError, match=message):
        add_key(settings, *args)


def test_keys_from_the_environment_and_broken_files_named(settings, monkeypatch):
    monkeypatch.setenv("CRIMELAKE_API_KEYS", '{"keys": [{"name": "ops", "role": "admin", "key": "s3cret"}]}')
    assert KeyRing(settings).resolve("s3cret") == Principal("ops", "admin", None)
    assert [e.origin for e in list_keys(settings)] == ["environment variable CRIMELAKE_API_KEYS"]
    path = keys_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("keys:\n  - name: a\n    role: auditor\n")
    with pytest.raises(AccessError, match=r"api_keys.yaml, keys\[0\] \(a\): needs `sha256`"):
        KeyRing(settings).entries()
    path.write_text("keys: [oops")
    with pytest.raises(AccessError, match="not valid YAML"):
        KeyRing(settings).entries()


def test_principal_scope():
    analyst = Principal("a", "analyst", "bedfordshire")
    assert analyst.may_see_detail("bedfordshire") and not analyst.may_see_detail("city-of-london")
    assert not analyst.may_see_detail(None) and not analyst.can_trace
    assert Principal("b", "auditor").may_see_detail(None) and Principal("b", "auditor").can_audit
    assert not Principal(None, "public").may_see_detail("bedfordshire")


# ----- the lake view -----------------------------------------------------------------------------------------
def _totals(count: int) -> pa.Table:
    return pa.table({"force": ["bedfordshire"], "month": ["2025-01"], "forecast_group": ["all_crime"],
                     "incident_count": [count], "incident_count_suppressed": [False]})


def test_lake_view_follows_new_versions(settings):
    path = settings.lake / "public" / "force_month_totals"
    live, cached = LakeView(settings, refresh_seconds=0), LakeView(settings, refresh_seconds=3600)
    assert live.frame("public/force_month_totals").empty, "a table not written yet reads as empty"
    lake.replace_table(path, _totals(10))
    assert live.frame("public/force_month_totals")["incident_count"].tolist() == [10]
    assert cached.frame("public/force_month_totals")["incident_count"].tolist() == [10]
    lake.append(path, _totals(20))
    assert sorted(live.frame("public/force_month_totals")["incident_count"]) == [10, 20]
    assert live.info("public/force_month_totals").version == 1
    # Within its refresh interval a view keeps serving the version it has.
    assert cached.frame("public/force_month_totals")["incident_count"].tolist() == [10]


def test_public_forecast_is_reranked_and_protected():
    parent_a, parent_b = h3.latlng_to_cell(52.13, -0.46, 7), h3.latlng_to_cell(52.0, -0.3, 7)
    kids_a = sorted(h3.cell_to_children(parent_a, 9))[:3]
    kids_b = sorted(h3.cell_to_children(parent_b, 9))[:2]
    detail = pd.DataFrame({"h3_cell": kids_a + kids_b, "force": "bedfordshire", "forecast_group": "all_crime",
                           "target_month": "2026-01", "model_name": "m", "model_version": "3",
                           "predicted_count": [4.0, 3.0, 1.2, 1.0, 2.0]})
    out = public_forecast(detail).set_index("h3_cell")
    assert list(out.index) == [parent_a, parent_b]
    assert out.loc[parent_a, "predicted_count"] == 10 and out.loc[parent_a, "rank"] == 1
    assert bool(out.loc[parent_a, "hotspot_1pct"]) and not bool(out.loc[parent_b, "hotspot_5pct"])
    assert pd.isna(out.loc[parent_b, "predicted_count"]) and bool(out.loc[parent_b, "predicted_count_suppressed"])
    assert (out["h3_resolution"] == PUBLIC_H3_RESOLUTION).all()
    assert check_public(out.reset_index(), ["predicted_count"]) == []


def test_a_cell_two_forces_share_is_one_public_total():
    parent = h3.latlng_to_cell(52.0, -0.3, 7)
    a, b, c = sorted(h3.cell_to_children(parent, 9))[:3]
    counts = pd.DataFrame({"h3_cell": [a, b, c], "force": ["bedfordshire", "hertfordshire", "btp"],
                           "month": "2025-01", "forecast_group": "all_crime", "incident_count": [3, 3, 2]})
    per_force = cell_month_counts(counts)
    assert per_force["incident_count_suppressed"].all(), "each force alone holds fewer than 5"
    (row,) = cell_month_counts_all_forces(counts).to_dict("records")
    assert row["h3_cell"] == parent and row["forces"] == "bedfordshire,btp,hertfordshire"
    assert row["incident_count"] == 10 and not row["incident_count_suppressed"]

    detail = pd.DataFrame({"h3_cell": [a, b], "force": ["bedfordshire", "hertfordshire"],
                           "forecast_group": "all_crime", "target_month": "2025-02", "model_name": "m",
                           "model_version": "1", "predicted_count": [4.0, 4.0]})
    assert len(public_forecast(detail)) == 2
    (joint,) = public_forecast(detail, by_force=False).to_dict("records")
    assert joint["force"] == "bedfordshire,hertfordshire" and joint["predicted_count"] == 10


# ----- request parts -----------------------------------------------------------------------------------------
def test_bbox_area_is_geodesic():
    box = BBox.parse("-1,52,0,53")
    # One degree of longitude at 52.5°N is about 67.8 km, one of latitude about 111.2 km.
    assert box.area_km2 == pytest.approx(67.8 * 111.2, rel=0.01)
    inside = box.contains(np.array([-0.5, 0.5]), np.array([52.5, 52.5]))
    assert inside.tolist() == [True, False]
    with pytest.raises(RequestError, match="four numbers"):
        BBox.parse("-1,52,nan,53")


def test_breaks_are_ascending_and_cover_skewed_counts():
    rng = np.random.default_rng(1)
    values = rng.negative_binomial(1, 0.2, 5000).astype(float)
    b = _breaks(values, integer=True)
    assert len(b) == 5 and all(x < y for x, y in zip(b, b[1:], strict=False))
    assert all(isinstance(x, int) for x in b)
    assert b[-1] <= values.max()
    assert _breaks(np.array([3.0, 3.0, 3.0]), integer=True) == [3, 4, 5, 6, 7]
    fives = _breaks(np.round(values / 5) * 5, integer=True, step=5)
    assert all(b % 5 == 0 for b in fives) and fives == sorted(set(fives))
    dens = _breaks(values / 0.1, integer=False)
    assert len(dens) == 5 and dens == sorted(set(dens))


def test_tile_server_is_optional_and_checked(monkeypatch):
    monkeypatch.delenv("CRIMELAKE_TILE_URL", raising=False)
    assert tile_server() is None
    monkeypatch.setenv("CRIMELAKE_TILE_URL", "https://{s}.tiles.example.org/{z}/{x}/{y}.png")
    t = tile_server()
    assert t.origin == "https://*.tiles.example.org" and t.attribution == "{s}.tiles.example.org"
    monkeypatch.setenv("CRIMELAKE_TILE_URL", "https://tiles.example.org/{z}/{x}.png")
    with pytest.raises(ValueError, match=r"lacks \{y\}"):
        tile_server()
    monkeypatch.setenv("CRIMELAKE_TILE_URL", "ftp://tiles.example.org/{z}/{x}/{y}.png")
    with pytest.raises(ValueError, match="http"):
        tile_server()


# ----- forces with no data -----------------------------------------------------------------------------------
def test_gaps_from_the_coverage_ledger():
    from crimelake.serve import gaps

    def row(source, force, month, status, ratio):
        return {"source": source, "force": force, "month": month, "status": status, "volume_ratio": ratio}

    ledger = pd.DataFrame([
        row("police_uk", "greater-manchester", "2023-03", "missing", None),
        row("police_uk", "lancashire", "2023-03", "partial", 0.2),
        row("force_rms_ho", "lancashire", "2023-03", "partial", 0.381),
        row("police_uk", "kent", "2023-03", "partial", 0.1),
        row("force_rms_text", "kent", "2023-03", "complete", 1.0),
        row("police_uk", "greater-manchester", "2023-04", "complete", 1.1),
    ])
    found = gaps.from_coverage(ledger)
    assert list(found) == ["2023-03"], "a month where every force has a complete source has no gaps"
    assert [(e["name"], e["status"], e["note"]) for e in found["2023-03"]] == [
        ("Greater Manchester Police", "missing", "not delivered"),
        ("Lancashire Constabulary", "partial", "38% of usual volume")]
    assert found["2023-03"][1]["volume_ratio"] == 0.381
    with pytest.raises(ValueError, match="lacks the columns"):
        gaps.from_coverage(ledger.drop(columns=["status"]))


def test_gaps_from_counts_when_there_is_no_ledger(settings):
    from crimelake.serve.layers import Layers

    counts = pa.table({"h3_cell": ["c1", "c2", "c3", "c4", "c5"], "force": ["kent", "kent", "kent", "surrey", "surrey"],
                       "month": ["2024-01", "2024-02", "2024-04", "2024-03", "2024-04"],
                       "forecast_group": ["all_crime"] * 5, "incident_count": [3, 1, 2, 5, 4]})
    lake.replace_table(settings.gold("fct_cell_month_counts"), counts)
    layers = Layers(LakeView(settings, refresh_seconds=0))
    source, found = layers.no_data()
    # Kent skipped March; Surrey's months before its first are not expected of it.
    assert source == "gold/fct_cell_month_counts"
    assert {m: [(e["force"], e["status"]) for e in es] for m, es in found.items()} == {"2024-03": [("kent", "missing")]}
    assert layers.no_data_for("2024-03", "surrey") == []
    lake.replace_table(settings.gold("coverage"), pa.table({
        "source": ["police_uk"], "force": ["surrey"], "month": ["2024-04"], "status": ["partial"],
        "rows": [4], "geocoded_share": [1.0], "lsoa_share": [1.0], "trailing_median_rows": [10.0],
        "volume_ratio": [0.4], "flags": ["partial"]}))
    assert layers.no_data() == ("gold/coverage", {"2024-04": [{
        "force": "surrey", "name": "Surrey Police", "status": "partial", "volume_ratio": 0.4,
        "note": "40% of usual volume"}]})
