"""The map API under abuse: refusals audited in batches off the request path, rate limits with Retry-After."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from crimelake import audit, lake
from crimelake.serve.app import create_app
from crimelake.serve.guards import AuditBuffer, RateLimiter


def test_a_bucket_allows_its_burst_then_says_how_long_to_wait():
    limiter = RateLimiter(rate=2.0, burst=3)
    assert [limiter.take("a", now=0.0) for _ in range(3)] == [None, None, None]
    assert limiter.take("a", now=0.0) == pytest.approx(0.5)
    assert limiter.peek("b", now=0.0) is None  # buckets are per name
    assert limiter.take("a", now=0.5) is None  # refilled one token in half a second
    assert limiter.peek("a", now=0.5) == pytest.approx(0.5)


def test_buffered_entries_are_written_in_one_commit_and_none_is_lost(settings):
    buffer = AuditBuffer(settings, flush_seconds=3600)
    for i in range(300):
        buffer.add("refused", "/api/meta", {"n": i}, who="public")
    assert buffer.pending() == 300 and not lake.table_exists(settings.lake / "audit" / "log")
    assert buffer.flush() == 300
    assert lake.version(settings.lake / "audit" / "log") == 0  # one commit
    buffer.add("view", "cell", {"n": 300}, who="x")
    buffer.close()  # what is queued at shutdown is written
    assert sorted(int(e["detail"].split(": ")[1].rstrip("}")) for e in audit.entries(settings)) == list(range(301))


def _stop_the_clock(app) -> None:
    """The limiters see no time pass: a slow machine's requests would otherwise refill the buckets between them."""
    for limiter in (app.state.limits.requests, app.state.limits.refusals):
        limiter.clock = lambda: 1000.0


@pytest.mark.integration
@pytest.mark.xdist_group("map")
def test_a_refusal_flood_commits_in_batches_and_is_then_rate_limited(map_home, monkeypatch):
    monkeypatch.setenv("CRIMELAKE_REFUSALS_PER_MINUTE", "30")
    app = create_app(map_home, refresh_seconds=0)
    _stop_the_clock(app)
    log = map_home.lake / "audit" / "log"
    before = lake.version(log) if lake.table_exists(log) else -1
    flood = TestClient(app, client=("10.0.0.9", 50000))
    statuses = [flood.get("/api/meta", headers={"Authorization": "Bearer ck_guess"}).status_code
                for _ in range(300)]
    # Thirty unknown keys are refused (401); then the address's keyed requests get 429 with Retry-After.
    assert statuses[:30] == [401] * 30 and set(statuses[30:]) == {429}
    r = flood.get("/api/meta", headers={"Authorization": "Bearer ck_guess"})
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1 and "retry after" in r.json()["detail"]
    # Keyless public requests from the same address are still served, and another address is untouched.
    assert flood.get("/api/meta").status_code == 200
    assert TestClient(app, client=("10.0.0.1", 50000)).get("/api/meta").status_code == 200
    app.state.audits.flush()
    # Every refusal audited (the 401s; the 429s turned away before any key was looked at), in a few commits.
    refused = [e for e in audit.entries(map_home) if e["action"] == "refused" and '"10.0.0.9"' in e["detail"]]
    assert len(refused) == 30
    assert lake.version(log) - before <= 5


@pytest.mark.integration
@pytest.mark.xdist_group("map")
def test_the_address_limit_answers_429_with_retry_after(map_home, monkeypatch):
    monkeypatch.setenv("CRIMELAKE_RATE_PER_SECOND", "0.5")
    monkeypatch.setenv("CRIMELAKE_RATE_BURST", "5")
    app = create_app(map_home, refresh_seconds=0)
    _stop_the_clock(app)
    client = TestClient(app, client=("10.0.0.7", 50000))
    codes = [client.get("/api/meta").status_code for _ in range(7)]
    assert codes[:5] == [200] * 5 and codes[5:] == [429, 429]
    assert client.get("/").status_code == 200  # the page itself is not an API call
