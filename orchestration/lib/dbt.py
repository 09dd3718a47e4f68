"""dbt wiring: where the project lives, how its manifest is built, and which dbt to run.

The manifest is built once per change of the project's files (by `make install`, a `crimelake` command, or the
first code-location load after an edit under `dagster dev`), never on every load: `dagster dev` loads the
definitions in its code server and again in every run worker, and a `dbt parse` in each of them would contend for
the manifest. A parse writes into a folder of its own and moves the manifest into place in one rename, so a
reader sees the old manifest or the new one, never a half-written file, and no lock is needed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path

from dagster_dbt import DbtCliResource, DbtProject

DBT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"
DBT_EXECUTABLE = str(Path(sys.executable).parent / "dbt")
# Folders dbt writes into (or a package manager fills): their files are outputs, not the project.
_GENERATED = {"target", "logs", "dbt_packages"}


def project_files(project_dir: Path = DBT_DIR) -> list[Path]:
    """The files a parse reads: everything in the project folder but what dbt itself writes."""
    out = []
    for root, dirs, files in os.walk(project_dir):
        if Path(root) == project_dir:
            dirs[:] = [d for d in dirs if d not in _GENERATED]
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        out.extend(Path(root) / f for f in files if not f.startswith("."))
    return out


def manifest_is_fresh(manifest: Path | None = None, project_dir: Path = DBT_DIR) -> bool:
    """Whether the manifest exists and is newer than every file of the project (the rule `make install` uses)."""
    manifest = manifest or dbt_project.manifest_path
    if not manifest.exists():
        return False
    built = manifest.stat().st_mtime_ns
    return all(p.stat().st_mtime_ns <= built for p in project_files(project_dir))


def parse_manifest(manifest: Path | None = None) -> Path:
    """`dbt parse` into a temporary folder beside the manifest, then one rename over the manifest (the manifest is
    moved last: once it is in place, the parse state beside it matches it)."""
    manifest = manifest or dbt_project.manifest_path
    manifest.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    env.setdefault("CRIMELAKE_HOME", "var")
    with tempfile.TemporaryDirectory(dir=manifest.parent, prefix=".parse-") as tmp:
        proc = subprocess.run([DBT_EXECUTABLE, "parse", "--quiet", "--profiles-dir", str(DBT_DIR),
                               "--target-path", tmp], cwd=DBT_DIR, env=env, capture_output=True, text=True)
        built = Path(tmp) / "manifest.json"
        if proc.returncode != 0 or not built.exists():
            raise RuntimeError(f"dbt parse failed in {DBT_DIR}:\n{proc.stdout}\n{proc.stderr}")
        # The parse state goes along so that dbt's own runs (which start from it) parse only what changed.
        state = Path(tmp) / "partial_parse.msgpack"
        if state.exists():
            os.replace(state, manifest.parent / state.name)
        os.replace(built, manifest)
    return manifest


def ensure_manifest(force: bool = False) -> Path:
    """The manifest, parsed first when it is missing or older than a project file (a cold parse takes seconds)."""
    manifest = dbt_project.manifest_path
    if force or not manifest_is_fresh(manifest):
        parse_manifest(manifest)
    return manifest


def prepare_if_dev(manifest: Path | None = None, project_dir: Path = DBT_DIR) -> bool:
    """In place of `DbtProject.prepare_if_dev()` (which parses on every load under `dagster dev`): under `dagster
    dev` only, parse when a project file is newer than the manifest (an edit picked up on reload). A fresh manifest
    is used as it is, so loading the definitions runs no dbt and takes no lock. True when it parsed."""
    manifest = manifest or dbt_project.manifest_path
    if not os.getenv("DAGSTER_IS_DEV_CLI") or manifest_is_fresh(manifest, project_dir):
        return False
    parse_manifest(manifest)
    return True


dbt_project = DbtProject(project_dir=DBT_DIR, profiles_dir=DBT_DIR)

# The months of a run, passed to dbt in the environment (dbt_project/macros/checked_months.sql, `run_var`).
RUN_VARS = ("month_from", "month_to", "check_from")
PARSE_STATE = "partial_parse.msgpack"


def run_var_env(name: str) -> str:
    return f"CRIMELAKE_DBT_{name.upper()}"


@contextmanager
def months_in_env(months: dict[str, str] | None) -> Iterator[None]:
    """The run's months (``RUN_VARS``) in this process's environment while a dbt invocation starts (it copies the
    environment when it starts); any left from before are cleared, and the environment is restored after."""
    unknown = set(months or {}) - set(RUN_VARS)
    if unknown:
        raise ValueError(f"unknown run months {sorted(unknown)}; expected some of {RUN_VARS}")
    names = [run_var_env(n) for n in RUN_VARS]
    saved = {n: os.environ.pop(n, None) for n in names}
    os.environ.update({run_var_env(k): v for k, v in (months or {}).items() if v})
    try:
        yield
    finally:
        for n in names:
            os.environ.pop(n, None)
            if saved[n] is not None:
                os.environ[n] = saved[n]


@contextmanager
def invocation_target(home: Path) -> Iterator[Path]:
    """A new target folder for one dbt invocation of a home (under ``<home>/cache/dbt/runs``), holding the parse
    state the home's last invocation left. dbt checks that state against the project, its vars and the profile
    (whose DuckDB path is the home's) and parses again only what changed; the state `make install` leaves beside
    the manifest was made for no home in particular, and with it every invocation parsed the whole project
    (about 6 s more each; a month's run makes three). On success the invocation's state becomes the home's and
    its folder is removed; a failed invocation's folder is kept, with dbt's log, for a look."""
    root = home / "cache" / "dbt"
    target = root / "runs" / uuid.uuid4().hex[:12]
    target.mkdir(parents=True)
    state = root / PARSE_STATE
    if state.exists():
        shutil.copyfile(state, target / PARSE_STATE)
    yield target
    made = target / PARSE_STATE
    if made.exists():
        os.replace(made, state)
    shutil.rmtree(target, ignore_errors=True)


class LocalDbtCliResource(DbtCliResource):
    """dagster-dbt's resource for the dbt installed in this environment, less two things each invocation paid for
    and nothing here reads: a `dbt --version` subprocess per run to learn the version (about 3 s: dbt's imports),
    which is this environment's dbt-core package, and a dbt adapter opened inside the Dagster process before each
    command (about 3 s the first time), which dagster-dbt uses only to fetch row counts and column metadata."""

    @cached_property
    def _cli_version(self):
        from importlib.metadata import version as installed

        from packaging import version

        return version.parse(installed("dbt-core"))

    def _initialize_dbt_core_adapter(self, args):
        return None


def dbt_resource(engine: str | None = None) -> DbtCliResource:
    """The dbt of the engine (CRIMELAKE_ENGINE when not given): this environment's dbt on DuckDB's default
    target, or the spark environment's dbt (dbt-spark) on the `spark` target."""
    from crimelake.engine import TARGETS, engine_from_env, spark_tool

    engine = engine or engine_from_env()
    if engine != "spark":
        return LocalDbtCliResource(project_dir=str(DBT_DIR), profiles_dir=str(DBT_DIR), dbt_executable=DBT_EXECUTABLE)
    executable = spark_tool("dbt")
    if executable is None:
        raise RuntimeError("CRIMELAKE_ENGINE=spark needs dbt-spark: `make install` installs it in .venv-spark "
                           "(or `UV_PROJECT_ENVIRONMENT=.venv-spark uv sync --extra spark`)")
    return DbtCliResource(project_dir=str(DBT_DIR), profiles_dir=str(DBT_DIR), dbt_executable=executable,
                          target=TARGETS["spark"])
