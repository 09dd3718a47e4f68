"""Commands killed, stopped or blocked for real, in subprocesses on a tiny home: the next command recovers.

A `crimelake ingest police-uk` killed (SIGKILL) while dbt runs leaves its run STARTED holding the one slot of the
`warehouse` pool; the same command again finds the files already landed, recovers the dead run, runs the months
that never reached gold, and every month reaches gold exactly once. A run blocked on a slot held by a live run
says what it waits for and gives up after CRIMELAKE_WAIT_SECONDS; SIGTERM stops it cleanly.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from crimelake import lake
from crimelake.config import Settings
from crimelake.recovery import HOST_TAG, PID_TAG, PROCESS_START_TAG, process_start
from crimelake.simulate import generate

pytestmark = [pytest.mark.integration]

MONTHS = ["2024-01", "2024-02"]


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    env.update(CRIMELAKE_HOME=str(settings.home), **extra)
    return env


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "crimelake.cli", *args]


def _instance(settings: Settings):
    return settings.dagster_instance()  # created under the same lock as the command's, which runs meanwhile


def _police_zip(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    generate(src, seed=3, forces=["city-of-london"], months=len(MONTHS), incidents=60, defect_rate=0)
    archive = tmp_path / "police.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in sorted((src / "police_uk").rglob("*.csv")):
            zf.write(f, f"{f.parent.name}/{f.name}")
    return archive


def _wait_for(predicate, what: str, proc: subprocess.Popen, timeout: float = 420):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        if proc.poll() is not None:
            pytest.fail(f"the command ended (exit {proc.returncode}) before {what}")
        time.sleep(0.5)
    proc.kill()
    pytest.fail(f"timed out waiting for {what}")


def _dbt_started(settings: Settings):
    """The transform run whose dbt step has started, if any."""
    import dagster as dg

    instance = _instance(settings)
    for run in instance.get_runs(filters=dg.RunsFilter(job_name="transform_lakehouse_job",
                                                       statuses=[dg.DagsterRunStatus.STARTED])):
        for e in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_START):
            if "crimelake_dbt_models" in (e.step_key or ""):
                return run.run_id
    return None


def _slots(settings: Settings, pool: str = "warehouse"):
    return _instance(settings).event_log_storage.get_concurrency_info(pool)


def test_a_killed_transform_is_recovered_and_every_month_reaches_gold_once(settings, tmp_path):
    archive = _police_zip(tmp_path)
    log = (tmp_path / "first.log").open("w")
    first = subprocess.Popen(_cli("ingest", "police-uk", str(archive)), env=_env(settings), stdout=log,
                             stderr=subprocess.STDOUT)
    dead_run = _wait_for(lambda: _dbt_started(settings), "the dbt step started", first)
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=30)

    import dagster as dg

    instance = _instance(settings)
    # The fault as a user meets it: the run is left STARTED and holds the pool's only slot.
    assert instance.get_run_by_id(dead_run).status == dg.DagsterRunStatus.STARTED
    assert dead_run in _slots(settings).active_run_ids

    again = subprocess.run(_cli("ingest", "police-uk", str(archive)), env=_env(settings, CRIMELAKE_WAIT_SECONDS="120"),
                           capture_output=True, text=True, timeout=900)
    out = again.stdout + again.stderr
    assert again.returncode == 0, out
    assert f"Recovered run {dead_run[:8]}" in out
    assert "already landed" in out and "Landed 0 new" in out
    assert "not yet through a successful transform" in out
    assert "Summary: nothing failed" in out

    instance = _instance(settings)
    assert instance.get_run_by_id(dead_run).status == dg.DagsterRunStatus.FAILURE
    info = _slots(settings)
    assert not info.active_run_ids and not info.pending_run_ids

    # Every bronze month is in gold, each street row exactly once.
    street = lake.read(settings.bronze("police_uk", "street"))
    incidents = lake.read(settings.gold("fct_incidents")).to_pandas()
    incidents = incidents[incidents["source"] == "police_uk"]
    assert incidents["incident_id"].is_unique
    assert Counter(incidents["month"].astype(str).str[:7]) == Counter(street.column("month").to_pylist())
    assert sorted(set(street.column("month").to_pylist())) == MONTHS

    third = subprocess.run(_cli("run"), env=_env(settings), capture_output=True, text=True, timeout=600)
    assert third.returncode == 0, third.stdout + third.stderr
    assert "Nothing to run" in third.stdout
    assert not list(settings.landing.rglob("*.part"))


def _hold_warehouse(settings: Settings) -> str:
    """A STARTED run of a live process (this test's) holding the warehouse pool's only slot."""
    import dagster as dg

    instance = _instance(settings)
    run_id = str(uuid.uuid4())
    tags = {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}
    if process_start(os.getpid()):
        tags[PROCESS_START_TAG] = process_start(os.getpid())
    instance.add_run(dg.DagsterRun(job_name="holder_job", run_id=run_id, status=dg.DagsterRunStatus.STARTED,
                                   tags=tags))
    instance.event_log_storage.initialize_concurrency_limit_to_default("warehouse")
    assert instance.event_log_storage.claim_concurrency_slot("warehouse", run_id, "holder_step").is_claimed
    return run_id


def test_a_blocked_run_says_what_it_waits_for_gives_up_and_stops_on_sigterm(settings, tmp_path):
    import dagster as dg

    generate(settings.landing, seed=5, forces=["city-of-london"], months=1, incidents=40, defect_rate=0)
    holder = _hold_warehouse(settings)

    gave_up = subprocess.run(_cli("run"), env=_env(settings, CRIMELAKE_WAIT_SECONDS="5"), capture_output=True,
                             text=True, timeout=600)
    out = gave_up.stdout + gave_up.stderr
    assert gave_up.returncode == 75, out
    assert f"pool warehouse is held by run {holder[:8]} (holder_job" in out
    assert "Gave up after" in out and "CRIMELAKE_WAIT_SECONDS=5" in out
    instance = _instance(settings)
    transform = instance.get_runs(filters=dg.RunsFilter(job_name="transform_lakehouse_job"), limit=1)[0]
    assert transform.status == dg.DagsterRunStatus.FAILURE
    info = _slots(settings)
    # The live holder is not taken for dead; the run that gave up holds and waits for nothing.
    assert info.active_run_ids == {holder} and transform.run_id not in info.pending_run_ids

    log_path = tmp_path / "blocked.log"
    with log_path.open("w") as log:
        blocked = subprocess.Popen(_cli("run"), env=_env(settings), stdout=log, stderr=subprocess.STDOUT)
        _wait_for(lambda: "waits for a slot" in log_path.read_text(), "the wait to be reported", blocked)
        blocked.send_signal(signal.SIGTERM)
        assert blocked.wait(timeout=60) == 143, log_path.read_text()
    assert "Stopped by SIGTERM" in log_path.read_text()
    instance = _instance(settings)
    stopped = instance.get_runs(filters=dg.RunsFilter(job_name="transform_lakehouse_job"), limit=1)[0]
    assert stopped.run_id != transform.run_id and stopped.status == dg.DagsterRunStatus.CANCELED
    info = _slots(settings)
    assert info.active_run_ids == {holder} and not info.pending_run_ids

    # Once the holder is gone, the months that never reached gold run.
    instance.event_log_storage.free_concurrency_slots_for_run(holder)
    done = subprocess.run(_cli("run"), env=_env(settings), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Transform run" in done.stdout and "succeeded" in done.stdout


def test_processes_opening_a_new_home_at_once_create_one_dagster_storage(tmp_path):
    """Unlocked, two processes creating the SQLite storage together can both stamp its schema version, and every
    later open of the instance fails ("more than one head present")."""
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    env["CRIMELAKE_HOME"] = str(home)
    code = ("import sys; from crimelake.config import Settings; "
            "Settings.from_env(sys.argv[1]).dagster_instance().dispose()")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(home)], env=env, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, errors
    import sqlite3

    for db in sorted((home / "dagster").rglob("*.db")):
        with sqlite3.connect(db) as con:
            heads = con.execute("select count(*) from alembic_version").fetchone()[0]
        assert heads == 1, f"{db}: {heads} schema versions stamped"
    assert Settings.from_env(home).dagster_instance().get_runs() == []
