"""crimelake: a lakehouse for mapping, tracking and forecasting concentrations of crime in England and Wales."""

import os as _os

# Arrow's allocator (mimalloc) hands freed pages back to the operating system 10 ms after they are freed, so a
# month's ingest, which frees and allocates again hundreds of megabytes, asks the kernel for fresh zeroed pages
# over and over (on a national month of street rows, about a tenth of its CPU time went to the kernel zeroing
# them). Kept for a few seconds, the pages are reused instead; `memory.release` still hands everything back at once
# between the large steps. mimalloc reads the setting when Arrow loads, so it is set here, before any crimelake
# module imports pyarrow; a value already in the environment is kept.
PURGE_DELAY_MS = "5000"
_os.environ.setdefault("MIMALLOC_PURGE_DELAY", PURGE_DELAY_MS)
