"""Declarative automation: dbt models, gold exports and public tables carry an eager condition that also waits for
their inputs' blocking checks to pass (`checked_eager`), the forecasting assets their own eager conditions, and this
sensor (running by default) evaluates them, so a new month in the landing folder flows through to retrained models
and fresh predictions without anyone launching a run, and a month that failed a blocking check goes no further."""

import dagster as dg


def checked_eager() -> dg.AutomationCondition:
    """Eager, but never over a partition whose upstream blocking check failed: a month held back at ingest (or a
    public table that failed its audit) stops what reads it until a new materialization passes."""
    return (dg.AutomationCondition.eager()
            & dg.AutomationCondition.all_deps_blocking_checks_passed()).with_label("eager_after_blocking_checks")


refresh_downstream_sensor = dg.AutomationConditionSensorDefinition(
    "refresh_downstream_sensor",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
    description="Evaluates the eager automation conditions: rebuilds what reads a table that has just changed.",
)


@dg.definitions
def automation_definitions() -> dg.Definitions:
    return dg.Definitions(sensors=[refresh_downstream_sensor])
