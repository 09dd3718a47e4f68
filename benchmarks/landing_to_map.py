"""Landing to map: seconds from a month's files dropped into the landing folder to that month served by the map,
with nobody launching anything: `crimelake ui` (Dagster's webserver and daemon: the landing sensor, the automation
conditions, the run queue) and `crimelake serve` (the map and its API) run on a home `crimelake run` built.

`python -m benchmarks.landing_to_map [--forces a,b] [--months N] [--incidents N] [--timeout S]`: builds the home
with `crimelake generate` and `crimelake run` (the last month's files set aside), starts both servers on free
loopback ports, drops the month, polls /api/meta until it lists the month, stops both servers (their process
groups, as Ctrl-C would) and writes bench-results/landing_to_map.json with the seconds and each run Dagster
recorded (what it built, queued, started, ended, relative to the drop). Target: within 5 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CRIMELAKE = str(Path(sys.executable).parent / "crimelake")
TARGET_SECONDS = 300


class LandingToMapError(RuntimeError):
    """The month did not reach the map (or a server did not start) in time; the message says what was seen."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "CRIMELAKE_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")}


def _cli(home: Path, *args: str, log: Path, timeout: float = 1800) -> None:
    with log.open("a") as out:
        try:
            proc = subprocess.run([CRIMELAKE, *args], env=_env(home), stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            raise LandingToMapError(f"`crimelake {' '.join(args)}` still running after {timeout:.0f} s; see {log}") from None
    if proc.returncode != 0:
        raise LandingToMapError(f"`crimelake {' '.join(args)}` exited {proc.returncode}; see {log}")


def build_home(home: Path, forces: list[str], months: int, incidents: int) -> tuple[str, Path]:
    """A home `crimelake run` built over every month but the last, whose files wait in `home/../aside`."""
    log = home.parent / "build.log"
    _cli(home, "generate", "--forces", ",".join(forces), "--months", str(months), "--incidents", str(incidents),
         "--defect-rate", "0", log=log)
    new = sorted(p.name for p in (home / "landing" / "police_uk").iterdir())[-1]
    aside = home.parent / "aside"
    for folder in sorted((home / "landing").glob(f"*/{new}")):
        shutil.move(folder, aside / folder.parent.name)
    _cli(home, "run", log=log)
    return new, aside


@contextlib.contextmanager
def server(home: Path, args: list[str], log: Path, stops: list[dict]) -> Iterator[subprocess.Popen]:
    """A `crimelake` server in its own process group, stopped as Ctrl-C stops it (SIGINT to the group: `dagster dev`
    shuts its webserver, daemon and code server down on SIGINT, but not on SIGTERM), SIGKILL for whatever is left
    of the group after 60 s; how it stopped is appended to `stops`."""
    with log.open("ab") as out:
        proc = subprocess.Popen([CRIMELAKE, *args], env=_env(home), stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                                start_new_session=True)
    try:
        yield proc
    finally:
        t, signal_used = time.monotonic(), "SIGINT"
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)
        # The group outlives its leader while dagster dev's webserver, daemon and code server shut down.
        while time.monotonic() - t < 60 and _group_alive(proc):
            time.sleep(0.5)
        if _group_alive(proc):
            signal_used = "SIGKILL"
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        stops.append({"server": args[0], "stopped_by": signal_used, "seconds": round(time.monotonic() - t, 1)})


def _group_alive(proc: subprocess.Popen) -> bool:
    proc.poll()  # reap the leader once it exits, or the group looks alive through it
    try:
        os.killpg(proc.pid, 0)
    except ProcessLookupError:
        return False
    return True


def _get(url: str) -> dict | None:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return json.loads(r.read() or b"null")
    except (OSError, ValueError):
        return None


def wait_for(what: str, check, timeout: float, procs: list[subprocess.Popen], logs: list[Path]):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        for p, log in zip(procs, logs, strict=True):
            if p.poll() is not None:
                raise LandingToMapError(f"{what}: a server exited with {p.returncode}; see {log}")
        time.sleep(2)
    raise LandingToMapError(f"{what}: not within {timeout:.0f} s; see {', '.join(map(str, logs))}")


def dagster_runs(home: Path, since: datetime) -> list[dict]:
    """Every run the home's Dagster instance recorded since `since`: job, month, what it built, status, and when
    it was created, started and ended (seconds after `since`)."""
    import dagster as dg

    t0 = since.timestamp()
    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        records = instance.get_run_records(dg.RunsFilter(created_after=since), ascending=True)
        out = []
        for rec in records:
            run = rec.dagster_run
            groups = sorted({k.path[0] for k in run.asset_selection or ()})
            out.append({
                "run_id": run.run_id[:8], "job": run.job_name, "status": run.status.value,
                "month": run.tags.get("dagster/partition"), "trigger": run.tags.get("dagster/sensor_name"),
                "assets": groups,
                "created_s": round(rec.create_timestamp.timestamp() - t0, 1),
                "started_s": None if rec.start_time is None else round(rec.start_time - t0, 1),
                "ended_s": None if rec.end_time is None else round(rec.end_time - t0, 1),
            })
    return out


def stages(runs: list[dict]) -> dict:
    """Seconds after the drop: the ingest run requested, started, ended; the first run that published (the public
    tables and the release) started and ended."""
    ingest = [r for r in runs if r["job"] == "ingest_landing_job"]
    publish = [r for r in runs if "public" in r["assets"] and r["status"] == "SUCCESS"]
    out = {}
    if ingest:
        out.update(ingest_requested_s=min(r["created_s"] for r in ingest),
                   ingest_started_s=ingest[0]["started_s"], ingest_ended_s=ingest[0]["ended_s"])
    if publish:
        out.update(publish_requested_s=publish[0]["created_s"], publish_started_s=publish[0]["started_s"],
                   publish_ended_s=publish[0]["ended_s"])
    return out


def measure(work: Path, *, forces: list[str], months: int, incidents: int, timeout: float) -> dict:
    """Build the home under `work`, run both servers, drop the month and time it to the map (see the module)."""
    home = work / "home"
    t = time.perf_counter()
    new, aside = build_home(home, forces, months, incidents)
    built_s = time.perf_counter() - t
    ui_port, map_port = free_port(), free_port()
    ui_log, map_log = work / "ui.log", work / "serve.log"
    started = datetime.now(UTC)
    meta_url = f"http://127.0.0.1:{map_port}/api/meta"
    stops: list[dict] = []
    with server(home, ["ui", "--port", str(ui_port)], ui_log, stops) as ui, \
            server(home, ["serve", "--port", str(map_port)], map_log, stops) as serve:
        procs, logs = [ui, serve], [ui_log, map_log]
        wait_for("the Dagster UI", lambda: _get(f"http://127.0.0.1:{ui_port}/server_info"), 180, procs, logs)
        before = wait_for("the map API", lambda: _get(meta_url), 120, procs, logs)["months"]
        if new in before:
            raise LandingToMapError(f"{new} is served before its files landed: {before}")
        # The daemon's first ticks see the home as `crimelake run` left it.
        wait_for("the landing sensor's first tick", lambda: "landing_sensor" in ui_log.read_text(), 180, procs, logs)
        dropped = datetime.now(UTC)
        t = time.perf_counter()
        for folder in sorted(aside.iterdir()):
            shutil.move(folder, home / "landing" / folder.name / new)

        def served():
            meta = _get(meta_url)
            return meta is not None and new in meta["months"]

        try:
            wait_for(f"{new} on the map", served, timeout, procs, logs)
        except LandingToMapError as e:
            runs = dagster_runs(home, started)
            raise LandingToMapError(f"{e}; Dagster runs since the servers started: {json.dumps(runs)}") from None
        seconds = time.perf_counter() - t
    runs = dagster_runs(home, started)
    offset = (dropped - started).total_seconds()
    after = [{**r, **{k: None if r[k] is None else round(r[k] - offset, 1) for k in ("created_s", "started_s", "ended_s")}}
             for r in runs if r["created_s"] >= offset]
    return {
        "forces": forces, "months_built": months - 1, "month_dropped": new, "incidents": incidents,
        "cpu_count": os.cpu_count(), "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        "home_built_by_crimelake_run_s": round(built_s, 1),
        "drop_to_visible_s": round(seconds, 1), "target_s": TARGET_SECONDS,
        "stages": stages(after),
        "servers_stopped": stops,
        "runs_before_drop": [r for r in runs if r["created_s"] < offset],
        "runs_for_loaded_months": [r for r in runs if r["month"] and r["month"] != new and r["month"][:2] == "20"],
        "runs_after_drop": after,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--forces", default="city-of-london,bedfordshire")
    ap.add_argument("--months", type=int, default=4, help="months generated; the last is the one dropped")
    ap.add_argument("--incidents", type=int, default=300)
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--out", type=Path, default=ROOT / "bench-results" / "landing_to_map.json")
    ap.add_argument("--work", type=Path, help="an empty folder for the home and the servers' logs, kept afterwards "
                                              "(default: a temporary folder, removed)")
    a = ap.parse_args()
    with contextlib.ExitStack() as stack:
        work = a.work or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="landing-to-map-")))
        work.mkdir(parents=True, exist_ok=True)
        result = measure(work, forces=a.forces.split(","), months=a.months, incidents=a.incidents,
                         timeout=a.timeout)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{result['month_dropped']} on the map {result['drop_to_visible_s']} s after its files landed "
          f"(target {TARGET_SECONDS} s); {len(result['runs_after_drop'])} runs; written to {a.out}")


if __name__ == "__main__":
    main()
