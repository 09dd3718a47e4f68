"""Run a long-lived server (the Dagster UI) as a child that stops, children included, on Ctrl-C and on SIGTERM.

`dagster dev` stops its webserver and daemon on SIGINT but ignores SIGTERM, so a service manager (systemd,
`docker stop`) could not stop it. The child runs in its own process group; SIGINT or SIGTERM to this process is
passed on as SIGINT to the whole group, which gets `grace` seconds to stop before the group is killed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


def run_supervised(argv: list[str], *, grace: float = 30.0, say: Callable[[str], None] = print,
                   **popen) -> int:
    """Run `argv` until it ends (its exit code) or this process gets SIGINT or SIGTERM (128 + the signal, after
    the child's group has stopped, or been killed `grace` seconds later)."""
    child = subprocess.Popen(argv, start_new_session=True, **popen)
    received: list[int] = []

    def stop(signum, _frame) -> None:
        if not received:
            say(f"Stopping (signal {signal.Signals(signum).name}): asking {os.path.basename(argv[0])} and its "
                f"children to stop, at most {grace:.0f}s...")
            _signal_group(child.pid, signal.SIGINT)
        received.append(signum)

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not received:
            try:
                code = child.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                continue
            if not received:  # it ended by itself (a signal may have arrived while it was ending)
                return code
        deadline = time.monotonic() + grace
        while child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        if child.poll() is None:
            say(f"{os.path.basename(argv[0])} did not stop within {grace:.0f}s: killed")
            _signal_group(child.pid, signal.SIGKILL)
            child.wait()
        # Whatever the leader did, nothing of its group may outlive this command.
        _signal_group(child.pid, signal.SIGKILL)
        return 128 + received[0]
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
