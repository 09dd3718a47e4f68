"""`crimelake ui`'s supervisor: SIGTERM and Ctrl-C stop a server that only obeys SIGINT, its children included."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

# A server like `dagster dev`: ignores SIGTERM, stops on SIGINT, and has a child of its own.
SERVER = textwrap.dedent("""
    import signal, subprocess, sys, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    open(sys.argv[1], "w").write(f"{child.pid}")
    try:
        time.sleep(600)
    except KeyboardInterrupt:
        child.terminate()
        sys.exit(0)
""")
STUBBORN = textwrap.dedent("""
    import signal, sys, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    open(sys.argv[1], "w").write("ready")
    time.sleep(600)
""")
SUPERVISOR = textwrap.dedent("""
    import sys
    from crimelake.supervise import run_supervised
    sys.exit(run_supervised([sys.executable, "-c", sys.argv[1], sys.argv[2]], grace=float(sys.argv[3])))
""")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie awaiting its parent counts as gone.
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(")")[-1].split()[0] != "Z"


def _start(tmp_path, server: str, grace: float) -> tuple[subprocess.Popen, str]:
    marker = tmp_path / "ready"
    proc = subprocess.Popen([sys.executable, "-c", SUPERVISOR, server, str(marker), str(grace)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    while not (marker.exists() and marker.read_text()):
        assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read() if proc.poll() else "slow"
        time.sleep(0.1)
    return proc, marker.read_text()


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_and_ctrl_c_stop_the_server_and_its_children(tmp_path, sig, code):
    proc, grandchild = _start(tmp_path, SERVER, grace=20)
    os.kill(proc.pid, sig)
    assert proc.wait(timeout=30) == code
    assert "Stopping" in proc.stdout.read()
    deadline = time.monotonic() + 10
    while _alive(int(grandchild)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(int(grandchild))


def test_a_server_that_ignores_sigint_is_killed_after_the_grace_period(tmp_path):
    proc, _ = _start(tmp_path, STUBBORN, grace=1)
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=30) == 143
    assert "did not stop within 1s: killed" in proc.stdout.read()
