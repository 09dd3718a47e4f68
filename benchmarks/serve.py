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


def refusal_flood(settings, flood_requests: int = 1000, samples: int = 40, path: str = "/api/forces/totals") -> dict:
    """A public request's latency (`path`) while another client sends `flood_requests` unknown keys, against its
    latency with the server idle, through a real HTTP server (uvicorn, loopback) started in this process (so the
    server, the flood and the timed client share one interpreter: a pessimistic setting)."""
    import threading

    import httpx

    from crimelake.serve.app import serving

    def timed(client: httpx.Client) -> float:
        t = time.perf_counter()
        assert client.get(path).status_code == 200
        return time.perf_counter() - t

    log = settings.lake / "audit" / "log"
    before = lake.version(log) if lake.table_exists(log) else -1
    # The flood comes from another loopback address than the public client, as an attacker elsewhere would.
    flood_from = httpx.HTTPTransport(local_address="127.0.0.2")
    with serving(settings) as url, httpx.Client(base_url=url) as public, \
            httpx.Client(base_url=url, transport=flood_from) as bad:
        timed(public)
        idle = [timed(public) for _ in range(samples)]
        statuses: list[int] = []

        def flood() -> None:
            for _ in range(flood_requests):
                statuses.append(bad.get("/api/meta", headers={"Authorization": "Bearer ck_guess"}).status_code)

        thread = threading.Thread(target=flood)
        t0 = time.perf_counter()
        thread.start()
        during = []
        while thread.is_alive() and len(during) < 10 * samples:
            during.append(timed(public))
        thread.join()
        flood_s = time.perf_counter() - t0
    idle_ms, during_ms = statistics.median(idle) * 1000, statistics.median(during) * 1000
    return {"public_path": path, "flood_requests": flood_requests, "flood_seconds": round(flood_s, 2),
            "refused_401": statuses.count(401), "limited_429": statuses.count(429),
            "audit_commits": (lake.version(log) if lake.table_exists(log) else -1) - before,
            "public_idle_median_ms": round(idle_ms, 1), "public_during_flood_median_ms": round(during_ms, 1),
            "public_requests_during_flood": len(during), "during_over_idle": round(during_ms / idle_ms, 2)}


if __name__ == "__main__":
    result = main()
    result["refusal_flood"] = refusal_flood(demo_home())
    print(json.dumps(result, indent=2))
