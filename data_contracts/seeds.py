"""Write the dbt seeds that come from the contracts and reference data, so there is one source of truth.

`python -m data_contracts.seeds` regenerates `dbt_project/seeds/`; a test fails when the committed seeds differ
from what the contracts say.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from data_contracts.loader import default_contracts, load_taxonomy

SEEDS_DIR = Path(__file__).resolve().parent.parent / "dbt_project" / "seeds"
GROUPS = ("all_crime", "asb", "violence", "theft", "weapons")


def csv_text(header: list[str], rows: list[list]) -> str:
    """A header and rows as CSV text (LF line ends), as the seeds and landed files are written."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def crime_categories() -> str:
    tax = load_taxonomy()
    rows = [[c.slug, c.name, str(c.police_discovered).lower(), *(str(g in c.groups).lower() for g in GROUPS)]
            for c in tax.categories]
    return csv_text(["category_slug", "category_name", "police_discovered", *(f"in_{g}" for g in GROUPS)], rows)


def contract_labels() -> str:
    rows = []
    for c in sorted(default_contracts().values(), key=lambda c: c.key):
        for label, slug in sorted(c.labels.items()):
            rows.append([c.source, c.entity, c.ref, c.column(c.label_column).header, label, slug])
    return csv_text(["source", "entity", "contract", "source_column", "source_label", "category_slug"], rows)


def report_kinds() -> str:
    c = default_contracts()[("la_reports", "reports")]
    kinds = c.custom.get("reportKind") or {}
    return csv_text(["report_category", "report_kind"], [[k, v] for k, v in sorted(kinds.items())])


def forces() -> str:
    from crimelake.reference.forces import FORCES

    rows = [[f.slug, f.name, "wales" if f.welsh else "england" if f.is_territorial else "england and wales"]
            for f in sorted(FORCES, key=lambda f: f.slug)]
    return csv_text(["force_slug", "force_name", "country"], rows)


SEEDS = {
    "crime_categories.csv": crime_categories,
    "contract_labels.csv": contract_labels,
    "report_kinds.csv": report_kinds,
    "forces.csv": forces,
}


def write(directory: Path = SEEDS_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for name, make in SEEDS.items():
        p = directory / name
        p.write_text(make())
        out.append(p)
    return out


if __name__ == "__main__":
    for p in write():
        print(p)
