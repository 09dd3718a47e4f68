"""MLflow tracking of backtests: one experiment per forecast group, the model and every baseline as runs in it,
a registered model per group, and the champion promotion decision with its reasons.

A model owner opens the MLflow UI and compares, per group, the model beside every baseline on the same backtest.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
from mlflow import MlflowClient

from ml.model_card import model_card, pai_chart
from ml.promotion import ALPHA, METRIC, MODEL, PromotionDecision, decide

PROMOTION_METRIC = METRIC
CHAMPION = "champion"


def experiment_name(group: str) -> str:
    return f"crimelake-forecast-{group}"


def registered_name(group: str) -> str:
    return f"crimelake-hotspots-{group}"


@dataclass(frozen=True)
class DatasetRef:
    """The training table as read: where, at which Delta version, and the slice used."""

    table_uri: str
    delta_version: int
    frame: pd.DataFrame
    name: str = "fct_cell_month_counts"


def dataset_digest(dataset: DatasetRef) -> str:
    """The dataset's digest: MLflow's digest of the frame's first rows (all it hashes of any frame) with the
    frame's length, the table and its Delta version. MLflow's own would first read the type of every value of the
    whole frame (seconds a group on a national table) only to keep the columns of text."""
    from mlflow.data.digest_utils import MAX_ROWS, compute_pandas_digest, get_normalized_md5_digest

    head = compute_pandas_digest(dataset.frame.head(MAX_ROWS))
    return get_normalized_md5_digest([head.encode(), str(len(dataset.frame)).encode(),
                                      f"{dataset.table_uri}@{dataset.delta_version}".encode()])


def dataset_schema(frame: pd.DataFrame):
    """The MLflow schema of ``frame``, as ``mlflow.types.utils._infer_schema(frame)`` gives it (each column's type
    and whether it holds missing values), inferred from each column's distinct values rather than every row."""
    from mlflow.types import Schema
    from mlflow.types.utils import _infer_schema

    specs = []
    for name in frame.columns:
        specs.extend(_infer_schema(frame[name].drop_duplicates().to_frame(name)).inputs)
    return Schema(specs)


@dataclass
class TrackedBacktest:
    group: str
    experiment_id: str
    model_run_id: str
    baseline_run_ids: dict[str, str]
    model_version: str | None
    decision: PromotionDecision
    fairness_markdown: str | None = None
    # The version holding the champion alias after this run (None: the group has no champion), whatever its method.
    champion: Champion | None = None


@dataclass(frozen=True)
class Champion:
    version: str
    run_id: str
    method: str


def model_requirements() -> list[str]:
    """Stated outright: MLflow's own inference shells out to package managers and takes seconds."""
    import xgboost

    return [f"xgboost=={xgboost.__version__}", f"pandas=={pd.__version__}"]


# Rows logged as a version's input example: enough to show the shape, few enough to read.
EXAMPLE_ROWS = 5
EXAMPLE_CELLS = 2


def log_regressor(regressor, features: pd.DataFrame, registered_model_name: str | None = None):
    """Log the XGBoost regressor as the active run's model, with its signature inferred from feature rows (the
    columns it reads, in its order) and the first of them as input example: features only, no cell or place."""
    from mlflow.models import infer_signature

    features = features.reindex(columns=list(regressor.get_booster().feature_names))
    return mlflow.xgboost.log_model(regressor, name="model", pip_requirements=model_requirements(),
                                    signature=infer_signature(features, regressor.predict(features)),
                                    input_example=features.head(EXAMPLE_ROWS),
                                    registered_model_name=registered_model_name)


def configure(tracking_uri: str, artifact_root: Path) -> None:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    # Counts are whole numbers and never missing in the tables logged as datasets; MLflow's hint about integer
    # columns that might hold missing values at inference time (raised when it infers their schema, also while
    # logging the input) does not apply and only floods the console.
    warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer", category=UserWarning)
    mlflow.set_tracking_uri(tracking_uri)
    # The registry lives with the runs. Left unset, MLflow looks for an active Spark session to ask for one, and
    # with the Spark Connect client installed (the spark extra) that lookup can end the process.
    mlflow.set_registry_uri(tracking_uri)
    artifact_root.mkdir(parents=True, exist_ok=True)
    os.environ["CRIMELAKE_MLFLOW_ARTIFACTS"] = str(artifact_root)


# MLflow 3's UI picks an experiment's layout from this tag; without it an experiment it cannot classify (no runs
# yet, or runs it does not recognise) opens in the GenAI layout of traces and prompts. "custom_model_development"
# is the UI's value for training and comparing one's own models.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
CUSTOM_MODEL_DEVELOPMENT = "custom_model_development"
# The experiment's description in the UI (markdown); the digest tells the text written here from one a person
# wrote in the UI, which is kept.
NOTE_TAG = "mlflow.note.content"
NOTE_DIGEST_TAG = "crimelake.note_sha256"
# MLflow's own tag naming the metric an experiment is judged on: here the one the champion is chosen by.
PRIMARY_METRIC_TAGS = {"mlflow.experiment.primaryMetric.name": METRIC,
                       "mlflow.experiment.primaryMetric.greaterIsBetter": "True"}
# Read first: logged under the same keys by the model and every baseline, so the compare view lines them up.
HEADLINE_METRICS = {
    "pei_star_5": "PEI* at 5%: crime in the flagged 5% of cells over the most any 5% of cells held (1 = perfect).",
    "pai_5": "PAI at 5%: share of crime in the flagged cells over their share of the area (1 = no better than "
             "chance).",
    "hit_rate_5": "hit rate at 5%: share of the month's crime that fell in the flagged 5% of cells.",
}
# The backtest months one by one (step i: the i-th month), beside the means. MLflow's chart view gives each key
# prefix a section of its own, sections in name order ahead of the unprefixed means: the headline metrics' section
# comes first.
BY_MONTH = "at_5pct_by_month/"
COUNTS_BY_MONTH = "counts_by_month/"
MODEL_RUN = "xgboost-poisson"
MODEL_CARD = "model_card.md"


def experiment_description(group: str) -> str:
    metrics = "\n".join(f"- `{k}`: {v}" for k, v in HEADLINE_METRICS.items())
    return f"""Hot spot forecasts for forecast group **{group}**: which H3 cells will hold the most {group} incidents.

**Runs.** A backtest writes one run per method, all scored on the same rolling-origin months (tag
`backtest_months`): `{MODEL_RUN}` (tag `kind=model`) and `baseline-<method>` (tag `kind=baseline`). Metrics are
the backtest means, under the same keys in every run; `{BY_MONTH}<metric>` and `{COUNTS_BY_MONTH}<metric>` hold
each month (step i: the i-th month). A run named `forecast-<YYYY-MM>` (tag `kind=forecast`) is the model trained on data up to that month's
origin only, forecasting that month. The champion is chosen by `{METRIC}` (registered model
`{registered_name(group)}`, alias `{CHAMPION}`).

**Headline metrics** (cells ranked by forecast, top 5% flagged):
{metrics}

**Model card**: `{MODEL_CARD}` in the artifacts of each `{MODEL_RUN}` run (use and misuse, data, metrics against
every baseline, champion decision, fairness audit).
"""


def experiment_link(ui: str, exp_id: str) -> str:
    """The experiment's page in the MLflow UI at `ui`, on its runs. MLflow 3.17's UI lays an experiment out by the
    browser's GenAI / Model training switch (GenAI until switched), not by the kind tag; the link sets it."""
    return f"{ui.rstrip('/')}/#/experiments/{exp_id}?workflowType=machine_learning"


def experiment_tags(group: str) -> dict[str, str]:
    note = experiment_description(group)
    return {EXPERIMENT_KIND_TAG: CUSTOM_MODEL_DEVELOPMENT, NOTE_TAG: note,
            NOTE_DIGEST_TAG: hashlib.sha256(note.encode()).hexdigest(), **PRIMARY_METRIC_TAGS}


def experiment_id(group: str) -> str:
    """The group's experiment, created on first use. Its kind and description are brought up to date whenever it
    is used, except a description a person has edited in the UI."""
    name = experiment_name(group)
    wanted = experiment_tags(group)
    exp = mlflow.get_experiment_by_name(name)
    if exp is None:
        root = Path(os.environ.get("CRIMELAKE_MLFLOW_ARTIFACTS", tempfile.gettempdir())) / name
        return mlflow.create_experiment(name, artifact_location=root.as_uri(),
                                        tags={"forecast_group": group, "crimelake": "forecast", **wanted})
    note = exp.tags.get(NOTE_TAG)
    if note is not None and hashlib.sha256(note.encode()).hexdigest() != exp.tags.get(NOTE_DIGEST_TAG):
        wanted = {k: v for k, v in wanted.items() if k not in (NOTE_TAG, NOTE_DIGEST_TAG)}
    client = MlflowClient()
    for key, value in wanted.items():
        if exp.tags.get(key) != value:
            client.set_experiment_tag(exp.experiment_id, key, value)
    return exp.experiment_id


def champion_info(group: str) -> Champion | None:
    """The version behind the group's champion alias and its method, or None when there is none. Versions from
    before baselines could be champions carry no method tag: they are the model."""
    client = MlflowClient()
    try:
        mv = client.get_model_version_by_alias(registered_name(group), CHAMPION)
    except mlflow.exceptions.MlflowException:
        return None
    return Champion(str(mv.version), mv.run_id, mv.tags.get("method", MODEL))


def promotion_alpha() -> float:
    """Level of the paired test a challenger must pass to replace the champion's method."""
    return float(os.environ.get("CRIMELAKE_PROMOTION_ALPHA", str(ALPHA)))


def decision_tags(decision: PromotionDecision, method: str) -> dict[str, str]:
    """What every registered version carries about the decision that placed (or did not place) it."""
    t = decision.test
    return {
        "method": method,
        "promotion_decision": "champion" if decision.new_version and decision.champion == method else "not champion",
        "promotion_reasons": "; ".join(decision.reasons),
        "champion_method": str(decision.champion),
        "previous_champion_method": str(decision.previous),
        "runner_up": str(decision.runner_up),
        "mean_margin": f"{decision.mean_margin:.6f}",
        "paired_test": t.name if t else "none",
        "paired_test_statistic": f"{t.statistic:g}" if t else "",
        "paired_test_p_value": f"{t.p_value:.6g}" if t else "",
        "paired_test_alpha": f"{decision.alpha:g}",
        "months_compared": ",".join(t.months) if t else "",
    }


def _register(client: MlflowClient, group: str, version: str, decision: PromotionDecision, method: str,
              horizon: int = 1) -> None:
    # The horizon the version was backtested and trained at: its forecasts are only valid at that horizon.
    for k, v in {**decision_tags(decision, method), "horizon": str(horizon)}.items():
        client.set_model_version_tag(registered_name(group), version, k, v)
    if decision.new_version and decision.champion == method:
        client.set_registered_model_alias(registered_name(group), CHAMPION, version)


def log_backtest(
    result,
    trained,
    *,
    group: str,
    scope: str,
    dataset: DatasetRef,
    feature_tables: dict[str, int],
    gates: dict[str, dict[str, bool]] | None = None,
    register: bool = True,
    fairness=None,
    fairness_gate=None,
    model_example: pd.DataFrame,
    history_example: pd.DataFrame,
) -> TrackedBacktest:
    """Log the backtest (model and baselines as sibling runs), register the model, decide the champion (see
    ml.promotion) and register the winning baseline when a baseline wins.

    ``gates`` maps each method to its gates ({"fairness": passed}). ``model_example`` (feature rows) and
    ``history_example`` (a baseline's input, ml.baseline_model) give the logged models their signatures and input
    examples."""
    from mlflow.entities import DatasetInput, InputTag, Metric, Param, RunTag
    from mlflow.models import infer_signature
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    from ml.baseline_model import BaselineForecaster, requirements

    exp_id = experiment_id(group)
    summary = result.summary
    per_month = result.per_month
    months = sorted(per_month["month"].unique())
    horizon = int(getattr(result, "horizon", 1))
    common_tags = {"forecast_group": group, "scope": scope, "horizon": str(horizon),
                   "backtest_months": f"{months[0]}..{months[-1]}",
                   "feature_tables": json.dumps(feature_tables, sort_keys=True),
                   # Origins read back unchanged from an earlier run (ml.backtest_cache) rather than recomputed.
                   "backtest_origins_reused": ",".join(getattr(result, "reused_origins", [])) or "none",
                   # The last origin scored the model an earlier run published for that month (ml.backtest).
                   "backtest_last_model": ("as published for " + result.reused_model
                                           if getattr(result, "reused_model", None) else "fitted")}
    ds = mlflow.data.from_pandas(dataset.frame, source=dataset.table_uri,
                                 name=f"{dataset.name}@v{dataset.delta_version}", digest=dataset_digest(dataset))
    # MLflow infers the schema value by value (about 10 s a group on a national table); the same schema from
    # each column's distinct values. `schema` is a cached property: the value set here is the one it returns.
    ds.__dict__["schema"] = dataset_schema(dataset.frame)
    # The dataset's schema and profile are worked out once (seconds on a national table), then logged to every run.
    dataset_input = DatasetInput(dataset=ds._to_mlflow_entity(),
                                 tags=[InputTag(key=MLFLOW_DATASET_CONTEXT, value="backtest")])
    previous = champion_info(group) if register else None
    decision = decide(per_month, previous.method if previous else None, gates=gates, alpha=promotion_alpha())
    client = MlflowClient()
    champion = previous if not decision.new_version else None
    promotion_json = json.dumps(decision.to_dict(), indent=2)

    def log_method(run, method: str) -> None:
        """The method's metrics, params and tags in one write to the tracking store (a run holds about 80
        metrics: one call each would be a transaction each)."""
        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, 0) for k, v in summary.loc[method].items() if pd.notna(v)]
        if method in getattr(result, "dispersion", {}):
            metrics.append(Metric("interval_dispersion", float(result.dispersion[method]), now, 0))
        # Under keys of their own: on the means' keys the last month would be the value the UI shows (MLflow shows
        # a metric's value at its highest step).
        keys = {**{k: BY_MONTH + k for k in HEADLINE_METRICS},
                **{k: COUNTS_BY_MONTH + k for k in ("deviance", "coverage_90")}}
        rows = per_month[per_month["method"] == method].sort_values("month")
        for step, (_, r) in enumerate(rows.iterrows()):
            metrics += [Metric(key, float(r[k]), now, step) for k, key in keys.items() if k in r and pd.notna(r[k])]
        # Every run carries the same two params beside its own (the model's hyperparameters): the compare view's
        # parameter axes then hold only what a method really has.
        params = [Param("method", str(method)), Param("horizon", str(horizon))]
        tags = [RunTag(f"{gate}_gate", "passed" if passed else "failed")
                for gate, passed in (gates or {}).get(method, {}).items()]
        tags.append(RunTag("promotion", "champion" if decision.new_version and decision.champion == method
                           else "not champion"))
        client.log_batch(run.info.run_id, metrics=metrics, params=params, tags=tags)
        client.log_inputs(run.info.run_id, datasets=[dataset_input])

    baseline_runs: dict[str, str] = {}
    for method in summary.index:
        if method == MODEL:
            continue
        with mlflow.start_run(experiment_id=exp_id, run_name=f"baseline-{method}") as run:
            mlflow.set_tags({**common_tags, "method": method, "kind": "baseline"})
            log_method(run, method)
            baseline_runs[method] = run.info.run_id
            # The winning baseline becomes a version of the group's registered model, so the alias always points
            # at a version, whichever method won.
            if register and decision.new_version and decision.champion == method:
                mlflow.log_text(promotion_json, "promotion.json")
                python_model = BaselineForecaster(method, group)
                signature = infer_signature(history_example, python_model.predict(None, history_example))
                # A baseline reads every month of a cell: the example is the whole history of a few cells.
                first = history_example["h3_cell"].drop_duplicates().head(EXAMPLE_CELLS)
                info = mlflow.pyfunc.log_model(name="model", python_model=python_model, signature=signature,
                                               input_example=history_example[history_example["h3_cell"].isin(first)],
                                               pip_requirements=requirements(),
                                               registered_model_name=registered_name(group))
                version = str(info.registered_model_version)
                _register(client, group, version, decision, method, horizon)
                champion = Champion(version, run.info.run_id, method)
    version = None
    with mlflow.start_run(experiment_id=exp_id, run_name=MODEL_RUN) as run:
        mlflow.set_tags({**common_tags, "method": MODEL, "kind": "model", "delta_version": dataset.delta_version,
                         "table_uri": dataset.table_uri})
        mlflow.log_params({k: v for k, v in trained.params.items() if v is not None})
        mlflow.log_params({"train_months": f"{trained.train_months[0]}..{trained.train_months[-1]}",
                           "n_training_rows": trained.n_rows, "uses_context": trained.uses_context,
                           "dispersion": trained.dispersion})
        log_method(run, MODEL)
        with tempfile.TemporaryDirectory() as tmp:
            tmpd = Path(tmp)
            (tmpd / "feature_importance.json").write_text(json.dumps(trained.feature_importance(), indent=2))
            pai_chart(summary, tmpd / "pai_by_coverage.png")
            summary.to_csv(tmpd / "backtest_summary.csv")
            per_month.to_csv(tmpd / "backtest_per_month.csv", index=False)
            (tmpd / "promotion.json").write_text(promotion_json)
            if fairness is not None:
                (tmpd / "fairness.md").write_text(fairness.to_markdown())
                (tmpd / "fairness.json").write_text(json.dumps(
                    {"audit": fairness.to_dict(), "gate": fairness_gate.to_dict()}, indent=2))
                if fairness_gate.worst_ratio == fairness_gate.worst_ratio:
                    mlflow.log_metric("fairness_worst_flag_to_crime_ratio", float(fairness_gate.worst_ratio))
            (tmpd / MODEL_CARD).write_text(model_card(
                group=group, scope=common_tags["scope"], months=months, summary=summary, decision=decision,
                trained=trained, dataset=dataset, fairness=fairness, fairness_gate=fairness_gate))
            for f in tmpd.iterdir():
                mlflow.log_artifact(str(f))
        info = log_regressor(trained.regressor, model_example, registered_name(group) if register else None)
        if register:
            version = str(info.registered_model_version)
            _register(client, group, version, decision, MODEL, horizon)
            if decision.new_version and decision.champion == MODEL:
                champion = Champion(version, run.info.run_id, MODEL)
        model_run_id = run.info.run_id
    return TrackedBacktest(group, exp_id, model_run_id, baseline_runs, version, decision,
                           fairness.to_markdown() if fairness is not None else None, champion)


def load_champion(group: str):
    """(Champion, xgboost regressor) of the group's champion, the regressor None when a baseline is champion (its
    forecast is computed from the panel with ml.baselines); None when the group has no champion."""
    champ = champion_info(group)
    if champ is None:
        return None
    if champ.method != MODEL:
        return champ, None
    return champ, mlflow.xgboost.load_model(f"models:/{registered_name(group)}@{CHAMPION}")
