"""dbt wiring: where the project lives, how its manifest is built, and which dbt to run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dagster_dbt import DbtProject

DBT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"
DBT_EXECUTABLE = str(Path(sys.executable).parent / "dbt")

dbt_project = DbtProject(project_dir=DBT_DIR, profiles_dir=DBT_DIR)


def ensure_manifest(force: bool = False) -> Path:
    """Parse the dbt project when its manifest is missing (a cold parse takes seconds; never done at import)."""
    manifest = dbt_project.manifest_path
    if force or not manifest.exists():
        env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
        env.setdefault("CRIMELAKE_HOME", "var")
        proc = subprocess.run([DBT_EXECUTABLE, "parse", "--quiet", "--profiles-dir", str(DBT_DIR)], cwd=DBT_DIR,
                              env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"dbt parse failed in {DBT_DIR}:\n{proc.stdout}\n{proc.stderr}")
    return manifest
