"""Backtest origins kept between runs, so that a new month costs one new origin rather than the whole backtest.

An origin's scores depend only on what it reads: the horizon, the study area as of the origin (cells with crime in
the months it reads), their counts and observed mask up to and including the scored month, their attributes, the context the features read
(stop and search, outcomes, the area indicators of the quarters before it), the methods, the model's parameters
and the forecasting code itself. ``origin_key`` hashes all of that (BLAKE2b), so an entry is reused only when a
fresh computation would read exactly the same inputs; a late delivery, a re-coded category, new parameters or a
change to any module of ``ml`` gives a new key and the origin is computed again.

Entries are small Parquet files (one row per method: its scores and the cells it flagged at 5%, for the flag-drift
measure) under one folder per forecast group. Entries not used for ``KEEP_DAYS`` days are pruned.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ml.features import Context, _quarter_before, data_cut
from ml.panel import Panel

# The modules whose code decides an origin's scores; editing any of them invalidates every entry.
CODE_MODULES = ("backtest", "baselines", "cell_months", "features", "intervals", "metrics", "model", "panel")
KEEP_DAYS = 60


@functools.cache
def code_fingerprint() -> str:
    """A digest of the forecasting code and the numerical libraries it runs on."""
    import scipy
    import xgboost

    h = hashlib.blake2b(digest_size=16)
    here = Path(__file__).parent
    for name in CODE_MODULES:
        h.update((here / f"{name}.py").read_bytes())
    for lib in (np, pd, scipy, xgboost):
        h.update(f"{lib.__name__}={lib.__version__};".encode())
    return h.hexdigest()


def _text(h, values) -> None:
    h.update("\x1f".join("" if v is None else str(v) for v in values).encode())
    h.update(b"\x1e")


def _array(h, a: np.ndarray) -> None:
    a = np.ascontiguousarray(a)
    h.update(f"{a.dtype.str}{a.shape};".encode())
    h.update(a.tobytes())


def _cell_digests(panel: Panel) -> np.ndarray:
    """Per cell, one 64-bit digest of its id and force (pandas' vectorised hashing), computed once per panel. The
    LSOA enters each origin's key as known before it (``Context.lsoa_before``)."""
    cache = panel.cache()
    if "cell_digests" not in cache:
        parts = [pd.util.hash_array(np.asarray(a, dtype=object)) for a in (panel.cells, panel.force)]
        cache["cell_digests"] = np.column_stack(parts)
    return cache["cell_digests"]


def _indicator_digest(panel: Panel, context: Context, quarter: str) -> str:
    """Digest of every area indicator row of ``quarter`` or earlier (all areas: a superset of what an origin
    reads, so a change anywhere recomputes rather than risk a stale entry), once per panel, context and quarter."""
    cache = panel.cache()
    key = ("indicator_digest", id(context), quarter)
    if key not in cache:
        ind = context.indicators
        ind = ind[ind["quarter"] <= quarter].sort_values(["lsoa_code", "quarter"]).reset_index(drop=True)
        h = hashlib.blake2b(digest_size=20)
        _text(h, list(ind.columns))
        _array(h, pd.util.hash_pandas_object(ind, index=False).to_numpy())
        cache[key] = h.hexdigest()
    return cache[key]


def _prefix_digest(panel: Panel, name: tuple, matrix: np.ndarray, last: int, single: bool) -> np.ndarray:
    """Per cell, one 64-bit digest of the cell's values in months 0..``last`` (as single precision with ``single``):
    pandas' vectorised hashing chained month by month, so an origin hashes one digest per cell of its study area
    rather than every month before it. Only the latest chain of a series is kept, and continued when a later month
    is asked for (origins come in order); what each origin needs of it is kept by ``_through``, a few bytes."""
    kept: dict[int, np.ndarray] = panel.cache().setdefault(("prefix_digests", *name), {})
    if last not in kept:
        start = max((m for m in kept if m < last), default=-1)
        chain = kept[start] if start >= 0 else np.zeros(matrix.shape[0], dtype=np.uint64)
        for m in range(start + 1, last + 1):
            column = matrix[:, m].astype(np.float32) if single else matrix[:, m]
            # pandas' 64-bit hash is a bijection: two cells' chains meet only if chain ^ value do.
            chain = pd.util.hash_array(chain ^ _bits(column))
        kept.clear()
        kept[last] = chain
    return kept[last]


def _bits(column: np.ndarray) -> np.ndarray:
    """Each value's bits as a 64-bit word (booleans as 0 or 1; other kinds by pandas' hash of the value)."""
    a = np.ascontiguousarray(column)
    if a.dtype.kind == "b":
        return a.astype(np.uint64)
    if a.dtype.kind in "fiu" and a.dtype.itemsize in (4, 8):
        return a.view(np.uint64) if a.dtype.itemsize == 8 else a.view(np.uint32).astype(np.uint64)
    return pd.util.hash_array(a)


def _lsoa_digests(panel: Panel, context: Context, cut: int) -> np.ndarray:
    """Per cell, a 64-bit digest of the LSOA the features of a forecast with data cut ``cut`` may read (pandas'
    hash of each value on its own, so a study area's digests are these, indexed), once per panel, context and cut."""
    cache = panel.cache()
    key = ("lsoa_digests", id(context), cut)
    if key not in cache:
        cache[key] = pd.util.hash_array(np.asarray(context.lsoa_before(panel, cut), dtype=object))
    return cache[key]


def _mask_digest(mask: np.ndarray) -> bytes:
    return hashlib.blake2b(np.packbits(mask).tobytes() + f";{len(mask)}".encode(), digest_size=16).digest()


def _through(h, panel: Panel, name: tuple, matrix: np.ndarray, known: np.ndarray, area: bytes, last: int,
             label: str | None = None, single: bool = False) -> None:
    """Hash the values of the ``known`` cells in months 0..``last`` (nothing when ``last`` < 0), under ``label``
    (default: the name); ``area`` is ``_mask_digest(known)``. The digest of each series, month and study area is worked out once per panel and kept
    (20 bytes): the forecast groups of a run key the same origins over the same series, and a national panel then
    holds one chain per series rather than one per origin (about 2.5 MB each)."""
    _text(h, [label or "/".join(map(str, name)), f"through={last}"])
    if last < 0:
        return
    done: dict[tuple, bytes] = panel.cache().setdefault(("through", *name), {})
    key = (last, area)
    if key not in done:
        part = hashlib.blake2b(digest_size=20)
        _array(part, _prefix_digest(panel, name, matrix, last, single)[known])
        done[key] = part.digest()
    h.update(done[key])


def origin_key(panel: Panel, group: str, t: int, known: np.ndarray, context: Context | None,
               methods: list[str], params: dict | None, horizon: int = 1) -> str:
    """The digest of everything the forecast of month ``t`` of ``group`` at ``horizon`` reads (see the module
    docstring)."""
    h = hashlib.blake2b(digest_size=20)
    _text(h, [code_fingerprint(), group, f"horizon={horizon}", *methods, repr(sorted((params or {}).items()))])
    _inputs(h, panel, t, known, context, data_cut(t, horizon), through=t)
    return h.hexdigest()


def model_key(panel: Panel, group: str, t: int, known: np.ndarray, context: Context | None, params: dict | None,
              horizon: int, dispersion: float | None) -> str:
    """The digest of everything the model that forecasts month ``t`` at ``horizon`` is fitted on: what its origin's
    key covers less the scored month and after (the counts up to the month before the data cut), and the
    dispersion its intervals were given. The model published as month ``t``'s forecast and the model a later
    backtest fits for origin ``t`` have the same key when their inputs are the same."""
    h = hashlib.blake2b(digest_size=20)
    cut = data_cut(t, horizon)
    _text(h, [code_fingerprint(), "model", group, f"horizon={horizon}", panel.month_label(t),
              repr(sorted((params or {}).items())), repr(None if dispersion is None else float(dispersion))])
    _inputs(h, panel, cut - 1, known, context, cut, through=cut - 1)
    return h.hexdigest()


def _inputs(h, panel: Panel, t: int, known: np.ndarray, context: Context | None, cut: int, through: int) -> None:
    """Hash the months up to ``t``, the ``known`` cells' attributes, their counts and observed mask up to
    ``through``, and the context the features of a forecast with data cut ``cut`` read."""
    _text(h, panel.months[: t + 1])
    _array(h, _cell_digests(panel)[known])
    _array(h, panel.area_km2[known])
    _array(h, panel.xy[known])
    area = _mask_digest(known)
    _through(h, panel, ("observed",), panel.observed, known, area, through)
    for g in sorted(panel.counts):
        # Counts are whole numbers (NaN where unobserved), hashed as single precision whatever the panel's dtype.
        _through(h, panel, ("counts", g), panel.counts[g], known, area, through, single=True)
    if context is None:
        _text(h, ["no context"])
        return
    al = context.aligned(panel)
    for part in ("stop_search", "outcomes"):
        for name in sorted(al[part]):
            _through(h, panel, ("context", id(context), part, name), al[part][name], known, area, cut - 1,
                     label=f"{part}/{name}", single=True)
    _array(h, _lsoa_digests(panel, context, cut)[known])
    _text(h, [_indicator_digest(panel, context, _quarter_before(panel.month_label(cut)))])


class OriginCache:
    """Backtest origins on disk, one folder per forecast group: ``get`` and ``put`` by ``origin_key``."""

    def __init__(self, root: Path, keep_days: int = KEEP_DAYS):
        self.root = Path(root)
        self.keep_days = keep_days

    def _path(self, group: str, key: str) -> Path:
        return self.root / group / f"{key}.parquet"

    def get(self, group: str, key: str) -> tuple[list[dict], dict[str, set]] | None:
        """The origin's score rows (one per method) and the cells each method flagged, or None."""
        path = self._path(group, key)
        try:
            frame = pd.read_parquet(path)
        except (FileNotFoundError, OSError, ValueError):
            return None
        os.utime(path)  # pruning goes by last use
        flags = {m: set(f) for m, f in zip(frame["method"], frame.pop("flags"), strict=True)}
        return frame.to_dict("records"), flags

    def put(self, group: str, key: str, rows: list[dict], flags: dict[str, set]) -> None:
        """Store an origin atomically (written aside, then renamed), so a killed run leaves no half entry."""
        path = self._path(group, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        frame = pd.DataFrame(rows)
        frame["flags"] = [sorted(flags[m]) for m in frame["method"]]
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, path)

    def _model_paths(self, group: str, key: str) -> tuple[Path, Path]:
        base = self.root / group / f"model-{key}"
        return base.with_suffix(".ubj"), base.with_suffix(".json")

    def get_model(self, group: str, key: str):
        """The model stored under ``key`` (``model_key``), or None (also when the entry is damaged)."""
        from xgboost.core import XGBoostError

        from ml.model import TrainedModel

        booster, meta = self._model_paths(group, key)
        try:
            model = TrainedModel.load(booster.read_bytes(), json.loads(meta.read_text()))
        except (OSError, ValueError, KeyError, TypeError, XGBoostError):
            return None
        for p in (booster, meta):
            os.utime(p)
        return model

    def has_model(self, group: str, key: str) -> bool:
        """Whether a model is stored under ``key`` (its description written: the last step of ``put_model``)."""
        return self._model_paths(group, key)[1].is_file()

    def put_model(self, group: str, key: str, model) -> None:
        """Store a fitted model under ``key``: its booster, then its description (each written aside and renamed;
        an entry counts once its description is there)."""
        booster, meta = self._model_paths(group, key)
        booster.parent.mkdir(parents=True, exist_ok=True)
        raw, described = model.save()
        tmp = booster.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(raw)
        os.replace(tmp, booster)
        tmp = meta.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(described))
        os.replace(tmp, meta)

    def prune(self, group: str) -> int:
        """Delete the group's entries unused for ``keep_days`` days (and stray temporary files); returns how many."""
        folder = self.root / group
        if not folder.is_dir():
            return 0
        now = time.time()
        gone = 0
        for p in folder.iterdir():
            age = now - p.stat().st_mtime
            if age > self.keep_days * 86400 or (p.suffix == ".tmp" and age > 3600):
                p.unlink(missing_ok=True)
                gone += 1
        return gone
