from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from crimelake.config import Settings

REAL_SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "police_uk" / "2023-03"


@pytest.fixture
def settings(tmp_path, monkeypatch) -> Settings:
    """A fresh crimelake home in a temporary folder, with every tool's state pointed into it."""
    home = tmp_path / "home"
    for var in ("CRIMELAKE_HOME", "DAGSTER_HOME", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(var, raising=False)
    s = Settings.from_env(home).prepare()
    yield s
    for var in ("CRIMELAKE_HOME", "DAGSTER_HOME", "MLFLOW_TRACKING_URI"):
        os.environ.pop(var, None)


@pytest.fixture
def real_sample() -> Path:
    if not REAL_SAMPLE.is_dir():
        pytest.skip(f"the real data.police.uk sample is not at {REAL_SAMPLE} (it lives in the shared folder beside the repo)")
    return REAL_SAMPLE


@pytest.fixture(scope="session", autouse=True)
def dbt_manifest():
    """The dbt manifest the Dagster definitions load, built once per test session (as `make install` does)."""
    from orchestration.lib.dbt import ensure_manifest

    return ensure_manifest()


@dataclass
class MapServer:
    url: str
    settings: Settings
    keys: dict[str, str]


@pytest.fixture(scope="session")
def map_home(tmp_path_factory) -> Settings:
    """A small demo lake built by the real pipeline (two forces, 24 months, all_crime and asb forecast, emerging
    hot spots), shared by the map's API and browser tests (keep them in xdist group "map")."""
    from crimelake.pipeline import run_hotspot_tracking, run_landed, run_models, run_transform
    from crimelake.simulate import generate

    saved = dict(os.environ)
    try:
        # Two forces are too few for the fairness gate's deprivation deciles to be stable; the gate is tested
        # on its own elsewhere, here the map needs published forecasts.
        os.environ["CRIMELAKE_FAIRNESS_MAX_RATIO"] = "100"
        settings = Settings.from_env(tmp_path_factory.mktemp("map") / "home").prepare()
        generate(settings.landing, seed=7, forces=["city-of-london", "bedfordshire"], months=24)
        run_landed(settings)
        assert run_transform(settings).success
        runs = run_models(settings, ["all_crime", "asb"])
        assert all(r.success for r in runs), [(r.group, r.failed_checks) for r in runs]
        assert run_hotspot_tracking(settings).success
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return settings


@pytest.fixture(scope="session")
def map_keys(map_home) -> dict[str, str]:
    """One API key per role in `map_home`'s keys file: an analyst of Bedfordshire, an auditor, an admin."""
    from crimelake.serve.access import add_key

    return {"analyst": add_key(map_home, "beds-analyst", "analyst", "bedfordshire"),
            "auditor": add_key(map_home, "auditor", "auditor"),
            "admin": add_key(map_home, "admin", "admin")}


@pytest.fixture(scope="session")
def map_server(map_home, map_keys) -> MapServer:
    """The map app over `map_home`, served by uvicorn on a free loopback port, with a key for each role."""
    import socket
    import threading
    import time

    import uvicorn

    from crimelake.serve.app import create_app

    keys = map_keys
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(map_home, refresh_seconds=0), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the map server did not start")
        time.sleep(0.05)
    yield MapServer(f"http://127.0.0.1:{port}", map_home, keys)
    server.should_exit = True
    thread.join(timeout=10)
