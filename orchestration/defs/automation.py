"""Declarative automation: dbt models, gold exports and the forecasting assets carry eager conditions, and this
sensor (running by default) evaluates them, so a new month in the landing folder flows through to retrained
models and fresh predictions without anyone launching a run."""

import dagster as dg

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
