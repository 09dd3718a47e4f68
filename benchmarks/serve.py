"""Map API benchmark: the public counts layer for every month of the demo data, answered by the app (through its
HTTP stack, in process) against a plain baseline that reads the public Delta table per request, filters it with
pyarrow and builds the same GeoJSON with h3. Both run in this process on the same home."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import h3
import pyarrow.compute as pc
from deltalake import DeltaTable

from benchmarks.forecast import demo_home
from crimelake import lake


def _baseline(path: str, month: str, group: str) -> str:
    table = DeltaTable(path).to_pyarrow_table(filters=[("month", "=", month), ("forecast_group", "=", group)])
    table = table.filter(pc.or_kleene(pc.greater(table["incident_count"], 0), table["incident_count_suppressed"]))
    features = []
    for row in table.to_pylist():
        ring = [[lng, lat] for lat, lng in h3.cell_to_boundary(row["h3_cell"])]
        features.append({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring + ring[:1]]},
                         "properties": {"h3_cell": row["h3_cell"], "force": row.get("force", row.get("forces")),
                                        "count": row["incident_count"]}})
    return json.dumps({"type": "FeatureCollection", "features": features})


def main(group: str = "all_crime") -> dict:
    from fastapi.testclient import TestClient

    from crimelake.serve.app import create_app

    settings = demo_home()
    client = TestClient(create_app(settings, refresh_seconds=10))
    t0 = time.perf_counter()
    months = client.get("/api/meta").json()["months"]
    first = client.get("/api/layers/counts", params={"group": group, "month": months[0]})
    cold = time.perf_counter() - t0
    assert first.status_code == 200, first.text
    app_times, base_times, features = [], [], 0
    # The table the app's all-forces view reads (a home built before it existed has only the per-force one).
    path = str(settings.lake / "public" / "cell_month_counts_all_forces")
    if not lake.table_exists(Path(path)):
        path = str(settings.lake / "public" / "cell_month_counts")
    for month in months:
        t = time.perf_counter()
        body = client.get("/api/layers/counts", params={"group": group, "month": month}).json()
        app_times.append(time.perf_counter() - t)
        t = time.perf_counter()
        base = json.loads(_baseline(path, month, group))
        base_times.append(time.perf_counter() - t)
        assert len(base["features"]) == body["numberMatched"], month
        features += body["numberMatched"]
    app_ms, base_ms = statistics.median(app_times) * 1000, statistics.median(base_times) * 1000
    return {"months": len(months), "features_per_month": round(features / len(months), 1),
            "first_request_incl_meta_s": round(cold, 3), "app_median_ms": round(app_ms, 1),
            "baseline_median_ms": round(base_ms, 1), "baseline_over_app": round(base_ms / app_ms, 2)}


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
