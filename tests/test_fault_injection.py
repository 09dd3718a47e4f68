"""Faults injected into real commands on a tiny home: `crimelake run` killed (SIGKILL, with its children) while it
ingests, exports gold or writes the public tables, and two `crimelake run` started at once. After a plain rerun,
every landed record is in bronze or in quarantine exactly once (counted apart from the pipeline, with Python's csv
module), gold counts each street crime once, the newest release names every gold and public table at its newest
version, and the exit codes say what happened."""

from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pyarrow.compute as pc
import pytest

from crimelake import lake, release
from crimelake.config import Settings
from crimelake.simulate import generate
from data_contracts.loader import default_contracts

pytestmark = [pytest.mark.integration]

MONTHS = 2


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    env.update(CRIMELAKE_HOME=str(settings.home), CRIMELAKE_WAIT_SECONDS="600", **extra)
    return env


def _run(settings: Settings, **popen) -> subprocess.Popen:
    # Its own session, so the kill reaches the whole command (dbt's process included), as `kill -9 -PGID` would.
    return subprocess.Popen([sys.executable, "-m", "crimelake.cli", "run"], env=_env(settings),
                            start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            **popen)


def _land(settings: Settings) -> None:
    generate(settings.landing, seed=11, forces=["city-of-london"], months=MONTHS, incidents=80, defect_rate=0)
    # The test reads the instance while a command runs: both create its storage under one lock.
    settings.dagster_instance().dispose()


def _records_landed(settings: Settings) -> Counter:
    """(source, entity) -> data records in the landed files, counted by the csv module, not the ingest reader."""
    out: Counter = Counter()
    for c in default_contracts().values():
        base = settings.landing_dir(c.source)
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*")):
            if path.is_file() and c.filename_pattern.match(path.name):
                text = path.read_bytes().decode(c.encoding, errors="replace")
                rows = [r for r in csv.reader(io.StringIO(text, newline=""), delimiter=c.delimiter) if r]
                out[(c.source, c.entity)] += max(len(rows) - 1, 0)
    return out


def _rows(path) -> int:
    return lake.read(path, columns=["_source_file"]).num_rows if lake.table_exists(path) else 0


def _step_started(settings: Settings, prefix: str) -> bool:
    import dagster as dg

    instance = settings.dagster_instance()
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
        for e in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_START):
            if (e.step_key or "").startswith(prefix):
                return True
    return False


def _kill_when(proc: subprocess.Popen, settings: Settings, prefix: str, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not _step_started(settings, prefix):
        if proc.poll() is not None:
            pytest.fail(f"the command ended (exit {proc.returncode}) before a {prefix}* step started:\n"
                        + proc.stdout.read())
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(f"no {prefix}* step started within {timeout:.0f} s")
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL


def _assert_exactly_once(settings: Settings) -> None:
    landed = _records_landed(settings)
    assert landed[("police_uk", "street")] > 0
    for (source, entity), n in landed.items():
        held = _rows(settings.bronze(source, entity)) + _rows(settings.quarantine(source, entity))
        assert held == n, f"{source}/{entity}: {n} records landed, {held} in bronze and quarantine"
    street = lake.read(settings.bronze("police_uk", "street"), columns=["month"])
    incidents = lake.read(settings.gold("fct_incidents"), columns=["incident_id", "source", "month"])
    incidents = incidents.filter(pc.equal(incidents["source"], "police_uk")).to_pandas()
    assert incidents["incident_id"].is_unique
    assert Counter(incidents["month"].astype(str).str[:7]) == Counter(street.column("month").to_pylist())
    # Readers see one consistent set: the newest release names every gold and public table as it now stands.
    newest = release.latest(settings)
    assert newest is not None
    assert newest.versions == {name: lake.version(settings.lake / name)
                               for name in release.released_tables(settings)}


def _rerun_until_done(settings: Settings) -> str:
    again = subprocess.run([sys.executable, "-m", "crimelake.cli", "run"], env=_env(settings), capture_output=True,
                           text=True, timeout=900)
    out = again.stdout + again.stderr
    assert again.returncode == 0, out
    assert "Summary: nothing failed" in out, out
    return out


@pytest.mark.parametrize("prefix", ["police_uk__street", "gold__", "public__"])
def test_a_run_killed_at_any_stage_is_finished_by_the_next_with_every_row_once(settings, prefix):
    _land(settings)
    _kill_when(_run(settings), settings, prefix)
    out = _rerun_until_done(settings)
    assert "Recovered run" in out
    _assert_exactly_once(settings)
    third = subprocess.run([sys.executable, "-m", "crimelake.cli", "run"], env=_env(settings), capture_output=True,
                           text=True, timeout=600)
    assert third.returncode == 0 and "Nothing to run" in third.stdout, third.stdout + third.stderr


def test_two_runs_at_once_take_turns_and_load_everything_once(settings):
    _land(settings)
    first, second = _run(settings), _run(settings)
    outs = [p.communicate(timeout=900)[0] for p in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], outs
    # One of them waited for the other's lock and said so.
    assert any("waiting" in o.lower() for o in outs), outs
    _assert_exactly_once(settings)


def test_models_killed_while_training_are_finished_by_the_next_run(settings):
    from crimelake.pipeline import run_landed, run_transform

    generate(settings.landing, seed=12, forces=["city-of-london"], months=18, incidents=80, defect_rate=0)
    assert all(r.success for r in run_landed(settings)) and run_transform(settings).success
    env = _env(settings, CRIMELAKE_FAIRNESS_MAX_RATIO="100")
    argv = [sys.executable, "-m", "crimelake.cli", "models", "--group", "all_crime"]
    proc = subprocess.Popen(argv, env=env, start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    # The training step (backtest, MLflow, gate) is the long one: a kill there is reliably mid-run.
    _kill_when(proc, settings, "ml__hotspot_model", timeout=900)

    again = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=1200)
    out = again.stdout + again.stderr
    assert again.returncode == 0, out
    assert "Recovered run" in out and "Summary: nothing failed" in out
    predictions = lake.read(settings.lake / "ml" / "predictions").to_pandas()
    champion = predictions[(predictions["forecast_group"] == "all_crime") & (predictions["model_alias"] == "champion")]
    latest = champion[champion["created_at"] == champion["created_at"].max()]
    # One complete forecast: every cell once, in one batch.
    assert len(latest) > 0 and latest["h3_cell"].is_unique and latest["prediction_id"].is_unique
