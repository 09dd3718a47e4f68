from __future__ import annotations

import os
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
