"""The garbage collector pause that a month's ingest runs under."""

from __future__ import annotations

import gc
import threading

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
