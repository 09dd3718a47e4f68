"""The garbage collector pause that a month's ingest runs under, and the release of memory between steps."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from crimelake import memory
from crimelake.config import Settings
from crimelake.ingest.engine import ingest_partition
from data_contracts.loader import default_contracts


@pytest.fixture(autouse=True)
def _collector_back_on():
    was = gc.isenabled()
    yield
    (gc.enable if was else gc.disable)()


def test_the_collector_is_off_inside_and_back_on_after_nested_pauses():
    gc.enable()
    with memory.gc_paused():
        assert not gc.isenabled()
        with memory.gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off_and_an_error_still_restores():
    gc.disable()
    with memory.gc_paused():
        pass
    assert not gc.isenabled()
    gc.enable()
    with pytest.raises(RuntimeError), memory.gc_paused():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_overlapping_pauses_on_two_threads_turn_it_on_once_both_leave():
    gc.enable()
    inside, release = threading.Event(), threading.Event()

    def other():
        with memory.gc_paused():
            inside.set()
            release.wait(10)

    t = threading.Thread(target=other)
    with memory.gc_paused():
        t.start()
        inside.wait(10)
    # The first pause is over, the other thread's is not: still off.
    assert not gc.isenabled()
    release.set()
    t.join(10)
    assert gc.isenabled()


def test_ingest_runs_under_the_pause(tmp_path):
    gc.enable()
    seen = []
    settings = Settings.from_env(tmp_path).prepare()
    # A month with no files: the checks are still called, inside the pause.
    ingest_partition(settings, default_contracts()[("police_uk", "street")], "2024-01", write=False,
                     validate=lambda result: seen.append(gc.isenabled()))
    assert seen == [False] and gc.isenabled()


class _Cycle:
    def __init__(self):
        self.me = self


def _collections_during(fn) -> list[int]:
    """The generations the collector collected while `fn` ran, with automatic collections held off."""
    seen: list[int] = []

    def watch(phase, info):
        if phase == "start":
            seen.append(info["generation"])

    gc.disable()
    gc.callbacks.append(watch)
    try:
        fn()
    finally:
        gc.callbacks.remove(watch)
    return seen


def test_release_collects_the_generations_asked_for_and_a_full_collection_by_default():
    assert _collections_during(lambda: memory.release(generation=1)) == [1]
    assert _collections_during(memory.release) == [2]


def test_a_young_cycle_is_freed_by_releasing_the_young_generations():
    import weakref

    gc.collect()
    gc.disable()
    ref = weakref.ref(_Cycle())
    assert ref() is not None  # kept alive by its own cycle
    memory.release(generation=1)
    assert ref() is None


def test_release_refuses_a_generation_the_collector_does_not_have():
    with pytest.raises(ValueError, match="generation must be 0, 1 or 2"):
        memory.release(generation=3)


_PROBE = """
import numpy as np
import pyarrow as pa
from crimelake import memory

def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 // 2**20

buffers = [pa.allocate_buffer(2**20) for _ in range(300)]
for b in buffers:
    np.frombuffer(b, np.uint8)[:] = 1
del buffers
before = rss()
memory.release(generation=1)
print(before, rss())
"""


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads resident memory from /proc")
def test_release_hands_the_pages_arrow_freed_back_to_the_operating_system():
    """300 MB that Arrow freed in 1 MB buffers stays with its allocator for reuse; `memory.release` hands it back."""
    environ = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    out = subprocess.run([sys.executable, "-c", _PROBE], env=environ, capture_output=True, text=True, check=True)
    before, after = (int(v) for v in out.stdout.split())
    assert before - after > 200, (before, after)
