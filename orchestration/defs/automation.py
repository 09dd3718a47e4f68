"""Declarative automation: dbt models, gold exports, public tables and the release carry a condition that rebuilds a
month when what it reads has changed and waits for their inputs' blocking checks to pass (`checked_eager`), the
forecasting assets their own eager conditions, and this sensor (running by default) evaluates them, so a new month
in the landing folder flows through to the map, retrained models and fresh predictions without anyone launching a
run, and a month that failed a blocking check goes no further.

Runs launched from the UI or by the sensors execute their steps in the run's own process, as `crimelake` commands
do: a process per step would load the definitions again for every step, which on a small machine costs more than
the step itself."""

import dagster as dg


def checked_eager(ignore_updates_of: dg.AssetSelection | None = None) -> dg.AutomationCondition:
    """A month is rebuilt once any input of that month has been updated since the month was last requested or
    built, never while an input or the month itself is in progress, and never over a failed blocking check of an
    input: a month held back at ingest (or a public table that failed its audit) stops what reads it until a new
    materialization passes.

    Unlike `AutomationCondition.eager()`, any month counts, not only the latest time window: data.police.uk
    publishes a month weeks after it ends, and a corrected delivery replaces an older month. Nor does a missing
    input month block: a source that delivered nothing for a month is read as empty, as `crimelake run` does.
    Months nothing has updated since this condition first saw them are left alone (a home built by `crimelake
    run` starts with nothing to do).

    An update of a dependency in `ignore_updates_of` triggers nothing (it still must not be in progress, and its
    blocking checks must pass): a whole table a monthly asset reads maps to every month, so its rebuild would
    otherwise request every month again."""
    updated = dg.AutomationCondition.any_deps_updated()
    if ignore_updates_of is not None:
        updated = updated.ignore(ignore_updates_of)
    return (
        updated.since_last_handled()
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
        & dg.AutomationCondition.all_deps_blocking_checks_passed()
    ).with_label("eager_after_blocking_checks")


refresh_downstream_sensor = dg.AutomationConditionSensorDefinition(
    "refresh_downstream_sensor",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Evaluates the automation conditions: rebuilds the months of what reads a table that has just "
                "changed.",
)


@dg.definitions
def automation_definitions() -> dg.Definitions:
    return dg.Definitions(sensors=[refresh_downstream_sensor], executor=dg.in_process_executor)
