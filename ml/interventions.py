"""Impact of a local intervention (patrols, CCTV, lighting, closure orders...) on crime counts in its H3 cells.

For each targeted forecast group the evaluation compares the treated area with matched comparison cells of the
same force, before and during the intervention (difference in differences on the rate-ratio scale), checks that
the two moved together before it started (pre-trend), and measures what happened in a ring around the area
(Bowers and Johnson's Weighted Displacement Quotient).

Three windows, all in months before ``start``: the *matching* window (``match_months`` before the baseline), in
which comparison cells are chosen to look like the treated cells; the *baseline* (the last ``baseline_months``),
the "before" of the estimate; and the whole pre-period (both), over which the pre-trend check runs. Keeping the
matching out of the baseline matters twice over: cells chosen because their counts looked like the treated
area's were partly chosen for their luck, which regresses away afterwards (simulated: matched and estimated on
the same 24 months, the rate ratio sat ~0.1 standard errors high and 10.7% of no-effect intervals excluded no
change); and a comparison matched on the very months the check tests agrees with the treated area's slope by
construction (simulated: 2.5% of treated areas on a +3% a month trend of their own were flagged).

The estimator is the quasi-Poisson log-linear model with area-by-period terms, fitted to the area's monthly totals
with the comparison cells' monthly totals as offset: its maximum likelihood estimate is the ratio of ratios
``(A1/C1) / (A0/C0)``, and its variance is ``phi * (f0/A0 + f1/A1)`` with the dispersion ``phi`` estimated from
the Pearson residuals of *months*, not of cells, and ``f`` the inflation of a period's total by the residuals'
lag-1 autocorrelation. Monthly residuals carry the treated area's extra-Poisson noise (the negative-binomial
spread of cell-months, deviations that last a few months) and the comparison's own noise, while force-wide
seasonality and shocks cancel in the ratio. A plain Poisson interval (``phi = 1``) ignores all that and covers a
known effect about 8 times in 10, not 9; cell-clustered errors would have as few clusters as the area has cells
(often one). The interval uses Student's t on ``months - 2`` degrees of freedom because ``phi`` is estimated
from a few dozen months.

Real counts move in ways monthly residuals cannot see: a cell's level can shift for good between baseline and
intervention (a new licensed venue, a moved anonymised map point). So the standard error is calibrated on placebo
cells, the candidates nearest the treated cells that are not in the comparison (summed a few at a time where one
has too few crimes): each is put through the same estimate against the same comparison, and the root mean square
of their z-scores (about 1 where the model is right) widens the interval when above 1. On placebo interventions
on Lancashire's real counts (no effect by construction) the uncalibrated interval excluded no change in 14.9%,
the calibrated one in 11%; on simulated counts, where the model is right, calibration moves coverage by a point
or two.

Any object with ``cells``, ``months``, ``counts`` (group -> cells x months array, NaN where not observed) and
``force`` (one label per cell) serves as the panel: :class:`ml.panel.Panel` does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import h3
import numpy as np
import pandas as pd
from scipy import stats

from ml.cell_months import month_add
from ml.panel import GROUPS

KINDS = ("hot_spot_patrol", "problem_oriented_policing", "cctv", "street_lighting", "closure_order",
         "youth_outreach", "environmental_improvement", "other")
# Comparison cells per treated cell. Five keeps the comparison's own noise to about a fifth of the treated area's
# variance (the interval widens by ~10% at most), while still finding close matches for the hottest cells, which
# sit in the thin upper tail of the level distribution where the sixth or tenth nearest match is already far off.
PER_CELL = 5
MATCH_MONTHS = 12
# Placebo cells per evaluation for calibrating the interval, and the fewest estimates worth calibrating on.
PLACEBOS, MIN_PLACEBOS = 60, 15
BASELINE_MONTHS = 12
# Below this many crimes in the treated area in a period, the log rate ratio is too skewed for its normal interval
# (simulated areas with fewer covered the truth in about four cases in five, not nine in ten).
MIN_CRIMES = 10
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
RESULT_COLUMNS = [
    "intervention_id", "kind", "force", "group", "n_treated_cells", "n_comparison_cells", "n_ring_cells",
    "baseline_months", "during_months", "treated_baseline_mean", "treated_during_mean", "comparison_baseline_mean",
    "comparison_during_mean", "rate_ratio", "rate_ratio_lo", "rate_ratio_hi", "p_value", "prevented_per_month",
    "prevented_per_month_lo", "prevented_per_month_hi", "log_rate_ratio_se", "dispersion", "autocorrelation", "calibration", "placebos",
    "pre_trend_slope",
    "pre_trend_se", "pre_trend_p", "comparison_credible", "ring_baseline_mean", "ring_during_mean", "wdq_success",
    "wdq_buffer", "wdq", "wdq_reading", "note",
]


@dataclass(frozen=True)
class Intervention:
    """One intervention: where (a set of H3 resolution-9 cells of one force), when (first and last month,
    inclusive, 'YYYY-MM'), what and by whom, and which forecast groups it meant to reduce."""

    id: str
    kind: str
    area: frozenset[str]
    force: str
    start: str
    end: str
    agency: str
    groups: tuple[str, ...]
    description: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "area", frozenset(self.area))
        object.__setattr__(self, "groups", tuple(self.groups))
        if not self.id:
            raise ValueError("an intervention needs an id")
        if self.kind not in KINDS:
            raise ValueError(f"intervention {self.id}: unknown kind {self.kind!r}: choose from {', '.join(KINDS)}")
        if not self.area:
            raise ValueError(f"intervention {self.id}: the area has no cells")
        bad = sorted(c for c in self.area if not h3.is_valid_cell(c) or h3.get_resolution(c) != 9)
        if bad:
            raise ValueError(f"intervention {self.id}: not H3 resolution-9 cells: {', '.join(bad[:5])}")
        for name in ("start", "end"):
            if not _MONTH.match(str(getattr(self, name))):
                raise ValueError(f"intervention {self.id}: {name} {getattr(self, name)!r} is not a 'YYYY-MM' month")
        if self.end < self.start:
            raise ValueError(f"intervention {self.id}: ends ({self.end}) before it starts ({self.start})")
        unknown = [g for g in self.groups if g not in GROUPS]
        if not self.groups or unknown:
            raise ValueError(f"intervention {self.id}: target groups {list(self.groups)} must be a non-empty "
                             f"subset of {', '.join(GROUPS)}")


def displacement_ring(area: Iterable[str], k: int = 1) -> frozenset[str]:
    """Cells within ``k`` H3 rings of any cell of the area, the area itself excluded."""
    if k < 1:
        raise ValueError(f"the displacement ring needs k >= 1, not {k}")
    area = frozenset(area)
    return frozenset(c for a in area for c in h3.grid_disk(a, k)) - area


def exclusion_zone(area: Iterable[str], k: int = 1) -> frozenset[str]:
    """The area, its ``k``-ring and every cell adjacent to that ring: no comparison cell may lie here, so that
    neither displacement nor diffusion of benefits leaks into the comparison."""
    return frozenset(c for a in area for c in h3.grid_disk(a, k + 1))


@dataclass
class Comparison:
    """Matched comparison cells (panel row indices and ids) with their standardised match distances."""

    rows: np.ndarray
    cells: np.ndarray
    distance: np.ndarray
    # The next-nearest candidates, not in the comparison: placebo "treated" cells for calibrating the interval.
    placebo_rows: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))


@dataclass
class Windows:
    """Masks over the panel's months: matching window, baseline and intervention months."""

    match: np.ndarray
    baseline: np.ndarray
    during: np.ndarray

    @property
    def pre(self) -> np.ndarray:
        return self.match | self.baseline


def windows(panel, iv: Intervention, match_months: int = MATCH_MONTHS,
            baseline_months: int = BASELINE_MONTHS) -> Windows:
    """The intervention's windows in ``panel.months``; months beyond the panel are left out (an ongoing
    intervention). Each window needs three months at least."""
    months = np.asarray(panel.months)
    base_from = month_add(iv.start, -baseline_months)
    w = Windows((months >= month_add(base_from, -match_months)) & (months < base_from),
                (months >= base_from) & (months < iv.start), (months >= iv.start) & (months <= iv.end))
    if not w.during.any():
        raise ValueError(f"intervention {iv.id}: no month of {iv.start}..{iv.end} is in the panel "
                         f"({months[0]}..{months[-1]})")
    for name, mask in (("matching", w.match), ("baseline", w.baseline)):
        if mask.sum() < 3:
            raise ValueError(f"intervention {iv.id}: {mask.sum()} months of the {name} window in the panel "
                             f"(starting {months[0]}); at least 3 needed")
    return w


def _rows(panel, cells: Iterable[str]) -> np.ndarray:
    index = pd.Index(np.asarray(panel.cells, dtype=object))
    pos = index.get_indexer(list(cells))
    return np.sort(pos[pos >= 0])


def _slopes(y: np.ndarray) -> np.ndarray:
    """OLS slope per row of a (rows x months) array with NaN months left out."""
    t = np.broadcast_to(np.arange(y.shape[1], dtype=float), y.shape)
    ok = ~np.isnan(y)
    n = ok.sum(axis=1)
    tm = np.where(ok, t, 0).sum(axis=1) / np.maximum(n, 1)
    ym = np.where(ok, y, 0).sum(axis=1) / np.maximum(n, 1)
    dt = np.where(ok, t - tm[:, None], 0)
    return (dt * np.where(ok, y - ym[:, None], 0)).sum(axis=1) / np.maximum((dt**2).sum(axis=1), 1e-12)


def select_comparison(panel, iv: Intervention, group: str, *, ring: int = 1, per_cell: int = PER_CELL,
                      match_months: int = MATCH_MONTHS, baseline_months: int = BASELINE_MONTHS,
                      exclude: Iterable[str] = (), placebos: int = PLACEBOS) -> Comparison:
    """``per_cell`` comparison cells for each treated cell: nearest neighbours, without replacement, on the
    mean and slope of ``group`` over the matching window, each standardised over the candidates. Candidates are
    cells of the intervention's force outside its :func:`exclusion_zone` and outside ``exclude`` (e.g. other
    interventions' zones), observed in every pre-period month the treated area was. The ``placebos`` candidates
    nearest the treated cells that are not in the comparison come back as ``placebo_rows``."""
    w = windows(panel, iv, match_months, baseline_months)
    treated = _rows(panel, iv.area)
    if treated.size == 0:
        raise ValueError(f"intervention {iv.id}: none of its cells is in the panel")
    y = np.asarray(panel.counts[group], dtype=float)[:, w.pre]
    banned = _rows(panel, exclusion_zone(iv.area, ring) | frozenset(exclude))
    # Months the treated area's force did not deliver are NaN for every cell of it; any other gap disqualifies.
    seen = ~np.isnan(y[treated]).any(axis=0)
    ok = (np.asarray(panel.force) == iv.force) & ~np.isnan(y[:, seen]).any(axis=1)
    ok[banned] = False
    candidates = np.flatnonzero(ok)
    need = per_cell * treated.size
    if candidates.size < need:
        raise ValueError(f"intervention {iv.id}: {candidates.size} candidate comparison cells in force "
                         f"{iv.force}; {need} needed")
    fit = np.where(seen, y, np.nan)[:, w.match[w.pre]]
    with np.errstate(invalid="ignore"):
        feats = np.column_stack([np.nanmean(fit, axis=1), _slopes(fit)])
    scale = feats[candidates].std(axis=0)
    z = feats / np.where(scale > 0, scale, 1.0)
    taken = np.zeros(candidates.size, dtype=bool)
    rows, dist = [], []
    # The hottest treated cells choose first: they have the fewest close matches.
    for r in treated[np.argsort(-feats[treated, 0], kind="stable")]:
        d = np.linalg.norm(z[candidates] - z[r], axis=1)
        d[taken] = np.inf
        best = np.argsort(d, kind="stable")[:per_cell]
        taken[best] = True
        rows.append(candidates[best])
        dist.append(d[best])
    rows, dist = np.concatenate(rows), np.concatenate(dist)
    order = np.argsort(rows)
    nearest = np.min([np.linalg.norm(z[candidates] - z[r], axis=1) for r in treated], axis=0)
    nearest[taken] = np.inf
    spare = candidates[np.argsort(nearest, kind="stable")[: min(placebos, int((~taken).sum()))]]
    return Comparison(rows[order], np.asarray(panel.cells, dtype=object)[rows[order]], dist[order], spare)


def wdq(a0: float, a1: float, b0: float, b1: float, c0: float, c1: float) -> float:
    """Bowers and Johnson's (2003) Weighted Displacement Quotient, ``[(B1/C1) - (B0/C0)] / [(A1/C1) - (A0/C0)]``,
    for A the treated area, B the buffer (displacement ring), C the control area, 0 before and 1 after. NaN when
    a control count is zero or the treated area did not change relative to the control."""
    if c0 <= 0 or c1 <= 0:
        return float("nan")
    success = a1 / c1 - a0 / c0
    if success == 0:
        return float("nan")
    return (b1 / c1 - b0 / c0) / success


def wdq_reading(value: float, success: float | None = None) -> str:
    """What a WDQ says: below zero, crime moved into the buffer (displacement); above zero, the buffer improved
    too (diffusion of benefits); zero, neither. Bowers and Johnson read it only when the treated area improved
    relative to the control (``success`` below zero), as this function does when ``success`` is given."""
    if not np.isfinite(value):
        return "undefined"
    if success is not None and not success < 0:
        return "no success in the treated area"
    if value < 0:
        return "displacement"
    return "diffusion of benefits" if value > 0 else "no displacement or diffusion"


def _mean(x: np.ndarray, months: np.ndarray) -> float:
    x = x[months & ~np.isnan(x)]
    return float(x.mean()) if x.size else float("nan")


def _series(panel, group: str, rows: np.ndarray) -> np.ndarray:
    return np.asarray(panel.counts[group], dtype=float)[rows].sum(axis=0) if rows.size else None


def pre_trend(a: np.ndarray, c: np.ndarray, *, alpha: float = 0.10) -> dict:
    """Treated minus comparison slope over the pre-period monthly totals ``a`` and ``c``, each as a share of its
    own pre-period mean (so 0.01 is the treated area rising 1% of its level per month faster), with its OLS
    t-test; the comparison is not credible when the slope differs from zero at level ``alpha``."""
    ok = ~(np.isnan(a) | np.isnan(c))
    t = np.arange(a.size, dtype=float)[ok]
    a, c = a[ok], c[ok]
    if t.size < 3 or a.sum() <= 0 or c.sum() <= 0:
        return {"pre_trend_slope": np.nan, "pre_trend_se": np.nan, "pre_trend_p": np.nan,
                "comparison_credible": False}
    res = stats.linregress(t, a / a.mean() - c / c.mean())
    p = float(res.pvalue) if np.isfinite(res.pvalue) else 1.0
    return {"pre_trend_slope": float(res.slope), "pre_trend_se": float(res.stderr), "pre_trend_p": p,
            "comparison_credible": bool(p >= alpha)}


def _lag1(e: np.ndarray, during: np.ndarray) -> float:
    """Lag-1 autocorrelation of the residuals, pairs within one period only, corrected for the downward bias of
    short series (Marriott and Pope: E[r] ~ rho - (1 + 3 rho) / n) and kept in [0, 0.9]."""
    same = during[1:] == during[:-1]
    denominator = (e**2).sum()
    if denominator <= 0:
        return 0.0
    r = float((e[1:] * e[:-1])[same].sum() / denominator)
    n = e.size
    return float(np.clip((r * n + 1) / max(n - 3, 1), 0.0, 0.9))


def _ar1_inflation(rho: float, n: int) -> float:
    """How much AR(1) dependence inflates the variance of a sum of ``n`` months over independent months."""
    lags = np.arange(1, n)
    return float(1 + 2 * ((1 - lags / n) * rho**lags).sum())


def did(a: np.ndarray, c: np.ndarray, during: np.ndarray, *, level: float = 0.90, dispersion: str = "quasi",
        min_crimes: int = MIN_CRIMES, scale: float = 1.0) -> dict:
    """Rate-ratio difference in differences from monthly totals of the treated area ``a`` and the comparison
    ``c`` (months not observed are NaN and left out); ``during`` marks the intervention months, the rest are the
    baseline. Below ``min_crimes`` expected in the treated area in either period the ratio is left undefined.
    ``scale`` multiplies the standard error (the placebo calibration). ``dispersion="poisson"`` fixes phi at 1 (too narrow for real counts; kept as a reference)."""
    ok = ~(np.isnan(a) | np.isnan(c))
    a, c, d = a[ok], c[ok], during[ok]
    a0, a1, c0, c1 = a[~d].sum(), a[d].sum(), c[~d].sum(), c[d].sum()
    n0, n1 = int((~d).sum()), int(d.sum())
    out = {"baseline_months": n0, "during_months": n1, "treated_baseline_mean": a0 / max(n0, 1),
           "treated_during_mean": a1 / max(n1, 1), "note": ""}
    nan = dict.fromkeys(("rate_ratio", "rate_ratio_lo", "rate_ratio_hi", "p_value", "prevented_per_month",
                         "prevented_per_month_lo", "prevented_per_month_hi", "dispersion", "autocorrelation",
                         "log_rate_ratio_se"), np.nan)
    if n0 < 2 or n1 < 1:
        return {**out, **nan, "note": "too few months in the baseline or during the intervention"}
    # Judged on the baseline alone (crimes then, and as many months' worth for the intervention's length), so
    # that whether an estimate is made never depends on the outcome.
    if min(a0, a0 * n1 / n0) < min_crimes:
        return {**out, **nan, "note": f"fewer than {min_crimes} crimes expected in the treated area in a period"}
    if min(a1, c0, c1) <= 0:
        return {**out, **nan, "note": "no crime in the treated area during the intervention or in the comparison"}
    r0, r1 = a0 / c0, a1 / c1
    df = a.size - 2
    inflation = np.ones(2)
    if dispersion == "quasi":
        if df < 1:
            return {**out, **nan, "note": "too few months to estimate the dispersion"}
        # Pearson residuals over each period's mean rather than each month's fitted value: a month in which the
        # comparison happened to have no crime would otherwise divide by zero.
        e = (a - c * np.where(d, r1, r0)) / np.sqrt(np.where(d, a1 / n1, a0 / n0))
        phi = float((e**2).sum() / df)
        rho = _lag1(e, d)
        inflation = np.array([_ar1_inflation(rho, n0), _ar1_inflation(rho, n1)])
        q = stats.t.ppf(0.5 + level / 2, df)
        p_of = lambda z: 2 * stats.t.sf(abs(z), df)  # noqa: E731
    elif dispersion == "poisson":
        phi, rho, q = 1.0, 0.0, stats.norm.ppf(0.5 + level / 2)
        p_of = lambda z: 2 * stats.norm.sf(abs(z))  # noqa: E731
    else:
        raise ValueError(f"dispersion must be 'quasi' or 'poisson', not {dispersion!r}")
    log_rr = np.log(r1 / r0)
    se = scale * np.sqrt(phi * (inflation[0] / a0 + inflation[1] / a1))
    rr, lo, hi = np.exp(log_rr), np.exp(log_rr - q * se), np.exp(log_rr + q * se)
    m1 = a1 / n1
    # Crimes prevented per month: the counterfactual (observed / ratio) minus what was observed.
    return {**out, "rate_ratio": rr, "rate_ratio_lo": lo, "rate_ratio_hi": hi, "p_value": float(p_of(log_rr / se)),
            "prevented_per_month": m1 / rr - m1, "prevented_per_month_lo": m1 / hi - m1,
            "prevented_per_month_hi": m1 / lo - m1, "dispersion": phi, "autocorrelation": rho,
            "log_rate_ratio_se": se}


def calibration(panel, group: str, comp: Comparison, c: np.ndarray, span: np.ndarray, during: np.ndarray,
                **kw) -> tuple[float, int]:
    """How much to widen the interval, from placebo units: ``comp.placebo_rows`` (cells like the treated ones,
    untreated), each on its own or, where one cell has too few crimes for an estimate, summed with the next until
    the baseline holds enough, put through the same estimate against the same comparison. Returns the root mean
    square of their ``log rate ratio / standard error`` (about 1 where the model is right), never below 1, and
    how many placebo estimates it rests on; under ``MIN_PLACEBOS`` the interval is left as the model gives it."""
    counts = np.asarray(panel.counts[group], dtype=float)[:, span]
    base, seen = ~during[span], ~np.isnan(c[span])
    need = kw.get("min_crimes", MIN_CRIMES) * max(1.0, (base & seen).sum() / max((~base & seen).sum(), 1))
    z, unit = [], np.zeros(span.sum())
    for r in comp.placebo_rows:
        unit = unit + counts[r]
        if np.nansum(unit[base & seen]) < need:
            continue
        e = did(unit, c[span], during[span], **kw)
        unit = np.zeros(span.sum())
        if np.isfinite(e["rate_ratio"]):
            z.append(np.log(e["rate_ratio"]) / e["log_rate_ratio_se"])
    if len(z) < MIN_PLACEBOS:
        return 1.0, len(z)
    return max(1.0, float(np.sqrt(np.mean(np.square(z))))), len(z)


def evaluate(panel, iv: Intervention, *, ring: int = 1, per_cell: int = PER_CELL, match_months: int = MATCH_MONTHS,
             baseline_months: int = BASELINE_MONTHS, level: float = 0.90, exclude: Iterable[str] = (),
             dispersion: str = "quasi", min_crimes: int = MIN_CRIMES, placebos: int = PLACEBOS) -> pd.DataFrame:
    """One row per targeted group (columns ``RESULT_COLUMNS``): the rate ratio and crimes prevented per month
    during the intervention against the baseline, with their ``level`` intervals; the pre-trend check; the WDQ
    of the displacement ring of ``ring`` cells. Means are monthly totals over the area's, the comparison's and
    the ring's cells."""
    w = windows(panel, iv, match_months, baseline_months)
    treated = _rows(panel, iv.area)
    buffer = _rows(panel, displacement_ring(iv.area, ring))
    rows = []
    for group in iv.groups:
        comp = select_comparison(panel, iv, group, ring=ring, per_cell=per_cell, match_months=match_months,
                                 baseline_months=baseline_months, exclude=exclude, placebos=placebos)
        a, c = _series(panel, group, treated), _series(panel, group, comp.rows)
        b = _series(panel, group, buffer) if buffer.size else np.full(a.size, np.nan)
        span = w.baseline | w.during
        kw = {"level": level, "dispersion": dispersion, "min_crimes": min_crimes}
        scale, used = calibration(panel, group, comp, c, span, w.during, **kw) if dispersion == "quasi" else (1.0, 0)
        est = did(a[span], c[span], w.during[span], scale=scale, **kw)
        seen = ~(np.isnan(a) | np.isnan(c) | np.isnan(b))
        s0, s1 = w.baseline & seen, w.during & seen
        a0, a1, b0, b1, c0, c1 = (x[s].sum() for x in (a, b, c) for s in (s0, s1))
        success = a1 / c1 - a0 / c0 if c0 > 0 and c1 > 0 else np.nan
        q = wdq(a0, a1, b0, b1, c0, c1)
        rows.append({
            "intervention_id": iv.id, "kind": iv.kind, "force": iv.force, "group": group,
            "n_treated_cells": int(treated.size), "n_comparison_cells": int(comp.rows.size),
            "n_ring_cells": int(buffer.size), **est, "calibration": scale, "placebos": used,
            **pre_trend(a[w.pre], c[w.pre]),
            "comparison_baseline_mean": _mean(c, w.baseline), "comparison_during_mean": _mean(c, w.during),
            "ring_baseline_mean": b0 / max(s0.sum(), 1), "ring_during_mean": b1 / max(s1.sum(), 1),
            "wdq_success": success, "wdq_buffer": b1 / c1 - b0 / c0 if np.isfinite(success) else np.nan,
            "wdq": q, "wdq_reading": wdq_reading(q, success),
        })
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)
