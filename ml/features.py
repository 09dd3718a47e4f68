"""Per-cell features for forecasting month ``t`` at horizon ``h`` from months ``<= t - h`` only.

The horizon is how many months the target lies beyond the last complete month: data.police.uk publishes a month
some weeks after it ends, so a force that has only that source knows month t - 2 when it plans month t (h = 2).
Every feature reads the count history through ``counts[:, :t - h + 1]`` (or context restricted the same way), so no
value from month ``t - h + 1`` or later can leak in; only the calendar terms describe month ``t`` itself, which is
known in advance. ``tests/test_ml_backtest.py`` and ``tests/test_horizon.py`` check this by perturbing the future.
Short histories and months the panel did not observe (a force-month not delivered, or delivered in part) give NaN
lags rather than zeros, which the gradient-boosted model treats as missing; means and weighted means are taken over
the observed months only, and neighbourhood sums stand each unknown neighbour in by its own smoothed history.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.panel import Panel

# data.police.uk outcome labels that mean the case closed without anyone being brought to account.
UNRESOLVED_OUTCOMES = ("Investigation complete; no suspect identified", "Unable to prosecute suspect")
INDICATOR_COLUMNS = (
    "council_reports",
    "council_reports_environmental",
    "council_reports_nuisance",
    "council_reports_personal",
    "children_in_need_referrals",
    "child_protection_plans_started",
    "looked_after_children_started",
    "early_help_assessments",
    "social_care_values_suppressed",
)
STOP_SEARCH_COLUMNS = ("searches", "searches_for_weapons", "arrests")
LAGS = (1, 2, 3, 12)
WINDOWS = (3, 6, 12)
# Months of area indicator features kept per panel (Context.indicator_features), shared by the forecast groups.
INDICATOR_MONTHS_KEPT = 16


def _quarter_before(month: str) -> str:
    """The last quarter that ended before ``month`` starts: the quarter preceding the one containing it."""
    y, m = int(month[:4]), int(month[5:7])
    q = (m - 1) // 3  # 0-based quarter containing the month, so q is the 1-based previous quarter
    return f"{y - 1}-Q4" if q == 0 else f"{y}-Q{q}"


def _cell_month_matrix(
    frame: pd.DataFrame, panel: Panel, month_col: str, value_cols
) -> dict[str, np.ndarray]:
    """Pivot long (cell, month) rows onto the panel grid. A month absent from the source entirely is unknown
    (NaN); a cell without a row in a month the source covers had none (0)."""
    cells = pd.Index(panel.cells)
    months = pd.Index(panel.months)
    covered = np.isin(panel.months, frame[month_col].unique())
    frame = frame[frame["h3_cell"].isin(cells) & frame[month_col].isin(months)]
    row, col = cells.get_indexer(frame["h3_cell"]), months.get_indexer(frame[month_col])
    out = {}
    for c in value_cols:
        m = np.zeros((panel.n_cells, panel.n_months), dtype=np.float32)  # whole counts: exact in single precision
        np.add.at(m, (row, col), frame[c].fillna(0).to_numpy(float))
        m[:, ~covered] = np.nan
        out[c] = m
    return out


@dataclass
class Context:
    """Non-crime context in long form, joined onto a panel's cells when features are built.

    ``indicators``: ``fct_area_quarter_indicators`` (LSOA x quarter); ``stop_search``:
    ``fct_stop_search_cell_months``; ``outcomes``: per (h3_cell, outcome_month) counts of all outcomes and of
    unresolved ones; ``cell_lsoa``: h3_cell -> lsoa_code from ``dim_cells``. Any part may be empty.
    """

    indicators: pd.DataFrame
    stop_search: pd.DataFrame
    outcomes: pd.DataFrame
    cell_lsoa: pd.Series

    @classmethod
    def from_frames(cls, indicators=None, stop_search=None, outcomes=None, cells=None) -> Context:
        indicators = pd.DataFrame(columns=["lsoa_code", "quarter"]) if indicators is None else indicators
        keep = ["lsoa_code", "quarter", *[c for c in INDICATOR_COLUMNS if c in indicators.columns]]
        ind = indicators[keep].copy()
        for c in keep[2:]:
            ind[c] = pd.to_numeric(ind[c], errors="coerce").astype(float)  # suppressed (null) stays NaN
        if stop_search is None:
            stop_search = pd.DataFrame(columns=["h3_cell", "month", *STOP_SEARCH_COLUMNS])
        ss = stop_search[["h3_cell", "month", *STOP_SEARCH_COLUMNS]]
        ss = ss.groupby(["h3_cell", "month"], as_index=False)[list(STOP_SEARCH_COLUMNS)].sum()
        if outcomes is None:
            outcomes = pd.DataFrame(columns=["h3_cell", "outcome_month", "outcome_type"])
        out = outcomes.dropna(subset=["h3_cell", "outcome_month"])
        out = (
            out.assign(total=1.0, unresolved=out["outcome_type"].isin(UNRESOLVED_OUTCOMES).astype(float))
            .groupby(["h3_cell", "outcome_month"], as_index=False)[["total", "unresolved"]]
            .sum()
        )
        if cells is None:
            lsoa = pd.Series(dtype=object)
        else:
            lsoa = cells.drop_duplicates("h3_cell").set_index("h3_cell")["lsoa_code"]
        return cls(indicators=ind, stop_search=ss, outcomes=out, cell_lsoa=lsoa)

    def aligned(self, panel: Panel) -> dict:
        """Context on the panel's grid, built once per panel and context."""
        cache = panel.cache()
        key = ("context", id(self))
        if key not in cache:
            ss = _cell_month_matrix(self.stop_search, panel, "month", STOP_SEARCH_COLUMNS)
            oc = _cell_month_matrix(self.outcomes, panel, "outcome_month", ("total", "unresolved"))
            lsoa = pd.Series(panel.cells).map(self.cell_lsoa)
            lsoa = lsoa.where(lsoa.notna(), pd.Series(panel.lsoa_code))
            # Holding the context itself keeps it alive, so its id cannot be reused by another context.
            cache[key] = {"stop_search": ss, "outcomes": oc, "lsoa": lsoa.to_numpy(), "owner": self}
        return cache[key]

    def lsoa_before(self, panel: Panel, t: int) -> np.ndarray:
        """Per cell, the LSOA the features of month ``t`` may use: none where it was first named at ``t`` or later."""
        return np.where(panel.lsoa_named_before(t), self.aligned(panel)["lsoa"], None).astype(object)

    def indicator_features(self, panel: Panel, t: int) -> pd.DataFrame:
        """Area indicators of the latest quarter that ended before month ``t`` (per cell, via its LSOA). The same
        for every forecast group: worked out once per panel, context and month (the frame returned is shared:
        copy it before changing it)."""
        kept: OrderedDict = panel.cache().setdefault(("indicator_features", id(self)), OrderedDict())
        if t not in kept or kept[t][0] is not self:
            # Kept in single precision, which is what build_features returns them in (about 11 MB a month
            # nationally), held with the context itself so that its id is not another context's, and only for the
            # months used last: a retrain reads 14 or so, the same for every group; a first build reads about 27
            # in turn, which would hold some 300 MB nationally for nothing.
            kept[t] = (self, self._indicator_features(panel, t).astype(np.float32))
            while len(kept) > INDICATOR_MONTHS_KEPT:
                kept.popitem(last=False)
        kept.move_to_end(t)
        return kept[t][1]

    def _indicator_features(self, panel: Panel, t: int) -> pd.DataFrame:
        cols = [c for c in self.indicators.columns if c not in ("lsoa_code", "quarter")]
        quarters = sorted(
            q
            for q in self.indicators["quarter"].dropna().unique()
            if q <= _quarter_before(panel.month_label(t))
        )
        lsoa = self.lsoa_before(panel, t)
        if not quarters or not cols:
            return pd.DataFrame(np.nan, index=range(panel.n_cells), columns=[f"area_{c}" for c in cols])
        latest = self.indicators[self.indicators["quarter"] == quarters[-1]]
        latest = latest.groupby("lsoa_code")[cols].sum(min_count=1)
        joined = latest.reindex(lsoa).reset_index(drop=True)
        return joined.add_prefix("area_")


def _lag(hist: np.ndarray, k: int) -> np.ndarray:
    return hist[:, -k] if hist.shape[1] >= k else np.full(hist.shape[0], np.nan)


def _window_mean(hist: np.ndarray, k: int) -> np.ndarray:
    """Per row, the mean of the known (not NaN) values among the last ``k`` columns; NaN where none is known."""
    return _window_means(hist, (k,))[k]


def _window_means(hist: np.ndarray, windows: tuple[int, ...]) -> dict[int, np.ndarray]:
    """``_window_mean`` for several windows from one pass over the last ``max(windows)`` columns: each window's
    known values summed as a suffix of one running sum. Counts are whole numbers, which single precision sums
    exactly (below 2**24), so the order of the additions does not change a mean: the means are ``np.nanmean``'s, in about
    three fifths of its time on a national panel (it copies each window, and reads the window across the rows)."""
    if hist.shape[1] == 0:
        return {k: np.full(hist.shape[0], np.nan) for k in windows}
    # Month by month, latest first, each month one contiguous row: the running sums add whole rows at a time.
    recent = np.ascontiguousarray(hist[:, -max(windows):].T)
    if recent.dtype.kind != "f":  # a mean is a float, whatever it is a mean of
        recent = recent.astype(np.float64)
    want: dict[int, list[int]] = {}
    for k in windows:
        want.setdefault(min(k, len(recent)), []).append(k)
    total = np.zeros(recent.shape[1], dtype=recent.dtype)
    seen = np.zeros(recent.shape[1], dtype=np.int32)
    out = {}
    for n in range(1, len(recent) + 1):
        month = recent[-n]
        known = ~np.isnan(month)
        total += np.where(known, month, 0)
        seen += known
        if n in want:
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = np.where(seen > 0, total / seen, np.nan).astype(recent.dtype, copy=False)
                out.update(dict.fromkeys(want[n], mean))
    return {k: out[k] for k in windows}


# The exponentially weighted mean's half-life, and how far back it reads: a month 24 months old weighs 0.5 ** 12 of
# the latest, so the months before hold less than 0.03% of the weight, and each feature month costs the same however
# long the history (its cost grew with every month the lake held).
EWMA_HALF_LIFE = 2.0
EWMA_MONTHS = 24


def recency_weights(months: int, half_life: float) -> np.ndarray:
    """The weight of each of ``months`` columns, oldest first, halving every ``half_life`` months back from the latest
    (which weighs 1)."""
    return 0.5 ** (np.arange(months)[::-1] / half_life)


def ewma(hist: np.ndarray, half_life: float = EWMA_HALF_LIFE, months: int = EWMA_MONTHS) -> np.ndarray:
    """Per row, the exponentially weighted mean of the last ``months`` columns (half-life ``half_life``), over the
    known ones, weights renormalised; NaN where none is known."""
    recent = hist[:, -months:]
    return nan_weighted_mean(recent, recency_weights(recent.shape[1], half_life).astype(recent.dtype))


def nan_weighted_mean(hist: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per row, the weighted mean over the non-NaN columns, weights renormalised; NaN where no column is known."""
    known = ~np.isnan(hist)
    if known.all():
        return hist @ (weights / weights.sum())
    num = np.where(known, hist, 0) @ weights
    den = known.astype(weights.dtype) @ weights
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)


def ring_sum(ring, values: np.ndarray, fill: np.ndarray | None = None) -> np.ndarray:
    """Sum over each cell's ring of ``values``; an unknown (NaN) neighbour counts as its own ``fill`` value (the
    neighbour's smoothed observed history, see ``build_features``), or 0 when it has none, so a ring half in a
    missing force-month is not read as half the crime.

    A cell's sum depends on its neighbours alone, never on which other cells the panel holds: a cell first seen
    later (all zeros or unknown before) adds nothing, which keeps a backtest origin's features independent of the
    cells that appear after it.
    """
    known = ~np.isnan(values)
    if known.all():
        return ring @ values
    stand_in = 0.0 if fill is None else np.nan_to_num(fill, nan=0.0)
    return ring @ np.where(known, values, stand_in)


def cell_index(panel: Panel) -> pd.Index:
    """The panel's cells as the index of a feature frame: built once per panel (an Index is immutable, so every
    frame may share it) rather than from a third of a million strings for each feature month."""
    cache = panel.cache()
    if "cell_index" not in cache:
        cache["cell_index"] = pd.Index(panel.cells, name="h3_cell")
    return cache["cell_index"]


def data_cut(t: int, horizon: int) -> int:
    """The first month index a forecast of month ``t`` at ``horizon`` may not read: features see columns before it."""
    if horizon < 1:
        raise ValueError(f"horizon must be at least 1 month, got {horizon}")
    return t - horizon + 1


def build_features(panel: Panel, group: str, t: int, context: Context | None = None,
                   horizon: int = 1) -> pd.DataFrame:
    """One row per cell (in ``panel.cells`` order) of features for forecasting month index ``t`` from the months
    before ``t - horizon + 1`` (``t`` may lie up to ``horizon - 1`` months beyond the panel).

    Own history: lags 1, 2, 3, 12; means over 3, 6, 12 months; an exponentially weighted mean (half-life 2, over 24 months);
    the share of the last 12 months with any crime. Neighbourhood: ring-1 and ring-2 sums at lag 1 and over 3
    months. Other forecast groups: lag 1 and 3-month mean. Calendar: month-of-year sine and cosine of month t
    (known in advance). Cell area. With ``context``: area indicators of the last quarter that ended before month
    t (suppressed values NaN), stop and search at lag 1 and over 3 months, and the share of the cell's outcomes
    in the last 3 months that closed unresolved. Lags and windows count back from the last month read (lag 1 is
    month ``t - horizon``), and "before month t" above means before that cut.
    """
    counts = panel.group_counts(group)
    target, t = t, data_cut(t, horizon)
    if not 1 <= t <= panel.n_months:
        raise ValueError(f"month index {target} at horizon {horizon} needs 1 <= {target} - {horizon} + 1 <= "
                         f"{panel.n_months} (at least one earlier month)")
    hist = counts[:, :t]
    f: dict[str, np.ndarray] = {}
    for k in LAGS:
        f[f"lag_{k}"] = _lag(hist, k)
    for k, mean in _window_means(hist, WINDOWS).items():
        f[f"mean_{k}"] = mean
    f["ewma_2"] = ewma(hist)
    recent = hist[:, -12:]
    f["nonzero_share_12"] = _window_mean(np.where(np.isnan(recent), np.nan, recent > 0), 12)

    lag1, mean3 = hist[:, -1], f["mean_3"]
    for name, ring in (("ring1", panel.ring1), ("ring2", panel.ring2)):
        f[f"{name}_lag_1"] = ring_sum(ring, lag1, f["ewma_2"])
        f[f"{name}_mean_3"] = ring_sum(ring, mean3, f["ewma_2"])
    for other in panel.groups:
        if other != group:
            oh = panel.counts[other][:, :t]
            f[f"{other}_lag_1"] = oh[:, -1]
            f[f"{other}_mean_3"] = _window_mean(oh, 3)

    month_of_year = int(panel.month_label(target)[5:7])
    angle = 2 * np.pi * (month_of_year - 1) / 12
    f["month_sin"] = np.full(panel.n_cells, np.sin(angle))
    f["month_cos"] = np.full(panel.n_cells, np.cos(angle))
    f["area_km2"] = panel.area_km2
    frame = pd.DataFrame(f)

    if context is not None:
        al = context.aligned(panel)
        extra: dict[str, np.ndarray] = {}
        for c, m in al["stop_search"].items():
            past = m[:, :t]
            extra[f"ss_{c}_lag_1"] = past[:, -1]
            extra[f"ss_{c}_mean_3"] = _window_mean(past, 3)
        total = np.nansum(al["outcomes"]["total"][:, max(0, t - 3) : t], axis=1)
        unresolved = np.nansum(al["outcomes"]["unresolved"][:, max(0, t - 3) : t], axis=1)
        extra["outcomes_3"] = total
        with np.errstate(invalid="ignore", divide="ignore"):
            extra["outcomes_unresolved_share_3"] = np.where(total > 0, unresolved / total, np.nan)
        frame = pd.concat([frame, pd.DataFrame(extra), context.indicator_features(panel, t)], axis=1)
    frame.index = cell_index(panel)
    # Single precision is what the trees split on anyway, and halves the memory of a backtest's cached rows.
    return frame.astype(np.float32)
