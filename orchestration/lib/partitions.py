"""Partitions shared by every layer: the month, the grain of data.police.uk."""

import dagster as dg

# data.police.uk's street-level archive starts in December 2010.
monthly_partitions = dg.MonthlyPartitionsDefinition(start_date="2010-12", fmt="%Y-%m")
