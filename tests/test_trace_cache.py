"""The trace's model hop is remembered while the MLflow store's file is unchanged, as extract digests are: asked
again when the store changes, when a re-check is asked for, and whenever the last answer was a broken link."""

from __future__ import annotations

import os

import pytest

from crimelake import hash_cache, trace

PREDICTION = {"mlflow_run_id": "r1", "model_name": "crimelake-hotspots-all_crime", "model_version": "3",
              "model_alias": "champion"}


@pytest.fixture
def asked(settings, monkeypatch):
    """Counts the questions put to MLflow; the store file exists, its content is not read by the fake."""
    store = settings.home / "mlflow" / "mlflow.db"
    store.parent.mkdir(parents=True, exist_ok=True)
    store.write_bytes(b"store")
    calls = []
    answer = {"ok": True}

    def ask(_settings, p):
        calls.append(p["mlflow_run_id"])
        return trace.Hop("model", answer["ok"], f"asked {len(calls)}", {"run_id": p["mlflow_run_id"]})

    monkeypatch.setattr(trace, "_ask_mlflow", ask)
    return store, calls, answer


def test_a_verified_model_hop_is_remembered_until_the_store_changes(settings, asked):
    store, calls, _ = asked
    first = trace._model_hop(settings, PREDICTION)
    again = trace._model_hop(settings, PREDICTION)
    assert len(calls) == 1 and first.ok and again.ok
    assert first.data["checked"] == "read now" and again.data["checked"].startswith("remembered")
    assert again.detail == first.detail and again.data["run_id"] == "r1"

    # Another prediction of another run is its own question.
    trace._model_hop(settings, {**PREDICTION, "mlflow_run_id": "r2"})
    assert calls == ["r1", "r2"]

    st = store.stat()
    os.utime(store, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert trace._model_hop(settings, PREDICTION).data["checked"] == "read now"
    assert len(calls) == 3
    # A journal beside the store means a write in progress: not the store that was read.
    store.with_name("mlflow.db-journal").write_bytes(b"j")
    trace._model_hop(settings, PREDICTION)
    assert len(calls) == 4

    assert trace._model_hop(settings, PREDICTION, rehash=True).data["checked"] == "read now"
    assert len(calls) == 5


def test_a_broken_model_hop_is_asked_again_every_time(settings, asked):
    _, calls, answer = asked
    answer["ok"] = False
    assert not trace._model_hop(settings, PREDICTION).ok
    assert not trace._model_hop(settings, PREDICTION).ok
    assert len(calls) == 2


def test_a_tracking_server_is_always_asked(settings, asked, monkeypatch):
    _, calls, _ = asked
    monkeypatch.setattr(type(settings), "mlflow_uri", property(lambda _s: "http://127.0.0.1:5000"))
    trace._model_hop(settings, PREDICTION)
    trace._model_hop(settings, PREDICTION)
    assert len(calls) == 2


def test_stamp_names_absent_files_and_changes_with_size(tmp_path):
    f = tmp_path / "a"
    absent = hash_cache.stamp([f])
    f.write_bytes(b"1")
    one = hash_cache.stamp([f])
    f.write_bytes(b"12")
    assert len({absent, one, hash_cache.stamp([f])}) == 3
