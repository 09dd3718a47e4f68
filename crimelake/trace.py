"""Trace one prediction back to its sources, verifying every hop.

prediction -> model version, alias and MLflow run (and the metrics that promoted it) -> the feature tables at the
Delta versions recorded -> the dbt models between bronze and gold -> the bronze rows of the cell -> the raw
extract files (path, SHA-256 now versus when loaded, contract, line numbers). A hop that cannot be verified is
reported as broken, never skipped.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.compute as pc
from deltalake import DeltaTable

from crimelake import lake
from crimelake.config import Settings
from crimelake.hash_cache import remember, remembered, sha256_of, stamp

# Where orchestration.lib.dbt's DbtProject builds the manifest. Named here, not imported from there: that module
# imports dagster_dbt, which took 5 of a command-line trace's 13 seconds (a test holds the two paths equal).
DBT_MANIFEST = Path(__file__).resolve().parents[1] / "dbt_project" / "target" / "manifest.json"


@dataclass
class Hop:
    name: str
    ok: bool
    detail: str
    data: dict = field(default_factory=dict)


@dataclass
class Trace:
    prediction_id: str
    prediction: dict
    hops: list[Hop]

    @property
    def ok(self) -> bool:
        return all(h.ok for h in self.hops)

    def to_json(self) -> str:
        return json.dumps({"prediction_id": self.prediction_id, "verified": self.ok, "prediction": self.prediction,
                           "hops": [asdict(h) for h in self.hops]}, indent=2, default=str)


def find_prediction(settings: Settings, prediction_id: str) -> dict:
    path = settings.lake / "ml" / "predictions"
    if not lake.table_exists(path):
        raise LookupError(f"no predictions table at {path}: run `crimelake models` or `crimelake forecast` first")
    ds = DeltaTable(str(path)).to_pyarrow_dataset()
    rows = ds.to_table(filter=pc.field("prediction_id") == prediction_id).to_pylist()
    if not rows:
        raise LookupError(f"prediction {prediction_id!r} is not in {path}")
    return rows[0]


def _sqlite_store(uri: str) -> Path | None:
    """The file behind a `sqlite:///` MLflow tracking URI; None for any other store (always asked)."""
    prefix = "sqlite:///"
    return Path(uri[len(prefix):]) if uri.startswith(prefix) else None


def _model_hop(settings: Settings, p: dict, rehash: bool = False) -> Hop:
    """The model hop, asked of MLflow, or remembered while the tracking store's SQLite file (and its journal) has
    the size and modification time it had when MLflow last verified this prediction's run and version: starting
    MLflow costs a command-line trace seconds of imports. `rehash` asks MLflow again."""
    store = _sqlite_store(settings.mlflow_uri)
    if store is None:
        return _ask_mlflow(settings, p)
    before = stamp([store, store.with_name(store.name + "-journal"), store.with_name(store.name + "-wal")])
    key = "model hop " + json.dumps([p["mlflow_run_id"], p["model_name"], p["model_version"], p["model_alias"]])
    kept = None if rehash else remembered(settings, key, before)
    if kept:
        answer, at = kept
        return Hop("model", True, answer["detail"],
                   {**answer["data"], "checked": f"remembered: MLflow store unchanged since it was read at "
                                                 f"{datetime.fromtimestamp(at, UTC).isoformat(timespec='seconds')}"})
    hop = _ask_mlflow(settings, p)
    if hop.ok:  # a broken link is asked again every time, never remembered
        remember(settings, key, before, {"detail": hop.detail, "data": hop.data})
    hop.data["checked"] = "read now"
    return hop


def _ask_mlflow(settings: Settings, p: dict) -> Hop:
    import mlflow
    from mlflow import MlflowClient

    # Runs and registry both in this home, whatever another caller in this process pointed MLflow at.
    client = MlflowClient(tracking_uri=settings.mlflow_uri, registry_uri=settings.mlflow_uri)
    try:
        run = client.get_run(p["mlflow_run_id"])
    except mlflow.exceptions.MlflowException as e:
        return Hop("model", False, f"MLflow run {p['mlflow_run_id']} not found: {e}")
    data = {"run_id": run.info.run_id, "experiment_id": run.info.experiment_id, "run_name": run.info.run_name,
            "model_name": p["model_name"], "model_version": p["model_version"], "model_alias": p["model_alias"],
            "metrics": {k: v for k, v in run.data.metrics.items() if k.startswith(("pei_star", "pai", "hit_rate"))},
            "promotion": run.data.tags.get("promotion"), "train_months": run.data.params.get("train_months")}
    detail = f"MLflow run {run.info.run_id} ({run.info.run_name})"
    if p["model_version"]:
        try:
            mv = client.get_model_version(p["model_name"], p["model_version"])
        except mlflow.exceptions.MlflowException as e:
            return Hop("model", False, f"{p['model_name']} version {p['model_version']} not registered: {e}", data)
        if mv.run_id != run.info.run_id:
            return Hop("model", False, f"version {p['model_version']} belongs to run {mv.run_id}, not "
                                       f"{run.info.run_id}", data)
        data["promotion_reasons"] = mv.tags.get("promotion_reasons")
        detail = f"{p['model_name']} v{p['model_version']} ({p['model_alias'] or 'no alias'}), " + detail
    return Hop("model", True, detail, data)


def _tables_hop(settings: Settings, versions: dict[str, int]) -> Hop:
    broken, seen = [], {}
    for name, v in sorted(versions.items()):
        try:
            seen[name] = {"version": v, "rows": DeltaTable(str(settings.gold(name)), version=v)
                          .to_pyarrow_dataset().count_rows()}
        except Exception as e:  # an unreadable version is a broken link, whatever the cause
            broken.append(f"gold/{name}@v{v}: {type(e).__name__}: {e}")
    if broken:
        return Hop("feature tables", False, "; ".join(broken), seen)
    return Hop("feature tables", True, f"{len(seen)} gold tables readable at their recorded versions", seen)


def _feature_rows_hop(settings: Settings, p: dict, versions: dict[str, int]) -> Hop:
    """The cell's own count rows the features were built from, read at the recorded version."""
    v = versions.get("fct_cell_month_counts")
    if v is None:
        return Hop("feature rows", False, "the prediction did not record a version of gold/fct_cell_month_counts")
    first, last = p["data_months"].split("..")
    try:
        ds = DeltaTable(str(settings.gold("fct_cell_month_counts")), version=v).to_pyarrow_dataset()
    except Exception as e:
        return Hop("feature rows", False, f"gold/fct_cell_month_counts@v{v} unreadable: {e}")
    flt = ((pc.field("h3_cell") == p["h3_cell"]) & (pc.field("forecast_group") == p["forecast_group"])
           & (pc.field("month") <= last))
    rows = sorted(ds.to_table(filter=flt, columns=["month", "incident_count"]).to_pylist(), key=lambda r: r["month"])
    series: dict[str, int] = {}
    for r in rows:
        # The table is sparse and keyed by recording force, so a cell can have a row per force in a month.
        series[r["month"]] = series.get(r["month"], 0) + r["incident_count"]
    if not rows:
        # Counts are stored only where crime was recorded: no row is a zero, provided the cell is in the study
        # area the features read.
        cv = versions.get("dim_cells")
        try:
            cells = DeltaTable(str(settings.gold("dim_cells")), version=cv).to_pyarrow_dataset()
            known = cells.to_table(filter=pc.field("h3_cell") == p["h3_cell"], columns=["h3_cell"]).num_rows > 0
        except Exception as e:
            return Hop("feature rows", False, f"gold/dim_cells@v{cv} unreadable: {e}")
        if not known:
            return Hop("feature rows", False, f"cell {p['h3_cell']} is neither in gold/fct_cell_month_counts@v{v} "
                                              f"nor in the study area gold/dim_cells@v{cv}")
        return Hop("feature rows", True, f"no {p['forecast_group']} recorded in the cell up to {last}: every month "
                                        f"zero (gold/fct_cell_month_counts@v{v} stores only cells with crime; the "
                                        f"cell is in gold/dim_cells@v{cv}; trained on {first}..{last})",
                   {"counts": {}})
    return Hop("feature rows", True, f"{len(series)} months with {p['forecast_group']} recorded in the cell up to "
                                    f"{last}, every other month zero (gold/fct_cell_month_counts@v{v}; trained on "
                                    f"{first}..{last})", {"counts": series})


def _dbt_hop(manifest: Path = DBT_MANIFEST) -> Hop:
    if not manifest.exists():
        return Hop("dbt models", False, f"{manifest} missing: cannot show the models between bronze and gold")
    try:
        m = json.loads(manifest.read_text())
    except (OSError, ValueError) as e:
        return Hop("dbt models", False, f"{manifest} unreadable ({e}): cannot show the models between bronze and gold")
    parents = m["parent_map"]
    start = "model.crimelake.fct_cell_month_counts"
    chain, todo = set(), [start, "model.crimelake.fct_incidents"]
    while todo:
        node = todo.pop()
        if node in chain:
            continue
        chain.add(node)
        todo.extend(parents.get(node, []))
    models = sorted(n.split(".", 2)[-1] for n in chain if n.startswith("model."))
    sources = sorted(n.split(".", 2)[-1] for n in chain if n.startswith("source."))
    return Hop("dbt models", True, f"{len(models)} models from {len(sources)} bronze sources",
               {"models": models, "sources": sources})


def _bronze_hop(settings: Settings, p: dict, versions: dict[str, int], rehash: bool = False) -> tuple[Hop, Hop]:
    v = versions.get("fct_incidents")
    if v is None:
        none = Hop("bronze rows", False, "the prediction did not record a version of gold/fct_incidents")
        return none, Hop("extract files", False, "no bronze rows to follow")
    first, last = p["data_months"].split("..")
    try:
        ds = DeltaTable(str(settings.gold("fct_incidents")), version=v).to_pyarrow_dataset()
    except Exception as e:
        bad = Hop("bronze rows", False, f"gold/fct_incidents@v{v} unreadable: {e}")
        return bad, Hop("extract files", False, "no bronze rows to follow")
    flt = ((pc.field("h3_cell") == p["h3_cell"]) & (pc.field("month") >= first) & (pc.field("month") <= last))
    rows = ds.to_table(filter=flt, columns=["incident_id", "month", "source", "category_slug", "_source_file",
                                            "_source_sha256", "_source_line", "_contract"]).to_pylist()
    bronze = Hop("bronze rows", True, f"{len(rows)} incidents in cell {p['h3_cell']} from {first} to {last} "
                                     f"(gold/fct_incidents@v{v})", {"incidents": len(rows)})
    files: dict[str, dict] = {}
    for r in rows:
        f = files.setdefault(r["_source_file"], {"sha256_recorded": r["_source_sha256"], "contract": r["_contract"],
                                                 "lines": []})
        f["lines"].append(r["_source_line"])
    broken = []
    for name, f in sorted(files.items()):
        path = settings.home / name if not Path(name).is_absolute() else Path(name)
        f["lines"].sort()
        f["path"] = str(path)
        if not path.exists():
            f["status"] = "missing"
            broken.append(f"{name}: file missing")
        else:
            now, read = sha256_of(settings, path, rehash=rehash)
            f["sha256_now"] = now
            f["hashed"] = "read now" if read else "remembered (size and modification time unchanged)"
            f["status"] = "verified" if now == f["sha256_recorded"] else "changed"
            if now != f["sha256_recorded"]:
                broken.append(f"{name}: SHA-256 now {now[:12]}..., recorded {f['sha256_recorded'][:12]}...")
    detail = (f"{len(files)} files, all hashes match" if not broken else "; ".join(broken))
    return bronze, Hop("extract files", not broken, detail, {"files": files})


def trace(settings: Settings, prediction_id: str, *, rehash: bool = False) -> Trace:
    """Follow a prediction to its sources. Extract files are verified against their recorded SHA-256; a digest
    is re-read only when the file's size or modification time changed since it was last read, or with
    `rehash` (crimelake.hash_cache). The model hop is remembered the same way, against the MLflow store's file."""
    p = find_prediction(settings, prediction_id)
    versions = json.loads(p["feature_tables"])
    hops = [_model_hop(settings, p, rehash), _tables_hop(settings, versions), _feature_rows_hop(settings, p, versions),
            _dbt_hop()]
    hops.extend(_bronze_hop(settings, p, versions, rehash))
    return Trace(prediction_id, {k: v for k, v in p.items() if k != "feature_tables"}, hops)
