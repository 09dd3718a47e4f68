"""The one place that knows where things live.

Everything a run writes lives under one home folder, `CRIMELAKE_HOME` (default `./var`): landing files, the Delta
lake, the DuckDB warehouse, the MLflow store and the Dagster instance. Nothing is written to the user's home folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOME = "var"
DEFAULT_H3_RESOLUTION = 9

# Generous box around England and Wales (WGS84): points outside it cannot belong to a force of England and Wales.
ENGLAND_WALES_BBOX = (-6.5, 49.8, 1.9, 55.9)

_DAGSTER_YAML = """\
# Written by crimelake: the Dagster instance lives under the crimelake home.
telemetry:
  enabled: false
# Runs the daemon launches (`crimelake ui`: the sensors, the UI) wait in a queue: two at a time, of which one ingest
# run of the landing sensor (tagged with its month's fingerprint), so a landing folder full of months loads one
# month after another beside at most one downstream run, on a machine with two cores. Assets that open the DuckDB warehouse share the `warehouse`
# pool (every pool one slot), whatever launched them.
concurrency:
  runs:
    max_concurrent_runs: 2
    tag_concurrency_limits:
      - key: crimelake/landing_fingerprint
        limit: 1
  pools:
    default_limit: 1
# For runs the daemon launches (`crimelake ui`): a run stuck starting or canceling is marked failed, and the pool
# slots of a run that ended are released. No limit on run time: a national first load takes hours. Runs that
# `crimelake` commands execute in their own process are checked by the next command (crimelake.recovery).
run_monitoring:
  enabled: true
  start_timeout_seconds: 300
  cancel_timeout_seconds: 300
  poll_interval_seconds: 60
  free_slots_after_run_end_seconds: 60
"""
_DAGSTER_YAML_MARK = "# Written by crimelake"


def _env_setting(name: str, default, parse, kind: str, ok, bound: str):
    """The environment variable `name` parsed by `parse` (else `default`); ValueError naming the variable and the
    value when it is not `kind` or fails `ok` (`bound` says what it must be)."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = parse(raw)
    except ValueError:
        raise ValueError(f"{name} must be {kind}, got {raw!r}") from None
    if not ok(value):
        raise ValueError(f"{name} must be {bound}, got {value}")
    return value


def env_count(name: str, default: int, minimum: int = 1) -> int:
    """A whole number of at least `minimum` from the environment variable `name` (else `default`)."""
    return _env_setting(name, default, int, "a whole number", lambda n: n >= minimum, f"at least {minimum}")


def env_rate(name: str, default: float) -> float:
    """A number above 0 from the environment variable `name` (else `default`)."""
    return _env_setting(name, default, float, "a number", lambda v: v > 0, "above 0")


@dataclass(frozen=True)
class Settings:
    """Paths and knobs of one crimelake home."""

    home: Path
    h3_resolution: int = DEFAULT_H3_RESOLUTION

    @classmethod
    def from_env(cls, home: str | Path | None = None) -> Settings:
        raw = home if home is not None else os.environ.get("CRIMELAKE_HOME", DEFAULT_HOME)
        res = int(os.environ.get("CRIMELAKE_H3_RESOLUTION", DEFAULT_H3_RESOLUTION))
        if not 0 <= res <= 15:
            raise ValueError(f"CRIMELAKE_H3_RESOLUTION must be between 0 and 15, got {res}")
        return cls(home=Path(raw).expanduser().resolve(), h3_resolution=res)

    @property
    def landing(self) -> Path:
        return self.home / "landing"

    @property
    def lake(self) -> Path:
        return self.home / "lake"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def warehouse(self) -> Path:
        return self.home / "warehouse" / "crimelake.duckdb"

    @property
    def mlflow_uri(self) -> str:
        return f"sqlite:///{self.home / 'mlflow' / 'mlflow.db'}"

    @property
    def mlflow_artifacts(self) -> Path:
        return self.home / "mlflow" / "artifacts"

    def landing_dir(self, source: str, month: str | None = None) -> Path:
        base = self.landing / source
        return base / month if month else base

    def bronze(self, source: str, entity: str) -> Path:
        return self.lake / "bronze" / source / entity

    def quarantine(self, source: str, entity: str) -> Path:
        """Rows rejected from one source entity: raw text, file, line and reason."""
        return self.lake / "quarantine" / source / entity

    def rejected_files(self, source: str, entity: str) -> Path:
        """Files rejected whole (unreadable, wrong header, duplicate or superseded delivery)."""
        return self.lake / "quarantine" / source / f"{entity}__rejected_files"

    def gold(self, mart: str) -> Path:
        return self.lake / "gold" / mart

    def relative(self, path: Path) -> str:
        """A path as recorded in lineage columns: relative to the home when inside it, so a home can move."""
        try:
            return path.resolve().relative_to(self.home).as_posix()
        except ValueError:
            return path.resolve().as_posix()

    def dagster_instance(self):
        """The home's Dagster instance. Its SQLite storage is created once, under a file lock: two processes creating
        it at once (a command and the UI, or a command and a test reading the instance) can both stamp the schema
        version, and every later open then fails with "more than one head present"."""
        import fcntl

        import dagster as dg

        self.prepare()
        created = self.dagster_home / ".storage-created"
        if not created.exists():
            with open(self.dagster_home / ".storage.lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                if not created.exists():
                    dg.DagsterInstance.from_config(str(self.dagster_home)).dispose()
                    created.touch()
        return dg.DagsterInstance.from_config(str(self.dagster_home))

    def prepare(self) -> Settings:
        """Create the home's folders and point every tool's state into it, with telemetry off."""
        for p in (self.landing, self.lake, self.dagster_home, self.warehouse.parent, self.mlflow_artifacts):
            p.mkdir(parents=True, exist_ok=True)
        cfg = self.dagster_home / "dagster.yaml"
        # A file crimelake wrote is kept up to date; one the user wrote is theirs.
        if not cfg.exists() or (cfg.read_text().startswith(_DAGSTER_YAML_MARK) and cfg.read_text() != _DAGSTER_YAML):
            cfg.write_text(_DAGSTER_YAML)
        os.environ["CRIMELAKE_HOME"] = str(self.home)
        os.environ["DAGSTER_HOME"] = str(self.dagster_home)
        os.environ.setdefault("MLFLOW_TRACKING_URI", self.mlflow_uri)
        # The registry lives with the runs (MLflow would otherwise ask an active Spark session for one).
        os.environ.setdefault("MLFLOW_REGISTRY_URI", os.environ["MLFLOW_TRACKING_URI"])
        os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
        os.environ["DO_NOT_TRACK"] = "1"
        os.environ["GX_ANALYTICS_ENABLED"] = "false"
        os.environ["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
        return self
