/* crimelake map page: recorded crime, forecast hot spots and emerging hot spots on H3 cells. */
(() => {
  "use strict";

  const KEY_STORAGE = "crimelake.apiKey";
  // Following `next` without a cap could pull an entire national street-level layer into one tab.
  const MAX_PAGES = 20;
  const PLAY_STEP_MS = 1200;
  // How often an open page asks whether the pipeline has written new table versions, unless the server says.
  const FRESHNESS_POLL_MS = 60000;

  // ColorBrewer 2.0, Cynthia Brewer (colorbrewer2.org): YlOrRd, sequential, 6 classes.
  // A single-hue-family ramp reads as "more" without a legend lookup and stays legible for most colour-vision types.
  const YLORRD_6 = ["#ffffb2", "#fed976", "#feb24c", "#fd8d3c", "#f03b20", "#bd0026"];
  const SUPPRESSED_FILL = "url(#hatch-suppressed)";
  const HOTSPOT_STROKE = "#08306b";

  // Esri's emerging hot spot classes: hot in reds and oranges, cold in blues, the strongest patterns darkest
  // (intensifying, persistent), fading ones palest (historical). No class is grey: grey reads as no data. The
  // count ramp beneath is faded while the classes are drawn (countStyle, and its legend), so its reds are not read
  // as classes; no class takes a colour of the ramp.
  const EMERGING_COLOURS = {
    "New Hot Spot": "#ef3b2c",
    "Consecutive Hot Spot": "#cb181d",
    "Intensifying Hot Spot": "#67000d",
    "Persistent Hot Spot": "#a50f15",
    "Diminishing Hot Spot": "#fc9272",
    "Sporadic Hot Spot": "#f16913",
    "Oscillating Hot Spot": "#fdae6b",
    "Historical Hot Spot": "#fdd0a2",
    "New Cold Spot": "#6baed6",
    "Consecutive Cold Spot": "#3182bd",
    "Intensifying Cold Spot": "#08306b",
    "Persistent Cold Spot": "#08519c",
    "Diminishing Cold Spot": "#9ecae1",
    "Sporadic Cold Spot": "#4eb3d3",
    "Oscillating Cold Spot": "#a6bddb",
    "Historical Cold Spot": "#deebf7",
  };
  const EMERGING_ORDER = Object.keys(EMERGING_COLOURS);
  const NO_PATTERN = "No Pattern Detected";
  // For a class this page does not know: still a colour, never grey.
  const EMERGING_FALLBACK = ["#8c6bb1", "#35978f", "#c51b7d", "#4d9221"];

  const $ = (id) => document.getElementById(id);
  const el = {
    map: $("map"), status: $("status"), legend: $("legend"), freshness: $("freshness"), role: $("role"),
    noData: $("no-data-notice"),
    signin: $("signin"), key: $("signin-key"), signout: $("signout-button"),
    group: $("group"), force: $("force"), measure: $("measure"),
    month: $("month"), monthLabel: $("month-label"), monthPrev: $("month-prev"), monthNext: $("month-next"),
    monthFirst: $("month-first"), monthLast: $("month-last"), play: $("play"),
    layerCounts: $("layer-counts"), layerForecast: $("layer-forecast"), layerEmerging: $("layer-emerging"),
    layerEmergingLabel: $("layer-emerging-label"), layerTiles: $("layer-tiles"), layerTilesLabel: $("layer-tiles-label"),
    resolutionNote: $("resolution-note"), panel: $("cell-panel"), panelTitle: $("cell-title"), panelBody: $("cell-body"),
    panelClose: $("cell-close"), controls: $("controls"), controlsToggle: $("controls-toggle"),
    legendToggle: $("legend-toggle"), legendBody: $("legend-body"),
  };

  // Below this width the controls fold into a drawer, the cell panel becomes a sheet over the map and the
  // legend starts folded (app.css has the same breakpoint).
  const narrowQuery = window.matchMedia("(max-width: 760px)");
  const narrow = () => narrowQuery.matches;

  const state = {
    meta: null,
    monthIndex: 0,
    counts: null,
    // A cell on a force boundary (or under British Transport Police) comes once per force, so the indexes map
    // an H3 cell to every drawn feature's properties.
    countIndex: new Map(),
    forecast: null,
    forecastIndex: new Map(),
    emergingClasses: [],
    // The emerging layer as the user last ticked it: restored when the view comes back within their reach.
    emergingWanted: false,
    selectedCell: null,
    selectedForce: null,
    cellDetail: null,
    playing: false,
    pending: new Set(),
    failed: new Set(),
    seq: { counts: 0, forecast: 0, emerging: 0, cell: 0 },
    aborts: {},
    tiles: null,
    initialView: viewFromHash(),
  };

  // `#zoom/lat/lon` in the address names a view (the page keeps it current, so a link opens the same place).
  function viewFromHash() {
    const m = /^#(\d+(?:\.\d+)?)\/(-?\d+(?:\.\d+)?)\/(-?\d+(?:\.\d+)?)$/.exec(window.location.hash);
    if (!m) return null;
    const [zoom, lat, lon] = m.slice(1).map(Number);
    return zoom >= 5 && zoom <= 17 && Math.abs(lat) <= 90 && Math.abs(lon) <= 180 ? { zoom, lat, lon } : null;
  }

  // ---------------------------------------------------------------- formatting

  const intFmt = new Intl.NumberFormat("en-GB", { maximumFractionDigits: 0 });
  const dec1Fmt = new Intl.NumberFormat("en-GB", { minimumFractionDigits: 1, maximumFractionDigits: 1 });
  const dec2Fmt = new Intl.NumberFormat("en-GB", { maximumFractionDigits: 2 });
  const MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
    "November", "December"];

  function monthLong(ym) {
    if (!ym) return "–";
    const [y, m] = ym.split("-").map(Number);
    return `${MONTHS[m - 1]} ${y}`;
  }

  function monthShort(ym) {
    const [y, m] = ym.split("-").map(Number);
    return `${MONTHS[m - 1].slice(0, 3)} ${String(y).slice(2)}`;
  }

  function dateTimeUtc(iso) {
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return iso;
    const pad = (n) => String(n).padStart(2, "0");
    return `${d.getUTCDate()} ${MONTHS[d.getUTCMonth()].slice(0, 3)} ${d.getUTCFullYear()} `
      + `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())} UTC`;
  }

  function fmtNumber(v) {
    if (v == null) return "–";
    if (Number.isInteger(v) || Math.abs(v) >= 100) return intFmt.format(v);
    return Math.abs(v) >= 10 ? dec1Fmt.format(v) : dec2Fmt.format(v);
  }

  function offences(n) {
    return `${intFmt.format(n)} ${n === 1 ? "offence" : "offences"}`;
  }

  function perKm2(v) {
    return `${fmtNumber(v)} per km²`;
  }

  function groupName(slug) {
    const g = state.meta && state.meta.groups.find((x) => x.slug === slug);
    return g ? g.name : slug;
  }

  function forceName(slug) {
    // On the all-forces public grid a cell names every force whose area it covers, comma-separated.
    const names = String(slug || "").split(",").filter(Boolean).map((one) => {
      const f = state.meta && state.meta.forces.find((x) => x.slug === one);
      return f ? f.name : one;
    });
    return names.length > 1 ? `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]}` : (names[0] || "");
  }

  // ---------------------------------------------------------------- forces with no data

  // The forces with no data (or only part of it) in a month, for the force chosen or all of them: the counts
  // layer's own list once it has loaded that month, the meta's before.
  function gapsFor(ym, slug = force()) {
    const c = state.counts;
    const listed = c && c.month === ym && Array.isArray(c.no_data_forces) && (c.force || "") === (slug || "")
      ? c.no_data_forces : ((state.meta && state.meta.no_data_forces) || {})[ym] || [];
    return listed.filter((e) => !slug || e.force === slug);
  }

  function gapOf(slug, ym = month()) {
    return gapsFor(ym, null).find((e) => e.force === slug) || null;
  }

  function renderNoData() {
    const ym = month();
    const gaps = gapsFor(ym);
    const missing = gaps.filter((e) => e.status === "missing");
    const partial = gaps.filter((e) => e.status !== "missing");
    const list = (es) => es.map((e) => `${e.name} (${e.note})`).join(", ");
    const parts = [];
    if (missing.length) parts.push(h("strong", {}, `No data for ${monthLong(ym)}: `), list(missing));
    if (partial.length) {
      parts.push(missing.length ? "; " : "", h("strong", {}, missing.length ? "partial: " : `Partial data for ${monthLong(ym)}: `),
        list(partial));
    }
    if (parts.length) {
      parts.push(h("span", { class: "sub" }, missing.length
        ? "Those areas show no cells because nothing was delivered, not because no crime was recorded."
        : "Counts there are lower than what was recorded."));
    }
    el.noData.replaceChildren(...parts);
    el.noData.hidden = !parts.length;
    el.noData.dataset.month = ym;
    el.noData.dataset.forces = gaps.map((e) => e.force).join(",");
    markForceOptions();
  }

  // The force filter says which forces have no data, or only part of it, in the month shown.
  function markForceOptions() {
    for (const opt of el.force.options) {
      if (!opt.value) continue;
      const f = state.meta.forces.find((x) => x.slug === opt.value);
      const gap = gapOf(opt.value);
      opt.textContent = !gap ? f.name : `${f.name} (${gap.status === "missing" ? "no data" : "partial data"} ${monthShort(month())})`;
      if (gap) opt.dataset.gap = gap.status;
      else delete opt.dataset.gap;
    }
  }

  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) {
      if (c == null || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null) continue;
      if (k === "text") node.textContent = v;
      else node.setAttribute(k, v);
    }
    for (const c of children.flat()) if (c) node.append(c);
    return node;
  }

  // ---------------------------------------------------------------- status line

  const messages = new Map();

  function setStatus(source, kind, text) {
    if (text) messages.set(source, { kind, text });
    else messages.delete(source);
    renderStatus();
  }

  function renderStatus() {
    el.status.replaceChildren();
    // Errors first: a loading line must never hide why something failed.
    const order = { error: 0, note: 1, info: 2 };
    const items = [...messages.entries()].sort((a, b) => order[a[1].kind] - order[b[1].kind]);
    for (const [source, m] of items) {
      const close = m.kind === "info" ? null : h("button", {
        type: "button", class: "status-close", "aria-label": "Dismiss message", title: "Dismiss",
        onclick: () => setStatus(source, null, null),
      }, "×");
      el.status.append(h("div", { class: `status-item status-${m.kind}`, "data-source": source },
        h("span", { class: "status-text" }, m.text), close));
    }
    el.status.classList.toggle("has-items", items.length > 0);
  }

  // ---------------------------------------------------------------- API

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  function apiKey() {
    return sessionStorage.getItem(KEY_STORAGE);
  }

  function detailMessage(body, res) {
    if (body && typeof body.detail === "string") return body.detail;
    if (body && Array.isArray(body.detail)) {
      return body.detail.map((d) => (d && d.msg ? `${(d.loc || []).slice(1).join(".")} ${d.msg}`.trim() : String(d)))
        .join("; ");
    }
    return `The server answered ${res.status} ${res.statusText || ""}`.trim();
  }

  async function api(url, { signal } = {}) {
    const headers = { Accept: "application/json" };
    const key = apiKey();
    if (key) headers.Authorization = `Bearer ${key}`;
    let res;
    try {
      res = await fetch(url, { headers, signal });
    } catch (err) {
      if (err.name === "AbortError") throw err;
      throw new ApiError(0, "The server could not be reached. Check that it is running and try again.");
    }
    const text = await res.text();
    let body = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      body = null;
    }
    if (!res.ok) {
      const message = detailMessage(body, res);
      if (res.status === 401 && key) {
        // A rejected key is useless for every later request; drop it so the page falls back to the public view.
        sessionStorage.removeItem(KEY_STORAGE);
        setStatus("auth", "error", `API key refused, showing the public view: ${message}`);
        renderAccount();
      }
      throw new ApiError(res.status, message);
    }
    return body;
  }

  function query(params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v != null && v !== "") q.set(k, v);
    return q.toString();
  }

  async function fetchCollection(url, signal) {
    let page = await api(url, { signal });
    const first = page;
    const features = [...(page.features || [])];
    let pages = 1;
    while (page.next && pages < MAX_PAGES) {
      // The server builds `next` from the host it was asked for; behind a proxy that host may not be ours.
      const next = new URL(page.next, window.location.href);
      page = await api(next.pathname + next.search, { signal });
      features.push(...(page.features || []));
      pages += 1;
    }
    return { first, features, truncated: Boolean(page.next) };
  }

  // ---------------------------------------------------------------- map

  const map = L.map(el.map, {
    zoomControl: true,
    attributionControl: true,
    minZoom: 5,
    maxZoom: 17,
    zoomSnap: 0.25,
    wheelPxPerZoomLevel: 90,
  }).setView([52.4, -1.5], 7);
  map.attributionControl.setPrefix(false);
  map.attributionControl.addAttribution(
    "Crime data: <a href=\"https://data.police.uk/\" rel=\"noopener\">data.police.uk</a>, Open Government Licence v3.0");
  L.control.scale({ imperial: false, position: "bottomleft" }).addTo(map);

  // Panes fix the stacking: land and force boundaries beneath everything (geography.js), counts over them,
  // emerging classes over those, hot spot outlines, the selected cell's outline, then names on top.
  for (const [name, z] of [["counts", 410], ["emerging", 420], ["forecast", 430], ["selected", 435], ["labels", 440]]) {
    map.createPane(name).style.zIndex = String(z);
  }
  map.getPane("labels").style.pointerEvents = "none";
  map.getPane("selected").style.pointerEvents = "none";

  const geography = window.CrimelakeGeography
    ? window.CrimelakeGeography.attach(map, { onError: (text) => setStatus("geography", "note", text) })
    : null;
  const interventions = window.CrimelakeInterventions
    ? window.CrimelakeInterventions.attach(map, { api, onStatus: (kind, text) => setStatus("interventions", kind, text) })
    : null;

  // The chosen cell's outline is drawn in a pane of its own, so neither its neighbours' edges nor the hot spot
  // outlines cover it.
  const selectedLayer = L.geoJSON(null, {
    pane: "selected", interactive: false,
    style: { className: "selected-cell", color: "#111827", weight: 3.2, opacity: 1, fill: false, lineJoin: "round" },
  }).addTo(map);

  function drawSelected() {
    selectedLayer.clearLayers();
    if (!state.selectedCell) return;
    for (const layer of [countsLayer, forecastLayer, emergingLayer]) {
      const found = layer.getLayers().find((l) => l.feature.properties.h3_cell === state.selectedCell);
      if (found) {
        selectedLayer.addData(found.feature.geometry);
        return;
      }
    }
  }

  const countsLayer = L.geoJSON(null, {
    pane: "counts",
    style: countStyle,
    onEachFeature: (feature, layer) => {
      layer.bindTooltip(() => countTooltip(feature.properties), { sticky: true, direction: "top", opacity: 0.95 });
      layer.on({
        mouseover: () => layer.setStyle({ weight: 2, color: "#1f2933", opacity: 1 }),
        mouseout: () => countsLayer.resetStyle(layer),
        click: () => openCell(feature.properties.h3_cell, feature.properties.force),
      });
    },
  });
  const forecastLayer = L.geoJSON(null, {
    pane: "forecast",
    style: forecastStyle,
    onEachFeature: (feature, layer) => {
      layer.bindTooltip(() => forecastTooltip(feature.properties), { sticky: true, direction: "top", opacity: 0.95 });
      layer.on("click", () => openCell(feature.properties.h3_cell, feature.properties.force));
    },
  });
  const emergingLayer = L.geoJSON(null, {
    pane: "emerging",
    style: emergingStyle,
    onEachFeature: (feature, layer) => {
      layer.bindTooltip(() => emergingTooltip(feature.properties), { sticky: true, direction: "top", opacity: 0.95 });
      layer.on("click", () => openCell(feature.properties.h3_cell, feature.properties.force));
    },
  });

  function classOf(value, breaks) {
    // Breaks are upper bounds of the first five classes; anything above the last falls in the sixth.
    let k = 0;
    while (k < breaks.length && value > breaks[k]) k += 1;
    return Math.min(k, YLORRD_6.length - 1);
  }

  // Mean H3 edge lengths in metres (h3geo.org resolution table).
  const H3_EDGE_M = { 7: 1406, 8: 531, 9: 201 };

  function cellPixels(res) {
    // A fixed stroke that suits a street-level view swamps a zoomed-out cell, so strokes follow the drawn size.
    const edge = H3_EDGE_M[res] || H3_EDGE_M[7];
    const lat = map.getCenter().lat * Math.PI / 180;
    const metresPerPixel = (40075016.686 * Math.cos(lat)) / 2 ** (map.getZoom() + 8);
    return (2 * edge) / metresPerPixel;
  }

  const clamp = (v, lo, hi) => Math.max(lo, Math.min(hi, v));

  function countStyle(feature) {
    const p = feature.properties;
    const selected = p.h3_cell === state.selectedCell;
    const dimmed = el.layerEmerging.checked || el.layerTiles.checked;
    const underClasses = el.layerEmerging.checked && state.emergingClasses.length > 0;
    const px = cellPixels(state.counts && state.counts.resolution);
    // Big cells get a thin white edge so neighbours separate; cells only a few pixels wide get a halo in their
    // own colour instead, or a zoomed-out street-level map would be specks.
    const small = px < 10;
    const halo = clamp(6 - px / 2, 1, 3);
    if (p.value == null) {
      return {
        fillColor: SUPPRESSED_FILL, fillOpacity: dimmed ? 0.6 : 1, color: selected ? "#111827" : "#c4cad2",
        weight: selected ? 3 : small ? halo : 0.6, opacity: 1,
      };
    }
    const breaks = (state.counts && state.counts.breaks) || [];
    const fill = YLORRD_6[classOf(p.value, breaks)];
    return {
      fillColor: fill,
      fillOpacity: underClasses ? 0.3 : dimmed ? 0.55 : 0.9,
      color: selected ? "#111827" : small ? fill : "#ffffff",
      weight: selected ? 3 : small ? halo : 0.6,
      opacity: selected ? 1 : small ? (dimmed ? 0.5 : 0.9) : 0.8,
    };
  }

  function forecastStyle(feature) {
    const p = feature.properties;
    const px = cellPixels(state.forecast ? state.forecast.resolution : state.counts && state.counts.resolution);
    const base = { color: HOTSPOT_STROKE, fill: true, fillOpacity: 0, opacity: 1, lineJoin: "round" };
    if (p.hotspot_1pct) return { ...base, weight: clamp(px * 0.12, 1.5, 3.2), dashArray: null };
    if (p.hotspot_5pct) {
      return { ...base, weight: clamp(px * 0.07, 1, 1.8), dashArray: px < 14 ? "2 2" : "5 4" };
    }
    return { ...base, weight: 0.8, opacity: 0.5, dashArray: "2 4" };
  }

  function emergingColour(category) {
    if (EMERGING_COLOURS[category]) return EMERGING_COLOURS[category];
    const i = state.emergingClasses.indexOf(category);
    return EMERGING_FALLBACK[Math.max(0, i) % EMERGING_FALLBACK.length];
  }

  function emergingStyle(feature) {
    const px = cellPixels(9);
    const fill = emergingColour(feature.properties.category);
    const small = px < 10;
    return {
      fillColor: fill, fillOpacity: 0.95,
      color: small ? fill : "#ffffff", weight: small ? clamp(7 - px / 2, 1.5, 4) : 0.8, opacity: 1,
    };
  }

  // ---------------------------------------------------------------- force labels

  const labelsLayer = L.layerGroup();

  function drawForceLabels(features) {
    labelsLayer.clearLayers();
    if (force()) return;
    const extents = new Map();
    for (const f of features) {
      const ring = f.geometry && f.geometry.coordinates && f.geometry.coordinates[0];
      if (!ring) continue;
      // A cell shared by several forces says nothing about where any one of them lies.
      if (String(f.properties.force).includes(",")) continue;
      const e = extents.get(f.properties.force) || { w: 180, e: -180, s: 90, n: -90, lon: 0, k: 0 };
      for (const [lon, lat] of ring) {
        e.w = Math.min(e.w, lon); e.e = Math.max(e.e, lon);
        e.s = Math.min(e.s, lat); e.n = Math.max(e.n, lat);
      }
      e.lon += ring[0][0];
      e.k += 1;
      extents.set(f.properties.force, e);
    }
    // Forces with the most cells are labelled first, so they keep their label when labels would collide.
    const ordered = [...extents].sort((a, b) => b[1].k - a[1].k);
    for (const [slug, e] of ordered) {
      // A force spread across the country (British Transport Police runs along railways) has no one place
      // a label could name.
      if (e.e - e.w > 2 || e.n - e.s > 2) continue;
      const icon = L.divIcon({ className: "force-label", html: `<span>${escapeHtml(forceName(slug))}</span>`,
        iconSize: null, iconAnchor: [0, 0] });
      L.marker([e.n, e.lon / e.k], { icon, interactive: false, keyboard: false, pane: "labels" }).addTo(labelsLayer);
    }
  }

  function syncLabels() {
    const show = !force() && map.getZoom() < 10.5;
    if (show && !map.hasLayer(labelsLayer)) labelsLayer.addTo(map);
    if (!show && map.hasLayer(labelsLayer)) map.removeLayer(labelsLayer);
    if (show) declutterLabels();
    if (geography) geography.refresh();
  }

  // At national zoom neighbouring forces' labels overlap into an unreadable pile: a label that would cover one
  // already shown is hidden until zooming in makes room for it.
  function declutterLabels() {
    const shown = [];
    labelsLayer.eachLayer((marker) => {
      const node = marker.getElement();
      if (!node) return;
      node.style.visibility = "";
      const r = (node.firstElementChild || node).getBoundingClientRect();
      const overlaps = shown.some((s) => r.left < s.right + 4 && r.right > s.left - 4
        && r.top < s.bottom + 2 && r.bottom > s.top - 2);
      if (overlaps) node.style.visibility = "hidden";
      else shown.push(r);
    });
  }


  function countValueText(p, { withPerKm2 = true } = {}) {
    if (p.suppressed) return "fewer than 5";
    if (p.count == null) return "no data";
    const parts = [offences(p.count)];
    if (withPerKm2 && p.per_km2 != null) parts.push(perKm2(p.per_km2));
    return parts.join(" · ");
  }

  function gapNote(p) {
    // A cell of a force that delivered only part of the month (or, shared, of a force that delivered nothing).
    const gaps = String(p.force).split(",").map((f) => gapOf(f, p.month)).filter(Boolean);
    return gaps.length ? `<br><span class="tt-sub">${gaps.map((g) => `${escapeHtml(g.name)}: `
      + `${g.status === "missing" ? "no data" : "partial data"}, ${escapeHtml(g.note)}`).join("<br>")}</span>` : "";
  }

  function countTooltip(p) {
    const all = state.countIndex.get(p.h3_cell) || [p];
    const withPerKm2 = measure() === "per_km2";
    if (all.length === 1) {
      return `<strong>${countValueText(p, { withPerKm2 })}</strong>`
        + `<br><span class="tt-sub">${monthLong(p.month)} · ${escapeHtml(forceName(p.force))}</span>${gapNote(p)}`;
    }
    const lines = all.map((q) => `${escapeHtml(forceName(q.force))}: <strong>${countValueText(q, { withPerKm2 })}</strong>`);
    return `${lines.join("<br>")}<br><span class="tt-sub">${monthLong(p.month)}</span>${all.map(gapNote).join("")}`;
  }

  function indexAdd(index, props) {
    const list = index.get(props.h3_cell);
    if (list) list.push(props);
    else index.set(props.h3_cell, [props]);
  }

  function indexedFor(index, cell, force) {
    const list = index.get(cell) || [];
    return list.find((q) => q.force === force) || list[0] || null;
  }

  function forecastText(p) {
    if (p.suppressed) return "fewer than 5 predicted";
    if (p.predicted_count == null) return "predicted count withheld";
    return `about ${fmtNumber(p.predicted_count)} predicted`;
  }

  function forecastTooltip(p) {
    const tier = p.hotspot_1pct ? "Top 1% forecast hot spot" : p.hotspot_5pct ? "Top 5% forecast hot spot"
      : "Forecast cell";
    const count = indexedFor(state.countIndex, p.h3_cell, p.force);
    const now = count ? `<br>${monthLong(count.month)}: ${countValueText(count, { withPerKm2: false })}` : "";
    return `<strong>${tier}</strong><br>${monthLong(p.target_month)}: ${forecastText(p)}${now}`;
  }

  function emergingTooltip(p) {
    const trend = p.trend != null && p.trend !== "" ? `<br><span class="tt-sub">Trend: ${escapeHtml(String(p.trend))}</span>` : "";
    return `<strong>${escapeHtml(p.category)}</strong>${trend}`;
  }

  function escapeHtml(s) {
    return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  }

  // ---------------------------------------------------------------- current selection

  const month = () => state.meta.months[state.monthIndex];
  const group = () => el.group.value;
  const force = () => el.force.value;
  const measure = () => el.measure.value;

  const isSpread = (b) => b[2] - b[0] > 2 || b[3] - b[1] > 2;

  function forceBounds(slug) {
    const forces = slug ? state.meta.forces.filter((f) => f.slug === slug) : state.meta.forces;
    let boxes = forces.map((f) => f.bbox).filter((b) => Array.isArray(b) && b.length === 4);
    // A national force's box (British Transport Police) would zoom the union out to the whole country and
    // shrink every other force's cells to dots.
    if (!slug && boxes.some((b) => !isSpread(b))) boxes = boxes.filter((b) => !isSpread(b));
    if (!boxes.length) return null;
    return L.latLngBounds(boxes.flatMap((b) => [[b[1], b[0]], [b[3], b[2]]]));
  }

  function fitToForce() {
    const b = forceBounds(force());
    // The legend sits over the map's lower right corner; keep the cells clear of it, also on the first load,
    // before the legend has anything to show and so any width.
    const right = narrow() ? 12 : Math.max(el.legend.hidden ? 0 : el.legend.offsetWidth, 230) + 24;
    if (geography) geography.highlightForce(force());
    if (state.initialView) {
      // A link with a view (#zoom/lat/lon) opens there once; later fits follow the force filter.
      const v = state.initialView;
      state.initialView = null;
      map.setView([v.lat, v.lon], v.zoom, { animate: false });
      return;
    }
    if (b) map.fitBounds(b, { paddingTopLeft: [12, 12], paddingBottomRight: [right, 24], animate: false });
  }

  // ---------------------------------------------------------------- loading bookkeeping

  let loadingNotice = null;

  function begin(name) {
    state.pending.add(name);
    state.failed.delete(name);
    el.map.dataset.state = "loading";
    el.map.setAttribute("aria-busy", "true");
    // Quick loads (every step of the month animation) would only make the notice flicker.
    if (!loadingNotice) {
      loadingNotice = setTimeout(() => {
        if (state.pending.size) setStatus("loading", "info", "Loading map layers…");
      }, 400);
    }
  }

  function end(name, ok) {
    state.pending.delete(name);
    if (!ok) state.failed.add(name);
    if (state.pending.size) return;
    clearTimeout(loadingNotice);
    loadingNotice = null;
    setStatus("loading", null, null);
    el.map.removeAttribute("aria-busy");
    el.map.dataset.state = state.failed.has("counts") || state.failed.has("meta") ? "error" : "ready";
  }

  function abortable(name) {
    if (state.aborts[name]) state.aborts[name].abort();
    const ctrl = new AbortController();
    state.aborts[name] = ctrl;
    state.seq[name] = (state.seq[name] || 0) + 1;
    return { signal: ctrl.signal, seq: state.seq[name] };
  }

  // ---------------------------------------------------------------- layers

  async function loadCounts() {
    if (!state.meta) return;
    const { signal, seq } = abortable("counts");
    if (!el.layerCounts.checked) {
      countsLayer.clearLayers();
      state.countIndex.clear();
      el.map.dataset.cells = "0";
      setStatus("counts", null, null);
      renderLegend();
      end("counts", true);
      return;
    }
    begin("counts");
    const params = { month: month(), group: group(), force: force(), measure: measure(), limit: state.meta.limits.page_max };
    let ok = false;
    try {
      const { first, features, truncated } = await fetchCollection(`/api/layers/counts?${query(params)}`, signal);
      if (seq !== state.seq.counts) return;
      state.counts = { ...first, features: undefined };
      countsLayer.clearLayers();
      state.countIndex.clear();
      for (const f of features) indexAdd(state.countIndex, f.properties);
      countsLayer.addData(features);
      drawSelected();
      drawForceLabels(features);
      syncLabels();
      el.map.dataset.cells = String(features.length);
      el.map.dataset.month = first.month || params.month;
      el.map.dataset.group = first.group || params.group;
      el.map.dataset.measure = first.measure || params.measure;
      el.map.dataset.resolution = String(first.resolution ?? "");
      el.map.dataset.force = params.force;
      if (truncated) {
        setStatus("counts", "note", `Showing the first ${intFmt.format(features.length)} of `
          + `${intFmt.format(first.numberMatched ?? features.length)} cells: choose a police force to see them all.`);
      } else if (!features.length) {
        setStatus("counts", "note", `No recorded ${groupName(params.group).toLowerCase()} in ${monthLong(params.month)} for this selection.`);
      } else {
        setStatus("counts", null, null);
      }
      renderResolutionNote();
      renderNoData();
      renderLegend();
      refreshPanelMonth();
      ok = true;
    } catch (err) {
      if (err.name === "AbortError" || seq !== state.seq.counts) return;
      countsLayer.clearLayers();
      state.countIndex.clear();
      el.map.dataset.cells = "0";
      setStatus("counts", "error", `Recorded offences could not be loaded: ${err.message}`);
      renderLegend();
    } finally {
      if (seq === state.seq.counts) end("counts", ok);
    }
  }

  async function loadForecast() {
    if (!state.meta) return;
    const { signal, seq } = abortable("forecast");
    forecastLayer.clearLayers();
    state.forecastIndex.clear();
    state.forecast = null;
    setStatus("forecast", null, null);
    if (!el.layerForecast.checked) {
      renderLegend();
      end("forecast", true);
      return;
    }
    // Asking for a forecast the meta says is unpublished would only produce a 404 in the console.
    if (!state.meta.forecast || !state.meta.forecast[group()]) {
      setStatus("forecast", "note", `No forecast is published for ${groupName(group()).toLowerCase()} yet.`);
      renderLegend();
      end("forecast", true);
      return;
    }
    begin("forecast");
    let ok = false;
    try {
      const params = { group: group(), force: force(), hotspots: 5, limit: state.meta.limits.page_max };
      const { first, features, truncated } = await fetchCollection(`/api/layers/forecast?${query(params)}`, signal);
      if (seq !== state.seq.forecast) return;
      state.forecast = { ...first, features: undefined, sample: features[0] ? features[0].properties : null };
      for (const f of features) indexAdd(state.forecastIndex, f.properties);
      forecastLayer.addData(features);
      if (truncated) setStatus("forecast", "note", "Only part of the forecast layer is shown: choose a police force.");
      ok = true;
    } catch (err) {
      if (err.name === "AbortError" || seq !== state.seq.forecast) return;
      // A group without a published model is an expected state, not a failure.
      const kind = err.status === 404 ? "note" : "error";
      setStatus("forecast", kind, kind === "note" ? err.message : `Forecast could not be loaded: ${err.message}`);
    } finally {
      if (seq === state.seq.forecast) {
        renderLegend();
        end("forecast", ok);
      }
    }
  }

  async function loadEmerging() {
    if (!state.meta) return;
    const { signal, seq } = abortable("emerging");
    emergingLayer.clearLayers();
    state.emergingClasses = [];
    setStatus("emerging", null, null);
    if (!el.layerEmerging.checked || !state.meta.can_see_emerging) {
      countsLayer.setStyle(countStyle);
      renderLegend();
      end("emerging", true);
      return;
    }
    begin("emerging");
    let ok = false;
    try {
      // Analysts may only see their own force at street level, so their filter is pinned to it; street-level
      // requests need a force, so "All forces" means one request per force the caller may see in detail.
      const forces = state.meta.role === "analyst" ? [state.meta.analyst_force]
        : force() ? [force()] : state.meta.detail_forces;
      const results = await Promise.all(forces.map((f) => fetchCollection(
        `/api/layers/emerging?${query({ group: group(), force: f, limit: state.meta.limits.page_max })}`, signal)));
      if (seq !== state.seq.emerging) return;
      const features = results.flatMap((r) => r.features);
      const truncated = results.some((r) => r.truncated);
      const present = new Set(features.map((x) => x.properties.category));
      state.emergingClasses = [...present].sort((a, b) => rank(a) - rank(b));
      emergingLayer.addData(features);
      countsLayer.setStyle(countStyle);
      if (truncated) setStatus("emerging", "note", "Only part of the emerging hot spot layer is shown: choose a police force.");
      else if (!features.length) setStatus("emerging", "note", "No emerging hot spot patterns for this selection.");
      ok = true;
    } catch (err) {
      if (err.name === "AbortError" || seq !== state.seq.emerging) return;
      setStatus("emerging", "error", `Emerging hot spots could not be loaded: ${err.message}`);
    } finally {
      if (seq === state.seq.emerging) {
        renderLegend();
        end("emerging", ok);
      }
    }

    function rank(c) {
      const i = EMERGING_ORDER.indexOf(c);
      return i < 0 ? 999 : i;
    }
  }

  function toggleLayer(checkbox, layer) {
    if (checkbox.checked) layer.addTo(map);
    else map.removeLayer(layer);
  }

  function syncTiles() {
    const t = state.meta && state.meta.tiles;
    el.layerTilesLabel.hidden = !t;
    if (state.tiles && (!t || state.tiles.options.sourceUrl !== t.url)) {
      map.removeLayer(state.tiles);
      state.tiles = null;
    }
    if (!t) {
      el.layerTiles.checked = false;
      return;
    }
    if (!state.tiles) {
      state.tiles = L.tileLayer(t.url, { attribution: t.attribution || "", maxZoom: 19, sourceUrl: t.url });
    }
    if (el.layerTiles.checked) state.tiles.addTo(map);
    else map.removeLayer(state.tiles);
  }

  // ---------------------------------------------------------------- legend

  function legendRanges(breaks, isCount, step) {
    const fmt = (v) => fmtNumber(v);
    const labels = [];
    for (let k = 0; k < 6; k += 1) {
      const lo = k === 0 ? null : breaks[k - 1];
      const hi = k < breaks.length ? breaks[k] : null;
      if (!isCount) {
        if (lo == null) labels.push(`up to ${fmt(hi)}`);
        else if (hi == null) labels.push(`more than ${fmt(lo)}`);
        else labels.push(hi > lo ? `${fmt(lo)} – ${fmt(hi)}` : null);
        continue;
      }
      // Counts only take multiples of `step` (1 at street level, the rounding base on the public grid, where
      // nothing below it is drawn), so each class is labelled by the counts it can actually hold.
      const first = lo == null ? step : Math.floor(lo / step) * step + step;
      if (hi == null) {
        labels.push(`${fmt(first)} or more`);
        continue;
      }
      const last = Math.floor(hi / step) * step;
      labels.push(last < first ? null : last === first ? fmt(first) : `${fmt(first)} – ${fmt(last)}`);
    }
    return labels;
  }

  function renderLegend() {
    const parts = [];
    if (state.meta && el.layerCounts.checked && state.counts) {
      const c = state.counts;
      const isCount = (c.measure || measure()) === "count";
      parts.push(h("div", { class: "legend-title" }, isCount ? "Recorded offences per cell" : "Offences per km²"),
        h("div", { class: "legend-sub" }, `${groupName(c.group || group())} · ${monthLong(c.month || month())}`));
      const breaks = Array.isArray(c.breaks) ? c.breaks : [];
      // Public counts are rounded to 5 (and those below 5 suppressed); street-level counts are exact.
      const step = c.resolution === state.meta.resolutions.public ? 5 : 1;
      const labels = legendRanges(breaks, isCount, step);
      const rows = YLORRD_6.map((colour, k) => h("li", { class: labels[k] ? "" : "empty-class" },
        h("span", { class: "swatch", style: `background:${colour}` }), h("span", {}, labels[k] || "—")));
      const faded = el.layerEmerging.checked && state.emergingClasses.length > 0;
      parts.push(h("ul", { class: `legend-list ramp${faded ? " faded" : ""}` }, rows.reverse()));
      if (faded) parts.push(h("div", { class: "legend-sub" }, "faded beneath the emerging hot spots"));
      const anySuppressed = [...state.countIndex.values()].some((list) => list.some((p) => p.suppressed));
      if (state.meta.role === "public" || anySuppressed) {
        parts.push(h("ul", { class: "legend-list" }, h("li", {},
          h("span", { class: "swatch swatch-suppressed" }), h("span", {}, "fewer than 5 (suppressed)"))));
      }
      // No colour stands for a force without data: its area is blank, which must not read as zero crime.
      const gaps = gapsFor(c.month || month());
      if (gaps.length) {
        parts.push(h("div", { class: "legend-title legend-section" }, "Not counted this month"),
          h("ul", { class: "legend-list legend-gaps" }, gaps.map((e) => h("li", { class: "legend-gap", "data-force": e.force },
            h("span", { class: `gap-mark ${e.status}`, "aria-hidden": "true" }),
            h("span", {}, e.status === "missing" ? `${e.name}: no data (blank, not zero)`
              : `${e.name}: partial, ${e.note}`)))));
      }
    }
    if (state.meta && el.layerForecast.checked && state.forecast) {
      const info = state.meta.forecast && state.meta.forecast[state.forecast.group || group()];
      const sample = state.forecast.sample || {};
      const target = (info && info.target_month) || sample.target_month;
      const name = (info && info.model_name) || sample.model_name;
      const version = (info && info.model_version) || sample.model_version;
      parts.push(h("div", { class: "legend-title legend-section" }, `Forecast for ${monthLong(target)}`,
        name ? h("span", { class: "legend-model" }, ` (model ${name} v${version})`) : null),
        h("ul", { class: "legend-list" },
          h("li", {}, outlineSwatch(false), h("span", {}, "top 1% of cells predicted")),
          h("li", {}, outlineSwatch(true), h("span", {}, "top 5% of cells predicted"))));
    }
    const blocked = state.meta ? emergingBlocked() : null;
    if (blocked) {
      parts.push(h("div", { class: "legend-title legend-section" }, "Emerging hot spots: off"),
        h("p", { id: "legend-emerging-note", class: "legend-note" }, blocked));
    } else if (state.meta && el.layerEmerging.checked && state.emergingClasses.length) {
      parts.push(h("div", { class: "legend-title legend-section" }, "Emerging hot spots"),
        ...emergingLegend(state.emergingClasses));
    }
    el.legendBody.replaceChildren(...parts);
    el.legend.hidden = parts.length === 0;
  }

  // Hot classes and cold classes in two lists, each in the palette's order, so the reds and the blues read as
  // two families.
  function emergingLegend(classes) {
    const lists = [];
    for (const [kind, test] of [["hot", (c) => !/Cold Spot$/.test(c)], ["cold", (c) => /Cold Spot$/.test(c)]]) {
      const members = classes.filter(test);
      if (!members.length) continue;
      lists.push(h("ul", { class: `legend-list legend-emerging ${kind}` }, members.map((c) => h("li", { "data-category": c },
        h("span", { class: "swatch", style: `background:${emergingColour(c)}`, "data-colour": emergingColour(c) }),
        h("span", {}, c)))));
    }
    return lists;
  }

  function outlineSwatch(dashed) {
    return svg("svg", { class: "swatch-outline", viewBox: "0 0 22 14", width: 22, height: 14, "aria-hidden": "true" },
      svg("rect", {
        x: 2, y: 2, width: 18, height: 10, rx: 1.5, fill: "none", stroke: HOTSPOT_STROKE,
        "stroke-width": dashed ? 1.6 : 3, "stroke-dasharray": dashed ? "4 3" : null,
      }));
  }

  function renderResolutionNote() {
    const r = state.counts && state.counts.resolution;
    if (r == null) {
      el.resolutionNote.textContent = "";
      return;
    }
    const area = { 7: "about 5 km²", 8: "about 0.7 km²", 9: "about 0.1 km²" }[r];
    const detail = r === state.meta.resolutions.detail ? "street-level detail" : "public detail";
    el.resolutionNote.textContent = `Hexagonal H3 cells at resolution ${r}${area ? ` (${area} each)` : ""}, ${detail}.`;
  }

  // ---------------------------------------------------------------- header, controls

  function renderAccount() {
    const signedIn = Boolean(apiKey());
    el.signout.hidden = !signedIn;
    document.body.classList.toggle("signed-in", signedIn);
    el.key.placeholder = signedIn ? "Another API key" : "API key";
    const m = state.meta;
    const role = m ? m.role : "public";
    let text = role;
    if (m && role === "analyst" && m.analyst_force) text = `analyst · ${forceName(m.analyst_force)}`;
    el.role.textContent = text;
    el.role.dataset.role = role;
    el.role.title = m && m.principal ? `Signed in as ${m.principal}` : "Not signed in: public view";
  }

  function renderFreshness() {
    const f = state.meta.freshness || {};
    const latest = f.latest_month || state.meta.latest_month;
    const parts = [`Data to ${monthLong(latest)}`];
    if (f.landed_at) parts.push(`landed ${dateTimeUtc(f.landed_at)}`);
    el.freshness.textContent = parts.join(" · ");
    const tables = (f.tables || []).filter((t) => t.version != null)
      .map((t) => `${t.table} v${t.version}${t.updated_at ? `, ${dateTimeUtc(t.updated_at)}` : ""}`);
    el.freshness.title = [f.refreshed_at ? `Refreshed ${dateTimeUtc(f.refreshed_at)}` : null, ...tables]
      .filter(Boolean).join("\n");
  }

  function fillControls({ resetForce }) {
    const m = state.meta;
    const prevGroup = el.group.value;
    el.group.replaceChildren(...m.groups.map((g) => h("option", { value: g.slug }, g.name)));
    el.group.value = m.groups.some((g) => g.slug === prevGroup) ? prevGroup : m.default_group;

    const prevForce = el.force.value;
    el.force.replaceChildren(h("option", { value: "" }, "All forces"),
      ...m.forces.map((f) => h("option", { value: f.slug }, f.name)));
    // An analyst lands on their own force (the only one they see in detail); anyone else keeps their choice.
    const canKeep = m.forces.some((f) => f.slug === prevForce);
    el.force.value = resetForce && m.analyst_force ? m.analyst_force : canKeep ? prevForce : (m.analyst_force || "");

    const prevMonth = state.meta.months.includes(el.month.dataset.value) ? el.month.dataset.value : null;
    el.month.max = String(m.months.length - 1);
    state.monthIndex = prevMonth ? m.months.indexOf(prevMonth) : Math.max(0, m.months.indexOf(m.latest_month));
    if (state.monthIndex < 0) state.monthIndex = m.months.length - 1;
    el.monthFirst.textContent = m.months.length ? monthShort(m.months[0]) : "";
    el.monthLast.textContent = m.months.length ? monthShort(m.months[m.months.length - 1]) : "";
    renderMonth();

    syncEmergingReach();
    syncTiles();
  }

  // Why the emerging layer is out of the caller's reach for the current view (null when it is within it). It
  // restates the API's rule: street-level classes, for an analyst of their own force only, for auditors and
  // admins of every force, never for the public.
  function emergingBlocked() {
    const m = state.meta;
    if (!m || m.role === "public") {
      return "Street-level: shown to analysts for their own force and to auditors and admins. Sign in with a key.";
    }
    if (m.role === "analyst" && force() && force() !== m.analyst_force) {
      return `Shown to analysts for their own force only: choose ${forceName(m.analyst_force)} to see them.`;
    }
    if (!m.can_see_emerging) return "Not available to this key.";
    return null;
  }

  // Out of reach the layer is switched off and its box disabled, saying why, rather than left ticked and empty.
  function syncEmergingReach() {
    const why = emergingBlocked();
    el.layerEmerging.disabled = Boolean(why);
    el.layerEmerging.checked = !why && state.emergingWanted;
    el.layerEmergingLabel.title = why || "";
    el.layerEmerging.title = why || "";
    el.layerEmergingLabel.classList.toggle("disabled", Boolean(why));
    toggleLayer(el.layerEmerging, emergingLayer);
  }

  function renderMonth() {
    const months = state.meta.months;
    el.month.value = String(state.monthIndex);
    el.month.dataset.value = month();
    el.month.setAttribute("aria-valuetext", monthLong(month()));
    el.monthLabel.textContent = monthLong(month());
    el.monthPrev.disabled = state.monthIndex <= 0;
    el.monthNext.disabled = state.monthIndex >= months.length - 1;
    renderNoData();
  }

  function setMonthIndex(i, { load = true } = {}) {
    const clamped = Math.max(0, Math.min(state.meta.months.length - 1, i));
    if (clamped === state.monthIndex && load) return Promise.resolve();
    state.monthIndex = clamped;
    renderMonth();
    return load ? loadCounts() : Promise.resolve();
  }

  // ---------------------------------------------------------------- play

  function setPlaying(on) {
    state.playing = on;
    el.play.setAttribute("aria-pressed", String(on));
    el.play.textContent = on ? "■ Stop" : "▶ Play through months";
    el.play.classList.toggle("active", on);
  }

  async function play() {
    if (state.playing) {
      setPlaying(false);
      return;
    }
    setPlaying(true);
    if (state.monthIndex >= state.meta.months.length - 1) await setMonthIndex(0);
    // Each step waits for its layer to be drawn, so slow networks slow the animation rather than skip months.
    while (state.playing && state.monthIndex < state.meta.months.length - 1) {
      const started = performance.now();
      await new Promise((r) => setTimeout(r, PLAY_STEP_MS));
      if (!state.playing) break;
      await setMonthIndex(state.monthIndex + 1);
      const spent = performance.now() - started;
      if (spent < PLAY_STEP_MS / 2) await new Promise((r) => setTimeout(r, PLAY_STEP_MS / 2 - spent));
    }
    setPlaying(false);
  }

  // ---------------------------------------------------------------- cell panel

  function openPanel() {
    if (el.panel.hidden) {
      el.panel.hidden = false;
      map.invalidateSize({ pan: false });
    }
  }

  function closePanel() {
    state.selectedCell = null;
    state.selectedForce = null;
    state.cellDetail = null;
    state.seq.cell += 1;
    el.panel.hidden = true;
    countsLayer.setStyle(countStyle);
    drawSelected();
    map.invalidateSize({ pan: false });
  }

  async function openCell(cell, cellForce) {
    if (!cell) return;
    state.selectedCell = cell;
    state.selectedForce = cellForce || null;
    countsLayer.setStyle(countStyle);
    drawSelected();
    const seq = ++state.seq.cell;
    el.panelTitle.textContent = "Cell";
    el.panelBody.replaceChildren(h("p", { class: "muted" }, "Loading cell…"));
    openPanel();
    try {
      // The panel shows what the map shows: with a force chosen, that force's counts; with all forces, the
      // cell's total across every force whose area it covers.
      const params = { group: group(), force: force() || null };
      const detail = await api(`/api/cells/${encodeURIComponent(cell)}?${query(params)}`);
      if (seq !== state.seq.cell) return;
      state.cellDetail = detail;
      renderCell();
    } catch (err) {
      if (seq !== state.seq.cell) return;
      el.panelBody.replaceChildren(h("p", { class: "error-text" }, `This cell could not be loaded: ${err.message}`));
      setStatus("cell", "error", `Cell ${cell}: ${err.message}`);
    }
  }

  function refreshPanelMonth() {
    if (state.cellDetail && !el.panel.hidden) renderCell({ keepExtras: true });
  }

  function monthValueText(d) {
    const p = indexedFor(state.countIndex, d.h3_cell, d.force);
    if (p && p.month === month()) return countValueText(p);
    const hist = (d.history || []).find((x) => x.month === month());
    if (!hist) return "no recorded offences";
    if (hist.no_data) return "no data (not delivered)";
    if (hist.suppressed) return "fewer than 5";
    if (hist.count == null) return "no data";
    const parts = [offences(hist.count)];
    if (d.area_km2) parts.push(perKm2(hist.count / d.area_km2));
    return parts.join(" · ");
  }

  function renderCell({ keepExtras = false } = {}) {
    const d = state.cellDetail;
    // A trace does not depend on the month; an incident list does, so it goes when the month changes.
    const kept = keepExtras ? [...el.panelBody.querySelectorAll("#trace-result")] : [];
    el.panelTitle.textContent = d.force_name ? `${d.force_name}` : "Cell";
    const facts = h("dl", { class: "facts" },
      h("dt", {}, "Cell"), h("dd", {}, h("code", { class: "cell-id" }, d.h3_cell)),
      h("dt", {}, "Area"), h("dd", {}, `${fmtNumber(d.area_km2)} km² · H3 resolution ${d.resolution}`),
      h("dt", {}, "Crime type"), h("dd", {}, groupName(d.group)),
      h("dt", {}, monthLong(month())), h("dd", { class: "month-value" }, monthValueText(d)));

    const rows = d.history || [];
    const history = h("section", { id: "cell-history", class: "panel-section" },
      h("h3", {}, d.forecast ? "Recorded offences by month, and the forecast" : "Recorded offences by month"),
      historyChart(rows, month(), d.forecast),
      rows.some((r) => r.suppressed) ? h("p", { class: "chart-key" },
        h("span", { class: "key-hollow", "aria-hidden": "true" }), "fewer than 5 (suppressed)")
        : null,
      forecastKey(d.forecast),
      h("p", { class: "chart-hint" }, "Click a point to show that month on the map."));

    const sections = [facts, history, forecastSection(d.forecast)];
    if (d.emerging) sections.push(emergingSection(d.emerging));

    const actions = [];
    if (d.trace_url) {
      actions.push(h("button", { id: "cell-trace", type: "button", class: "btn btn-secondary", onclick: () => loadTrace(d) },
        "Trace this prediction"));
    }
    if (d.incidents_url) {
      actions.push(h("button", { id: "cell-incidents", type: "button", class: "btn btn-secondary",
        onclick: () => loadIncidents(d, null) }, `Incidents in ${monthLong(month())}`));
    }
    if (actions.length) sections.push(h("div", { class: "panel-actions" }, actions));
    el.panelBody.replaceChildren(...sections, ...kept);
  }

  function forecastSection(f) {
    const section = h("section", { id: "cell-forecast", class: "panel-section" });
    if (!f) {
      section.append(h("h3", {}, "Forecast"), h("p", { class: "muted" }, "No forecast for this cell and crime type."));
      return section;
    }
    section.append(h("h3", {}, `Forecast for ${monthLong(f.target_month)}`));
    const flags = [];
    if (f.hotspot_1pct) flags.push(h("span", { class: "flag flag-1" }, "Top 1% hot spot"));
    else if (f.hotspot_5pct) flags.push(h("span", { class: "flag flag-5" }, "Top 5% hot spot"));
    if (flags.length) section.append(h("div", { class: "flags" }, flags));
    const predicted = f.suppressed ? "fewer than 5"
      : f.predicted_count == null ? "withheld" : `about ${fmtNumber(f.predicted_count)} offences`;
    // The percentile arrives as a share of cells (1.0 = the highest); people read it in per cent.
    const share = f.percentile == null ? null : f.percentile <= 1 ? f.percentile * 100 : f.percentile;
    const pct = share == null ? null : `percentile ${share.toFixed(2).replace(/\.?0+$/, "")}`;
    section.append(h("dl", { class: "facts" },
      h("dt", {}, "Predicted"), h("dd", {}, predicted),
      hasInterval(f) ? h("dt", {}, "90% interval") : null,
      hasInterval(f) ? h("dd", { class: "forecast-range" }, intervalText(f)) : null,
      h("dt", {}, "Rank"), h("dd", {}, [f.rank != null ? rankText(f.rank, f.ranked_cells) : "–", pct].filter(Boolean).join(" · ")),
      h("dt", {}, "Model"), h("dd", { class: "model" }, `${f.model_name} v${f.model_version}`),
      f.prediction_id ? h("dt", {}, "Prediction") : null,
      f.prediction_id ? h("dd", {}, h("code", { class: "small-code" }, f.prediction_id)) : null));
    return section;
  }

  // "5th of 4,217 cells": a rank means little without the number of cells ranked.
  function rankText(rank, of) {
    const mod100 = rank % 100, mod10 = rank % 10;
    const suffix = mod100 >= 11 && mod100 <= 13 ? "th" : ({ 1: "st", 2: "nd", 3: "rd" }[mod10] || "th");
    const place = `${intFmt.format(rank)}${suffix}`;
    return of ? `${place} of ${intFmt.format(of)} cells` : place;
  }

  function emergingSection(e) {
    if (e.category === NO_PATTERN) {
      return h("section", { id: "cell-emerging", class: "panel-section" },
        h("h3", {}, "Emerging hot spot"), h("p", { class: "muted" }, `No pattern detected up to ${monthLong(e.end_month)}.`));
    }
    return h("section", { id: "cell-emerging", class: "panel-section" },
      h("h3", {}, "Emerging hot spot"),
      h("p", {}, h("span", { class: "swatch inline", style: `background:${emergingColour(e.category)}` }), e.category),
      h("dl", { class: "facts" },
        e.trend != null ? h("dt", {}, "Trend") : null, e.trend != null ? h("dd", {}, String(e.trend)) : null,
        e.end_month ? h("dt", {}, "Up to") : null, e.end_month ? h("dd", {}, monthLong(e.end_month)) : null));
  }

  const hasInterval = (f) => Boolean(f) && f.lower_90 != null && f.upper_90 != null;

  function intervalText(f) {
    return `${fmtNumber(f.lower_90)} – ${fmtNumber(f.upper_90)} offences`;
  }

  // What the forecast on the chart says, in words: its month, value and (at street level) its interval.
  function forecastPointText(f) {
    const value = f.suppressed ? "fewer than 5 predicted" : `about ${fmtNumber(f.predicted_count)} predicted`;
    return `Forecast for ${monthLong(f.target_month)}: ${value}`
      + (hasInterval(f) ? ` (90% interval ${intervalText(f)})` : "");
  }

  const chartForecast = (f) => Boolean(f) && f.target_month && (f.suppressed || f.predicted_count != null);

  function forecastKey(f) {
    if (!chartForecast(f)) return null;
    return h("p", { class: "chart-key forecast-key" },
      h("span", { class: "key-line", "aria-hidden": "true" }), "recorded",
      h("span", { class: "key-forecast", "aria-hidden": "true" }),
      hasInterval(f) ? "forecast with its 90% interval" : "forecast");
  }

  function monthsBetween(a, b) {
    const [ya, ma] = a.split("-").map(Number);
    const [yb, mb] = b.split("-").map(Number);
    return (yb - ya) * 12 + (mb - ma);
  }

  function niceStep(max, ticks) {
    const raw = max / ticks;
    const mag = 10 ** Math.floor(Math.log10(raw));
    const norm = raw / mag;
    const step = norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 2.5 ? 2.5 : norm <= 5 ? 5 : 10;
    return Math.max(step * mag, 1);
  }

  function historyChart(history, selected, forecast) {
    const rows = [...history].sort((a, b) => (a.month < b.month ? -1 : 1));
    const W = 320, H = 150, M = { l: 38, r: 10, t: 12, b: 26 };
    const iw = W - M.l - M.r, ih = H - M.t - M.b;
    const counts = rows.map((r) => r.count).filter((c) => c != null);
    // The forecast sits beyond the last observed month, as many steps on as its horizon.
    const last = rows.length ? rows[rows.length - 1] : null;
    const fc = last && chartForecast(forecast) ? forecast : null;
    const anySuppressed = rows.some((r) => r.suppressed) || Boolean(fc && fc.suppressed);
    const ahead = fc ? Math.max(1, monthsBetween(last.month, fc.target_month)) : 0;
    const fcValues = fc && !fc.suppressed ? [fc.predicted_count, hasInterval(fc) ? fc.upper_90 : 0] : [];
    const top = Math.max(5, ...counts, ...fcValues);
    // Public counts are multiples of 5 above a threshold of 5; finer gridlines would only suggest hidden values.
    const step = Math.max(niceStep(top, 4), anySuppressed || counts.every((c) => c % 5 === 0) ? 5 : 1);
    const yMax = Math.ceil(top / step) * step;
    const slots = rows.length + ahead;
    const x = (i) => M.l + (slots <= 1 ? iw / 2 : (i * iw) / (slots - 1));
    const y = (v) => M.t + ih - (Math.min(v, yMax) / yMax) * ih;

    const span = rows.length ? `${monthLong(rows[0].month)} to ${monthLong(rows[rows.length - 1].month)}` : "no history";
    const chart = svg("svg", {
      class: "history-chart", viewBox: `0 0 ${W} ${H}`, role: "img",
      "aria-label": `Recorded offences per month, ${span}${fc ? `; ${forecastPointText(fc)}` : ""}`,
    });
    if (!rows.length) {
      chart.append(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "axis-label", text: "No history" }));
      return chart;
    }
    if (anySuppressed) {
      // The band stands in for hidden values: it says "somewhere from 1 to 4" without drawing a number.
      chart.append(svg("rect", { x: M.l, y: y(5), width: iw, height: y(0) - y(5), class: "suppressed-band" }));
    }
    for (let v = 0; v <= yMax + 1e-9; v += step) {
      chart.append(svg("line", { x1: M.l, x2: M.l + iw, y1: y(v), y2: y(v), class: v === 0 ? "axis" : "grid" }),
        svg("text", { x: M.l - 5, y: y(v) + 3.5, "text-anchor": "end", class: "axis-label", text: intFmt.format(v) }));
    }
    const selIndex = rows.findIndex((r) => r.month === selected);
    const labelIdx = new Set([0, rows.length - 1]);
    rows.forEach((r, i) => {
      if (r.month.endsWith("-01")) labelIdx.add(i);
    });
    if (selIndex >= 0) labelIdx.add(selIndex);
    const placed = [];
    const fcIndex = fc ? rows.length - 1 + ahead : -1;
    // The forecast month's label is placed first: it is the one month the chart cannot do without.
    if (fc) {
      placed.push(fcIndex);
      chart.append(svg("line", { x1: x(fcIndex), x2: x(fcIndex), y1: M.t + ih, y2: M.t + ih + 3, class: "axis" }),
        svg("text", { x: x(fcIndex), y: H - 8, "text-anchor": "end", class: "axis-label forecast-month",
          text: monthShort(fc.target_month) }));
    }
    for (const i of [...labelIdx].sort((a, b) => (a === selIndex ? -1 : b === selIndex ? 1 : a - b))) {
      // Neighbouring labels would overprint; the selected month wins, then the earlier one.
      if (placed.some((j) => Math.abs(x(i) - x(j)) < 40)) continue;
      placed.push(i);
      chart.append(svg("line", { x1: x(i), x2: x(i), y1: M.t + ih, y2: M.t + ih + 3, class: "axis" }));
      const anchor = i === 0 ? "start" : i === slots - 1 ? "end" : "middle";
      chart.append(svg("text", {
        x: x(i), y: H - 8, "text-anchor": anchor, class: `axis-label${i === selIndex ? " selected" : ""}`,
        text: monthShort(rows[i].month),
      }));
    }
    if (selIndex >= 0) {
      chart.append(svg("line", { x1: x(selIndex), x2: x(selIndex), y1: M.t, y2: M.t + ih, class: "selected-rule" }));
    }
    let path = "";
    let pen = false;
    rows.forEach((r, i) => {
      if (r.count == null) {
        pen = false;
        return;
      }
      path += `${pen ? "L" : "M"}${x(i).toFixed(1)},${y(r.count).toFixed(1)}`;
      pen = true;
    });
    if (path) chart.append(svg("path", { d: path, class: "history-line" }));
    if (fc) drawForecast(chart, fc, { x, y, i: fcIndex, lastIndex: rows.length - 1, last, top: M.t, bottom: M.t + ih });
    rows.forEach((r, i) => {
      const hidden = r.suppressed || r.count == null;
      // A month the cell's force did not deliver is unknown: drawn on the axis, hollow and dashed, never as 0.
      const value = r.suppressed ? "fewer than 5 (suppressed)" : r.count == null ? "no data (not delivered)"
        : `${offences(r.count)}${r.partial ? " (partial month)" : ""}`;
      const cy = r.no_data ? y(0) : hidden ? y(2.5) : y(r.count);
      const point = svg("circle", {
        cx: x(i), cy, r: i === selIndex ? 4.5 : 2.8,
        class: `point${hidden ? " hidden-value" : ""}${r.no_data ? " no-data" : ""}${i === selIndex ? " selected" : ""}`,
        tabindex: "0", "data-month": r.month,
      }, svg("title", { text: `${monthLong(r.month)}: ${value}` }));
      point.addEventListener("click", () => jumpToMonth(r.month));
      point.addEventListener("keydown", (ev) => {
        if (ev.key === "Enter" || ev.key === " ") {
          ev.preventDefault();
          jumpToMonth(r.month);
        }
      });
      chart.append(point);
    });
    return chart;
  }

  // The forecast beyond the observed months: a dashed divider where observation ends, a dashed link from the last
  // recorded month, the 90% interval as a shaded bar with whiskers, and a hollow diamond labelled "Forecast", so
  // it cannot be read as one more recorded month.
  function drawForecast(chart, f, { x, y, i, lastIndex, last, top, bottom }) {
    const cx = x(i);
    const cy = f.suppressed ? y(2.5) : y(f.predicted_count);
    const divider = (x(lastIndex) + cx) / 2;
    const g = svg("g", { class: "forecast", "data-month": f.target_month });
    g.append(svg("line", { x1: divider, x2: divider, y1: top, y2: bottom, class: "forecast-divider" }));
    if (last.count != null && !last.suppressed && !f.suppressed) {
      g.append(svg("line", { x1: x(lastIndex), y1: y(last.count), x2: cx, y2: cy, class: "forecast-link" }));
    }
    if (hasInterval(f)) {
      const yHi = y(f.upper_90), yLo = y(f.lower_90);
      g.append(
        svg("rect", { x: cx - 4, y: yHi, width: 8, height: Math.max(1, yLo - yHi), class: "forecast-interval",
          "data-lower": f.lower_90, "data-upper": f.upper_90 },
        svg("title", { text: `90% interval: ${intervalText(f)}` })),
        svg("line", { x1: cx - 5, x2: cx + 5, y1: yHi, y2: yHi, class: "forecast-whisker" }),
        svg("line", { x1: cx - 5, x2: cx + 5, y1: yLo, y2: yLo, class: "forecast-whisker" }),
        svg("line", { x1: cx, x2: cx, y1: yHi, y2: yLo, class: "forecast-whisker" }));
    }
    const r = 4.5;
    g.append(svg("path", {
      d: `M${cx},${cy - r}L${cx + r},${cy}L${cx},${cy + r}L${cx - r},${cy}Z`,
      class: `forecast-point${f.suppressed ? " hidden-value" : ""}`, tabindex: "0",
      "data-predicted": f.suppressed ? "" : f.predicted_count,
    }, svg("title", { text: forecastPointText(f) })));
    const labelY = hasInterval(f) ? y(f.upper_90) - 5 : cy - 8;
    g.append(svg("text", { x: cx, y: Math.max(top + 2, labelY), "text-anchor": "end", class: "forecast-label",
      text: "Forecast" }));
    chart.append(g);
  }

  function jumpToMonth(ym) {
    const i = state.meta.months.indexOf(ym);
    if (i >= 0) setMonthIndex(i);
  }

  async function loadTrace(d) {
    const target = ensureSection("trace-result", "Lineage trace");
    target.body.replaceChildren(h("p", { class: "muted" }, "Tracing the prediction back to its source rows…"));
    try {
      const t = await api(d.trace_url);
      const hops = (t.hops || []).map((hop) => h("li", { class: hop.ok ? "hop ok" : "hop fail" },
        h("span", { class: "hop-mark", "aria-label": hop.ok ? "passed" : "failed" }, hop.ok ? "✓" : "✗"),
        h("div", { class: "hop-text" }, h("strong", {}, hop.name), hop.detail ? h("div", { class: "hop-detail" }, hop.detail) : null)));
      target.body.replaceChildren(
        h("p", { class: t.verified ? "verdict ok" : "verdict fail" },
          t.verified ? "✓ Verified: every hop checks out." : "✗ Not verified: at least one hop failed."),
        h("ol", { class: "hops" }, hops),
        h("p", { class: "muted small" }, "Prediction ", h("code", { class: "small-code" }, t.prediction_id)));
      target.section.scrollIntoView({ block: "start" });
    } catch (err) {
      target.body.replaceChildren(h("p", { class: "error-text" }, `The trace failed: ${err.message}`));
      setStatus("trace", "error", `Trace failed: ${err.message}`);
    }
  }

  async function loadIncidents(d, nextUrl) {
    const target = ensureSection("cell-incidents-list", `Incidents recorded in ${monthLong(month())}`);
    // The group keeps the list to the incidents the cell's count is made of.
    const url = nextUrl || `${d.incidents_url}?${query({ month: month(), group: group(), limit: Math.min(50, state.meta.limits.incidents_page_max || 50) })}`;
    let table = target.body.querySelector("table");
    if (!nextUrl) {
      target.body.replaceChildren(h("p", { class: "muted" }, "Loading incidents…"));
      table = null;
    }
    try {
      const page = await api(url);
      const rows = (page.items || []).map((it) => h("tr", {},
        h("td", {}, it.occurred_date || "–"),
        h("td", {}, [it.category_name, it.knife_enabled ? "knife" : null, it.police_discovered ? "police-found" : null]
          .filter(Boolean).join(", ")),
        h("td", {}, it.outcome ? `${it.outcome}${it.outcome_month ? ` (${monthLong(it.outcome_month)})` : ""}` : "–"),
        h("td", {}, it.latitude != null && it.longitude != null
          ? `${Number(it.latitude).toFixed(5)}, ${Number(it.longitude).toFixed(5)}` : "–"),
        h("td", {}, h("code", { class: "small-code", title: `${it.incident_id} (${it.source})` },
          String(it.incident_id || "").slice(0, 10)))));
      if (!table) {
        if (!rows.length) {
          target.body.replaceChildren(h("p", { class: "muted" }, "No incidents recorded in this cell that month."));
          return;
        }
        table = h("table", { class: "incidents" },
          h("thead", {}, h("tr", {}, h("th", { title: "when it happened, where the source says; the list is of incidents recorded in the month shown" }, "Occurred"),
            h("th", {}, "Category"), h("th", {}, "Outcome"), h("th", {}, "Location"), h("th", {}, "Reference"))),
          h("tbody"));
        const download = h("button", { type: "button", class: "btn btn-secondary", id: "incidents-csv",
          onclick: () => downloadIncidents(d) }, "Download CSV");
        target.body.replaceChildren(h("p", { class: "muted small incidents-count" }),
          h("p", { class: "muted small" }, "Recorded in this month; occurrence dates can be earlier."), table, download);
        target.section.scrollIntoView({ block: "start" });
      }
      table.tBodies[0].append(...rows);
      const shown = table.tBodies[0].rows.length;
      target.body.querySelector(".incidents-count").textContent =
        `${intFmt.format(shown)} of ${intFmt.format(page.numberMatched ?? shown)} incidents`;
      target.body.querySelector(".more")?.remove();
      if (page.next) {
        target.body.append(h("button", { type: "button", class: "btn btn-secondary more",
          onclick: () => loadIncidents(d, page.next) }, "Show more"));
      }
    } catch (err) {
      target.body.append(h("p", { class: "error-text" }, `Incidents could not be loaded: ${err.message}`));
      setStatus("incidents", "error", `Incidents failed: ${err.message}`);
    }
  }

  // The export needs the caller's key, which a plain link cannot send: fetched, then saved from a blob.
  async function downloadIncidents(d) {
    try {
      const params = query({ month: month(), group: group(), format: "csv" });
      const key = apiKey();
      const res = await fetch(`${d.incidents_url}?${params}`, { headers: key ? { Authorization: `Bearer ${key}` } : {} });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const blob = await res.blob();
      const name = (res.headers.get("content-disposition") || "").match(/filename="([^"]+)"/)?.[1] || "incidents.csv";
      const a = h("a", { href: URL.createObjectURL(blob), download: name });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
    } catch (err) {
      setStatus("incidents", "error", `The export failed: ${err.message}`);
    }
  }

  function ensureSection(id, title) {
    let section = $(id);
    if (!section) {
      section = h("section", { id, class: "panel-section" }, h("h3", {}), h("div", { class: "section-body" }));
      el.panelBody.append(section);
    }
    section.querySelector("h3").textContent = title;
    section.scrollIntoView({ block: "start" });
    return { section, body: section.querySelector(".section-body") };
  }

  // ---------------------------------------------------------------- start-up and events

  async function loadMeta({ resetForce = false } = {}) {
    begin("meta");
    let ok = false;
    try {
      try {
        state.meta = await api("/api/meta");
      } catch (err) {
        // A bad key has been dropped by now; the public view is still worth showing.
        if (err.status !== 401) throw err;
        state.meta = await api("/api/meta");
      }
      setStatus("meta", null, null);
      renderAccount();
      renderFreshness();
      fillControls({ resetForce });
      if (interventions) interventions.update(state.meta, force());
      ok = true;
    } catch (err) {
      setStatus("meta", "error", `The map could not start: ${err.message}`);
    } finally {
      end("meta", ok);
    }
    return ok;
  }

  async function reloadEverything({ resetForce }) {
    // Held open until the layer loads have started, so the map never looks "ready" between meta and layers.
    begin("reload");
    let tasks = [];
    try {
      if (!(await loadMeta({ resetForce }))) return;
      fitToForce();
      tasks = [loadCounts(), loadForecast(), loadEmerging()];
      if (state.selectedCell) tasks.push(openCell(state.selectedCell, state.selectedForce));
    } finally {
      end("reload", true);
    }
    await Promise.all(tasks);
  }

  el.signin.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const key = el.key.value.trim();
    if (!key) {
      setStatus("auth", "error", "Enter an API key to sign in.");
      el.key.focus();
      return;
    }
    sessionStorage.setItem(KEY_STORAGE, key);
    el.key.value = "";
    setStatus("auth", null, null);
    renderAccount();
    await reloadEverything({ resetForce: true });
    if (apiKey() && state.meta) setStatus("auth", "info", null);
  });

  el.signout.addEventListener("click", async () => {
    sessionStorage.removeItem(KEY_STORAGE);
    setStatus("auth", null, null);
    renderAccount();
    await reloadEverything({ resetForce: false });
  });

  el.group.addEventListener("change", () => {
    loadCounts();
    loadForecast();
    loadEmerging();
    if (state.selectedCell) openCell(state.selectedCell, state.selectedForce);
  });
  el.force.addEventListener("change", () => {
    fitToForce();
    renderNoData();
    syncEmergingReach();
    loadCounts();
    loadForecast();
    loadEmerging();
    if (interventions) interventions.update(state.meta, force());
  });
  el.measure.addEventListener("change", () => loadCounts());

  let slideTimer = null;
  el.month.addEventListener("input", () => {
    state.monthIndex = Number(el.month.value);
    renderMonth();
    // Dragging emits many events; only the month the user settles on is worth a request.
    clearTimeout(slideTimer);
    slideTimer = setTimeout(loadCounts, 250);
  });
  el.monthPrev.addEventListener("click", () => setMonthIndex(state.monthIndex - 1));
  el.monthNext.addEventListener("click", () => setMonthIndex(state.monthIndex + 1));
  el.play.addEventListener("click", play);

  el.layerCounts.addEventListener("change", () => {
    toggleLayer(el.layerCounts, countsLayer);
    loadCounts();
  });
  el.layerForecast.addEventListener("change", () => {
    toggleLayer(el.layerForecast, forecastLayer);
    loadForecast();
  });
  el.layerEmerging.addEventListener("change", () => {
    state.emergingWanted = el.layerEmerging.checked;
    toggleLayer(el.layerEmerging, emergingLayer);
    loadEmerging();
  });
  el.layerTiles.addEventListener("change", () => {
    syncTiles();
    countsLayer.setStyle(countStyle);
  });
  el.panelClose.addEventListener("click", closePanel);
  map.on("moveend", () => {
    if (el.map.dataset.state !== "ready") return;
    const c = map.getCenter();
    const z = Math.round(map.getZoom() * 100) / 100;
    history.replaceState(null, "", `#${z}/${c.lat.toFixed(5)}/${c.lng.toFixed(5)}`);
  });

  // ---------------------------------------------------------------- narrow screens

  function setControlsOpen(open) {
    el.controls.classList.toggle("open", open);
    el.controlsToggle.setAttribute("aria-expanded", String(open));
  }
  el.controlsToggle.addEventListener("click", () => setControlsOpen(!el.controls.classList.contains("open")));
  map.on("click", () => {
    if (narrow()) setControlsOpen(false);
  });

  function setLegendFolded(folded) {
    el.legend.classList.toggle("folded", folded);
    el.legendToggle.setAttribute("aria-expanded", String(!folded));
    el.legendToggle.textContent = folded ? "Legend ▸" : "Legend ▾";
  }
  el.legendToggle.addEventListener("click", () => setLegendFolded(!el.legend.classList.contains("folded")));
  setLegendFolded(narrow());
  narrowQuery.addEventListener("change", () => {
    setLegendFolded(narrow());
    setControlsOpen(false);
    map.invalidateSize({ pan: false });
  });

  map.on("zoomend", () => {
    countsLayer.setStyle(countStyle);
    forecastLayer.setStyle(forecastStyle);
    emergingLayer.setStyle(emergingStyle);
    syncLabels();
  });
  document.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape" && el.controls.classList.contains("open")) setControlsOpen(false);
    else if (ev.key === "Escape" && !el.panel.hidden) closePanel();
  });

  function tableVersions(meta) {
    return JSON.stringify(((meta && meta.freshness && meta.freshness.tables) || []).map((t) => [t.table, t.version]));
  }

  // A page left open follows the lake: when a table has a new version, the layers are reloaded, and a view that
  // was on the latest month moves on to the new latest month.
  async function pollFreshness() {
    if (!state.meta || state.playing || document.hidden) return;
    let fresh;
    try {
      fresh = await api("/api/meta");
    } catch (err) {
      return;  // a failed poll changes nothing on the map; the next one may succeed
    }
    if (tableVersions(fresh) === tableVersions(state.meta)) return;
    const wasLatest = month() === state.meta.latest_month;
    state.meta = fresh;
    renderFreshness();
    fillControls({ resetForce: false });
    if (wasLatest) state.monthIndex = Math.max(0, fresh.months.indexOf(fresh.latest_month));
    renderMonth();
    setStatus("freshness", "note", `New data loaded: ${el.freshness.textContent}.`);
    const tasks = [loadCounts(), loadForecast(), loadEmerging()];
    if (state.selectedCell) tasks.push(openCell(state.selectedCell, state.selectedForce));
    await Promise.all(tasks);
  }

  countsLayer.addTo(map);
  forecastLayer.addTo(map);
  emergingLayer.addTo(map);
  renderAccount();
  renderLegend();
  function schedulePoll() {
    const ms = state.meta && state.meta.poll_seconds ? state.meta.poll_seconds * 1000 : FRESHNESS_POLL_MS;
    setTimeout(() => pollFreshness().finally(schedulePoll), ms);
  }

  // Polling starts once the first meta is in, so it runs at the interval the server asks for.
  reloadEverything({ resetForce: true }).finally(schedulePoll);
})();
