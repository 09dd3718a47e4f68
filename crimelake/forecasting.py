"""Forecasting over a crimelake home: read the gold tables, backtest and track in MLflow, write versioned
predictions. The statistics live in `ml/`; this module knows where the tables are and what to record."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from crimelake import lake
from crimelake.config import Settings

GROUPS = ("all_crime", "asb", "violence", "theft", "weapons")
GOLD_INPUTS = ("fct_cell_month_counts", "dim_cells", "fct_area_quarter_indicators", "fct_stop_search_cell_months",
               "fct_outcomes")
# Not read by the features, but recorded with them: the incidents behind the counts, for tracing a prediction
# back to the bronze rows and extract lines.
LINEAGE_ONLY = ("fct_incidents",)


# The ledger of which force-months arrived whole; read when the pipeline has built it (older lakes have none, and
# then a force-month with no count rows at all is the only kind of gap seen).
COVERAGE = "coverage"
# Only the columns the features read: at national scale a whole gold table in pandas costs gigabytes, and strings
# repeated per row (cells, forces, months) are read as categoricals.
COLUMNS = {
    "fct_cell_month_counts": ["h3_cell", "force", "month", "forecast_group", "incident_count"],
    "fct_outcomes": ["h3_cell", "outcome_month", "outcome_type"],
    COVERAGE: ["source", "force", "month", "status"],
}


@dataclass
class GoldInputs:
    frames: dict[str, pd.DataFrame]
    versions: dict[str, int]
    uris: dict[str, str]
    # The cells of every logged intervention and its months (crimelake.interventions.schedule); None: not read.
    interventions: pd.DataFrame | None = None


def _read_frame(path: Path, name: str, version: int | None) -> pd.DataFrame:
    from deltalake import DeltaTable

    present = DeltaTable(str(path), version=version).schema().to_arrow().names
    wanted = [c for c in COLUMNS.get(name, present) if c in present]
    table = lake.read(path, version=version, columns=wanted)
    return table.to_pandas(strings_to_categorical=name in COLUMNS)


def gold_version(settings: Settings, name: str, released: dict[str, int] | None = None) -> int | None:
    """The version of gold table `name` forecasting reads: the newest release's (crimelake.release), else the
    newest; None when there is no such table."""
    from crimelake.release import gold_versions

    released = gold_versions(settings) if released is None else released
    if name in released:
        return released[name]
    return lake.version(settings.gold(name)) if lake.table_exists(settings.gold(name)) else None


def load_gold(settings: Settings, version_of: dict[str, int] | None = None) -> GoldInputs:
    """Read the gold tables forecasting needs (and the coverage ledger when there is one), recording the Delta
    version of each: `version_of`'s, else the released one, else the newest."""
    from crimelake.release import gold_versions

    version_of = {**gold_versions(settings), **(version_of or {})}
    frames, versions, uris = {}, {}, {}
    for name in GOLD_INPUTS:
        path = settings.gold(name)
        if not lake.table_exists(path):
            raise FileNotFoundError(f"gold table {path} is missing: run the pipeline first (crimelake run)")
        v = (version_of or {}).get(name, lake.version(path))
        frames[name] = _read_frame(path, name, v)
        versions[name] = v
        uris[name] = str(path)
    path = settings.gold(COVERAGE)
    if lake.table_exists(path):
        v = (version_of or {}).get(COVERAGE, lake.version(path))
        frames[COVERAGE] = _read_frame(path, COVERAGE, v)
        versions[COVERAGE] = v
        uris[COVERAGE] = str(path)
    for name in LINEAGE_ONLY:
        path = settings.gold(name)
        if lake.table_exists(path):
            versions[name] = (version_of or {}).get(name, lake.version(path))
            uris[name] = str(path)
    from crimelake.interventions import load_schedule

    return GoldInputs(frames, versions, uris, load_schedule(settings, frames["dim_cells"]))


def check_group(group: str) -> str:
    if group not in GROUPS:
        raise ValueError(f"unknown forecast group {group!r}: choose from {', '.join(GROUPS)}")
    return group


def panel_and_context(gold: GoldInputs, force: str | None = None, before: str | None = None):
    """The count panel (optionally one force; optionally only months before `before`) and its context."""
    from ml.features import Context
    from ml.panel import Panel

    counts = gold.frames["fct_cell_month_counts"]
    coverage = gold.frames.get(COVERAGE)
    present = set(counts["force"].astype(str).unique())
    if force is not None and force not in present:
        raise ValueError(f"force {force!r} has no data in the gold tables; forces present: "
                         f"{', '.join(sorted(present))}")
    if before is not None:
        counts = counts[counts["month"].astype(str) < before]
        if coverage is not None:
            coverage = coverage[coverage["month"].astype(str) < before]
        if counts.empty:
            raise ValueError(f"no data before {before}")
    # Single precision holds every count exactly and halves the panel (a national one is cells x months x groups).
    panel = Panel.from_frames(counts, gold.frames["dim_cells"], force=force, coverage=coverage, dtype=np.float32)
    context = Context.from_frames(gold.frames["fct_area_quarter_indicators"], gold.frames["fct_stop_search_cell_months"],
                                  gold.frames["fct_outcomes"], gold.frames["dim_cells"])
    return panel, context


# The last inputs loaded in this process: the forecast groups of one `crimelake models` run read the same gold
# versions, so the second group onwards skips reading the tables and building the panel (about half a minute
# nationally). Keyed by the Delta version of every table read, so new data is never served stale.
_LOADED: dict[tuple, tuple] = {}


def current_inputs(settings: Settings, force: str | None = None):
    """(GoldInputs, Panel, Context) for the released gold tables (crimelake.release; the newest where no release
    names them), reused within a process while no version changed."""
    from crimelake.release import gold_versions

    names = [*GOLD_INPUTS, COVERAGE, *LINEAGE_ONLY]
    released = gold_versions(settings)
    from crimelake.interventions import log_path

    key = (str(settings.home), force, tuple((n, gold_version(settings, n, released)) for n in names),
           lake.version(log_path(settings)) if lake.table_exists(log_path(settings)) else None)
    if key not in _LOADED:
        _LOADED.clear()
        gold = load_gold(settings, {n: v for n, v in key[2] if v is not None})
        panel, context = panel_and_context(gold, force)
        # The panel and context hold what the models read; of the frames only the counts are read again (as the
        # MLflow dataset), so the rest (outcomes, cells with their neighbour lists) is let go.
        gold.frames = {n: f for n, f in gold.frames.items() if n in ("fct_cell_month_counts", COVERAGE)}
        _LOADED[key] = (gold, panel, context)
    return _LOADED[key]


# data.police.uk publishes a month some 4-8 weeks after it ends: with only that source a force plans month t knowing
# month t - 2. A force with its own records export knows month t - 1.
POLICE_UK_SOURCE = "police_uk"
HORIZON_ENV = "CRIMELAKE_HORIZON"


def horizon_for(gold: GoldInputs | None = None, force: str | None = None) -> int:
    """Months between the last complete month and the forecast month: ``CRIMELAKE_HORIZON`` when set, else 1 when
    every force in scope has a complete month from a source of its own (a records export, not data.police.uk) in
    the coverage ledger, else 2. One panel holds one horizon, so a scope mixing forces of both kinds takes 2."""
    from crimelake.config import env_count

    if os.environ.get(HORIZON_ENV, "").strip():
        return env_count(HORIZON_ENV, 2)
    coverage = None if gold is None else gold.frames.get(COVERAGE)
    if coverage is None or coverage.empty:
        return 2
    cov = coverage.assign(force=coverage["force"].astype(str), source=coverage["source"].astype(str))
    if force is not None:
        cov = cov[cov["force"] == force]
    forces = set(cov["force"])
    own = cov[(cov["source"] != POLICE_UK_SOURCE) & (cov["status"].astype(str) == "complete")]
    return 1 if forces and forces <= set(own["force"]) else 2


def setup_mlflow(settings: Settings) -> None:
    from ml.tracking import configure

    configure(settings.mlflow_uri, settings.mlflow_artifacts)


def imd_path(settings: Settings) -> Path | None:
    """The deprivation table for the fairness audit: a user-supplied `landing/reference/imd.csv` (LSOA code, IMD
    decile, population; for real data), else the simulator's `landing/reference/areas.csv` (demo)."""
    for name in ("imd.csv", "areas.csv"):
        p = settings.landing / "reference" / name
        if p.exists():
            return p
    return None


def fairness_max_ratio() -> float:
    import os

    return float(os.environ.get("CRIMELAKE_FAIRNESS_MAX_RATIO", "1.5"))


def fairness_audits(settings: Settings, result, panel, group: str, gold: GoldInputs) -> dict:
    """Per method of the backtest, (audit, gate) of its flags in the last backtest month by deprivation decile;
    empty when no deprivation table is available. Crime is split into police-discovered and victim-reported. A
    method that fails the gate cannot become champion, so every method is audited, not only the model."""
    from ml.fairness import audit, gate, load_imd, places

    path = imd_path(settings)
    if path is None:
        return {}
    imd = load_imd(path)
    pred = result.predictions
    month = str(pred["month"].iloc[0])
    incidents = _month_incidents(settings, month, gold.versions.get("fct_incidents"))
    incidents = incidents[incidents[f"in_{group}"].astype(bool)]
    # The backtest scored the month's observed cells only; the audit looks at the same cells.
    cells = pred["h3_cell"].to_numpy()
    at = pd.Index(panel.cells).get_indexer(cells)
    index = pd.Index(cells)
    kinds = {}
    for kind, mask in (("police_discovered", incidents["police_discovered"].astype(bool)),
                       ("victim_reported", ~incidents["police_discovered"].astype(bool))):
        per_cell = incidents[mask].groupby("h3_cell").size()
        pos = index.get_indexer(per_cell.index)
        arr = np.zeros(len(cells))
        arr[pos[pos >= 0]] = per_cell.to_numpy()[pos >= 0]
        kinds[kind] = arr
    out = {}
    where = places(cells, panel.lsoa_code[at], imd)  # the same cells for every method
    for method in [c for c in pred.columns if c not in ("h3_cell", "month", "observed")]:
        a = audit(cells, None, pred[method].to_numpy(), pred["observed"].to_numpy(), None,
                  coverage=0.05, obs_by_kind=kinds, area=panel.area_km2[at], where=where)
        out[method] = (a, gate(a, max_ratio=fairness_max_ratio()))
    return out


# The last month of incidents read for the fairness audit: the groups of one `crimelake models` run audit the same
# month at the same version, so it is read once (about a million rows nationally), every group's flag with it.
_INCIDENTS: dict[tuple, pd.DataFrame] = {}


def _month_incidents(settings: Settings, month: str, version: int | None) -> pd.DataFrame:
    path = settings.gold("fct_incidents")
    columns = ["h3_cell", "police_discovered", *(f"in_{g}" for g in GROUPS)]
    if version is None:  # no pinned version: read what is there now, keep nothing
        return lake.read(path, month=month, columns=columns).to_pandas()
    key = (str(path), version, month)
    if key not in _INCIDENTS:
        _INCIDENTS.clear()
        _INCIDENTS[key] = lake.read(path, month=month, version=version, columns=columns).to_pandas()
    return _INCIDENTS[key]


def origin_cache(settings: Settings):
    """Where backtest origins are kept between runs (``ml.backtest_cache``); None when
    ``CRIMELAKE_BACKTEST_CACHE=0`` asks for every origin to be recomputed."""
    from ml.backtest_cache import OriginCache

    if os.environ.get("CRIMELAKE_BACKTEST_CACHE", "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    return OriginCache(settings.home / "cache" / "backtest")


def run_backtest(settings: Settings, group: str, *, force: str | None = None, months: int = 12, register: bool = True,
                 progress: Callable[[str], None] | None = None, gates: dict[str, dict[str, bool]] | None = None,
                 horizon: int | None = None):
    """Backtest the model and every baseline at ``horizon`` (default ``horizon_for``), train the production model
    on all months, log everything to MLflow and decide the champion (ml.promotion): the model or a baseline,
    whichever the backtest supports. ``gates`` adds gates per method ({method: {gate: passed}}) to the fairness
    gate every method goes through. Returns (BacktestResult, Forecast, TrackedBacktest, GoldInputs)."""
    from ml.backtest import backtest, forecast, keep_forecast_model, keep_next_origin_model
    from ml.baseline_model import history_frame
    from ml.model import cached_features
    from ml.tracking import DatasetRef, log_backtest

    check_group(group)
    settings.prepare()
    setup_mlflow(settings)
    gold, panel, context = current_inputs(settings, force)
    from crimelake.interventions import active_matrix

    h = horizon_for(gold, force) if horizon is None else horizon
    features: dict = {}  # the backtest's last training window serves the production model too
    intervened = active_matrix(gold.interventions, panel.cells, panel.months)
    cache = origin_cache(settings)
    result = backtest(panel, group, months=months, context=context, progress=progress,
                      cache=cache, feature_cache=features, horizon=h,
                      intervened=intervened if intervened.any() else None)
    # The production model's intervals: the last origin's out-of-time residuals, the months its features read.
    nxt = forecast(panel, group, context=context, feature_cache=features, horizon=h,
                   dispersion=result.residual_dispersion)
    # Kept for the run that observes its month: that backtest scores this model as published.
    keep_forecast_model(cache, panel, nxt, context, dispersion=result.residual_dispersion)
    # And the one the next run's backtest scores at its last origin, when no earlier run kept it (a first build).
    keep_next_origin_model(cache, panel, group, result, context, feature_cache=features)
    counts = gold.frames["fct_cell_month_counts"]
    frame = counts[counts["forecast_group"] == group]
    if force:
        frame = frame[frame["force"] == force]
    dataset = DatasetRef(gold.uris["fct_cell_month_counts"], gold.versions["fct_cell_month_counts"],
                         frame.reset_index(drop=True))
    audits = fairness_audits(settings, result, panel, group, gold)
    per_method = {str(m): dict((gates or {}).get(str(m), {})) for m in result.summary.index}
    for method, (_, verdict) in audits.items():
        per_method.setdefault(method, {})["fairness"] = verdict.passed
    audit, verdict = audits.get("model", (None, None))
    # A few rows of each kind of input give the registered versions their signatures and input examples.
    model_example = cached_features(panel, group, panel.n_months + h - 1, context, features, h).head(50)
    tracked = log_backtest(result, nxt.model, group=group, scope=force or "all forces", dataset=dataset,
                           feature_tables=gold.versions, gates=per_method, register=register, fairness=audit,
                           fairness_gate=verdict, model_example=model_example,
                           history_example=history_frame(panel, group, cells=20))
    return result, nxt, tracked, gold


@dataclass
class MethodForecast:
    """The forecast by one method, ``horizon`` months after the panel's last: h3_cell, force, predicted_count,
    lower_90 and upper_90 for every cell of the study area, and the first and last month of the data it read."""

    method: str
    month: str
    predictions: pd.DataFrame
    data_months: tuple[str, str]
    horizon: int = 1


def method_forecast(panel, group: str, method: str, nxt=None, horizon: int = 1) -> MethodForecast:
    """The forecast of `method` for the month `horizon` months after the panel: the model's is `nxt` (an
    ml.backtest.Forecast), a baseline's is computed from the panel with ml.baselines, on the cells the model's
    covers (those with any crime in the panel), with intervals from its own past errors (ml.intervals)."""
    from ml.backtest import MODEL
    from ml.baselines import BASELINES
    from ml.intervals import LEVEL, baseline_dispersion, interval

    if method == MODEL:
        if nxt is None:
            raise ValueError("the model's forecast must be given (ml.backtest.forecast)")
        months = nxt.model.train_months
        return MethodForecast(MODEL, nxt.month, nxt.predictions, (months[0], months[-1]), nxt.horizon)
    if method not in BASELINES:
        raise ValueError(f"unknown method {method!r}; choose from {', '.join([MODEL, *BASELINES])}")
    fn, cut = BASELINES[method], panel.n_months
    known = panel.known_before(cut)
    pred = np.asarray(fn(panel, group, cut), float)[known]
    lower, upper = interval(pred, baseline_dispersion(fn, panel, group, cut, horizon), LEVEL)
    frame = pd.DataFrame({"h3_cell": panel.cells[known], "force": panel.force[known], "predicted_count": pred,
                          "lower_90": lower, "upper_90": upper})
    return MethodForecast(method, panel.month_label(cut + horizon - 1), frame, (panel.months[0], panel.months[-1]),
                          horizon)


def predictions_frame(nxt, group: str, gold: GoldInputs, model) -> pd.DataFrame:
    """The forecast `nxt` (a MethodForecast, or the model's ml.backtest.Forecast) as prediction rows made by
    `model` (an ml.predictions.ModelRef)."""
    from crimelake.interventions import active_mask
    from ml.predictions import build

    if not isinstance(nxt, MethodForecast):
        nxt = method_forecast(None, group, "model", nxt)
    frame = nxt.predictions
    return build(frame["h3_cell"].to_numpy(), frame["force"].to_numpy(), frame["predicted_count"].to_numpy(),
                 group=group, target_month=nxt.month, model=model, feature_tables=gold.versions,
                 data_months=nxt.data_months, lower=frame["lower_90"].to_numpy(),
                 upper=frame["upper_90"].to_numpy(), horizon=nxt.horizon,
                 under_intervention=active_mask(gold.interventions, frame["h3_cell"], nxt.month))


def champion_frame(settings: Settings, group: str, champion, nxt, force: str | None = None) -> pd.DataFrame:
    """Prediction rows of `champion` (an ml.tracking.Champion registered by this run): the model's forecast `nxt`,
    or the baseline's forecast from the same panel."""
    from ml.predictions import ModelRef
    from ml.tracking import CHAMPION, registered_name

    gold, panel, _ = current_inputs(settings, force)
    return predictions_frame(method_forecast(panel, group, champion.method, nxt, nxt.horizon), group, gold,
                             ModelRef(registered_name(group), champion.version, CHAMPION, champion.run_id))


def append_predictions(settings: Settings, frame: pd.DataFrame) -> int:
    """Append forecasts to the versioned predictions table; earlier forecasts are kept. A table written before
    the forecasts carried intervals and a horizon gains those columns (null in its older rows)."""
    from deltalake import DeltaTable, write_deltalake

    from ml.predictions import to_arrow

    path = settings.lake / "ml" / "predictions"
    table = to_arrow(frame)
    if lake.table_exists(path) and set(table.schema.names) - set(DeltaTable(str(path)).schema().to_arrow().names):
        write_deltalake(str(path), table, mode="append", schema_mode="merge")
        return lake.version(path)
    return lake.append(path, table).version


def as_of_forecast(gold: GoldInputs, as_of: str, group: str, *, force: str | None = None,
                   horizon: int | None = None, feature_cache: dict | None = None):
    """The ml.backtest.Forecast of month `as_of` at `horizon` (default ``horizon_for``) from the gold tables'
    data up to `horizon` months before it, as if made then: later months, and cells first seen in them, change
    nothing. Nothing is written; `feature_cache` (ml.model.cached_features) keeps the feature rows built."""
    from ml.backtest import forecast
    from ml.panel import month_add

    check_group(group)
    h = horizon_for(gold, force) if horizon is None else horizon
    if h < 1:
        raise ValueError(f"horizon must be at least 1 month, got {h}")
    last = month_add(as_of, -h)
    panel, context = panel_and_context(gold, force, before=month_add(last, 1))
    if panel.n_months < h + 1:
        raise ValueError(f"cannot forecast {as_of} at horizon {h}: the data up to {last} holds {panel.n_months} "
                         f"month(s) ({panel.months[0]}); the model needs at least {h + 1} (ingest more months, "
                         "e.g. crimelake ingest police-uk <archive>)")
    if panel.months[-1] != last:
        raise ValueError(f"cannot forecast {as_of} at horizon {h}: the data before it ends at {panel.months[-1]}, "
                         f"not {last}")
    return forecast(panel, group, context=context, horizon=h, feature_cache=feature_cache)


def forecast_as_of(settings: Settings, as_of: str, group: str, *, force: str | None = None,
                   out: Path | None = None, horizon: int | None = None) -> pd.DataFrame:
    """Forecast month `as_of` from data up to `horizon` months before it only (``as_of_forecast``); the model is
    trained on those months and logged to MLflow (run named forecast-<month>), the rows appended to the
    predictions table and written to `out`."""
    import mlflow

    from ml.predictions import ModelRef
    from ml.tracking import experiment_id, log_regressor, registered_name

    check_group(group)
    settings.prepare()
    setup_mlflow(settings)
    gold = load_gold(settings)
    features: dict = {}
    nxt = as_of_forecast(gold, as_of, group, force=force, horizon=horizon, feature_cache=features)
    with mlflow.start_run(experiment_id=experiment_id(group), run_name=f"forecast-{as_of}") as run:
        mlflow.set_tags({"kind": "forecast", "forecast_group": group, "target_month": as_of,
                         "scope": force or "all forces"})
        mlflow.log_params({"train_months": f"{nxt.model.train_months[0]}..{nxt.model.train_months[-1]}",
                           "horizon": nxt.horizon, "dispersion": nxt.model.dispersion})
        # The feature rows of the forecast month, built last: the logged model's signature and input example.
        log_regressor(nxt.model.regressor, list(features.values())[-1])
        run_id = run.info.run_id
    frame = predictions_frame(nxt, group, gold, ModelRef(registered_name(group), None, None, run_id))
    append_predictions(settings, frame)
    if out is not None:
        write_frame(frame, out)
    return frame


def write_frame(frame: pd.DataFrame, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".csv":
        frame.to_csv(out, index=False)
    elif out.suffix.lower() in (".parquet", ".pq"):
        frame.to_parquet(out, index=False)
    else:
        raise ValueError(f"{out}: write .csv or .parquet")


def champion_forecast(settings: Settings, group: str, force: str | None = None) -> pd.DataFrame:
    """Next month's forecast from the group's current champion, whichever method it is, on the latest data (when
    this run's version did not take the alias)."""
    from mlflow import MlflowClient

    from ml.backtest import forecast
    from ml.model import TrainedModel
    from ml.predictions import ModelRef
    from ml.tracking import CHAMPION, load_champion, registered_name

    champ = load_champion(group)
    if champ is None:
        raise ValueError(f"no champion for {group}: run `crimelake models` first")
    champion, regressor = champ
    gold, panel, context = current_inputs(settings, force)
    params = MlflowClient().get_run(champion.run_id).data.params
    # Versions logged before forecasts had a horizon were one month ahead.
    h = int(params.get("horizon", 1))
    if regressor is None:
        nxt = method_forecast(panel, group, champion.method, horizon=h)
    else:
        model = TrainedModel(regressor=regressor, group=group,
                             feature_names=list(regressor.get_booster().feature_names), params={},
                             train_months=list(panel.months), n_rows=0, uses_context=True, horizon=h,
                             dispersion=float(params.get("dispersion", 0.0)))
        nxt = forecast(panel, group, context=context, model=model)
    return predictions_frame(nxt, group, gold, ModelRef(registered_name(group), champion.version, CHAMPION,
                                                        champion.run_id))
