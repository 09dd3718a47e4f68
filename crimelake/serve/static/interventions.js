/* crimelake map page: intervention areas. An "Interventions" layer toggle draws each area of the caller's force as a
   dashed outline; its popup gives the kind, the dates and the agency and, for analysts and auditors, the evaluated
   effect per forecast group with its 90% interval, the pre-trend verdict and the displacement reading. Where and
   when an operation runs is operational: the public is offered no toggle, and the API refuses it anyway.

   app.js attaches it once the map exists and tells it who is signed in:
     const interventions = window.CrimelakeInterventions
       ? window.CrimelakeInterventions.attach(map, { api, onStatus: (kind, text) => setStatus("interventions", kind, text) })
       : null;
     ... after each /api/meta load, and when the force changes: if (interventions) interventions.update(state.meta, force());
*/
(() => {
  "use strict";

  const STYLE = { color: "#6d28d9", weight: 2.4, opacity: 0.95, dashArray: "7 5", fill: true, fillOpacity: 0.06,
                  lineJoin: "round", className: "intervention-area" };

  function escapeHtml(s) {
    return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  }

  function words(slug) {
    return String(slug || "").replace(/_/g, " ");
  }

  function pct(ratio) {
    const change = Math.round(Math.abs(ratio - 1) * 100);
    return `${change}% ${ratio < 1 ? "lower" : "higher"}`;
  }

  function effectHtml(e) {
    if (e.rate_ratio == null) {
      return `<li><b>${escapeHtml(words(e.group))}</b>: no estimate${e.note ? ` (${escapeHtml(e.note)})` : ""}</li>`;
    }
    const verdict = e.rate_ratio_hi < 1 ? "a fall" : e.rate_ratio_lo > 1 ? "a rise" : "no clear change";
    const trend = e.comparison_credible ? "pre-trend check passed"
      : "pre-trend check failed: read with caution";
    return `<li><b>${escapeHtml(words(e.group))}</b>: ${pct(e.rate_ratio)} than expected (rate ratio `
      + `${e.rate_ratio.toFixed(2)}, 90% interval ${e.rate_ratio_lo.toFixed(2)} to ${e.rate_ratio_hi.toFixed(2)}): `
      + `${verdict}; about ${e.prevented_per_month.toFixed(1)} crimes prevented a month; ${trend}; `
      + `displacement (WDQ): ${escapeHtml(e.wdq_reading || "undefined")}</li>`;
  }

  function headerHtml(p) {
    const until = p.end_month || "ongoing";
    return `<div class="intervention-popup"><b>${escapeHtml(words(p.kind))}</b><br>`
      + `${escapeHtml(p.start_month)} to ${escapeHtml(until)}<br>`
      + `${escapeHtml(p.agency || "agency not given")} · ${p.n_cells} cell${p.n_cells === 1 ? "" : "s"}`
      + (p.description ? `<br><i>${escapeHtml(p.description)}</i>` : "");
  }

  function attach(map, { api, onStatus = () => {} }) {
    map.createPane("interventions").style.zIndex = "437";
    const layer = L.geoJSON(null, { pane: "interventions", style: () => STYLE, onEachFeature: bind });
    let who = { role: "public" };
    let chosenForce = null;
    let loading = null;

    // The toggle joins the page's layer list; it is the page's own, not in index.html, so it ships with this file.
    const label = document.createElement("label");
    label.className = "check";
    label.id = "layer-interventions-label";
    label.hidden = true;
    const box = document.createElement("input");
    box.type = "checkbox";
    box.id = "layer-interventions";
    label.append(box, " Interventions");
    const anchor = document.getElementById("layer-emerging-label") || document.getElementById("layer-counts");
    if (anchor) (anchor.closest("label") || anchor).after(label);

    function bind(feature, lyr) {
      const p = feature.properties;
      lyr.bindPopup(`${headerHtml(p)}<div class="intervention-effect">Loading the effect…</div></div>`,
                    { maxWidth: 340 });
      lyr.on("popupopen", async (ev) => {
        const popup = ev.popup;
        let html;
        try {
          const body = await api(`/api/interventions/${encodeURIComponent(p.intervention_id)}/effect`);
          html = body.evaluated
            ? `<ul>${body.effects.map(effectHtml).join("")}</ul>`
            : "Not evaluated yet: run <code>crimelake models</code>.";
        } catch (err) {
          html = `The effect could not be loaded: ${escapeHtml(err.message)}`;
        }
        popup.setContent(`${headerHtml(p)}<div class="intervention-effect">${html}</div></div>`);
      });
    }

    async function load() {
      layer.clearLayers();
      if (!box.checked || who.role === "public") return;
      const force = who.role === "analyst" ? who.analyst_force : chosenForce;
      const url = `/api/interventions${force ? `?force=${encodeURIComponent(force)}` : ""}`;
      const mine = (loading = {});
      try {
        const body = await api(url);
        if (mine !== loading) return;  // a newer load has started
        layer.addData(body);
        const hidden = (body.not_shown || []).length;
        onStatus(hidden ? "note" : null, hidden ? `${hidden} intervention(s) could not be drawn: their areas `
          + "did not resolve to cells" : null);
      } catch (err) {
        if (mine === loading) onStatus("error", `Interventions could not be loaded: ${err.message}`);
      }
    }

    box.addEventListener("change", () => {
      if (box.checked) layer.addTo(map);
      else map.removeLayer(layer);
      load();
    });

    return {
      layer,
      /** Who is signed in (the /api/meta answer) and the force chosen on the page (auditors pick one or all). */
      update(meta, force) {
        who = meta || { role: "public" };
        chosenForce = force || null;
        label.hidden = who.role === "public";
        if (label.hidden && box.checked) {
          box.checked = false;
          map.removeLayer(layer);
        }
        return load();
      },
    };
  }

  window.CrimelakeInterventions = { attach };
})();
