"""The map page in a real (headless) Chromium against the map server over a small lake built by the real
pipeline: the public view, the month and group controls, the cell panel, signing in as an analyst (street-level
cells, forecasts) and as an auditor (tracing a prediction)."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("CRIMELAKE_CHROMIUM", "/usr/bin/chromium"))

# Checked before any fixture runs, so a machine without a browser does not build the map's lake for nothing.
pytestmark = [
    pytest.mark.integration, pytest.mark.browser, pytest.mark.xdist_group("map"),
    # CI sets CRIMELAKE_REQUIRE_BROWSER so that a missing browser fails the run instead of skipping the test.
    pytest.mark.skipif(not CHROMIUM.is_file() and not os.environ.get("CRIMELAKE_REQUIRE_BROWSER"), reason=f"no Chromium at {CHROMIUM}: install Debian's chromium "
                       "or set CRIMELAKE_CHROMIUM to a Chromium binary"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="the browser tests need Playwright for Python")

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
VIEWPORT = {"width": 1280, "height": 800}

# A count of 1 to 4 written as a number of offences: what the public view must never show.
SMALL_COUNT = re.compile(r"(?<![\d.,])[1-4] offences?\b")

# The centre of the first path of a pane that is really on top there (not under the legend or another pane),
# so a click lands on that path. Suppressed cells are skipped when `withValue` is set.
PICK_PATH = """([pane, withValue]) => {
  for (const el of document.querySelectorAll(`.leaflet-${pane}-pane path.leaflet-interactive`)) {
    if (withValue && el.getAttribute('fill') === 'url(#hatch-suppressed)') continue;
    const r = el.getBoundingClientRect();
    const x = r.x + r.width / 2, y = r.y + r.height / 2;
    if (r.width > 2 && document.elementFromPoint(x, y) === el) return [x, y];
  }
  return null;
}"""


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    profile = tmp_path_factory.mktemp("chromium")
    env = {**os.environ, "XDG_CONFIG_HOME": str(profile / "config"), "XDG_CACHE_HOME": str(profile / "cache")}
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, env=env)
        yield browser
        browser.close()


@pytest.fixture
def page_and_errors(browser):
    """A fresh page (its own session storage) and the console errors and uncaught exceptions it logs."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
    yield page, errors
    context.close()


def _wait_ready(page, **attrs: str) -> None:
    selector = "#map[data-state=ready]" + "".join(f"[data-{k}='{v}']" for k, v in attrs.items())
    page.wait_for_selector(selector, state="attached")


def _map_attr(page, name: str) -> str:
    return page.get_attribute("#map", f"data-{name}") or ""


def _click_path(page, pane: str, *, with_value: bool = False) -> None:
    point = page.evaluate(PICK_PATH, [pane, with_value])
    assert point, f"no clickable path in the {pane} pane"
    page.mouse.move(*point)
    page.mouse.click(*point)


def _sign_in(page, key: str, role: str) -> None:
    page.fill("#signin-key", key)
    page.click("#signin-button")
    page.wait_for_selector(f"#role[data-role={role}]")
    _wait_ready(page)


def _screenshot(page, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    page.screenshot(path=str(path), animations="disabled")
    artifacts = Path(os.environ.get("CRIMELAKE_TEST_ARTIFACTS", tmp_path))
    if artifacts.resolve() != tmp_path.resolve():
        artifacts.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, artifacts / name)
    return path


def test_public_map_months_groups_and_cell_panel(map_server, page_and_errors, tmp_path):
    expect = sync_api.expect
    page, errors = page_and_errors
    page.goto(f"{map_server.url}/")
    _wait_ready(page)
    assert int(_map_attr(page, "cells")) > 0
    assert page.locator("path.leaflet-interactive").count() > 0
    assert _map_attr(page, "resolution") == "7"
    expect(page.locator("#role")).to_have_text("public")
    expect(page.locator("#freshness")).to_contain_text("Data to ")
    expect(page.locator("#layer-emerging")).to_be_disabled()
    expect(page.locator("#layer-emerging")).not_to_be_checked()
    # Why it is off, on hover and in the legend, in the API's own terms.
    expect(page.locator("#layer-emerging-label")).to_have_attribute("title", re.compile("analysts for their own force"))
    expect(page.locator("#legend-emerging-note")).to_contain_text("analysts for their own force")
    expect(page.locator("#legend")).to_contain_text("fewer than 5 (suppressed)")
    expect(page.locator("#legend")).to_contain_text("Forecast for ")

    months = page.evaluate("() => fetch('/api/meta').then(r => r.json()).then(m => m.months)")
    assert _map_attr(page, "month") == months[-1]

    page.select_option("#group", "asb")
    _wait_ready(page, group="asb")
    assert int(_map_attr(page, "cells")) > 0

    page.click("#month-prev")
    _wait_ready(page, group="asb", month=months[-2])
    assert int(_map_attr(page, "cells")) > 0
    assert page.locator(".leaflet-counts-pane path.leaflet-interactive").count() == int(_map_attr(page, "cells"))

    _click_path(page, "counts")
    panel = page.locator("#cell-panel")
    expect(panel).to_be_visible()
    points = page.locator("#cell-history svg circle")
    expect(points.first).to_be_visible()
    assert points.count() >= 2
    expect(page.locator("#cell-forecast")).to_be_visible()

    text = panel.inner_text()
    assert not SMALL_COUNT.search(text), f"the public panel shows a suppressed count: {text}"
    cell = page.locator("#cell-panel .cell-id").inner_text().strip()
    detail = page.evaluate("(cell) => fetch(`/api/cells/${cell}?group=asb`).then(r => r.json())", cell)
    titles = points.evaluate_all("(els) => els.map(e => e.textContent)")
    for row in detail["history"]:
        if row["suppressed"]:
            assert any(t.startswith(_month_name(row["month"])) and "fewer than 5" in t for t in titles), row
    assert not any(SMALL_COUNT.search(t) for t in titles), titles
    # The public forecast is drawn as its protected value, without an interval (one is published at street
    # level only).
    if detail["forecast"]:
        forecast_point = page.locator("#cell-history svg .forecast-point")
        expect(forecast_point).to_have_count(1)
        assert not SMALL_COUNT.search(forecast_point.text_content())
        assert page.locator("#cell-history svg .forecast-interval").count() == 0

    _screenshot(page, tmp_path, "map-public.png")
    page.click("#cell-close")
    expect(panel).to_be_hidden()
    assert not errors, errors


def test_analyst_and_auditor_sign_in(map_server, page_and_errors, tmp_path):
    expect = sync_api.expect
    page, errors = page_and_errors
    page.goto(f"{map_server.url}/")
    _wait_ready(page)
    page.select_option("#force", "bedfordshire")
    _wait_ready(page, force="bedfordshire")
    public_cells = int(_map_attr(page, "cells"))
    assert _map_attr(page, "resolution") == "7"

    _sign_in(page, map_server.keys["analyst"], "analyst")
    expect(page.locator("#role")).to_contain_text("analyst")
    expect(page.locator("#role")).to_contain_text("Bedfordshire")
    assert page.input_value("#force") == "bedfordshire"
    _wait_ready(page, force="bedfordshire", resolution="9")
    assert int(_map_attr(page, "cells")) > public_cells
    expect(page.locator("#layer-emerging")).to_be_enabled()
    expect(page.locator("#signout-button")).to_be_visible()

    _click_path(page, "forecast")
    forecast = page.locator("#cell-forecast")
    expect(forecast).to_contain_text("Forecast for ")
    expect(forecast).to_contain_text(re.compile(r"crimelake-hotspots-all_crime v\d+"))
    expect(page.locator("#cell-history svg circle").first).to_be_visible()
    _assert_forecast_drawn(page, map_server.keys["analyst"])
    expect(forecast).to_contain_text("90% interval")
    _screenshot(page, tmp_path, "map-analyst-forecast.png")
    assert page.locator("#cell-trace").count() == 0, "an analyst may not trace predictions"
    # The rank says of how many cells; the incident list gives outcome, location and reference, and exports.
    expect(forecast).to_contain_text(re.compile(r"\d+(st|nd|rd|th) of [\d,]+ cells"))
    page.locator("#cell-incidents").click()
    listed = page.locator("#cell-incidents-list")
    expect(listed).to_contain_text("Incidents recorded in ")
    expect(listed.locator("thead")).to_contain_text("Outcome")
    expect(listed.locator("thead")).to_contain_text("Location")
    with page.expect_download() as download:
        page.locator("#incidents-csv").click()
    assert download.value.suggested_filename.startswith("incidents-") and \
        download.value.suggested_filename.endswith(".csv")

    _assert_emerging_follows_reach(page, map_server.keys["analyst"])

    _sign_in(page, map_server.keys["auditor"], "auditor")
    expect(page.locator("#role")).to_have_text("auditor")
    page.select_option("#force", "bedfordshire")
    _wait_ready(page, force="bedfordshire", resolution="9")
    _click_path(page, "forecast")
    trace_button = page.locator("#cell-trace")
    expect(trace_button).to_be_visible()
    trace_button.click()
    hops = page.locator("#trace-result .hops li")
    # The first trace on a fresh server opens MLflow's store, which takes a while.
    expect(hops.first).to_be_visible(timeout=60_000)
    assert hops.count() >= 3
    names = page.locator("#trace-result .hop-text strong").all_inner_texts()
    assert "model" in names, names
    expect(page.locator("#trace-result .verdict")).to_be_visible()

    _screenshot(page, tmp_path, "map-auditor.png")
    assert not errors, errors


# Where the chart drew the forecast against the recorded months, read from the SVG itself.
FORECAST_GEOMETRY = """() => {
  const svg = document.querySelector('#cell-history svg');
  const centre = (el) => { const b = el.getBBox(); return [b.x + b.width / 2, b.y + b.height / 2]; };
  const band = svg.querySelector('.forecast-interval');
  const b = band ? band.getBBox() : null;
  return {
    point: centre(svg.querySelector('.forecast-point')),
    band: b && { x: b.x + b.width / 2, top: b.y, bottom: b.y + b.height,
                 lower: Number(band.dataset.lower), upper: Number(band.dataset.upper) },
    recorded: [...svg.querySelectorAll('circle.point')].map((c) => Number(c.getAttribute('cx'))),
    pointStroke: getComputedStyle(svg.querySelector('.forecast-point')).stroke,
    lineStroke: getComputedStyle(svg.querySelector('.history-line')).stroke,
    label: svg.querySelector('.forecast-label').textContent,
    title: svg.querySelector('.forecast-point title').textContent,
  };
}"""


def _assert_forecast_drawn(page, key: str) -> None:
    """The open cell's forecast is on its chart: a point beyond the last recorded month, labelled, in another
    colour than the recorded line, with the cell endpoint's 90% interval around it."""
    cell = page.locator("#cell-panel .cell-id").inner_text().strip()
    detail = page.evaluate("""([cell, key]) => fetch(`/api/cells/${cell}`, {headers: {Authorization: `Bearer ${key}`}})
        .then(r => r.json())""", [cell, key])
    fc = detail["forecast"]
    assert fc and fc["lower_90"] is not None and fc["upper_90"] is not None, fc
    drawn = page.evaluate(FORECAST_GEOMETRY)
    assert len(drawn["recorded"]) == len(detail["history"])  # the forecast is not one more recorded circle
    assert drawn["point"][0] > max(drawn["recorded"]), drawn
    assert drawn["label"] == "Forecast"
    assert drawn["pointStroke"] != drawn["lineStroke"], drawn
    assert drawn["title"].startswith(f"Forecast for {_month_name(fc['target_month'])}") and "90% interval" in drawn["title"]
    band = drawn["band"]
    assert band["lower"] == pytest.approx(fc["lower_90"]) and band["upper"] == pytest.approx(fc["upper_90"])
    assert band["x"] == pytest.approx(drawn["point"][0], abs=0.5)
    assert band["top"] <= band["bottom"]
    if fc["upper_90"] > fc["lower_90"]:
        assert band["bottom"] - band["top"] > 1, band
    if fc["lower_90"] <= fc["predicted_count"] <= fc["upper_90"]:
        assert band["top"] - 0.5 <= drawn["point"][1] <= band["bottom"] + 0.5, drawn


def _assert_emerging_follows_reach(page, key: str) -> None:
    """An analyst's emerging layer: drawn for their own force, switched off and disabled with the reason for
    another force, and back on when they return to their own."""
    expect = sync_api.expect
    box = page.locator("#layer-emerging")
    page.select_option("#force", "bedfordshire")
    _wait_ready(page, force="bedfordshire")
    expect(box).to_be_enabled()
    box.check()
    _wait_ready(page, force="bedfordshire")
    served = page.evaluate("""(key) => fetch('/api/layers/emerging?force=bedfordshire',
        {headers: {Authorization: `Bearer ${key}`}}).then(r => r.json())""", key)
    drawn = page.locator(".leaflet-emerging-pane path.leaflet-interactive")
    expect(drawn).to_have_count(min(served["numberMatched"], served["numberReturned"]))
    if served["numberReturned"]:
        swatches = page.locator("#legend .legend-emerging li")
        expect(swatches.first).to_be_visible()
        assert {li.get_attribute("data-category") for li in swatches.all()} == \
            {f["properties"]["category"] for f in served["features"]}

    page.select_option("#force", "city-of-london")
    _wait_ready(page, force="city-of-london")
    expect(box).to_be_disabled()
    expect(box).not_to_be_checked()
    expect(page.locator("#layer-emerging-label")).to_have_attribute("title", re.compile("own force only"))
    expect(page.locator("#legend-emerging-note")).to_contain_text("own force only")
    expect(drawn).to_have_count(0)

    page.select_option("#force", "bedfordshire")
    _wait_ready(page, force="bedfordshire")
    expect(box).to_be_enabled()
    expect(box).to_be_checked()
    expect(page.locator("#legend-emerging-note")).to_have_count(0)


def _month_name(ym: str) -> str:
    import calendar

    year, month = ym.split("-")
    return f"{calendar.month_name[int(month)]} {year}"


def test_an_open_page_follows_new_table_versions(map_server, page_and_errors):
    from crimelake import lake, release

    expect = sync_api.expect
    page, errors = page_and_errors
    page.goto(f"{map_server.url}/")
    _wait_ready(page)
    before = page.get_attribute("#freshness", "title")
    path = map_server.settings.lake / "public" / "cell_month_counts"
    old = lake.version(path)
    # The same rows written again: a new Delta version, as a pipeline run leaves, with nothing else changed. The
    # map reads released versions: the new one is not shown until a release names it, as a run's last step does.
    lake.replace_table(path, lake.read(path))
    served = page.evaluate("() => fetch('/api/meta').then(r => r.json()).then(m => m.freshness.tables)")
    assert {"table": "public/cell_month_counts", "version": old} in [
        {"table": t["table"], "version": t["version"]} for t in served]
    release.publish(map_server.settings, "test")
    expect(page.locator("#status")).to_contain_text("New data loaded", timeout=30_000)
    after = page.get_attribute("#freshness", "title")
    assert after != before and f"public/cell_month_counts v{old + 1}" in after
    _wait_ready(page)
    assert int(_map_attr(page, "cells")) > 0
    assert not errors, errors


def test_the_page_says_which_forces_have_no_data(map_server_with_gaps, page_and_errors, tmp_path):
    from crimelake.serve.layers import FORCE_NAMES

    expect = sync_api.expect
    page, errors = page_and_errors
    page.goto(f"{map_server_with_gaps.url}/")
    _wait_ready(page)
    months = page.evaluate("() => fetch('/api/meta').then(r => r.json()).then(m => m.months)")
    beds, london = FORCE_NAMES["bedfordshire"], FORCE_NAMES["city-of-london"]
    notice = page.locator("#no-data-notice")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text(f"No data for {_month_name(months[-1])}: {beds} (not delivered); "
                                   f"partial: {london} (38% of usual volume)")
    # The legend names the force without data instead of leaving its blank area to read as zero.
    expect(page.locator("#legend")).to_contain_text(f"{beds}: no data (blank, not zero)")
    expect(page.locator("#force option[value=bedfordshire]")).to_contain_text("no data")
    expect(page.locator("#force option[value=city-of-london]")).to_contain_text("partial data")
    _screenshot(page, tmp_path, "map-no-data.png")

    page.select_option("#force", "city-of-london")
    _wait_ready(page, force="city-of-london")
    expect(notice).to_have_text(re.compile(rf"^Partial data for {_month_name(months[-1])}: {london} \(38% of usual"))

    page.select_option("#force", "")
    page.click("#month-prev")
    _wait_ready(page, month=months[-2])
    expect(notice).to_contain_text(f"Partial data for {_month_name(months[-2])}: {beds} (45% of usual volume)")
    expect(page.locator("#force option[value=bedfordshire]")).to_contain_text("partial data")
    page.click("#month-prev")
    _wait_ready(page, month=months[-3])
    expect(notice).to_be_hidden()
    expect(page.locator("#force option[value=city-of-london]")).to_have_text(london)
    assert not errors, errors


# Rectangles of the place and street names shown (not hidden by decluttering), as [left, top, right, bottom, text].
SHOWN_LABELS = """(selector) => [...document.querySelectorAll(selector)]
  .filter((el) => getComputedStyle(el).visibility !== 'hidden' && getComputedStyle(el.parentElement).visibility !== 'hidden')
  .map((el) => { const r = el.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom, el.textContent]; })"""


def _overlapping(rects: list) -> list:
    return [(a[4], b[4]) for i, a in enumerate(rects) for b in rects[i + 1:]
            if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]]


@pytest.mark.parametrize("width", [1280, 375])
def test_geography_beneath_the_cells_at_desktop_and_phone_widths(map_server, browser, tmp_path, width):
    """Outline, force boundaries and place names drawn from the server alone, beneath (or, for names, above but
    click-through) the cells, with the attribution on the map; at 375 px the controls fold into a drawer."""
    expect = sync_api.expect
    context = browser.new_context(viewport={"width": width, "height": 800 if width > 600 else 740})
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    elsewhere: list[str] = []
    page.on("console", lambda m: errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
    page.on("request", lambda r: None if r.url.startswith((map_server.url, "data:")) else elsewhere.append(r.url))
    try:
        page.goto(f"{map_server.url}/")
        _wait_ready(page)
        page.wait_for_selector("#map[data-geography=ready]", state="attached")

        assert page.locator(".leaflet-land-pane path.land").count() == 1
        # A coastline, not a box (Leaflet clips the path to the view, so the whole outline is never drawn).
        assert (page.get_attribute(".leaflet-land-pane path.land", "d") or "").count("L") > 30
        assert page.locator(".leaflet-boundaries-pane path.force-boundary").count() == 43
        assert _map_attr(page, "force-areas") == "43"
        z = page.evaluate("""() => Object.fromEntries(['land', 'boundaries', 'counts', 'forecast', 'selected', 'places']
            .map((p) => [p, Number(getComputedStyle(document.querySelector(`.leaflet-${p}-pane`)).zIndex)]))""")
        assert z["land"] < z["boundaries"] < z["counts"] < z["forecast"] < z["selected"] < z["places"], z
        assert page.evaluate("() => getComputedStyle(document.querySelector('.leaflet-places-pane')).pointerEvents") \
            == "none"

        labels = page.evaluate(SHOWN_LABELS, ".leaflet-places-pane .place-label span")
        assert len(labels) >= 3, labels
        assert int(_map_attr(page, "places")) == len(labels)
        assert not _overlapping(labels), _overlapping(labels)
        names = {r[4] for r in labels}
        assert names & {"London", "Luton", "Bedford", "Milton Keynes", "Cambridge", "Watford"}, names
        expect(page.locator(".leaflet-control-attribution")).to_contain_text("Martin Chorley")
        expect(page.locator(".leaflet-control-attribution")).to_contain_text("data.police.uk")

        if width < 600:
            assert page.evaluate("() => document.documentElement.scrollWidth") <= width
            toggle = page.locator("#controls-toggle")
            expect(toggle).to_be_visible()
            assert page.locator("#controls").bounding_box()["x"] + page.locator("#controls").bounding_box()["width"] <= 1
            expect(page.locator("#signin-key")).to_be_in_viewport()
            expect(page.locator("#legend-body")).to_be_hidden()
            page.click("#legend-toggle")
            expect(page.locator("#legend-body")).to_be_visible()
            page.click("#legend-toggle")
            toggle.click()
            expect(page.locator("#force")).to_be_in_viewport()
            page.select_option("#force", "bedfordshire")
            _wait_ready(page, force="bedfordshire")
            page.keyboard.press("Escape")
            expect(toggle).to_have_attribute("aria-expanded", "false")
        else:
            page.select_option("#force", "bedfordshire")
            _wait_ready(page, force="bedfordshire")
        chosen = page.locator(".leaflet-boundaries-pane path.force-bedfordshire")
        assert chosen.get_attribute("stroke") == "#1f2933" and chosen.get_attribute("stroke-dasharray") is None

        _click_path(page, "counts")
        expect(page.locator("#cell-history svg circle").first).to_be_visible()
        assert page.locator(".leaflet-selected-pane path.selected-cell").count() == 1
        if width < 600:
            panel = page.locator("#cell-panel").bounding_box()
            assert panel["width"] <= width and panel["y"] > 100  # a sheet over the lower map, not a column
        _screenshot(page, tmp_path, f"map-geography-{width}.png")
        page.click("#cell-close")
        assert page.locator(".leaflet-selected-pane path.selected-cell").count() == 0
        assert not elsewhere, f"the page asked another host: {elsewhere}"
        assert not errors, errors
    finally:
        context.close()


def test_street_names_at_street_zoom(map_server, page_and_errors, tmp_path):
    expect = sync_api.expect
    page, errors = page_and_errors
    page.goto(f"{map_server.url}/")
    _wait_ready(page)
    # A named map point near Bedford's centre, from the server's own gazetteer of data.police.uk map points.
    streets = page.evaluate("() => fetch('/api/geography/streets?bbox=-0.50,52.11,-0.43,52.16').then(r => r.json())")
    assert streets["features"], "no named map points near Bedford in the demo lake"
    lon, lat = streets["features"][0]["geometry"]["coordinates"]
    page.goto(f"{map_server.url}/#16/{lat}/{lon}")
    page.reload()
    _wait_ready(page)
    assert page.evaluate("() => location.hash").startswith("#16/")
    labels = page.locator(".leaflet-streets-pane .street-label")
    expect(labels.first).to_be_attached()
    shown = page.evaluate(SHOWN_LABELS, ".leaflet-streets-pane .street-label span")
    assert shown and not _overlapping(shown), shown
    assert streets["features"][0]["properties"]["name"] in {r[4] for r in shown}
    _screenshot(page, tmp_path, "map-streets.png")

    # Zoomed out past street zoom, the names go.
    for zoom in (15, 14):
        page.click(".leaflet-control-zoom-out")
        page.wait_for_function("(z) => location.hash.startsWith(`#${z}/`)", arg=zoom)
    expect(labels).to_have_count(0)
    assert not errors, errors
