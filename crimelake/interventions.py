"""The intervention log, evaluated: each intervention of the bronze log (its latest delivery) resolved to H3 cells
and judged against the released gold counts of its force with ``ml.interventions.evaluate``.

The log names an area three ways (``area_type``): ``h3`` (';'-separated cells), ``lsoa`` (';'-separated LSOA
codes, the cells ``dim_cells`` places in them) or ``geojson`` (a Polygon, MultiPolygon, Feature or
FeatureCollection; the cells whose centres it covers, else the cells of its vertices for an area smaller than a
cell). Every logged intervention gets rows in the result: an estimate per target group, or a row saying why
there is none (unknown kind, an area that resolves to nothing, too few months before it, a force with no data).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import h3
import numpy as np
import pandas as pd
import pyarrow as pa

from crimelake import lake
from crimelake.config import Settings
from ml.cell_months import month_add
from ml.interventions import (
    BASELINE_MONTHS,
    MATCH_MONTHS,
    RESULT_COLUMNS,
    Intervention,
    evaluate,
    exclusion_zone,
)
from ml.panel import GROUPS, Panel

LOG = ("interventions", "log")
EFFECTS = "intervention_effects"
AREA_TYPES = ("h3", "lsoa", "geojson")
LOG_COLUMNS = ["intervention_id", "kind", "area_type", "area", "force", "start_date", "end_date", "agency",
               "target_groups", "description"]
# An intervention with no end date runs on: it is active in every month from its start.
ONGOING = "9999-12"
# Where a record names no valid target group its explanation still needs a row; all crime covers every group.
FALLBACK_GROUP = "all_crime"
STATUS = ("evaluated", "not evaluated")

_INT = {"n_treated_cells", "n_comparison_cells", "n_ring_cells", "baseline_months", "during_months"}
_TEXT = {"intervention_id", "kind", "force", "group", "wdq_reading", "note"}
EFFECTS_SCHEMA = pa.schema(
    [(c, pa.string() if c in _TEXT else pa.int64() if c in _INT else pa.bool_() if c == "comparison_credible"
      else pa.float64()) for c in RESULT_COLUMNS]
    + [("status", pa.string()), ("area_type", pa.string()), ("start_month", pa.string()), ("end_month", pa.string()),
       ("agency", pa.string()), ("description", pa.string()),
       # Lineage: the Delta versions read and the log line the record came from.
       ("gold_counts_version", pa.int64()), ("gold_cells_version", pa.int64()), ("gold_coverage_version", pa.int64()),
       ("bronze_log_version", pa.int64()), ("_source_file", pa.string()), ("_source_line", pa.int64()),
       ("_ingest_run_id", pa.string()), ("evaluated_at", pa.timestamp("us", tz="UTC"))])
REQUIRED = ("intervention_id", "kind", "force", "group", "status", "rate_ratio", "rate_ratio_lo", "rate_ratio_hi",
            "bronze_log_version")


def log_path(settings: Settings):
    return settings.bronze(*LOG)


def effects_path(settings: Settings):
    return settings.gold(EFFECTS)


def read_log(settings: Settings) -> tuple[pd.DataFrame, int | None]:
    """The latest delivery of every intervention (by delivery month, then ingest time, then line) and the log's
    Delta version; an empty frame and None when no log has been ingested."""
    path = log_path(settings)
    if not lake.table_exists(path):
        return pd.DataFrame(columns=LOG_COLUMNS), None
    version = lake.version(path)
    frame = lake.read(path, version=version).to_pandas()
    missing = [c for c in LOG_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: the intervention log lacks columns {', '.join(missing)}")
    order = [c for c in ("month", "_ingested_at", "_source_line") if c in frame.columns]
    frame = frame.sort_values(order, kind="stable") if order else frame
    latest = frame.drop_duplicates("intervention_id", keep="last").sort_values("intervention_id")
    return latest.reset_index(drop=True), version


def to_month(value) -> str | None:
    """'YYYY-MM' of a date, timestamp or ISO text; None for a null."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    text = str(value).strip()
    if not re.match(r"^\d{4}-\d{2}", text):
        raise ValueError(f"{value!r} is not a date (YYYY-MM-DD)")
    return text[:7]


def _at_resolution(cell: str, resolution: int) -> list[str]:
    if not h3.is_valid_cell(cell):
        raise ValueError(f"{cell!r} is not an H3 cell")
    r = h3.get_resolution(cell)
    if r == resolution:
        return [cell]
    return [h3.cell_to_parent(cell, resolution)] if r > resolution else list(h3.cell_to_children(cell, resolution))


def _geometries(doc: dict) -> list[dict]:
    kind = doc.get("type")
    if kind == "FeatureCollection":
        return [g for f in doc.get("features", []) for g in _geometries(f)]
    if kind == "Feature":
        return _geometries(doc.get("geometry") or {})
    if kind in ("Polygon", "MultiPolygon"):
        return [doc]
    raise ValueError(f"a GeoJSON area must be a Polygon or MultiPolygon (or a Feature of one), not {kind!r}")


def resolve_area(area_type: str, area: str, resolution: int, lsoa_cells: dict[str, list[str]]) -> frozenset[str]:
    """The H3 cells at ``resolution`` of one logged area; ValueError with the reason when it cannot be resolved."""
    text = (area or "").strip()
    if not text:
        raise ValueError("the area is empty")
    if area_type == "h3":
        return frozenset(c for tok in text.split(";") if tok.strip() for c in _at_resolution(tok.strip(), resolution))
    if area_type == "lsoa":
        codes = [t.strip() for t in text.split(";") if t.strip()]
        unknown = [c for c in codes if c not in lsoa_cells]
        if unknown:
            raise ValueError(f"no cell of the study area lies in LSOA {', '.join(unknown[:5])}")
        return frozenset(c for code in codes for c in lsoa_cells[code])
    if area_type == "geojson":
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"the GeoJSON area does not parse: {e}") from None
        cells: set[str] = set()
        for geom in _geometries(doc):
            found = h3.geo_to_cells(geom, resolution)
            if not found:  # smaller than a cell: no cell centre falls inside it
                rings = geom["coordinates"] if geom["type"] == "Polygon" else [r for p in geom["coordinates"] for r in p]
                found = {h3.latlng_to_cell(lat, lon, resolution) for lon, lat, *_ in rings[0]}
            cells.update(found)
        return frozenset(cells)
    raise ValueError(f"unknown area_type {area_type!r}: choose from {', '.join(AREA_TYPES)}")


def lsoa_index(cells: pd.DataFrame) -> dict[str, list[str]]:
    """LSOA code -> the cells of ``dim_cells`` in it."""
    named = cells[cells["lsoa_code"].notna()]
    return {str(k): sorted(v.astype(str)) for k, v in named.groupby(named["lsoa_code"].astype(str))["h3_cell"]}


@dataclass
class Logged:
    """One log record: the intervention it describes, or the reason it cannot be one."""

    record: dict
    intervention: Intervention | None
    groups: tuple[str, ...]
    problem: str = ""


def parse(log: pd.DataFrame, cells: pd.DataFrame, resolution: int) -> list[Logged]:
    """Every record of the log as an ``Intervention`` (an ongoing one ends at ``ONGOING``) or with its problem."""
    lsoas = lsoa_index(cells) if "lsoa" in set(log["area_type"].astype(str)) else {}
    out = []
    for rec in log.to_dict("records"):
        tokens = [g.strip() for g in str(rec.get("target_groups") or "").split(";") if g.strip()]
        groups = tuple(g for g in tokens if g in GROUPS) or (FALLBACK_GROUP,)
        try:
            start, end = to_month(rec["start_date"]), to_month(rec["end_date"])
            if start is None:
                raise ValueError("no start date")
            area = resolve_area(str(rec["area_type"]), str(rec["area"] or ""), resolution, lsoas)
            iv = Intervention(id=str(rec["intervention_id"]), kind=str(rec["kind"]), area=area,
                              force=str(rec["force"]), start=start, end=end or ONGOING,
                              agency=str(rec.get("agency") or ""), groups=tokens,
                              description=str(rec.get("description") or ""))
            out.append(Logged(rec, iv, groups))
        except (ValueError, KeyError, TypeError) as e:
            out.append(Logged(rec, None, groups, str(e)))
    return out


def schedule(logged: list[Logged]) -> pd.DataFrame:
    """One row per intervention and cell: h3_cell, intervention_id, force, start_month, end_month."""
    rows = [(c, x.intervention.id, x.intervention.force, x.intervention.start, x.intervention.end)
            for x in logged if x.intervention is not None for c in sorted(x.intervention.area)]
    return pd.DataFrame(rows, columns=["h3_cell", "intervention_id", "force", "start_month", "end_month"])


def load_schedule(settings: Settings, cells: pd.DataFrame) -> pd.DataFrame:
    """``schedule`` of the current log (empty when there is none)."""
    log, _ = read_log(settings)
    return schedule(parse(log, cells, settings.h3_resolution)) if len(log) else schedule([])


def active_mask(sched: pd.DataFrame | None, cells, month: str) -> np.ndarray:
    """Which of ``cells`` lie in an intervention active in ``month``."""
    cells = np.asarray(cells, dtype=object)
    if sched is None or sched.empty:
        return np.zeros(len(cells), dtype=bool)
    on = sched[(sched["start_month"] <= month) & (sched["end_month"] >= month)]
    return pd.Index(on["h3_cell"].unique()).get_indexer(cells) >= 0


def active_matrix(sched: pd.DataFrame | None, cells, months: list[str]) -> np.ndarray:
    """(cells x months) booleans: the cell lies in an intervention active in the month."""
    return np.column_stack([active_mask(sched, cells, m) for m in months]) if len(months) else \
        np.zeros((len(cells), 0), dtype=bool)


@dataclass
class GoldCounts:
    counts: pd.DataFrame
    cells: pd.DataFrame
    coverage: pd.DataFrame | None
    versions: dict[str, int | None]


def read_gold(settings: Settings, forces: list[str] | None = None, groups: tuple[str, ...] | None = None
              ) -> GoldCounts:
    """The released counts (of ``forces`` and ``groups`` only, when given), cells and coverage ledger: the versions
    the models read (crimelake.release). Counts are filtered as they are read: a national table is large."""
    import pyarrow.compute as pc
    from deltalake import DeltaTable

    from crimelake.forecasting import COLUMNS, COVERAGE, gold_version
    from crimelake.release import gold_versions

    released = gold_versions(settings)
    frames, versions = {}, {}
    for name in ("fct_cell_month_counts", "dim_cells", COVERAGE):
        path = settings.gold(name)
        if not lake.table_exists(path):
            if name == COVERAGE:
                frames[name], versions[name] = None, None
                continue
            raise FileNotFoundError(f"gold table {path} is missing: run the pipeline first (crimelake run)")
        versions[name] = gold_version(settings, name, released)
        if name != "fct_cell_month_counts":
            frames[name] = lake.read(path, version=versions[name], columns=COLUMNS.get(name)).to_pandas()
            continue
        wanted = None
        if forces is not None:
            wanted = pc.field("force").isin(sorted(forces))
        if groups is not None:
            in_groups = pc.field("forecast_group").isin(list(groups))
            wanted = in_groups if wanted is None else wanted & in_groups
        dataset = DeltaTable(str(path), version=versions[name]).to_pyarrow_dataset()
        frames[name] = dataset.to_table(columns=COLUMNS[name], filter=wanted).to_pandas()
    return GoldCounts(frames["fct_cell_month_counts"], frames["dim_cells"], frames[COVERAGE], versions)


def _other_zones(iv: Intervention, logged: list[Logged]) -> frozenset[str]:
    """Cells of other interventions of the force active over this one's windows: never comparison cells."""
    first = month_add(iv.start, -(MATCH_MONTHS + BASELINE_MONTHS))
    zones = [exclusion_zone(o.area) for o in (x.intervention for x in logged)
             if o is not None and o.id != iv.id and o.force == iv.force and o.start <= iv.end and o.end >= first]
    return frozenset().union(*zones)


def _row(x: Logged, **values) -> dict:
    rec = x.record
    return {**dict.fromkeys(RESULT_COLUMNS), "intervention_id": str(rec["intervention_id"]),
            "kind": str(rec.get("kind") or ""), "force": str(rec.get("force") or ""),
            "area_type": str(rec.get("area_type") or ""), "agency": rec.get("agency"),
            "description": rec.get("description"), "_source_file": rec.get("_source_file"),
            "_source_line": rec.get("_source_line"), "_ingest_run_id": rec.get("_ingest_run_id"), **values}


def evaluate_log(settings: Settings, groups: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Rows of ``EFFECTS_SCHEMA`` for every logged intervention targeting one of ``groups`` (default all)."""
    log, log_version = read_log(settings)
    if log.empty:  # nothing to evaluate: the gold tables are not read
        return pd.DataFrame(columns=EFFECTS_SCHEMA.names)
    forces = sorted(set(log["force"].dropna().astype(str)))
    gold = read_gold(settings, forces, None if groups is None else tuple(groups))
    logged = parse(log, gold.cells, settings.h3_resolution)
    present = set(gold.counts["force"].astype(str).unique())
    panels: dict[str, Panel] = {}
    rows = []
    for x in logged:
        wanted = [g for g in x.groups if groups is None or g in groups]
        if not wanted:
            continue
        iv = x.intervention
        note = f"not evaluated: {x.problem}" if iv is None else ""
        if iv is not None and iv.force not in present:
            note = f"not evaluated: force {iv.force} has no data in the gold counts"
        if iv is not None and not note:
            try:
                if iv.force not in panels:
                    panels[iv.force] = Panel.from_frames(gold.counts, gold.cells, force=iv.force,
                                                         coverage=gold.coverage, dtype=np.float32)
                one = replace(iv, groups=tuple(wanted))
                est = evaluate(panels[iv.force], one, exclude=_other_zones(iv, logged))
                for r in est.to_dict("records"):
                    rows.append(_row(x, **r, status="evaluated"))
                continue
            except ValueError as e:
                note = f"not evaluated: {e}"
        rows.extend(_row(x, group=g, note=note, status="not evaluated") for g in wanted)
    frame = pd.DataFrame(rows, columns=EFFECTS_SCHEMA.names)
    by_id = {x.record["intervention_id"]: x for x in logged}
    frame["start_month"] = [_month_of(by_id[i], "start") for i in frame["intervention_id"]]
    frame["end_month"] = [_month_of(by_id[i], "end") for i in frame["intervention_id"]]
    frame["gold_counts_version"] = gold.versions["fct_cell_month_counts"]
    frame["gold_cells_version"] = gold.versions["dim_cells"]
    frame["gold_coverage_version"] = gold.versions["coverage"]
    frame["bronze_log_version"] = log_version
    frame["evaluated_at"] = pd.Timestamp(datetime.now(UTC))
    return frame


def _month_of(x: Logged, which: str) -> str | None:
    if x.intervention is not None:
        m = getattr(x.intervention, which)
        return None if m == ONGOING else m
    try:
        return to_month(x.record.get(f"{which}_date"))
    except ValueError:
        return None


def to_arrow(frame: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(frame, schema=EFFECTS_SCHEMA, preserve_index=False)


def write_effects(settings: Settings, frame: pd.DataFrame, groups: tuple[str, ...]) -> lake.WriteResult:
    """Replace the rows of ``groups`` in ``lake/gold/intervention_effects`` with ``frame`` in one commit."""
    from deltalake import DeltaTable, write_deltalake

    bad = set(frame["group"]) - set(groups)
    if bad:
        raise ValueError(f"rows of groups {sorted(bad)} cannot replace groups {list(groups)}")
    path = effects_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    listed = ", ".join(f"'{g}'" for g in groups)
    write_deltalake(str(path), to_arrow(frame), mode="overwrite", predicate=f'"group" IN ({listed})')
    return lake.WriteResult(path, DeltaTable(str(path)).version(), len(frame))


def read_effects(settings: Settings, version: int | None = None) -> pd.DataFrame:
    path = effects_path(settings)
    if not lake.table_exists(path):
        return pd.DataFrame(columns=EFFECTS_SCHEMA.names)
    return lake.read(path, version=version).to_pandas()


def check_effects(frame: pd.DataFrame) -> list[str]:
    """What is wrong with effect rows: required columns missing or null, or an interval that does not contain
    its estimate. Empty when nothing is."""
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        return [f"missing columns: {', '.join(missing)}"]
    problems = []
    for c in ("intervention_id", "kind", "force", "group", "status"):
        if frame[c].isna().any():
            problems.append(f"{int(frame[c].isna().sum())} rows without {c}")
    for est, lo, hi in (("rate_ratio", "rate_ratio_lo", "rate_ratio_hi"),
                        ("prevented_per_month", "prevented_per_month_lo", "prevented_per_month_hi")):
        if est not in frame.columns:
            continue
        e, a, b = (pd.to_numeric(frame[c], errors="coerce") for c in (est, lo, hi))
        bad = e.notna() & ~((a <= e) & (e <= b))
        if bad.any():
            ids = ", ".join(sorted(set(frame.loc[bad, "intervention_id"].astype(str)))[:5])
            problems.append(f"{int(bad.sum())} rows whose {lo}..{hi} does not contain {est} ({ids})")
    evaluated = frame["status"] == "evaluated"
    if (evaluated & frame["rate_ratio"].isna() & frame["note"].fillna("").eq("")).any():
        problems.append("evaluated rows with neither an estimate nor a note saying why")
    return problems

