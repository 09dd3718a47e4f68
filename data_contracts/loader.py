"""Load and check the data contracts.

A contract is an Open Data Contract Standard (ODCS) v3 YAML file. The `open-data-contract-standard` package checks
its shape; this module checks its meaning (every mapped label is a shared category, every column a custom property
names exists) and turns it into a small, typed `Contract` the readers and the expectation suites work from.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from open_data_contract_standard.model import OpenDataContractStandard
from pydantic import ValidationError

CONTRACTS_DIR = Path(__file__).parent / "contracts"
TAXONOMY_PATH = Path(__file__).parent / "taxonomy.yaml"

LOGICAL_TYPES = {"string", "number", "integer", "date", "timestamp", "boolean"}


class ContractError(ValueError):
    """A contract file that is malformed or says something that cannot be true."""


@dataclass(frozen=True)
class Category:
    slug: str
    name: str
    groups: tuple[str, ...]
    police_discovered: bool


@dataclass(frozen=True)
class Taxonomy:
    categories: tuple[Category, ...]
    forecast_groups: dict[str, str]

    @property
    def slugs(self) -> set[str]:
        return {c.slug for c in self.categories}

    def by_slug(self, slug: str) -> Category:
        for c in self.categories:
            if c.slug == slug:
                return c
        raise KeyError(slug)


@dataclass(frozen=True)
class Column:
    name: str
    header: str
    logical_type: str
    required: bool = False
    unique: bool = False
    pattern: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    enum: tuple[str, ...] | None = None
    fmt: str | None = None
    classification: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class QualityRule:
    metric: str
    description: str
    severity: str
    arguments: dict[str, Any] = field(default_factory=dict)
    must_be: Any = None
    must_be_greater_than: Any = None
    must_be_less_than: Any = None


@dataclass(frozen=True)
class Contract:
    name: str
    version: str
    source: str
    entity: str
    path: Path
    sha256: str
    classification: str
    owner: str
    encoding: str
    delimiter: str
    filename_pattern: re.Pattern[str]
    month_column: str
    month_format: str
    columns: tuple[Column, ...]
    quality: tuple[QualityRule, ...]
    crs: str | None = None
    x: str | None = None
    y: str | None = None
    coords_required: bool = False
    area_code: str | None = None  # a column holding a GSS area code (E/W prefix: England, Wales) for each location
    force_column: str | None = None  # a column naming the police force each row falls within
    knife_column: str | None = None
    knife_true: tuple[str, ...] = ()
    label_column: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    suppression: dict[str, Any] | None = None
    custom: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.source, self.entity)

    @property
    def ref(self) -> str:
        """Name and version, as written into every bronze row's `_contract` column."""
        return f"{self.name}@{self.version}"

    @property
    def header(self) -> list[str]:
        return [c.header for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)


def _fail(path: Path, reason: str) -> ContractError:
    return ContractError(f"{path}: {reason}")


@cache
def load_taxonomy(path: Path = TAXONOMY_PATH) -> Taxonomy:
    raw = yaml.safe_load(path.read_text())
    cats = tuple(
        Category(c["slug"], c["name"], tuple(c["groups"]), bool(c["police_discovered"])) for c in raw["categories"]
    )
    groups = dict(raw["forecast_groups"])
    for c in cats:
        unknown = set(c.groups) - set(groups)
        if unknown:
            raise ContractError(f"{path}: category {c.slug} names unknown forecast groups {sorted(unknown)}")
    return Taxonomy(cats, groups)


def _column(path: Path, p: Any) -> Column:
    if p.logicalType not in LOGICAL_TYPES:
        raise _fail(path, f"property {p.name!r} has logicalType {p.logicalType!r}; expected one of {sorted(LOGICAL_TYPES)}")
    opts = p.logicalTypeOptions or {}
    if "pattern" in opts:
        try:
            re.compile(opts["pattern"])
        except re.error as e:
            raise _fail(path, f"property {p.name!r} has an invalid pattern: {e}") from e
    return Column(
        name=p.name,
        header=p.physicalName or p.name,
        logical_type=p.logicalType,
        required=bool(p.required),
        unique=bool(p.unique),
        pattern=opts.get("pattern"),
        minimum=opts.get("minimum"),
        maximum=opts.get("maximum"),
        enum=tuple(str(e.value) for e in p.enum) if p.enum else None,
        fmt=opts.get("format"),
        classification=p.classification,
        description=p.description,
    )


def parse_contract(path: Path, taxonomy: Taxonomy | None = None) -> Contract:
    """Read one contract file, check its shape with ODCS and its meaning here."""
    text = path.read_text()
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise _fail(path, f"not valid YAML: {e}") from e
    try:
        odcs = OpenDataContractStandard.model_validate(raw)
    except ValidationError as e:
        raise _fail(path, f"not a valid ODCS v3 contract: {e}") from e
    if not odcs.schema_ or len(odcs.schema_) != 1:
        raise _fail(path, "a contract describes exactly one schema object (one entity)")
    custom = {cp.property: cp.value for cp in (odcs.customProperties or [])}
    for needed in ("source", "entity", "file", "monthColumn", "classification", "owner"):
        if needed not in custom:
            raise _fail(path, f"customProperties lacks {needed!r}")
    obj = odcs.schema_[0]
    columns = tuple(_column(path, p) for p in (obj.properties or []))
    names = [c.name for c in columns]
    headers = [c.header for c in columns]
    for what, values in (("property name", names), ("column header", headers)):
        dupes = sorted({v for v in values if values.count(v) > 1})
        if dupes:
            raise _fail(path, f"duplicate {what}s {dupes}")

    def need_column(name: str | None, role: str) -> None:
        if name is not None and name not in names:
            raise _fail(path, f"{role} names column {name!r}, which the schema does not define")

    file = custom["file"]
    try:
        pattern = re.compile(file["filenamePattern"])
    except (KeyError, re.error) as e:
        raise _fail(path, f"file.filenamePattern missing or invalid: {e}") from e
    month = custom["monthColumn"]
    need_column(month.get("column"), "monthColumn")
    coords = custom.get("coordinates") or {}
    need_column(coords.get("x"), "coordinates.x")
    need_column(coords.get("y"), "coordinates.y")
    need_column(coords.get("areaCode"), "coordinates.areaCode")
    force_column = custom.get("forceColumn")
    need_column(force_column, "forceColumn")
    if force_column is not None and "force" not in pattern.groupindex:
        raise _fail(path, "forceColumn needs a file name pattern with a (?P<force>...) group to compare it with")
    knife = custom.get("knifeFlag") or {}
    need_column(knife.get("column"), "knifeFlag")
    if knife and not knife.get("trueValues"):
        raise _fail(path, "knifeFlag needs trueValues: the values that mean knife-enabled")
    mapping = custom.get("labelMapping") or {}
    need_column(mapping.get("column"), "labelMapping")
    labels = {str(k): str(v) for k, v in (mapping.get("labels") or {}).items()}
    taxonomy = taxonomy or load_taxonomy()
    unknown = sorted({v for v in labels.values() if v not in taxonomy.slugs})
    if unknown:
        raise _fail(path, f"labelMapping maps onto {unknown}, which are not shared categories")
    supp = custom.get("suppression")
    if supp:
        need_column(supp.get("column"), "suppression")

    quality = []
    for q in obj.quality or []:
        quality.append(
            QualityRule(
                metric=q.metric or q.rule or "",
                description=q.description or "",
                severity=q.severity or "error",
                arguments=dict(q.arguments or {}),
                must_be=q.mustBe,
                must_be_greater_than=q.mustBeGreaterThan,
                must_be_less_than=q.mustBeLessThan,
            )
        )
    desc = odcs.description.purpose if odcs.description and odcs.description.purpose else ""
    return Contract(
        name=odcs.name or path.stem,
        version=odcs.version,
        source=str(custom["source"]),
        entity=str(custom["entity"]),
        path=path,
        sha256=hashlib.sha256(text.encode()).hexdigest(),
        classification=str(custom["classification"]),
        owner=str(custom["owner"]),
        encoding=file.get("encoding", "utf-8"),
        delimiter=file.get("delimiter", ","),
        filename_pattern=pattern,
        month_column=month.get("column"),
        month_format=month.get("format"),
        columns=columns,
        quality=tuple(quality),
        crs=coords.get("crs"),
        x=coords.get("x"),
        y=coords.get("y"),
        coords_required=bool(coords.get("required", False)),
        area_code=coords.get("areaCode"),
        force_column=force_column,
        knife_column=knife.get("column"),
        knife_true=tuple(str(v) for v in knife.get("trueValues", ())),
        label_column=mapping.get("column"),
        labels=labels,
        suppression=supp,
        custom=custom,
        description=" ".join(desc.split()),
    )


def load_contracts(directory: Path = CONTRACTS_DIR) -> dict[tuple[str, str], Contract]:
    """Every contract in the folder, keyed by (source, entity)."""
    out: dict[tuple[str, str], Contract] = {}
    for path in sorted(directory.glob("*.yaml")):
        c = parse_contract(path)
        if c.key in out:
            raise _fail(path, f"{c.key} is already described by {out[c.key].path.name}")
        out[c.key] = c
    if not out:
        raise ContractError(f"{directory}: no contract files (*.yaml)")
    return out


@cache
def default_contracts() -> dict[tuple[str, str], Contract]:
    return load_contracts()
