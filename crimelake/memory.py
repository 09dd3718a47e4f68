"""Give freed memory back to the operating system between the large steps of a long run.

A `crimelake run` ingests month after month and then runs dbt in a child process: memory the ingest freed stays
with the process (Arrow's allocator and the C library keep freed pages for reuse), so it would sit beside dbt's.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc


def release() -> None:
    """Collect garbage, then ask Arrow's memory pool and the C library to return unused pages."""
    gc.collect()
    with contextlib.suppress(Exception):  # an Arrow build without the call, or no Arrow at all
        import pyarrow as pa

        pa.default_memory_pool().release_unused()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)
