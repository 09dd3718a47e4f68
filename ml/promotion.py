"""Which method serves a forecast group: the champion decision, from one backtest's per-month scores.

Every method (the model and each baseline) is scored on the same months and cells, so the current champion's
method is judged on the very months its challenger is, never against a score it earned on other months. The
challenger is the best other method by mean score; it replaces the champion only when it wins a one-sided paired
test across the backtest months at level ``alpha``:

* the Wilcoxon signed-rank test (Wilcoxon 1945, "Individual comparisons by ranking methods", Biometrics Bulletin
  1(6), 80-83) on the non-zero monthly differences, challenger minus champion, when there are at least
  ``min_signed_rank`` of them; scipy computes its p-value exactly for up to 50 differences without tied magnitudes
  and by the normal approximation otherwise;
* below that, the exact sign test (binomial, one half, on the months the challenger won among the non-zero ones).
  At five pairs the signed-rank test's smallest p-value is 1/32, the sign test's too, and the sign test assumes
  nothing about the shape of the differences.

A difference of exactly zero (both methods flagged the same cells) is no evidence either way and is left out, as in
Wilcoxon's own treatment. Without a champion (first run), or when the champion's method fails a gate or is not in
the backtest, the best mean wins outright; the paired test against the runner-up is still recorded.

A method that fails any gate (fairness) or has no defined score cannot become champion. When no method qualifies,
the alias stays where it was (possibly nowhere). Pure logic: no MLflow here.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

METRIC = "pei_star_5"
ALPHA = 0.05
MIN_SIGNED_RANK = 6
# The backtest's name for the XGBoost model (ml.backtest.MODEL); every other method is a baseline.
MODEL = "model"
WILCOXON = "wilcoxon_signed_rank"
SIGN = "exact_sign_test"


@dataclass(frozen=True)
class PairedTest:
    """One-sided paired test that ``challenger`` scores higher than ``champion`` month by month."""

    name: str
    challenger: str
    champion: str
    statistic: float
    p_value: float
    months: list[str]
    n_nonzero: int
    mean_difference: float

    def describe(self) -> str:
        stat = "W+" if self.name == WILCOXON else "months won"
        return (f"{self.name.replace('_', ' ')} of {self.challenger} over {self.champion} on {len(self.months)} "
                f"months ({self.n_nonzero} non-zero differences): {stat} = {self.statistic:g}, "
                f"one-sided p = {self.p_value:.4g}")


@dataclass
class PromotionDecision:
    """Which method holds the champion alias after this backtest, and why.

    ``new_version``: this run's version of ``champion`` (trained on the latest data) takes the alias; False when no
    method qualified and the alias stayed where it was. ``winner`` / ``runner_up`` are the two methods the decision
    weighed (the champion and its challenger, or on a first run the two best means); ``mean_margin`` is the
    winner's mean score minus the runner-up's over the months compared (negative when a champion is kept against a
    challenger whose higher mean did not pass the test)."""

    champion: str | None
    previous: str | None
    new_version: bool
    winner: str | None
    runner_up: str | None
    mean_margin: float
    test: PairedTest | None
    alpha: float
    metric: str
    means: dict[str, float]
    gates: dict[str, dict[str, bool]] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """The champion's method changed (a first champion counts as a change)."""
        return self.champion != self.previous

    @property
    def promoted(self) -> bool:
        """This run's XGBoost model became champion."""
        return self.new_version and self.champion == MODEL

    def to_dict(self) -> dict:
        out = asdict(self)
        out["changed"] = self.changed
        out["months_compared"] = list(self.test.months) if self.test else []
        return _json_safe(out)


def _json_safe(v):
    if isinstance(v, dict):
        return {str(k): _json_safe(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_json_safe(x) for x in v]
    if isinstance(v, float | np.floating):
        return None if math.isnan(v) else float(v)
    if isinstance(v, np.integer):
        return int(v)
    return v


def score_table(per_month: pd.DataFrame, metric: str = METRIC) -> pd.DataFrame:
    """Months x methods of ``metric`` (methods in the order they first appear). Raises ValueError for missing
    columns or a method scored twice in one month."""
    missing = [c for c in ("method", "month", metric) if c not in per_month.columns]
    if missing:
        raise ValueError(f"per-month scores need columns method, month and {metric}; missing {', '.join(missing)}")
    dup = per_month.duplicated(["method", "month"])
    if dup.any():
        r = per_month[dup].iloc[0]
        raise ValueError(f"method {r['method']!r} is scored twice for month {r['month']}")
    order = list(dict.fromkeys(per_month["method"].astype(str)))
    table = per_month.assign(method=per_month["method"].astype(str), month=per_month["month"].astype(str)).pivot(
        index="month", columns="method", values=metric)
    return table.sort_index()[order].astype(float)


def paired_test(challenger: pd.Series, champion: pd.Series, *, min_signed_rank: int = MIN_SIGNED_RANK
                ) -> PairedTest:
    """One-sided paired test of ``challenger > champion`` over the months both scored (index = month)."""
    both = pd.concat([challenger, champion], axis=1, keys=["a", "b"]).dropna()
    d = (both["a"] - both["b"]).to_numpy(float)
    nonzero = d[d != 0]
    months = [str(m) for m in both.index]
    mean = float(d.mean()) if len(d) else math.nan
    names = (str(challenger.name), str(champion.name))
    if len(nonzero) >= max(1, min_signed_rank):
        r = stats.wilcoxon(nonzero, alternative="greater")
        return PairedTest(WILCOXON, *names, float(r.statistic), float(r.pvalue), months, len(nonzero), mean)
    if len(nonzero) == 0:
        # No month tells them apart: no evidence for the challenger.
        return PairedTest(SIGN, *names, 0.0, 1.0, months, 0, mean)
    wins = int((nonzero > 0).sum())
    r = stats.binomtest(wins, len(nonzero), 0.5, alternative="greater")
    return PairedTest(SIGN, *names, float(wins), float(r.pvalue), months, len(nonzero), mean)


def _gate_reasons(gates: dict[str, dict[str, bool]]) -> list[str]:
    names = list(dict.fromkeys(g for per in gates.values() for g in per))
    out = []
    for g in names:
        passed = [m for m, per in gates.items() if per.get(g, True)]
        failed = [m for m, per in gates.items() if not per.get(g, True)]
        out.append(f"gate {g}: " + "; ".join(([f"passed by {', '.join(passed)}"] if passed else [])
                                              + ([f"failed by {', '.join(failed)}"] if failed else [])))
    return out


def decide(per_month: pd.DataFrame, previous: str | None, *, gates: dict[str, dict[str, bool]] | None = None,
           metric: str = METRIC, alpha: float = ALPHA, min_signed_rank: int = MIN_SIGNED_RANK) -> PromotionDecision:
    """The champion after a backtest whose per-month scores are ``per_month`` (columns method, month, ``metric``;
    higher is better), given the method of the current champion (``previous``, None on a first run).

    ``gates`` maps a method to its gates ({"fairness": passed}); a method with a failed gate cannot become
    champion, a method absent from ``gates`` has none."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
    gates = {str(m): dict(g) for m, g in (gates or {}).items()}
    table = score_table(per_month, metric)
    means = {m: float(table[m].mean()) for m in table.columns}
    reasons = _gate_reasons(gates)

    def failed_gates(m: str) -> list[str]:
        return [g for g, ok in gates.get(m, {}).items() if not ok]

    eligible = [m for m in table.columns if not failed_gates(m) and not math.isnan(means[m])]
    base = dict(alpha=alpha, metric=metric, means=means, gates=gates)
    if not eligible:
        reasons.append(f"no method passed every gate with a defined {metric}: "
                       + (f"the champion alias stays on the current {previous} version" if previous
                          else "the group has no champion"))
        return PromotionDecision(previous, previous, False, None, None, math.nan, None, reasons=reasons, **base)
    # Best mean first; on a tie the current champion, then the backtest's order.
    ranked = sorted(eligible, key=lambda m: (-means[m], m != previous, list(table.columns).index(m)))
    best = ranked[0]

    if previous in eligible:
        challenger = best if best != previous else (ranked[1] if len(ranked) > 1 else None)
        if challenger is None:
            reasons.append(f"{previous} stays champion: no other method passed every gate")
            return PromotionDecision(previous, previous, True, previous, None, math.nan, None, reasons=reasons,
                                     **base)
        test = paired_test(table[challenger], table[previous], min_signed_rank=min_signed_rank)
        won = test.p_value < alpha and test.mean_difference > 0
        winner, runner_up = (challenger, previous) if won else (previous, challenger)
        margin = test.mean_difference if won else -test.mean_difference
        if won:
            reasons.append(f"{challenger} replaces {previous} as champion: mean {metric} {means[challenger]:.4f} vs "
                           f"{means[previous]:.4f}, margin {margin:+.4f}; {test.describe()} < {alpha:g}")
        else:
            reasons.append(f"{previous} stays champion against {challenger}: mean {metric} {means[previous]:.4f} vs "
                           f"{means[challenger]:.4f}, margin {margin:+.4f}; {test.describe()}, not below {alpha:g}")
        return PromotionDecision(winner, previous, True, winner, runner_up, margin, test, reasons=reasons, **base)

    if previous is None:
        reasons.append(f"no current champion: the best mean {metric} wins outright")
    elif previous not in table.columns:
        reasons.append(f"the champion's method {previous} is not in this backtest: the best mean wins outright")
    else:
        why = (f"failed gate {', '.join(failed_gates(previous))}" if failed_gates(previous)
               else f"has no defined {metric}")
        reasons.append(f"the champion's method {previous} {why}: the best mean wins outright")
    runner_up = ranked[1] if len(ranked) > 1 else None
    test = paired_test(table[best], table[runner_up], min_signed_rank=min_signed_rank) if runner_up else None
    margin = test.mean_difference if test else math.nan
    reasons.append(f"{best} becomes champion: mean {metric} {means[best]:.4f}"
                   + (f" vs runner-up {runner_up} {means[runner_up]:.4f}, margin {margin:+.4f} ({test.describe()}; "
                      "recorded, not required)" if test else ", the only method that qualifies"))
    return PromotionDecision(best, previous, True, best, runner_up, margin, test, reasons=reasons, **base)
