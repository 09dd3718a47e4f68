"""Declarative automation: dbt models, gold exports, public tables and the release carry a condition that rebuilds a
month (or a whole table) when what it reads has changed and waits for their inputs' blocking checks to pass (`checked_eager`), the
forecasting assets their own eager conditions, and this sensor (running by default) evaluates them, so a new month
in the landing folder flows through to the map, retrained models and fresh predictions without anyone launching a
run, and a month that failed a blocking check goes no further.

Runs launched from the UI or by the sensors execute their steps in the run's own process, as `crimelake` commands
do: a process per step would load the definitions again for every step, which on a small machine costs more than
the step itself."""

import dagster as dg

# Assets by grain: partitioned by month, or one table rebuilt whole (seeds, table models and their exports).
MONTHLY_ASSETS = dg.AssetSelection.from_string('partitions:"time"')
WHOLE_TABLE_ASSETS = dg.AssetSelection.from_string('partitions:"none"')


def checked_eager(whole_table: bool = False) -> dg.AutomationCondition:
    """A month is rebuilt once any input of that month has been updated since the month was last requested or
    built, never while an input or the month itself is in progress, and never over a failed blocking check of an
    input: a month held back at ingest (or a public table that failed its audit) stops what reads it until a new
    materialization passes.

    Unlike `AutomationCondition.eager()`, any month counts, not only the latest time window: data.police.uk
    publishes a month weeks after it ends, and a corrected delivery replaces an older month. Nor does a missing
    input month block: a source that delivered nothing for a month is read as empty, as `crimelake run` does.
    Months nothing has updated since this condition first saw them are left alone (a home built by `crimelake
    run` starts with nothing to do).

    Months and whole tables go to separate runs, so the two grains wait for each other:
    - a month ignores the updates of the whole tables it reads (a whole table stands for every month: its rebuild
      would request every month again). The month's own inputs trigger it; a whole table in progress or with a
      failed blocking check still holds it back.
    - a whole table (`whole_table`) is rebuilt after the months it reads: not on a tick that requests one of them,
      but on the first tick after their run, so it is built once, on the new months."""
    updated = dg.AutomationCondition.any_deps_updated()
    if not whole_table:
        updated = updated.ignore(WHOLE_TABLE_ASSETS)
    condition = (
        updated.since_last_handled()
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
        & dg.AutomationCondition.all_deps_blocking_checks_passed()
    )
    if not whole_table:
        return condition.with_label("eager_after_blocking_checks")
    months_first = ~dg.AutomationCondition.any_deps_match(
        dg.AutomationCondition.will_be_requested()).allow(MONTHLY_ASSETS)
    return (condition & months_first).with_label("eager_after_its_months_and_blocking_checks")


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
