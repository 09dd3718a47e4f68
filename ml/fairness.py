"""Fairness audit of a month of hot-spot flags across deprivation deciles.

A forecast that flags the top ``coverage`` share of cells sends attention somewhere. This module asks where, in
terms of the Index of Multiple Deprivation (IMD; English Indices of Deprivation, decile 1 = most deprived 10% of
LSOAs), and whether that allocation is in proportion to the crime that then happened.

Measures, per IMD decile (cells take the decile of their LSOA; cells without a known decile form an "unknown" row
that is reported, never dropped):

* ``share_of_flagged`` vs ``share_of_crime`` and their ratio ``flag_to_crime_ratio``: the "disparate allocation"
  check used in audits of predictive policing: does a group of areas receive a larger share of the flagged
  (patrolled) cells than its share of the crime? Lum & Isaac (2016), "To predict and serve?", Significance 13(5),
  14-19, showed how feedback makes such over-allocation self-reinforcing; Ensign, Friedler, Neville, Scheidegger &
  Venkatasubramanian (2018), "Runaway feedback loops in predictive policing", Proc. FAT* (PMLR 81), 160-171,
  formalise it. A ratio above 1 means the decile gets more flags than its crime warrants.
* ``share_of_crime_<kind>`` / ``flag_to_crime_ratio_<kind>`` for observed counts split by kind (e.g. police-
  discovered vs victim-reported): police-discovered crime partly measures where police already are, so a model can
  look proportionate against all crime while being disproportionate against victim-reported crime.
* ``share_of_population``: an LSOA's population split equally among the study-area cells in it.
* ``pai`` and ``pei_star`` within the decile (its cells alone, the same coverage), as defined in ``ml.metrics``
  (Chainey, Tompson & Uhlig 2008; Joshi et al. 2021): is the forecast as accurate in deprived areas as elsewhere?
* ``calibration`` (sum predicted / sum observed within the decile): over-prediction in one decile is the
  mechanism behind over-allocation.
* ``false_alarm_rate``: flagged cells in the decile that saw no crime, over flagged cells in the decile.

``gate`` turns the table into a pass / fail with reasons for the model card and the promotion decision.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ml import metrics

DECILES = tuple(range(1, 11))
UNKNOWN = "unknown"
IMD_COLUMNS = ("lsoa_code", "imd_decile", "population")
_NO_DECILE = np.iinfo(np.int64).min  # the decile of a cell whose LSOA has none


# ---------------------------------------------------------------------------------------------------- loading


def load_imd(path) -> pd.DataFrame:
    """Read an IMD table (CSV) to ``lsoa_code`` (str), ``imd_decile`` (int 1..10), ``population`` (float).

    Extra columns (as in the simulator's ``landing/reference/areas.csv``) are ignored. Raises ``ValueError``
    naming the file and the missing column, or the first bad row (1-based line number in the file, header = 1).
    """
    path = Path(path)
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError as exc:
        raise ValueError(f"{path}: empty file, expected columns {', '.join(IMD_COLUMNS)}") from exc
    missing = [c for c in IMD_COLUMNS if c not in raw.columns]
    if missing:
        raise ValueError(
            f"{path}: missing column(s) {', '.join(missing)}; found {', '.join(map(str, raw.columns))}"
        )

    codes = raw["lsoa_code"].str.strip()
    for i, code in enumerate(codes):
        if not code:
            raise ValueError(f"{path}: line {i + 2}: empty lsoa_code")
    dup = codes.duplicated()
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        raise ValueError(f"{path}: line {i + 2}: duplicate lsoa_code {codes.iloc[i]!r}")

    dec = pd.to_numeric(raw["imd_decile"].str.strip(), errors="coerce")
    bad = dec.isna() | (dec % 1 != 0) | (dec < 1) | (dec > 10)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValueError(
            f"{path}: line {i + 2}: invalid imd_decile {raw['imd_decile'].iloc[i]!r} (need an integer 1..10)"
        )

    pop = pd.to_numeric(raw["population"].str.strip(), errors="coerce")
    bad = pop.isna() | ~np.isfinite(pop) | (pop < 0)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValueError(
            f"{path}: line {i + 2}: invalid population {raw['population'].iloc[i]!r} (need a number >= 0)"
        )

    return pd.DataFrame(
        {"lsoa_code": codes.astype(object), "imd_decile": dec.astype(int), "population": pop.astype(float)}
    )


# ---------------------------------------------------------------------------------------------------- audit


def _json_safe(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        v = float(v)
        return None if math.isnan(v) or math.isinf(v) else v
    if isinstance(v, np.bool_):
        return bool(v)
    return v


@dataclass
class FairnessAudit:
    """Per-decile table (rows 1..10 then "unknown") and the settings that produced it."""

    table: pd.DataFrame
    coverage: float
    n_cells: int
    n_flagged: int
    total_crime: float
    kinds: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-safe: plain ints / floats / strings, NaN as None."""
        rows = [{k: _json_safe(v) for k, v in r.items()} for r in self.table.to_dict(orient="records")]
        return {
            "coverage": float(self.coverage),
            "n_cells": int(self.n_cells),
            "n_flagged": int(self.n_flagged),
            "total_crime": _json_safe(self.total_crime),
            "kinds": list(self.kinds),
            "deciles": rows,
        }

    def to_markdown(self, digits: int = 3) -> str:
        """A pipe table (decile 1 = most deprived), numbers rounded to ``digits``; NaN shown as "-"."""

        def fmt(v) -> str:
            if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
                return str(int(v))
            if isinstance(v, (float, np.floating)):
                return "-" if math.isnan(v) else f"{float(v):.{digits}f}"
            return str(v)

        cols = list(self.table.columns)
        lines = [
            "| " + " | ".join(cols) + " |",
            "|" + "|".join("---" for _ in cols) + "|",
        ]
        for r in self.table.itertuples(index=False):
            lines.append("| " + " | ".join(fmt(v) for v in r) + " |")
        head = (
            f"IMD decile audit (1 = most deprived): {self.n_flagged} of {self.n_cells} cells flagged "
            f"(coverage {self.coverage:g}), {self.total_crime:g} crimes observed."
        )
        return head + "\n\n" + "\n".join(lines) + "\n"


def _lsoa_index(lsoa: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per cell, the position of its LSOA among the distinct codes (-1 where none is given: None, NaN, pandas'
    NA or blank text), and those codes as text without surrounding spaces. Each distinct value is read once: a
    national month has hundreds of thousands of cells in a few tens of thousands of LSOAs."""
    raw_index, raw = pd.factorize(pd.Series(lsoa, dtype=object), use_na_sentinel=True)
    text = pd.Series([str(v).strip() for v in raw], dtype=object)
    text[text == ""] = None
    index, uniques = pd.factorize(text, use_na_sentinel=True)
    # The blank codes' sentinel (-1) stays -1; so does a cell with no code at all.
    return np.append(index, -1)[raw_index], np.asarray(uniques, dtype=object)


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den > 0 else float("nan")


@dataclass(frozen=True)
class Places:
    """Per cell of an audited month, the IMD decile of its LSOA (``_NO_DECILE`` where none) and its share of the
    LSOA's population: the same for every method audited on those cells, so worked out once (``places``)."""

    cells: np.ndarray
    decile: np.ndarray
    population: np.ndarray


def places(cells: np.ndarray, lsoa: np.ndarray, imd: pd.DataFrame) -> Places:
    """The deciles and population shares of ``cells`` (unique) in LSOAs ``lsoa`` (aligned), from ``imd``
    (``lsoa_code``, ``imd_decile``, ``population``; see ``load_imd``)."""
    cells = np.asarray(cells)
    lsoa = np.asarray(lsoa, dtype=object)
    n = len(cells)
    if cells.shape != (n,) or lsoa.shape != (n,):
        raise ValueError(f"cells and lsoa must have one length, got {cells.shape}, {lsoa.shape}")
    if len(pd.unique(cells)) != n:
        raise ValueError("cells must be unique")
    missing_cols = [c for c in IMD_COLUMNS if c not in imd.columns]
    if missing_cols:
        raise ValueError(f"imd table is missing column(s) {', '.join(missing_cols)}")

    index, uniques = _lsoa_index(lsoa)
    # An LSOA listed twice takes its last row.
    table = imd.assign(lsoa_code=imd["lsoa_code"].astype(str)).drop_duplicates("lsoa_code", keep="last")
    row = pd.Index(table["lsoa_code"]).get_indexer(pd.Index(uniques, dtype=object))
    listed = row >= 0
    decile_of = np.full(len(uniques) + 1, _NO_DECILE, dtype=np.int64)  # the last entry: no LSOA
    decile_of[:-1][listed] = table["imd_decile"].astype(int).to_numpy()[row[listed]]

    # Population: each LSOA's population shared equally among the study-area cells in it.
    cells_in = np.bincount(index[index >= 0], minlength=len(uniques))
    pop_of = np.zeros(len(uniques) + 1)
    pop_of[:-1][listed] = table["population"].astype(float).to_numpy()[row[listed]] / cells_in[listed]
    return Places(cells, decile_of[index], pop_of[index])


def audit(
    cells: np.ndarray,
    lsoa: np.ndarray | None,
    pred: np.ndarray,
    obs: np.ndarray,
    imd: pd.DataFrame | None,
    *,
    coverage: float = 0.05,
    obs_by_kind: dict[str, np.ndarray] | None = None,
    area=None,
    where: Places | None = None,
) -> FairnessAudit:
    """Audit one month: flag the top ``coverage`` share of all cells (``metrics.top_cells``) and compare, per IMD
    decile of the cell's LSOA, the share of flags with the share of observed crime, population and accuracy.

    ``cells``, ``lsoa``, ``pred``, ``obs`` (and every ``obs_by_kind`` array and ``area``) are aligned, one entry
    per cell. ``imd`` has ``lsoa_code``, ``imd_decile``, ``population`` (see ``load_imd``). ``where`` (``places``
    of the same cells) stands in for ``lsoa`` and ``imd`` when several methods are audited on one month.
    """
    cells = np.asarray(cells)
    pred, obs = metrics._as_arrays(pred, obs)
    n = len(pred)
    if cells.shape != (n,):
        raise ValueError(f"cells, lsoa, pred, obs must have one length, got {cells.shape}, {n}")
    if where is None:
        where = places(cells, lsoa, imd)
    elif where.cells.shape != cells.shape or not np.array_equal(where.cells, cells):
        raise ValueError("the places given are not those of the cells audited")
    if area is not None:
        area = np.asarray(area, dtype=float)
        if area.shape != (n,):
            raise ValueError(f"area must have one entry per cell, got {area.shape}")
    kinds: dict[str, np.ndarray] = {}
    for kind, arr in (obs_by_kind or {}).items():
        arr = np.asarray(arr, dtype=float)
        if arr.shape != (n,):
            raise ValueError(f"obs_by_kind[{kind!r}] must have one entry per cell, got {arr.shape}")
        kinds[str(kind)] = arr
    decile, cell_pop = where.decile, where.population

    flagged = np.zeros(n, dtype=bool)
    flagged[metrics.top_cells(pred, coverage)] = True
    n_flag = int(flagged.sum())
    total_crime = float(obs.sum())
    total_pop = float(cell_pop.sum())
    kind_totals = {k: float(a.sum()) for k, a in kinds.items()}

    rows = []
    for d in (*DECILES, UNKNOWN):
        m = decile == (_NO_DECILE if d == UNKNOWN else d)
        k = int(m.sum())
        f = int((m & flagged).sum())
        crime = float(obs[m].sum())
        share_flag = f / n_flag
        share_crime = _ratio(crime, total_crime)
        row = {
            "decile": d,
            "cells": k,
            "flagged_cells": f,
            "share_of_flagged": share_flag,
            "share_of_crime": share_crime,
            "share_of_population": _ratio(float(cell_pop[m].sum()), total_pop),
            "flag_to_crime_ratio": _ratio(share_flag, share_crime)
            if not math.isnan(share_crime)
            else math.nan,
        }
        for kind, arr in kinds.items():
            sc = _ratio(float(arr[m].sum()), kind_totals[kind])
            row[f"share_of_crime_{kind}"] = sc
            row[f"flag_to_crime_ratio_{kind}"] = _ratio(share_flag, sc) if not math.isnan(sc) else math.nan
        if k:
            row["pai"] = metrics.pai(pred[m], obs[m], coverage, None if area is None else area[m])
            row["pei_star"] = metrics.pei_star(pred[m], obs[m], coverage)
        else:
            row["pai"] = row["pei_star"] = math.nan
        row["calibration"] = _ratio(float(pred[m].sum()), crime)
        row["false_alarm_rate"] = _ratio(float((m & flagged & (obs <= 0)).sum()), f)
        rows.append(row)

    table = pd.DataFrame(rows)
    table["decile"] = table["decile"].astype(object)
    return FairnessAudit(
        table=table,
        coverage=coverage,
        n_cells=n,
        n_flagged=n_flag,
        total_crime=total_crime,
        kinds=list(kinds),
    )


# ---------------------------------------------------------------------------------------------------- gate


@dataclass
class GateResult:
    passed: bool
    reasons: list[str]
    worst_decile: int | str | None
    worst_ratio: float

    def to_dict(self) -> dict:
        return {
            "passed": bool(self.passed),
            "reasons": list(self.reasons),
            "worst_decile": _json_safe(self.worst_decile),
            "worst_ratio": _json_safe(self.worst_ratio),
        }


def gate(audit: FairnessAudit, max_ratio: float = 1.5, min_crime_share: float = 0.02) -> GateResult:
    """Fail when any IMD decile (1..10) gets disproportionately many flags.

    * A decile holding at least ``min_crime_share`` of the crime fails when share_of_flagged / share_of_crime >
      ``max_ratio``.
    * A smaller decile (noise would dominate its ratio) fails when its flag share alone exceeds
      ``max_ratio * min_crime_share``, so over-flagging cannot hide in a decile with little crime.
    * No observed crime at all fails: allocation cannot be judged.

    The "unknown" row is not gated (it is not a deprivation group) but stays in the audit table.
    ``worst_decile`` / ``worst_ratio``: the highest ratio among the deciles judged by ratio (None / NaN if none).
    """
    if not audit.total_crime > 0:
        return GateResult(False, ["no observed crime: flag allocation cannot be judged"], None, math.nan)
    reasons: list[str] = []
    worst_decile, worst_ratio = None, math.nan
    floor = max_ratio * min_crime_share
    for r in audit.table.itertuples(index=False):
        if r.decile == UNKNOWN or r.cells == 0:
            continue
        sf, sc = float(r.share_of_flagged), float(r.share_of_crime)
        if sc >= min_crime_share:
            ratio = sf / sc
            if math.isnan(worst_ratio) or ratio > worst_ratio:
                worst_decile, worst_ratio = r.decile, ratio
            if ratio > max_ratio:
                reasons.append(
                    f"decile {r.decile}: {sf:.1%} of flagged cells vs {sc:.1%} of next-month crime, "
                    f"ratio {ratio:.2f} > {max_ratio:.2f}"
                )
        elif sf > floor:
            reasons.append(
                f"decile {r.decile}: {sf:.1%} of flagged cells vs {sc:.1%} of next-month crime "
                f"(below the {min_crime_share:.1%} crime-share floor), flag share above {floor:.1%}"
            )
    return GateResult(not reasons, reasons, worst_decile, float(worst_ratio))
