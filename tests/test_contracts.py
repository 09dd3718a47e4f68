"""Data contracts: every file is a valid ODCS contract and means something true."""

from __future__ import annotations

from pathlib import Path

import pytest

from data_contracts.loader import (
    ContractError,
    default_contracts,
    load_contracts,
    load_taxonomy,
    parse_contract,
)

EXPECTED = {
    ("police_uk", "street"), ("police_uk", "outcomes"), ("police_uk", "stop_and_search"),
    ("force_rms_ho", "crimes"), ("force_rms_text", "crimes"), ("la_reports", "reports"),
    ("social_care", "indicators"), ("interventions", "log"),
}


def test_every_source_entity_has_one_contract():
    assert set(default_contracts()) == EXPECTED


def test_taxonomy_is_the_14_data_police_uk_categories():
    tax = load_taxonomy()
    assert len(tax.categories) == 14
    assert {g for c in tax.categories for g in c.groups} == {"all_crime", "asb", "violence", "theft", "weapons"}
    assert "asb" not in tax.by_slug("burglary").groups


def test_police_uk_street_maps_all_14_published_labels():
    c = default_contracts()[("police_uk", "street")]
    assert set(c.labels.values()) == load_taxonomy().slugs
    assert c.header[:3] == ["Crime ID", "Month", "Reported by"]


def test_every_contract_states_owner_classification_and_crs():
    for c in default_contracts().values():
        assert c.owner and c.classification in {"open", "sensitive", "personal"}
        if c.x:
            assert c.crs in {"EPSG:4326", "EPSG:27700"}


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return p


def test_label_mapped_to_an_unknown_category_is_refused(tmp_path):
    src = default_contracts()[("police_uk", "street")].path.read_text()
    bad = src.replace("Burglary: burglary", "Burglary: housebreaking")
    with pytest.raises(ContractError, match=r"not shared categories.*housebreaking|housebreaking.*not shared"):
        parse_contract(_write(tmp_path, bad))


def test_custom_property_naming_a_missing_column_is_refused(tmp_path):
    src = default_contracts()[("force_rms_ho", "crimes")].path.read_text()
    bad = src.replace("column: knife_flag", "column: knife")
    with pytest.raises(ContractError, match="knifeFlag names column 'knife'"):
        parse_contract(_write(tmp_path, bad))


def test_invalid_odcs_shape_is_refused_with_the_file_named(tmp_path):
    src = default_contracts()[("social_care", "indicators")].path.read_text()
    bad = src.replace("schema:\n", "schema: 12\nignored:\n", 1)
    with pytest.raises(ContractError, match=r"c\.yaml: not a valid ODCS v3 contract"):
        parse_contract(_write(tmp_path, bad))


def test_two_contracts_for_one_entity_are_refused(tmp_path):
    src = default_contracts()[("la_reports", "reports")].path.read_text()
    (tmp_path / "a.yaml").write_text(src)
    (tmp_path / "b.yaml").write_text(src)
    with pytest.raises(ContractError, match="already described by a.yaml"):
        load_contracts(tmp_path)
