"""Give freed memory back to the operating system between the large steps of a long run.

A `crimelake run` ingests month after month and then runs dbt in a child process: memory the ingest freed stays
with the process (Arrow's allocator and the C library keep freed pages for reuse), so it would sit beside dbt's.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import threading
from collections.abc import Iterator


def release(generation: int = 2) -> None:
    """Collect garbage (the collector's generations up to `generation`; 2, the default, is every object), then ask
    Arrow's memory pool and the C library to return unused pages.

    A full collection walks every object of the process: in one that has loaded the Dagster definitions and
    great-expectations, 0.4 to 0.5 s, whatever there is to free. After work whose objects are young (a month's
    ingest, made with the collector paused, see `gc_paused`), generation 1 finds what a full collection would."""
    if generation not in (0, 1, 2):
        raise ValueError(f"generation must be 0, 1 or 2, got {generation!r}")
    gc.collect(generation)
    with contextlib.suppress(Exception):  # an Arrow build without the call, or no Arrow at all
        import pyarrow as pa

        pa.default_memory_pool().release_unused()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)


_pause_lock = threading.Lock()
_pauses = 0
_was_enabled = False


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector held off for a block that makes many short-lived objects and no cycles
    worth collecting (a month's ingest: its data lives in Arrow and numpy buffers, which the collector does not
    track, yet each full collection walks every object of a process that has imported Dagster and
    great-expectations). Safe to nest and to enter from several threads: the collector is turned back on, if it
    was on, when the last block leaves, and reference counting frees everything else as usual meanwhile."""
    global _pauses, _was_enabled
    with _pause_lock:
        if _pauses == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _pause_lock:
            _pauses -= 1
            if _pauses == 0 and _was_enabled:
                gc.enable()
