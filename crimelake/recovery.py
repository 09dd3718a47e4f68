"""Runs whose process died, and the waits a command may be stuck in.

A run executed in process by a `crimelake` command stays STARTED in the Dagster instance when that process is
killed, and keeps any pool slot it held (the `warehouse` pool has one): every later run needing the pool waits for
ever. Each run a command starts is tagged with the pid, host and start time of its process, so the next command
can tell a dead run from a live one, mark it failed and release its slots.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

from crimelake.config import env_count

PID_TAG = "crimelake/pid"
HOST_TAG = "crimelake/host"
PROCESS_START_TAG = "crimelake/process_start"

# Exit codes of a command that stopped without finishing its work.
EXIT_GAVE_UP = 75  # EX_TEMPFAIL: waited the allowed time for a pool slot or the home's lock


def wait_seconds() -> int:
    """How long a command waits for a pool slot or the home's lock: `CRIMELAKE_WAIT_SECONDS` (default 600)."""
    return env_count("CRIMELAKE_WAIT_SECONDS", 600, minimum=0)


def process_start(pid: int) -> str | None:
    """The kernel's start time of a process (clock ticks since boot), which tells a pid's reuse from its first
    owner; None where /proc is not there or the process is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: count fields after its closing one.
    return stat.rsplit(")", 1)[1].split()[19]


def process_tags() -> dict[str, str]:
    """Tags naming the process that executes a run."""
    pid = os.getpid()
    tags = {PID_TAG: str(pid), HOST_TAG: socket.gethostname()}
    started = process_start(pid)
    if started is not None:
        tags[PROCESS_START_TAG] = started
    return tags


def process_alive(pid: int, started: str | None) -> bool:
    """Whether process `pid` runs and is the one that started (same start time, where it was recorded)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, owned by someone else
    if started is None:
        return True
    now = process_start(pid)
    return now is None or now == started


@dataclass
class Recovered:
    run_id: str
    job_name: str
    status: str
    pid: int
    partitions: str
    pools: list[str]

    def line(self) -> str:
        held = f"; released its slot in pool {', '.join(self.pools)}" if self.pools else ""
        return (f"Recovered run {self.run_id[:8]} ({self.job_name}{self.partitions}): it was {self.status} but its "
                f"process {self.pid} is gone; marked failed{held}.")


def _partitions(tags: dict[str, str]) -> str:
    start, end = tags.get("dagster/asset_partition_range_start"), tags.get("dagster/asset_partition_range_end")
    if start and end:
        return f", {start}..{end}"
    return f", {tags['dagster/partition']}" if "dagster/partition" in tags else ""


def held_pools(instance, run_id: str) -> list[str]:
    """Pools in which a run holds a slot or waits for one."""
    return sorted(i.concurrency_key for i in _infos(instance)
                  if run_id in i.active_run_ids or run_id in i.pending_run_ids)


def _infos(instance) -> list:
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return []
    return list(storage.get_concurrency_infos(sorted(storage.get_concurrency_keys())).values())


def free_slots(instance, run_id: str) -> None:
    """Release every pool slot a run holds and drop its waiting claims."""
    if instance.event_log_storage.supports_global_concurrency_limits:
        instance.event_log_storage.free_concurrency_slots_for_run(run_id)


def recover_dead_runs(instance) -> list[Recovered]:
    """Mark failed every starting, started or canceling run of this instance whose process on this host is gone,
    and release its pool slots. Runs of other hosts, and runs without a process tag (launched by the Dagster
    daemon, whose run monitoring watches them), are left alone."""
    import dagster as dg

    host = socket.gethostname()
    statuses = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]
    out = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=statuses)):
        tags = run.tags
        if tags.get(HOST_TAG) != host or not tags.get(PID_TAG, "").isdigit():
            continue
        pid = int(tags[PID_TAG])
        if process_alive(pid, tags.get(PROCESS_START_TAG)):
            continue
        pools = held_pools(instance, run.run_id)
        instance.report_run_failed(run, f"The process that executed this run (pid {pid} on {host}) is gone "
                                        "(killed or crashed); marked failed by the next crimelake command.")
        free_slots(instance, run.run_id)
        out.append(Recovered(run.run_id, run.job_name, run.status.value, pid, _partitions(tags), pools))
    return out


def describe_holders(instance, pool: str) -> str:
    """Who holds the slots of a pool: run ids, jobs and processes."""
    info = instance.event_log_storage.get_concurrency_info(pool)
    parts = []
    for run_id in sorted(info.active_run_ids):
        run = instance.get_run_by_id(run_id)
        if run is None:
            parts.append(f"run {run_id[:8]} (no longer in the instance)")
            continue
        where = f", pid {run.tags[PID_TAG]} on {run.tags.get(HOST_TAG)}" if PID_TAG in run.tags else ""
        parts.append(f"run {run_id[:8]} ({run.job_name}, {run.status.value}{where})")
    return ", ".join(parts) or "no run (slots being reassigned)"


def pending_pools(instance, run_id: str) -> list[str]:
    """Pools in which a run waits for a slot."""
    return sorted(i.concurrency_key for i in _infos(instance) if run_id in i.pending_run_ids)
