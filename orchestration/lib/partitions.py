"""Partitions shared by every layer: the month, the grain of data.police.uk.

The monthly partitions run from the first month that has landed to the last complete month, so the Dagster UI
shows the months the lake can hold, not every month since data.police.uk began (December 2010). The first month
is read when the definitions load: a month landed earlier than it later is taken in when the code location reloads
(every `crimelake` command loads the definitions afresh; the Dagster UI's Deployment page reloads them), and the
landing sensor says so meanwhile. `CRIMELAKE_FIRST_MONTH` fixes the first month instead, for a deployment that
expects older history to arrive.
"""

from __future__ import annotations

import os
from datetime import date

import dagster as dg

from crimelake.config import Settings
from crimelake.ingest.landing import is_month


def last_complete_month(today: date | None = None) -> str:
    today = today or date.today()
    n = today.year * 12 + today.month - 2
    return f"{n // 12:04d}-{n % 12 + 1:02d}"


def landed_month_folders(settings: Settings) -> list[str]:
    """Every month folder of every source in the landing folder, in order (the reference folder holds none)."""
    landing = settings.landing
    if not landing.is_dir():
        return []
    months = {m.name for source in landing.iterdir() if source.is_dir()
              for m in source.iterdir() if m.is_dir() and is_month(m.name)}
    return sorted(months)


def first_month(settings: Settings | None = None) -> str:
    """`CRIMELAKE_FIRST_MONTH` if set, else the earliest landed month, else the last complete month."""
    fixed = os.environ.get("CRIMELAKE_FIRST_MONTH", "").strip()
    if fixed:
        if not is_month(fixed):
            raise ValueError(f"CRIMELAKE_FIRST_MONTH must be a month as YYYY-MM, got {fixed!r}")
        return fixed
    landed = landed_month_folders(settings or Settings.from_env())
    return min(landed[0], last_complete_month()) if landed else last_complete_month()


monthly_partitions = dg.MonthlyPartitionsDefinition(start_date=first_month(), fmt="%Y-%m")


def run_months(context: dg.AssetExecutionContext) -> tuple[str, str] | None:
    """The first and last month of the step's partition range, or, for an unpartitioned step, of the run's (from
    its tags); None for a run without months."""
    if context.has_partition_key_range:
        keys = context.partition_key_range
        return keys.start, keys.end
    tags = context.run.tags
    first = tags.get("dagster/asset_partition_range_start") or tags.get("dagster/partition")
    last = tags.get("dagster/asset_partition_range_end") or first
    return (first, last) if first else None
