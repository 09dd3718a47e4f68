from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from crimelake.config import Settings

# The Dagster definitions partition months from the first landed month, read once per process when they load;
# tests build many homes in one process, so the first month is fixed to data.police.uk's first (the partitions'
# own test runs the definitions in a fresh interpreter without it).
os.environ.setdefault("CRIMELAKE_FIRST_MONTH", "2010-12")

REAL_SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "police_uk" / "2023-03"


@pytest.fixture
def settings(tmp_path, monkeypatch) -> Settings:
    """A fresh crimelake home in a temporary folder, with every tool's state pointed into it."""
    home = tmp_path / "home"
    for var in ("CRIMELAKE_HOME", "DAGSTER_HOME", "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        monkeypatch.delenv(var, raising=False)
    s = Settings.from_env(home).prepare()
    yield s
    for var in ("CRIMELAKE_HOME", "DAGSTER_HOME", "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
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


def serving(settings: Settings):
    from crimelake.serve.app import serving as serve_in_thread

    return serve_in_thread(settings)


@pytest.fixture(scope="session")
def map_server(map_home, map_keys) -> MapServer:
    """The map app over `map_home`, served by uvicorn on a free loopback port, with a key for each role."""
    with serving(map_home) as url:
        yield MapServer(url, map_home, map_keys)


# The force-months `map_home_with_gaps` marks as gaps, relative to the latest month of `map_home`.
MAP_GAPS = {"missing": ("bedfordshire", -1), "partial": ("city-of-london", -1), "partial_earlier": ("bedfordshire", -2),
            "observed": ("city-of-london", -3)}


@pytest.fixture(scope="session")
def map_home_with_gaps(map_home, tmp_path_factory) -> Settings:
    """A copy of `map_home`'s lake with a coverage ledger (gold/coverage) that has gaps: in the latest month
    Bedfordshire delivered nothing (its rows are removed from the counts) and City of London 38% of its usual
    volume; the month before, Bedfordshire 45%; three months back, City of London's data.police.uk rows were
    partial but a force extract was complete, so that force-month is observed."""
    import shutil

    import pyarrow as pa

    from crimelake import lake

    settings = Settings.from_env(tmp_path_factory.mktemp("gaps") / "home").prepare()
    shutil.copytree(map_home.lake, settings.lake, dirs_exist_ok=True)
    counts = lake.read(settings.gold("fct_cell_month_counts")).to_pandas()
    months = sorted(counts["month"].unique())
    rows = [{"source": "police_uk", "force": f, "month": m, "status": "complete", "rows": 100,
             "geocoded_share": 1.0, "lsoa_share": 1.0, "trailing_median_rows": 100.0, "volume_ratio": 1.0, "flags": ""}
            for f in sorted(counts["force"].unique()) for m in months]

    def mark(key: str, status: str, ratio: float | None, source: str = "police_uk") -> None:
        force, offset = MAP_GAPS[key]
        for r in rows:
            if (r["source"], r["force"], r["month"]) == (source, force, months[offset]):
                r.update(status=status, volume_ratio=ratio, rows=0 if ratio is None else int(100 * ratio),
                         flags=status, geocoded_share=None if ratio is None else 1.0,
                         lsoa_share=None if ratio is None else 1.0)

    mark("missing", "missing", None)
    mark("partial", "partial", 0.38)
    mark("partial_earlier", "partial", 0.45)
    mark("observed", "partial", 0.3)
    force, offset = MAP_GAPS["observed"]
    rows.append({**rows[0], "source": "force_rms_ho", "force": force, "month": months[offset]})
    lake.replace_table(settings.gold("coverage"), pa.Table.from_pylist(rows))

    force, offset = MAP_GAPS["missing"]
    gone = months[offset]
    for path, column in ((settings.gold("fct_cell_month_counts"), "force"),
                         (settings.lake / "public" / "cell_month_counts", "force"),
                         (settings.lake / "public" / "cell_month_counts_all_forces", "forces"),
                         (settings.lake / "public" / "force_month_totals", "force")):
        frame = lake.read(path)
        keep = [not (f == force and m == gone) for f, m in zip(frame.column(column).to_pylist(),
                                                               frame.column("month").to_pylist(), strict=True)]
        lake.replace_table(path, frame.filter(pa.array(keep)))
    # Readers see released versions: release the edited tables as a pipeline run's last step would.
    from crimelake import release

    release.publish(settings, "test: gaps")
    return settings


@pytest.fixture(scope="session")
def map_server_with_gaps(map_home_with_gaps) -> MapServer:
    """The map app over `map_home_with_gaps` (public view only), on a free loopback port."""
    with serving(map_home_with_gaps) as url:
        yield MapServer(url, map_home_with_gaps, {})
