"""What each dbt test checks, in words, for the Dagster check it becomes.

Singular tests carry their own descriptions (dbt_project/tests/_singular_tests.yml). A generic test's description
is written from its name and arguments, so every check in the Dagster UI says what it guards and what a failure
means, without a hand-written line per column.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any


def _ref_name(text: str) -> str:
    found = re.search(r"ref\(['\"]([^'\"]+)['\"]\)", str(text))
    return found.group(1) if found else str(text)


def month_column(test: Mapping[str, Any], manifest: Mapping[str, Any]) -> str | None:
    """The month column of the model a generic test is attached to, when that model is rebuilt by month (its
    tests then read the months a run built: dbt_project/macros/checked_months.sql)."""
    node = manifest.get("nodes", {}).get(test.get("attached_node") or "", {})
    config = node.get("config") or {}
    if config.get("materialized") != "incremental":
        return None
    return (config.get("meta") or {}).get("crimelake_month_column")


def describe(test: Mapping[str, Any], manifest: Mapping[str, Any] | None = None) -> str:
    """A sentence for one dbt test node of the manifest (its own description when it has one); with the manifest,
    a test on a model rebuilt by month says it reads the months the run built."""
    if test.get("description"):
        return test["description"]
    meta = test.get("test_metadata") or {}
    name, kw = meta.get("name", test.get("name", "test")), dict(meta.get("kwargs") or {})
    model = _ref_name(kw.pop("model", "")) or "the model"
    col = kw.get("column_name")
    severity = str((test.get("config") or {}).get("severity", "error")).lower()
    tail = " WARN: reported, nothing blocked." if severity == "warn" else (
        " A failure blocks what reads the model.")
    text = {
        "unique": f"Every `{col}` in {model} is unique (a repeat means a row was loaded or joined twice).",
        "not_null": f"`{col}` is never null in {model}.",
        "accepted_values": f"`{col}` in {model} only takes the values {', '.join(map(str, kw.get('values', [])))}.",
        "relationships": f"Every `{col}` in {model} exists as `{kw.get('field')}` in {_ref_name(kw.get('to', ''))}.",
        "unique_combination_of_columns": f"One row per {', '.join(kw.get('combination_of_columns', []))} in {model}.",
        "accepted_range": f"`{col}` in {model} is within the accepted range"
                          + (f" (at least {kw['min_value']})" if "min_value" in kw else "")
                          + (f" (at most {kw['max_value']})" if "max_value" in kw else "") + ".",
        "is_h3_cell": f"`{col}` in {model} is a valid H3 cell index.",
        "within_england_and_wales": f"Every point ({kw.get('lon_column')}, {kw.get('lat_column')}) in {model} lies "
                                    "inside England and Wales.",
        "expression_is_true": f"In every row of {model}: {kw.get('expression', '').strip()}.",
    }.get(name, f"dbt test {name} on {model}" + (f".{col}" if col else "") + ".")
    month = month_column(test, manifest) if manifest is not None else None
    scope = (f" Checked on the months a run built (by `{month}`); a full refresh checks every month."
             if month else "")
    return text + scope + tail
