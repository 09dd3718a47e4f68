/* crimelake map page: reference geography drawn with the cells. The land and the police force boundaries lie
   beneath the cells; place names, and street names at street zoom, lie above them but take no clicks, so a cell
   under a label can still be chosen. Everything comes from /api/geography (no tiles, no internet). */
(() => {
  "use strict";

  const STREET_ZOOM = 14.5;
  const STREETS_MAX_KM2 = 50;
  const MAX_PLACE_LABELS = 90;
  const ATTRIBUTION = "Boundaries: <a href=\"https://github.com/martinjc/UK-GeoJson\" rel=\"noopener\">Martin Chorley</a>"
    + " CC BY 4.0, contains OS data © Crown copyright 2014 and ONS data (OGL v3)";

  function escapeHtml(s) {
    return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  }

  async function getJson(url, signal) {
    const res = await fetch(url, { headers: { Accept: "application/geo+json, application/json" }, signal });
    if (!res.ok) throw new Error(`${url} answered ${res.status}`);
    return res.json();
  }

  // Rectangles of labels already shown; a label overlapping one of them waits for a closer zoom.
  function declutter(nodes, taken) {
    let shown = 0;
    for (const node of nodes) {
      node.style.visibility = "";
      const r = (node.firstElementChild || node).getBoundingClientRect();
      const overlaps = taken.some((s) => r.left < s.right + 6 && r.right > s.left - 6
        && r.top < s.bottom + 2 && r.bottom > s.top - 2);
      if (overlaps) node.style.visibility = "hidden";
      else {
        taken.push(r);
        shown += 1;
      }
    }
    return shown;
  }

  function visibleRects(selector) {
    return [...document.querySelectorAll(selector)]
      .filter((n) => n.offsetParent !== null && getComputedStyle(n).visibility !== "hidden"
        && getComputedStyle(n.parentElement).visibility !== "hidden")
      .map((n) => n.getBoundingClientRect());
  }

  function attach(map, { container, onError } = {}) {
    // Below the cells (counts 410): land, then force boundaries. Above every cell layer: names.
    for (const [name, z, clicks] of [["land", 350, false], ["boundaries", 360, false], ["places", 445, false],
      ["streets", 446, false]]) {
      const pane = map.createPane(name);
      pane.style.zIndex = String(z);
      if (!clicks) pane.style.pointerEvents = "none";
    }
    const dataset = (container || map.getContainer()).dataset;
    dataset.geography = "loading";

    const land = L.geoJSON(null, {
      pane: "land", interactive: false,
      style: { className: "land", color: "#93a3b4", weight: 1, opacity: 1, fillColor: "#fbfaf7", fillOpacity: 1 },
    }).addTo(map);
    let chosenForce = "";
    const boundaries = L.geoJSON(null, {
      pane: "boundaries", interactive: false,
      style: (f) => boundaryStyle(f.properties.force),
    }).addTo(map);
    const placesLayer = L.layerGroup().addTo(map);
    const streetsLayer = L.layerGroup().addTo(map);
    let places = [];
    let streetsAbort = null;
    let streetsTimer = null;

    function boundaryStyle(slug) {
      const chosen = slug === chosenForce;
      const z = map.getZoom();
      return {
        className: `force-boundary force-${slug}`, fill: false, lineJoin: "round",
        color: chosen ? "#1f2933" : "#66788a", opacity: chosen ? 0.95 : 0.75,
        weight: chosen ? 2.4 : z >= 9 ? 1.4 : 1, dashArray: chosen ? null : "5 4",
      };
    }

    function placeLabel(p) {
      const size = p.rank <= 12 ? "place-major" : p.kind === "town" ? "place-town" : "place-minor";
      const icon = L.divIcon({ className: `place-label ${size}`, html: `<span aria-hidden="true">${escapeHtml(p.name)}</span>`,
        iconSize: null, iconAnchor: [0, 0] });
      const m = L.marker(p.latlng, { icon, interactive: false, keyboard: false, pane: "places" });
      m.rank = p.rank;
      return m;
    }

    function drawPlaces() {
      placesLayer.clearLayers();
      if (!places.length) return;
      const z = map.getZoom();
      const view = map.getBounds().pad(0.05);
      let n = 0;
      for (const p of places) {
        if (p.min_zoom > z + 0.25 || !view.contains(p.latlng)) continue;
        placeLabel(p).addTo(placesLayer);
        n += 1;
        if (n >= MAX_PLACE_LABELS) break;
      }
      const nodes = [];
      placesLayer.eachLayer((m) => nodes.push(m));
      nodes.sort((a, b) => a.rank - b.rank);
      // Force names (drawn by the page from its cells) keep their place; places fit around them.
      const shown = declutter(nodes.map((m) => m.getElement()).filter(Boolean), visibleRects(".force-label span"));
      dataset.places = String(shown);
      return shown;
    }

    function drawStreets(features) {
      streetsLayer.clearLayers();
      for (const f of features) {
        const [lon, lat] = f.geometry.coordinates;
        const icon = L.divIcon({ className: "street-label", html: `<span aria-hidden="true">${escapeHtml(f.properties.name)}</span>`,
          iconSize: null, iconAnchor: [0, 0] });
        L.marker([lat, lon], { icon, interactive: false, keyboard: false, pane: "streets" }).addTo(streetsLayer);
      }
      const nodes = [];
      streetsLayer.eachLayer((m) => nodes.push(m.getElement()));
      dataset.streets = String(declutter(nodes.filter(Boolean), visibleRects(".place-label span")));
    }

    function areaKm2(b) {
      const h = (b.getNorth() - b.getSouth()) * 111.32;
      const w = (b.getEast() - b.getWest()) * 111.32 * Math.cos((b.getCenter().lat * Math.PI) / 180);
      return h * w;
    }

    function loadStreets() {
      clearTimeout(streetsTimer);
      if (streetsAbort) streetsAbort.abort();
      const b = map.getBounds();
      if (map.getZoom() < STREET_ZOOM || areaKm2(b) > STREETS_MAX_KM2) {
        streetsLayer.clearLayers();
        dataset.streets = "0";
        return;
      }
      // Panning emits a burst of moves; only where the map settles is worth a request.
      streetsTimer = setTimeout(async () => {
        const ctrl = new AbortController();
        streetsAbort = ctrl;
        const bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map((v) => v.toFixed(5)).join(",");
        try {
          const body = await getJson(`/api/geography/streets?bbox=${bbox}&limit=150`, ctrl.signal);
          if (ctrl === streetsAbort) drawStreets(body.features || []);
        } catch (err) {
          if (err.name !== "AbortError" && onError) onError(`Street names could not be loaded: ${err.message}`);
        }
      }, 200);
    }

    function refresh() {
      drawPlaces();
      const nodes = [];
      streetsLayer.eachLayer((m) => nodes.push(m.getElement()));
      if (nodes.length) declutter(nodes.filter(Boolean), visibleRects(".place-label span"));
    }

    map.on("moveend", () => {
      boundaries.setStyle((f) => boundaryStyle(f.properties.force));
      drawPlaces();
      loadStreets();
    });

    const ready = Promise.all([
      getJson("/api/geography/outline"), getJson("/api/geography/forces"), getJson("/api/geography/places"),
    ]).then(([outline, forces, placeNames]) => {
      land.addData(outline);
      boundaries.addData(forces);
      places = (placeNames.features || []).map((f) => ({
        ...f.properties, latlng: L.latLng(f.geometry.coordinates[1], f.geometry.coordinates[0]),
      })).sort((a, b) => a.rank - b.rank);
      map.attributionControl.addAttribution(ATTRIBUTION);
      dataset.forceAreas = String(forces.features.length);
      drawPlaces();
      loadStreets();
      dataset.geography = "ready";
    }).catch((err) => {
      dataset.geography = "error";
      if (onError) onError(`Boundaries and place names could not be loaded: ${err.message}`);
    });

    return {
      ready,
      refresh,
      highlightForce(slug) {
        chosenForce = slug || "";
        boundaries.setStyle((f) => boundaryStyle(f.properties.force));
        boundaries.eachLayer((layer) => {
          if (layer.feature.properties.force === chosenForce) layer.bringToFront();
        });
      },
    };
  }

  window.CrimelakeGeography = { attach };
})();
