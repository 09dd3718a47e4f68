"""What a pipeline command holds while it runs, how long it waits, and how it stops.

One command at a time works on a home (an advisory lock, released by the kernel whatever way the process ends).
Before it starts any run, runs left STARTED by a killed command are marked failed and their pool slots released.
A command never waits silently or for ever: waiting for the home's lock or for a pool slot is said, and given up
after `CRIMELAKE_WAIT_SECONDS`. SIGINT and SIGTERM stop it cleanly, also while Dagster waits for a slot (Dagster
defers interrupts to the next step's code, which never comes while a step waits): the run is marked canceled,
its slots released, and the command exits 128 + the signal number.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from crimelake.config import Settings
from crimelake.recovery import (
    EXIT_GAVE_UP,
    describe_holders,
    free_slots,
    pending_pools,
    recover_dead_runs,
    wait_seconds,
)

# After SIGINT or SIGTERM, how long the run's own code has to unwind (dbt is sent SIGINT and given time to stop)
# before the command marks the run canceled itself and exits.
STOP_GRACE_SECONDS = 30.0
# How often a long wait says it still waits.
REMIND_SECONDS = 60.0


class Stopped(Exception):
    """A signal stopped the command."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class GaveUp(Exception):
    """A wait lasted longer than allowed."""

    exit_code = EXIT_GAVE_UP


_active: Guard | None = None


class Guard:
    def __init__(self, settings: Settings, command: str, say: Callable[[str], None]):
        self.settings = settings
        self.command = command
        self.say = say
        self.signum: int | None = None
        self.current_run: str | None = None
        self._wait = wait_seconds()
        self._lock_fd: int | None = None
        self._done = threading.Event()
        self._saved: dict[int, object] = {}
        self._wakeup: tuple[socket.socket, socket.socket] | None = None
        self._old_wakeup = -1
        self._thread: threading.Thread | None = None
        self._stderr: int | None = None

    # -- entering and leaving -------------------------------------------------------------------------------------
    def __enter__(self) -> Guard:
        global _active
        with contextlib.suppress(OSError):
            self._stderr = os.dup(2)
        self._install_signals()
        try:
            self._take_lock()
            for r in recover_dead_runs(self.settings.dagster_instance()):
                self.say(r.line())
        except BaseException:
            self._restore_signals()
            self._release_lock()
            if self._stderr is not None:
                os.close(self._stderr)
                self._stderr = None
            raise
        self._thread = threading.Thread(target=self._watch, name="crimelake-guard", daemon=True)
        self._thread.start()
        _active = self
        return self

    def __exit__(self, *exc) -> None:
        global _active
        _active = None
        self._done.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._restore_signals()
        self._release_lock()
        if self._stderr is not None:
            os.close(self._stderr)
            self._stderr = None

    # -- the home's lock ------------------------------------------------------------------------------------------
    def _take_lock(self) -> None:
        path = self.settings.dagster_home / "command.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        started = time.monotonic()
        said = 0.0
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                waited = time.monotonic() - started
                holder = _read(path) or "another crimelake command"
                if waited >= self._wait:
                    os.close(fd)
                    raise GaveUp(f"gave up after {waited:.0f}s waiting for {holder} to finish with "
                                 f"{self.settings.home} (CRIMELAKE_WAIT_SECONDS={self._wait})") from None
                if not said or time.monotonic() - said >= REMIND_SECONDS:
                    self.say(f"Waiting for {holder} to finish with this home (waited {waited:.0f}s; giving up "
                             f"after {self._wait}s, CRIMELAKE_WAIT_SECONDS)...")
                    said = time.monotonic()
                time.sleep(0.5)
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} (crimelake {self.command}, since {time.strftime('%H:%M:%S')})".encode())
        self._lock_fd = fd

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            os.ftruncate(self._lock_fd, 0)
            os.close(self._lock_fd)  # closing the descriptor releases the lock
            self._lock_fd = None

    # -- signals --------------------------------------------------------------------------------------------------
    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for s in (signal.SIGINT, signal.SIGTERM):
            self._saved[s] = signal.signal(s, self._on_signal)
        # Every signal with a Python handler is also written to this socket by the interpreter, whichever handler
        # is installed at the time: the watcher sees signals that Dagster's own handler swallows.
        r, w = socket.socketpair()
        r.setblocking(False)
        w.setblocking(False)
        self._wakeup = (r, w)
        self._old_wakeup = signal.set_wakeup_fd(w.fileno(), warn_on_full_buffer=False)

    def _restore_signals(self) -> None:
        if self._wakeup is not None:
            signal.set_wakeup_fd(self._old_wakeup)
            for s in self._wakeup:
                s.close()
            self._wakeup = None
        for s, h in self._saved.items():
            signal.signal(s, h)
        self._saved.clear()

    def _on_signal(self, signum, frame) -> None:
        self.signum = signum
        raise KeyboardInterrupt

    # -- the watcher ----------------------------------------------------------------------------------------------
    def _watch(self) -> None:

        instance = self.settings.dagster_instance()
        stop_at: float | None = None
        waiting: tuple[str, float, float] | None = None  # run id, since, last said
        while not self._done.is_set():
            got = self._signals(timeout=1.0)
            if got and self.signum is None:
                self.signum = got
            run_id = self.current_run
            if self.signum and stop_at is None:
                name = signal.Signals(self.signum).name
                self.say(f"Received {name}: stopping" + (f" run {run_id[:8]}" if run_id else "") + "...")
                stop_at = time.monotonic() + STOP_GRACE_SECONDS
                if run_id:
                    with contextlib.suppress(Exception):
                        run = instance.get_run_by_id(run_id)
                        if run is not None and not run.is_finished:
                            instance.report_run_canceling(run, f"crimelake received {name}")
            if stop_at is not None and run_id and (time.monotonic() >= stop_at or pending_pools(instance, run_id)):
                name = signal.Signals(self.signum).name
                self._force_stop(instance, run_id, 128 + self.signum, canceled=True,
                                 message=f"Stopped by {name}: run {run_id[:8]} marked canceled and its pool "
                                         "slots released; what it did not finish runs next time.")
            if run_id is None:
                waiting = None
                continue
            pools = pending_pools(instance, run_id)
            if not pools:
                waiting = None
                continue
            now = time.monotonic()
            if waiting is None or waiting[0] != run_id:
                waiting = (run_id, now, 0.0)
            _, since, said = waiting
            holders = "; ".join(f"pool {p} is held by {describe_holders(instance, p)}" for p in pools)
            if now - since >= self._wait:
                self._force_stop(instance, run_id, EXIT_GAVE_UP, canceled=False,
                                 message=f"Gave up after {now - since:.0f}s waiting for a slot ({holders}; "
                                         f"CRIMELAKE_WAIT_SECONDS={self._wait}): run {run_id[:8]} marked failed.")
            if not said or now - said >= REMIND_SECONDS:
                self.say(f"Run {run_id[:8]} waits for a slot: {holders} (waited {now - since:.0f}s; giving up "
                         f"after {self._wait}s, CRIMELAKE_WAIT_SECONDS)...")
                waiting = (run_id, since, now)

    def _signals(self, timeout: float) -> int | None:
        if self._wakeup is None:
            self._done.wait(timeout)
            return None
        r = self._wakeup[0]
        with contextlib.suppress(OSError, ValueError):
            ready, _, _ = select.select([r], [], [], timeout)
            if ready:
                for b in r.recv(64):
                    if b in (signal.SIGINT, signal.SIGTERM):
                        return b
        return None

    def _force_stop(self, instance, run_id: str, code: int, *, canceled: bool, message: str) -> None:
        """End the process from the watcher: the main thread is inside Dagster's wait, which no exception reaches."""
        with contextlib.suppress(Exception):
            run = instance.get_run_by_id(run_id)
            if run is not None and not run.is_finished:
                (instance.report_run_canceled if canceled else instance.report_run_failed)(run, message)
            free_slots(instance, run_id)
        _terminate_children()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        # Straight to the terminal's descriptor as it was when the command began: a live progress display holds
        # back what is printed through it, and during a run Dagster tees the standard streams through a process
        # of its own.
        with contextlib.suppress(OSError):
            os.write(self._stderr if self._stderr is not None else 2, f"\n{message}\n".encode())
        # The main thread, still inside Dagster's wait, may have queued for the slot again since the first release
        # (seen under load): release once more as the last thing before the process ends.
        with contextlib.suppress(Exception):
            free_slots(instance, run_id)
        self._release_lock()
        os._exit(code)


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _terminate_children() -> None:
    """SIGTERM the processes this one started (a dbt invocation), so none outlives the command."""
    me = str(os.getpid())
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            if stat.read_text().rsplit(")", 1)[1].split()[1] == me:
                os.kill(int(stat.parent.name), signal.SIGTERM)


@contextlib.contextmanager
def tracked_run(instance) -> Iterator[str]:
    """A new run id for one Dagster run of this process. The command's guard watches the run while it executes
    (waits, signals); the run's pool slots are released when it ends, however it ended; a signal received during
    the run stops the command once the run has ended."""
    run_id = str(uuid.uuid4())  # the form of Dagster's own run ids
    guard = _active
    if guard is not None:
        guard.current_run = run_id
    try:
        yield run_id
    finally:
        if guard is not None:
            guard.current_run = None
        free_slots(instance, run_id)
    if guard is not None and guard.signum:
        raise Stopped(guard.signum)


def stop_requested() -> int | None:
    """The signal that asked this process's command to stop, if any."""
    return _active.signum if _active is not None else None
