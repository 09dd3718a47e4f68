"""The model card logged with every model version, and the PAI-by-coverage chart beside it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ml.promotion import PromotionDecision


def pai_chart(summary: pd.DataFrame, path: Path) -> None:
    """PAI at 1, 5 and 10% of cells per method (backtest means), as a PNG for the model run's artifacts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    coverages = [1, 5, 10]
    for method, row in summary.iterrows():
        ax.plot(coverages, [row.get(f"pai_{c}") for c in coverages], marker="o", label=str(method),
                linewidth=2.5 if method == "model" else 1.2)
    ax.set_xlabel("share of cells flagged (%)")
    ax.set_ylabel("PAI")
    ax.set_title("Predictive Accuracy Index by coverage (backtest mean)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def model_card(*, group: str, scope: str, months: list[str], summary: pd.DataFrame, decision: PromotionDecision,
               trained, dataset, fairness=None, fairness_gate=None) -> str:
    """The model card logged with every version: use and misuse, data, metrics against baselines, fairness."""
    cols = ["pai_1", "pai_5", "pai_10", "pei_star_1", "pei_star_5", "pei_star_10", "hit_rate_5", "deviance",
            "calibration"] + [c for c in ("coverage_90",) if c in summary.columns]
    rows = ["| method | " + " | ".join(cols) + " |", "| --- |" + " ---: |" * len(cols)]
    for method, r in summary[cols].iterrows():
        rows.append(f"| {method} | " + " | ".join("" if pd.isna(v) else f"{v:.3f}" for v in r) + " |")
    fair = (fairness.to_markdown() + "\n\nGate: " + ("passed" if fairness_gate.passed else "failed") + ". "
            + "; ".join(fairness_gate.reasons)) if fairness is not None else (
        "No deprivation table was available (landing/reference/imd.csv), so no fairness audit was run.")
    return f"""# Model card: crimelake-hotspots-{group}

## Intended use
Rank the H3 cells of the study area ({scope}) by expected {group} incidents next month, so that
analysts and neighbourhood teams can plan patrols, problem-solving and prevention at places. Read it beside the
baselines below and the analyst's local knowledge.

## Misuse
Not for decisions about individuals, not as evidence of anyone's guilt, not to justify stop and search. Where
police-discovered offences (drugs, possession of weapons, public order) drive a forecast, more patrols produce
more records and a feedback loop; the fairness table below shows flag shares against crime shares by
deprivation decile.

## Data and period
Training table {dataset.name} (Delta version {dataset.delta_version}, {dataset.table_uri}); model trained on
{trained.train_months[0]}..{trained.train_months[-1]} ({trained.n_rows:,} cell-months); backtest months
{months[0]}..{months[-1]}, rolling origin, {trained.horizon} month(s) ahead of the last complete month (features read
data up to month t - {trained.horizon} for target month t).

## Metrics against the baselines (backtest means)
{chr(10).join(rows)}

## Champion
{f"Champion: {decision.champion}" if decision.champion else "No champion"}{
    "" if decision.new_version else " (the alias did not move)"}: {"; ".join(decision.reasons)}.

## Fairness (last backtest month, flags at 5% of cells, by IMD decile; 1 = most deprived)
{fair}

## Known limitations
Counts are recorded crime, shaped by reporting and by where police look. data.police.uk locations are
anonymised to map points; LSOAs of cells are learned from the data. The demo's deprivation deciles are
simulated. Forecasts are {trained.horizon} month(s) ahead of the last complete month, at one H3 resolution. The 90%
intervals are negative binomial quantiles around each forecast, with a dispersion fitted on the training residuals
(coverage_90 above is the share of backtest counts that fell inside).
"""
