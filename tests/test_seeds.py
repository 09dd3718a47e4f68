"""The dbt seeds are generated from the data contracts: the committed files must say what the contracts say."""

from __future__ import annotations

from data_contracts import seeds


def test_committed_seeds_match_the_contracts():
    stale = [name for name, make in seeds.SEEDS.items() if (seeds.SEEDS_DIR / name).read_text() != make()]
    assert stale == [], f"regenerate with `make seeds`: {stale}"


def test_every_contract_label_is_a_seed_row():
    from data_contracts.loader import default_contracts

    text = seeds.contract_labels()
    n = sum(len(c.labels) for c in default_contracts().values())
    assert len(text.strip().splitlines()) == n + 1
