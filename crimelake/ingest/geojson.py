"""Read a landed GeoJSON FeatureCollection into columns of text, as its contract describes it.

Each feature's properties carry the contract's columns; its geometry, when present, is the row's area (area_type
"geojson"), kept as compact GeoJSON text. The features are laid out one per line of a text buffer, so a feature's
"line" is its 1-based position in the collection and its raw text (in quarantine, for duplicates) is the feature
as JSON. A feature that is not a row is a bad line with its reason, never dropped; a file that is not a
FeatureCollection is rejected whole.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa

from crimelake.ingest.lines import split_lines
from crimelake.ingest.reader import BadLine, FileRejected, ParsedFile, sha256_of
from data_contracts.loader import Contract

GEOJSON_SUFFIXES = (".geojson",)
GEOMETRY = ("area", "area_type", "geojson")  # the column the geometry fills, the column naming its kind, and the kind


def is_geojson(path: Path) -> bool:
    return path.suffix.lower() in GEOJSON_SUFFIXES


def _features(data: bytes, encoding: str) -> list:
    try:
        doc = json.loads(data.decode(encoding).lstrip("\ufeff"))
    except (UnicodeDecodeError, ValueError) as e:
        raise FileRejected(f"not a GeoJSON file: {e}") from e
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection" or not isinstance(doc.get("features"), list):
        raise FileRejected("not a GeoJSON FeatureCollection (an object with type FeatureCollection and a features list)")
    return doc["features"]


def count_features(data: bytes, encoding: str = "utf-8") -> int:
    """Features of a GeoJSON file, counted apart from the row parser, for the ingest's accounting (0 when the file
    is not a FeatureCollection: it is then rejected whole)."""
    try:
        return len(_features(data, encoding))
    except FileRejected:
        return 0


def _cell(value) -> str | None:
    """A property value as column text; lists (target groups, cells, codes) joined with ';'."""
    if value is None:
        return ""
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return ";".join(str(v) for v in value)
    if isinstance(value, str | int | float):
        return str(value)
    return None  # an object or nested list: not a value any column holds


def _feature_row(feature, contract: Contract) -> tuple[list[str] | None, str]:
    """A feature's values in contract column order, or None and the reason it is not a row."""
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        return None, "not a GeoJSON Feature"
    props = feature.get("properties") or {}
    if not isinstance(props, dict):
        return None, "feature properties are not an object"
    unexpected = sorted(set(props) - set(contract.header))
    if unexpected:
        return None, f"feature properties not in contract {contract.ref}: {unexpected}"
    values = {}
    for h in contract.header:
        v = _cell(props.get(h))
        if v is None:
            return None, f"{h}: {json.dumps(props.get(h))[:80]} is not a text, number or list of them"
        values[h] = v
    area, kind_col, kind = GEOMETRY
    geometry = feature.get("geometry")
    if geometry is not None and area in values:
        if values[area]:
            return None, f"{area}: given both as a property and as the feature's geometry"
        if values.get(kind_col, "") not in ("", kind):
            return None, f"{kind_col}: {values[kind_col]!r} but the feature has a geometry (area_type {kind})"
        values[area] = json.dumps(geometry, separators=(",", ":"))
        values[kind_col] = kind
    return [values[h] for h in contract.header], ""


def parse_geojson(path: Path, data: bytes, contract: Contract, *, sha256: str | None = None) -> ParsedFile:
    """Rows of a GeoJSON FeatureCollection: a feature that is not a row is a bad line, numbered by its position."""
    features = _features(data, contract.encoding)
    raws = [json.dumps(f, separators=(",", ":"), ensure_ascii=False) for f in features]
    lines = split_lines("\n".join(raws).encode("utf-8")) if raws else split_lines(b"")
    rows, at, bad = [], [], []
    for i, f in enumerate(features):
        row, reason = _feature_row(f, contract)
        if row is None:
            bad.append(BadLine(i + 1, raws[i], reason))
        else:
            rows.append(row)
            at.append(i + 1)
    columns = {c.name: pa.array([r[k] for r in rows], pa.string()) for k, c in enumerate(contract.columns)}
    return ParsedFile(path=path, sha256=sha256 or sha256_of(data), size=len(data), columns=columns,
                      lines=np.asarray(at, dtype=np.int64), text=lines, bad=bad)
