/* Heritage Monitor dashboard: a map of the sites by risk level, the alerts, and a panel per site.
 *
 * Plain browser JavaScript over the public API (same origin, relative URLs so a path prefix works).
 * An API key, when pasted, lives in sessionStorage only and travels as `Authorization: Bearer`.
 * Text from the API is always inserted as text (never as HTML).
 */
(function () {
  "use strict";

  const CONFIG = JSON.parse(document.getElementById("hm-config").textContent || "{}");
  const API = "api/v1/";
  const KEY_STORAGE = "heritage-monitor.api-key";
  const LEVELS = ["none", "low", "moderate", "high", "severe"];
  const NO_DATA = "no_data";
  // Blue, then yellow to dark red (ColorBrewer RdYlBu ends): ordered by lightness, safe for colour blindness.
  const COLOURS = {
    none: "#4575b4",
    low: "#fee090",
    moderate: "#fdae61",
    high: "#f46d43",
    severe: "#a50026",
    no_data: "#bdbdbd",
  };
  const LABELS = {
    none: "None", low: "Low", moderate: "Moderate", high: "High", severe: "Severe", no_data: "No data",
  };
  const MARKER_MAX_ZOOM = 11; // above this zoom the site polygons are large enough to see
  const ALERTS_AT_A_TIME = 50; // alerts drawn in a list at first and at each "Show more"
  /** The kind of alert shown apart as climate-projection planning, never among the alerts to act on now. */
  const PLANNING_KIND = "projected";

  const state = {
    key: sessionStorage.getItem(KEY_STORAGE) || "",
    sites: new Map(), // id -> GeoJSON feature
    status: new Map(), // id -> SiteStatus
    indicators: new Map(), // id -> catalogue entry
    layers: new Map(), // id -> {outline, marker, buffer}
    selected: null,
    alerts: null, // {action, planning}: the two alert lists (see `newAlertList`)
    alertsLoad: 0, // bumped by every load of the alerts: a slower answer to older filters is dropped
    map: null,
    markers: null,
  };

  // ---- small helpers ---------------------------------------------------------------------------
  function $(id) {
    return document.getElementById(id);
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "className") node.className = value;
      else if (name === "dataset") Object.assign(node.dataset, value);
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function levelBadge(level) {
    const name = level || NO_DATA;
    return el("span", { className: `badge level-${name}` }, LABELS[name] || name);
  }

  function formatNumber(value) {
    if (value === null || value === undefined || Number.isNaN(value)) return "—";
    return Number(value).toLocaleString("en", { maximumSignificantDigits: 4 });
  }

  function withUnits(value, units) {
    if (value === null || value === undefined) return "no value";
    if (units === "1") return `${formatNumber(value)} (dimensionless)`;
    return units ? `${formatNumber(value)} ${units}` : formatNumber(value);
  }

  /** A value with its units; a categorical indicator's value as its category name and code. */
  function valueOf(indicatorId, value, units) {
    const categories = state.indicators.get(indicatorId)?.levels?.categories;
    if (categories && value !== null && value !== undefined && String(value) in categories) {
      return `${categories[String(value)].replaceAll("_", " ")} (category ${value})`;
    }
    return withUnits(value, units);
  }

  function plural(n, word) {
    return `${n} ${word}${n === 1 ? "" : "s"}`;
  }

  /** An ISO date-time as `YYYY-MM-DD HH:MM UTC` (the API's times are UTC, with or without an offset). */
  function formatUtc(iso) {
    const zoned = /(Z|[+-]\d\d:?\d\d)$/.test(iso || "") ? iso : `${iso}Z`;
    const when = new Date(zoned);
    if (!iso || Number.isNaN(when.getTime())) return iso || "unknown time";
    return `${when.toISOString().slice(0, 16).replace("T", " ")} UTC`;
  }

  /** A scenario as the Climate Data Store spells it (`rcp_4_5`, `ssp2_4_5`) in its usual form. */
  function scenarioName(scenario) {
    let m = /^rcp_(\d)_(\d)$/.exec(scenario || "");
    if (m) return `RCP${m[1]}.${m[2]}`;
    m = /^ssp(\d)_(\d)_(\d)$/.exec(scenario || "");
    if (m) return `SSP${m[1]}-${m[2]}.${m[3]}`;
    return scenario || "unknown scenario";
  }

  function unitsSuffix(units) {
    if (units === "1") return " (dimensionless)";
    return units ? ` ${units}` : "";
  }

  /** A median with the model range: `28 days (range 27.2 to 28.4 days)`; signed for changes. */
  function spreadText(spread, units, signed) {
    if (!spread || spread.median === null || spread.median === undefined) return "no value";
    const show = (v) => {
      const text = formatNumber(v);
      return signed && v > 0 ? `+${text}` : text;
    };
    const range =
      spread.min === null || spread.max === null || spread.min === undefined || spread.max === undefined
        ? ""
        : ` (range ${show(spread.min)} to ${show(spread.max)}${unitsSuffix(units)})`;
    return `${show(spread.median)}${unitsSuffix(units)}${range}`;
  }

  function titleOf(indicatorId) {
    const spec = state.indicators.get(indicatorId);
    return spec ? spec.title : indicatorId;
  }

  class ApiError extends Error {
    constructor(status, title, detail) {
      super(detail || title || `HTTP ${status}`);
      this.status = status;
      this.title = title;
    }
    describe() {
      return `${this.status} ${this.title || ""}: ${this.message}`.replace(" :", ":");
    }
  }

  function authHeaders() {
    return state.key ? { Authorization: `Bearer ${state.key}` } : {};
  }

  async function request(url, options) {
    const opts = options || {};
    const headers = { Accept: opts.accept || "application/json", ...authHeaders(), ...(opts.headers || {}) };
    let response;
    try {
      response = await fetch(url, { method: opts.method || "GET", headers, body: opts.body });
    } catch (err) {
      throw new ApiError(0, "Network error", "the API did not answer; is the server running?");
    }
    if (!response.ok) {
      let body = {};
      try {
        body = await response.json();
      } catch (err) {
        body = {};
      }
      throw new ApiError(response.status, body.title || response.statusText, body.detail);
    }
    return response;
  }

  async function getJson(path, params) {
    const url = new URL(path, new URL(API, document.baseURI));
    for (const [k, v] of Object.entries(params || {})) if (v) url.searchParams.set(k, v);
    return (await request(url)).json();
  }

  async function postJson(path, body) {
    const url = new URL(path, new URL(API, document.baseURI));
    const response = await request(url, {
      method: "POST",
      body: JSON.stringify(body),
      headers: { "Content-Type": "application/json" },
    });
    return response.json();
  }

  /** Every item of a paged collection, following `next` links; also every page as returned. */
  async function getAll(path, itemsKey, params) {
    const pages = [await getJson(path, { ...(params || {}), limit: "1000" })];
    let next = (pages[0].links || []).find((l) => l.rel === "next");
    while (next) {
      pages.push(await (await request(next.href)).json());
      next = (pages[pages.length - 1].links || []).find((l) => l.rel === "next");
    }
    return { items: pages.flatMap((page) => page[itemsKey]), pages };
  }

  function showPageError(message) {
    const node = $("page-error");
    node.textContent = message;
    node.hidden = !message;
  }

  // ---- API key ---------------------------------------------------------------------------------
  function showKeyState() {
    $("key-state").textContent = state.key
      ? "A key is set for this tab; it is sent with every request."
      : "No key: read only.";
    $("forget-key").disabled = !state.key;
  }

  function setupKeyForm() {
    $("key-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const value = $("api-key").value.trim();
      if (!value) {
        $("key-state").textContent = "Paste a key first.";
        return;
      }
      state.key = value;
      sessionStorage.setItem(KEY_STORAGE, value);
      $("api-key").value = "";
      showKeyState();
      loadAll();
    });
    $("forget-key").addEventListener("click", () => {
      state.key = "";
      sessionStorage.removeItem(KEY_STORAGE);
      $("api-key").value = "";
      showKeyState();
      loadAll();
    });
    showKeyState();
  }

  // ---- map -------------------------------------------------------------------------------------
  function setupMap() {
    const map = L.map("map", { zoomSnap: 0.5, worldCopyJump: true, minZoom: 2 });
    state.map = map;
    map.attributionControl.setPrefix('<a href="https://leafletjs.com">Leaflet</a>');
    map.setView([48, 12], 4);
    if (CONFIG.tileUrl) {
      L.tileLayer(CONFIG.tileUrl, { attribution: CONFIG.tileAttribution || "", maxZoom: 19 }).addTo(map);
      $("map").classList.add("with-tiles");
    } else {
      loadBasemap(map);
    }
    state.markers = L.layerGroup().addTo(map);
    map.on("zoomend", () => {
      const show = map.getZoom() <= MARKER_MAX_ZOOM;
      if (show && !map.hasLayer(state.markers)) state.markers.addTo(map);
      if (!show && map.hasLayer(state.markers)) map.removeLayer(state.markers);
    });
  }

  /** Country outlines (Natural Earth 1:110m) from the vendored world-atlas: a basemap needing no network. */
  async function loadBasemap(map) {
    try {
      const response = await fetch("dashboard/static/vendor/world-atlas/countries-110m.json");
      const topo = await response.json();
      const land = topojson.feature(topo, topo.objects.countries);
      const layer = L.geoJSON(land, {
        interactive: false,
        className: "hm-basemap",
        style: { color: "#9aa5ad", weight: 0.8, fillColor: "#f7f5f0", fillOpacity: 1 },
        attribution: "Country outlines: Natural Earth (public domain)",
      });
      layer.addTo(map);
      layer.bringToBack();
    } catch (err) {
      // The site outlines still show on the plain background; nothing else depends on the basemap.
    }
  }

  function siteStyle(level) {
    const name = level || NO_DATA;
    return {
      color: "#1b1b1b",
      weight: 2,
      fillColor: COLOURS[name],
      fillOpacity: 0.75,
      dashArray: name === NO_DATA ? "4 3" : null,
    };
  }

  function drawSites() {
    for (const layers of state.layers.values()) {
      for (const layer of Object.values(layers)) if (layer) layer.remove();
    }
    state.layers.clear();
    const bounds = L.latLngBounds([]);
    for (const [id, feature] of state.sites) {
      const status = state.status.get(id) || {};
      const level = status.level || NO_DATA;
      const label = `${feature.properties.name}: ${LABELS[level]}`;
      let buffer = null;
      if (status.buffer) {
        buffer = L.geoJSON(status.buffer, {
          interactive: false,
          className: "hm-site-buffer",
          style: { color: "#37474f", weight: 1.5, dashArray: "5 4", fill: false },
        }).addTo(state.map);
      }
      const outline = L.geoJSON(feature, { className: "hm-site-outline", style: siteStyle(level) })
        .bindTooltip(label)
        .on("click", () => selectSite(id))
        .addTo(state.map);
      const box = outline.getBounds();
      const marker = L.circleMarker(box.getCenter(), {
        radius: 8,
        className: "hm-site-marker",
        color: "#1b1b1b",
        weight: 2,
        fillColor: COLOURS[level],
        fillOpacity: 1,
        dashArray: level === NO_DATA ? "3 2" : null,
      })
        .bindTooltip(label)
        .on("click", () => selectSite(id))
        .addTo(state.markers);
      outline.eachLayer((polygon) => polygon.getElement()?.setAttribute("data-site", id));
      marker.getElement()?.setAttribute("data-site", id);
      state.layers.set(id, { outline, marker, buffer });
      bounds.extend(buffer ? buffer.getBounds() : box);
    }
    if (bounds.isValid()) state.map.fitBounds(bounds, { padding: [24, 24], maxZoom: 14, animate: false });
  }

  function drawLegend() {
    const counts = {};
    for (const s of state.status.values()) counts[s.level] = (counts[s.level] || 0) + 1;
    const items = [...LEVELS, NO_DATA].map((level) =>
      el(
        "li",
        {},
        el("span", { className: `swatch level-${level}`, "aria-hidden": "true" }),
        `${LABELS[level]} (${counts[level] || 0})`,
      ),
    );
    items.push(
      el("li", {}, el("span", { className: "swatch buffer", "aria-hidden": "true" }), "Buffer around the site"),
    );
    $("legend").replaceChildren(...items);
  }

  // ---- site list -------------------------------------------------------------------------------
  function drawSiteList() {
    const items = [];
    for (const [id, feature] of state.sites) {
      const status = state.status.get(id) || {};
      const alerts = status.open_alerts || 0;
      const planning = status.planning_alerts || 0;
      items.push(
        el(
          "li",
          {},
          el(
            "button",
            {
              type: "button",
              className: "site-button",
              dataset: { site: id },
              "aria-current": state.selected === id ? "true" : null,
              onclick: () => selectSite(id),
            },
            levelBadge(status.level),
            el("span", { className: "site-name" }, feature.properties.name),
            el(
              "span",
              { className: "alert-counts" },
              el(
                "span",
                { className: alerts ? "alert-count has-alerts" : "alert-count" },
                `${alerts} open alert${alerts === 1 ? "" : "s"}`,
              ),
              // Climate-projection planning alerts, decades ahead: counted apart from those to act on.
              planning
                ? el("span", { className: "alert-count planning-count" }, plural(planning, "planning alert"))
                : null,
            ),
          ),
        ),
      );
    }
    $("site-list").replaceChildren(...items);
    $("sites-count").textContent = `(${state.sites.size})`;
  }

  // ---- site panel ------------------------------------------------------------------------------
  async function selectSite(id) {
    state.selected = id;
    for (const button of document.querySelectorAll(".site-button")) {
      if (button.dataset.site === id) button.setAttribute("aria-current", "true");
      else button.removeAttribute("aria-current");
    }
    const panel = $("site-panel");
    panel.hidden = false;
    $("site-heading").textContent = state.sites.get(id)?.properties.name || id;
    $("site-details").replaceChildren();
    $("latest-table").tBodies[0].replaceChildren();
    clearChart("Loading…");
    $("forecast-part").hidden = true;
    clearProjections("");
    try {
      const feature = await getJson(`sites/${encodeURIComponent(id)}`);
      if (state.selected !== id) return;
      drawSitePanel(feature);
    } catch (err) {
      $("chart-caption").textContent = `Could not load the site: ${err.describe ? err.describe() : err}`;
    }
    $("site-heading").focus();
    panel.scrollIntoView({ block: "start", behavior: "smooth" });
  }

  function drawSitePanel(feature) {
    const p = feature.properties;
    const status = state.status.get(feature.id) || {};
    const details = [
      ["Site id", feature.id],
      ["Country", p.country || "—"],
      ["Heritage type", p.heritage_type || "—"],
      ["Materials", (p.materials || []).join(", ") || "—"],
      ["UNESCO id", p.unesco_id || "—"],
      ["Buffer", `${formatNumber(p.buffer_m)} m`],
      ["Current level", levelBadge(status.level)],
      ["Open alerts", String(status.open_alerts || 0)],
      ["Planning alerts", `${status.planning_alerts || 0} (from climate projections, decades ahead)`],
    ];
    $("site-details").replaceChildren(
      ...details.flatMap(([term, value]) => [el("dt", {}, term), el("dd", {}, value)]),
    );
    const latest = Object.entries(p.latest || {}).sort((a, b) => {
      const byLevel = LEVELS.indexOf(b[1].level) - LEVELS.indexOf(a[1].level);
      return byLevel || titleOf(a[0]).localeCompare(titleOf(b[0]));
    });
    const rows = latest.map(([indicator, item]) => {
      const units = state.indicators.get(indicator)?.units || "";
      return el(
        "tr",
        {},
        el(
          "th",
          { scope: "row" },
          el(
            "button",
            { type: "button", className: "link", onclick: () => showChart(feature.id, indicator) },
            titleOf(indicator),
          ),
        ),
        el("td", {}, item.period_start),
        el("td", { className: "num" }, valueOf(indicator, item.value, units)),
        el("td", {}, levelBadge(item.level)),
      );
    });
    if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: "4" }, "No indicator values yet.")));
    $("latest-table").tBodies[0].replaceChildren(...rows);
    $("site-attribution").textContent = status.attribution
      ? `Data: ${status.attribution}`
      : "No data yet, so no attribution.";
    const select = $("chart-indicator");
    select.replaceChildren(...latest.map(([id]) => el("option", { value: id }, titleOf(id))));
    select.onchange = () => showChart(feature.id, select.value);
    if (latest.length) showChart(feature.id, (status.level_indicators || [])[0] || latest[0][0]);
    else {
      clearChart("No time series yet.");
      clearProjections("No indicator values yet, so no climate projections to show.");
    }
  }

  async function showChart(siteId, indicator) {
    const select = $("chart-indicator");
    select.value = indicator;
    const image = $("chart-image");
    const caption = $("chart-caption");
    clearChart("Loading the chart…");
    showForecast(siteId, indicator);
    showProjections(siteId, indicator);
    const query = `indicator=${encodeURIComponent(indicator)}`;
    const site = encodeURIComponent(siteId);
    try {
      const [png, series] = await Promise.all([
        request(new URL(`sites/${site}/plot.png?${query}`, new URL(API, document.baseURI)), {
          accept: "image/png",
        }).then((r) => r.blob()),
        getJson(`sites/${site}/timeseries`, { indicator }),
      ]);
      if (state.selected !== siteId || select.value !== indicator) return;
      image.src = URL.createObjectURL(png);
      image.alt = `Chart of ${series.title} at ${series.site_name} in ${series.units}, with risk bands.`;
      image.hidden = false;
      caption.replaceChildren(...describeSeries(series));
      $("chart-links").replaceChildren(
        "Download the data: ",
        el("a", { href: `api/v1/sites/${site}/timeseries?${query}&format=csv` }, "CSV"),
        " · ",
        el("a", { href: `api/v1/sites/${site}/timeseries?${query}&format=json` }, "JSON"),
      );
    } catch (err) {
      clearChart(`Could not load the chart: ${err.describe ? err.describe() : err}`);
    }
  }

  /** Hide the chart (and free its image) while another loads or when there is none. */
  function clearChart(message) {
    const image = $("chart-image");
    if (image.src.startsWith("blob:")) URL.revokeObjectURL(image.src);
    image.removeAttribute("src");
    image.hidden = true;
    $("chart-caption").textContent = message;
    $("chart-links").replaceChildren();
  }

  function describeSeries(series) {
    const points = series.points || [];
    const last = points[points.length - 1];
    const parts = [
      el("strong", {}, `${series.title} (${series.units})`),
      points.length
        ? `: ${points.length} values from ${points[0].period_start} to ${last.period_end}; newest ` +
          `${valueOf(series.indicator, last.value, series.units)}, level ${LABELS[last.level] || last.level}. `
        : ": no values. ",
    ];
    if (series.synthetic) parts.push(el("strong", { className: "synthetic-tag" }, "SYNTHETIC demo data. "));
    parts.push(el("span", { className: "attribution" }, series.attribution || ""));
    return parts;
  }

  /** Whether the panel still shows this site and indicator (a slower answer for another is dropped). */
  function stillShown(siteId, indicator) {
    return state.selected === siteId && $("chart-indicator").value === indicator;
  }

  // ---- forecast --------------------------------------------------------------------------------
  /** The newest forecast of the indicator at the site, apart from the observed chart; hidden when none. */
  async function showForecast(siteId, indicator) {
    const part = $("forecast-part");
    part.hidden = true;
    $("forecast-table").tBodies[0].replaceChildren();
    let forecast;
    try {
      forecast = await getJson(`sites/${encodeURIComponent(siteId)}/forecasts`, { indicator });
    } catch (err) {
      // 422: the indicator is never forecast, so the part stays hidden.
      if (!stillShown(siteId, indicator) || err.status === 422) return;
      $("forecast-summary").textContent = `Could not load the forecast: ${err.describe ? err.describe() : err}`;
      $("forecast-attribution").textContent = "";
      part.hidden = false;
      return;
    }
    if (!stillShown(siteId, indicator) || !(forecast.points || []).length) return;
    drawForecast(forecast);
    part.hidden = false;
  }

  function drawForecast(forecast) {
    const points = forecast.points;
    const units = forecast.units;
    const worst = Math.max(...points.map((p) => LEVELS.indexOf(p.level)));
    const first = points.find((p) => LEVELS.indexOf(p.level) === worst) || points[0];
    const last = points[points.length - 1];
    const product = [forecast.product, forecast.product_version].filter(Boolean).join(", ");
    const categorical = Boolean(state.indicators.get(forecast.indicator)?.levels?.categories);
    const unitsText = categorical ? "" : ` (${units === "1" ? "dimensionless" : units})`;
    $("forecast-summary").replaceChildren(
      el("strong", { className: "kind-label" }, "Forecast:"),
      ` ${forecast.title}${unitsText}, issued ${formatUtc(forecast.issued)}, ` +
        `${plural(points.length, "day")} to ${last.valid_day}` +
        (forecast.observed_until ? ` (observations to ${forecast.observed_until})` : "") +
        ". Highest level ",
      levelBadge(worst >= 0 ? LEVELS[worst] : NO_DATA),
      ` expected from ${first.valid_day}, lead ${plural(first.lead_days, "day")}: ` +
        `${valueOf(forecast.indicator, first.value, units)}. ` +
        `Source: ${forecast.source || "unknown"}${product ? ` (${product})` : ""}. ` +
        "Kept apart from the observed series charted above.",
    );
    $("forecast-caption").textContent = `Forecast of ${forecast.title} at ${forecast.site_name} by valid day`;
    $("forecast-days-summary").textContent = `Forecast values by day (${points.length})`;
    $("forecast-table").tBodies[0].replaceChildren(
      ...points.map((p) =>
        el(
          "tr",
          {},
          el("th", { scope: "row" }, p.valid_day),
          el("td", { className: "num" }, plural(p.lead_days, "day")),
          el("td", { className: "num" }, valueOf(forecast.indicator, p.value, units)),
          el("td", {}, levelBadge(p.level)),
        ),
      ),
    );
    const attribution = $("forecast-attribution");
    attribution.replaceChildren(
      forecast.synthetic ? el("strong", { className: "synthetic-tag" }, "SYNTHETIC demo forecast. ") : "",
      forecast.attribution ? `Data: ${forecast.attribution}` : "",
    );
  }

  // ---- climate projections ---------------------------------------------------------------------
  function clearProjections(message) {
    const image = $("projections-image");
    if (image.src.startsWith("blob:")) URL.revokeObjectURL(image.src);
    image.removeAttribute("src");
    image.hidden = true;
    $("projections-body").hidden = true;
    $("projections-message").textContent = message;
  }

  /** Baseline and projected periods of the indicator at the site per scenario: a table, a chart and
   * their provenance; a plain sentence when the indicator is not computed from climate projections. */
  async function showProjections(siteId, indicator) {
    clearProjections("Loading the climate projections…");
    const site = encodeURIComponent(siteId);
    let data;
    try {
      data = await getJson(`sites/${site}/projections`, { indicator });
    } catch (err) {
      if (!stillShown(siteId, indicator)) return;
      clearProjections(
        err.status === 422
          ? `No climate projections for ${titleOf(indicator)}: ${err.message}.`
          : `Could not load the climate projections: ${err.describe ? err.describe() : err}`,
      );
      return;
    }
    if (!stillShown(siteId, indicator)) return;
    if (!data.scenarios.length) {
      clearProjections(`No climate projections of ${data.title} are stored for this site yet.`);
      return;
    }
    drawProjections(data);
    $("projections-message").textContent = "";
    $("projections-body").hidden = false;
    const query = `indicator=${encodeURIComponent(indicator)}`;
    try {
      const png = await request(new URL(`sites/${site}/projections.png?${query}`, new URL(API, document.baseURI)), {
        accept: "image/png",
      }).then((r) => r.blob());
      if (!stillShown(siteId, indicator)) return;
      const image = $("projections-image");
      image.src = URL.createObjectURL(png);
      image.hidden = false;
    } catch (err) {
      $("projections-chart-caption").textContent = `Could not load the chart: ${err.describe ? err.describe() : err}`;
    }
  }

  function drawProjections(data) {
    const units = data.units;
    // Each cell names its column (`data-label`), shown when narrow screens stack the rows.
    const row = (className, name, period, value, change, level) =>
      el(
        "tr",
        { role: "row", className },
        el("th", { scope: "row", role: "rowheader" }, name),
        el("td", { role: "cell", "data-label": "Period" }, period),
        el("td", { role: "cell", className: "num", "data-label": "Value" }, value),
        el("td", { role: "cell", className: "num", "data-label": "Change" }, change),
        el("td", { role: "cell", "data-label": "Level" }, levelBadge(level)),
      );
    const rows = [];
    for (const s of data.scenarios) {
      const name = scenarioName(s.scenario);
      const baseline = `${(data.baseline_period || "").replace("-", "–")} (baseline)`;
      rows.push(row("baseline-row", name, baseline, spreadText(s.baseline, units, false), "—", s.baseline_level));
      for (const p of s.periods) {
        const pct = p.change_pct ? `; ${spreadText(p.change_pct, "%", true)}` : "";
        const change = spreadText(p.change, units, true) + pct;
        rows.push(row(null, name, `${p.start}–${p.end}`, spreadText(p.future, units, false), change, p.level));
      }
    }
    $("projections-table").tBodies[0].replaceChildren(...rows);
    const prov = data.provenance || {};
    const models = prov.models || [];
    $("projections-note").replaceChildren(
      el("strong", { className: "kind-label" }, "Projection (planning, not a forecast)"),
      // The label already says what the API's note opens with.
      ` ${data.note.replace(/^Climate projections: a projection for planning, not a forecast\.\s*/, "")}`,
    );
    $("projections-caption").textContent =
      `${data.title} at ${data.site_name}, in ${units === "1" ? "dimensionless units" : units}: ` +
      `ensemble of ${plural(models.length, "model")}, baseline ${data.baseline_period}` +
      (prov.annual_statistic ? `; annual value: ${prov.annual_statistic}, averaged over each period` : "");
    const scenarios = data.scenarios.map((s) => scenarioName(s.scenario)).join(" and ");
    const periods = [...new Set(data.scenarios.flatMap((s) => s.periods.map((p) => `${p.start}–${p.end}`)))];
    $("projections-image").alt =
      `Chart of the projected ${data.title} at ${data.site_name} in ${units}: the baseline ${data.baseline_period} ` +
      `and ${periods.join(", ")} under ${scenarios}, ensemble median with the model range, risk bands shaded. ` +
      "The table above gives the same values.";
    $("projections-chart-caption").replaceChildren(
      el("strong", {}, `${data.title} (${units}): climate projections`),
      " — points are ensemble medians, bars the range across models. ",
      data.synthetic ? el("strong", { className: "synthetic-tag" }, "SYNTHETIC demo data. ") : "",
    );
    const bias = prov.bias || {};
    const details = [
      ["Dataset", [prov.dataset, prov.product, prov.product_version].filter(Boolean).join(", ") || "—"],
      [`Models (${models.length})`, models.join(", ") || "—"],
      ["Scenarios", (prov.scenarios || []).map((s) => `${scenarioName(s)} (${s})`).join(", ") || "—"],
      ["Bias adjustment", [prov.bias_method, bias.description].filter(Boolean).join(": ") || "—"],
      ["Splice", (prov.splice || []).join("; ") || "—"],
      ["Calendars", (prov.calendars || []).join(", ") || "—"],
      ["Indicator version", prov.indicator_version || "—"],
    ];
    $("projections-provenance").replaceChildren(
      ...details.flatMap(([term, value]) => [el("dt", {}, term), el("dd", {}, value)]),
    );
    const site = encodeURIComponent(data.site);
    const query = `indicator=${encodeURIComponent(data.indicator)}`;
    $("projections-links").replaceChildren(
      "Download the projections: ",
      el("a", { href: `api/v1/sites/${site}/projections.csv?${query}` }, "CSV"),
      " · ",
      el("a", { href: `api/v1/sites/${site}/projections?${query}` }, "JSON"),
    );
    $("projections-attribution").textContent = data.attribution
      ? `Data: ${data.attribution}`
      : "No data, so no attribution.";
  }

  // ---- alerts ----------------------------------------------------------------------------------
  function filterParams() {
    const form = $("alert-filters");
    const params = {};
    for (const name of ["status", "site", "severity", "indicator", "kind"]) params[name] = form.elements[name].value;
    return params;
  }

  function isPlanning(alert) {
    return alert.kind === PLANNING_KIND;
  }

  /** Worst level first, then the newest change (equal ones keep the API's order, newest change first). */
  function byUrgency(a, b) {
    const byLevel = LEVELS.indexOf(b.severity) - LEVELS.indexOf(a.severity);
    return byLevel || Date.parse(b.updated_at) - Date.parse(a.updated_at);
  }

  function nextLink(page) {
    const next = (page.links || []).find((l) => l.rel === "next");
    return next ? next.href : null;
  }

  /** One list of alerts on the page (to act on, or planning): the alerts loaded so far, how many match, how
   * many to show and are drawn, the next page still to load, its elements and what it says when empty. */
  function newAlertList(planning, ids, emptyText) {
    return { planning, items: [], total: 0, shown: ALERTS_AT_A_TIME, drawn: 0, next: null, ids, emptyText };
  }

  /** Open or acknowledged alerts are few (at most one per site, indicator and kind): all of them at once, so
   * the alerts to act on are ordered worst level first across every page. Planning alerts go to their list. */
  async function loadCurrentAlerts(params, lists) {
    const { items } = await getAll("alerts", "alerts", params);
    for (const alert of items) (isPlanning(alert) ? lists.planning : lists.action).items.push(alert);
    for (const list of [lists.action, lists.planning]) {
      list.items.sort(byUrgency);
      list.total = list.items.length;
    }
  }

  /** Resolved alerts pile up over the years: a page at a time, newest change first, each list asking the
   * API for its own kind of alerts. */
  async function loadResolvedAlerts(params, lists) {
    const limit = String(ALERTS_AT_A_TIME);
    const wantsAction = params.kind !== PLANNING_KIND;
    const wantsPlanning = !params.kind || params.kind === PLANNING_KIND;
    const [action, planning] = await Promise.all([
      wantsAction ? getJson("alerts", { ...params, limit }) : null,
      wantsPlanning ? getJson("alerts", { ...params, kind: PLANNING_KIND, limit }) : null,
    ]);
    if (planning) {
      const list = lists.planning;
      Object.assign(list, { items: planning.alerts, total: planning.numberMatched, next: nextLink(planning) });
    }
    if (action) {
      // Without a kind filter the API's page and count include the planning alerts, listed apart.
      const list = lists.action;
      list.items = action.alerts.filter((a) => !isPlanning(a));
      list.total = action.numberMatched - (params.kind ? 0 : lists.planning.total);
      list.next = nextLink(action);
      await fillList(list);
    }
  }

  /** Load further pages of a paged list until it holds the alerts it is to show, or there are no more. */
  async function fillList(list) {
    while (list.next && list.items.length < Math.min(list.shown, list.total)) {
      const page = await (await request(list.next)).json();
      list.items.push(...page.alerts.filter((a) => isPlanning(a) === list.planning));
      list.next = nextLink(page);
    }
  }

  /** Draw the alerts of the list not drawn yet (up to the number to show), its count, its message and its
   * "Show more" button. Alerts already drawn stay, with any form being filled in. */
  function drawList(list) {
    const node = $(list.ids.list);
    const upTo = Math.min(list.shown, list.items.length);
    const fresh = list.items.slice(list.drawn, upTo).map(alertItem);
    if (list.drawn === 0) node.replaceChildren(...fresh);
    else node.append(...fresh);
    list.drawn = upTo;
    $(list.ids.count).textContent = `(${list.total})`;
    $(list.ids.message).textContent = list.total ? "" : list.emptyText;
    $(list.ids.more).hidden = !(list.drawn < list.items.length || list.next);
  }

  function setAlertsBusy(busy) {
    for (const id of ["alert-list", "planning-list"]) $(id).setAttribute("aria-busy", String(busy));
  }

  /** Both lists of alerts for the filters: those to act on (observed and forecast) and, apart, the
   * climate-projection planning alerts. */
  async function loadAlerts() {
    const load = ++state.alertsLoad;
    const params = filterParams();
    const current = params.status !== "resolved";
    const kindName = params.kind ? $("filter-kind").selectedOptions[0].textContent.toLowerCase() : "";
    const lists = {
      action: newAlertList(
        false,
        { list: "alert-list", count: "alerts-count", message: "alerts-message", more: "more-alerts" },
        params.kind === PLANNING_KIND
          ? "Climate-projection alerts are listed apart, under Planning."
          : "No alerts match these filters.",
      ),
      planning: newAlertList(
        true,
        { list: "planning-list", count: "planning-count", message: "planning-message", more: "more-planning" },
        params.kind && params.kind !== PLANNING_KIND
          ? `None shown: the kind filter picks ${kindName} alerts.`
          : "No planning alerts match these filters.",
      ),
    };
    setAlertsBusy(true);
    try {
      await (current ? loadCurrentAlerts : loadResolvedAlerts)(params, lists);
      if (load !== state.alertsLoad) return;
      state.alerts = lists;
      $("alerts-order").textContent = current
        ? "What needs action now: worst level first, then the newest change."
        : "Newest change first.";
      drawList(lists.action);
      drawList(lists.planning);
    } catch (err) {
      if (load !== state.alertsLoad) return;
      const text = `Could not load the alerts: ${err.describe ? err.describe() : err}`;
      $("alerts-message").textContent = text;
      $("planning-message").textContent = text;
    } finally {
      if (load === state.alertsLoad) setAlertsBusy(false);
    }
  }

  /** The next alerts of one list: drawn from those loaded, or loaded page by page (resolved alerts). */
  async function showMore(name) {
    const list = state.alerts && state.alerts[name];
    if (!list) return;
    const load = state.alertsLoad;
    const node = $(list.ids.list);
    list.shown += ALERTS_AT_A_TIME;
    node.setAttribute("aria-busy", "true");
    try {
      await fillList(list);
    } catch (err) {
      if (load === state.alertsLoad) {
        $(list.ids.message).textContent = `Could not load more alerts: ${err.describe ? err.describe() : err}`;
      }
      return;
    } finally {
      if (load === state.alertsLoad) node.setAttribute("aria-busy", "false");
    }
    if (load === state.alertsLoad) drawList(list);
  }

  function alertItem(alert) {
    const id = alert.id;
    const site = alert.site_name || state.sites.get(alert.site)?.properties.name || alert.site;
    const threshold =
      alert.threshold === null || alert.threshold === undefined
        ? ""
        : ` (${LABELS[alert.level] || alert.level} from ${withUnits(alert.threshold, alert.units)})`;
    const status = el("span", { className: `status status-${alert.status}` }, alert.status);
    const formId = `act-${id}`;
    const errorLine = el("p", { className: "form-error", role: "alert" });
    const doneLine = el("p", { className: "form-done", role: "status" });
    const note = el("textarea", { id: `note-${id}`, name: "note", rows: "2", maxlength: "2000" });
    const falseAlarm = el("input", { id: `false-${id}`, name: "false_alarm", type: "checkbox" });
    const ackButton = el("button", { type: "submit", className: "primary" }, "Acknowledge");
    const resolveButton = el("button", { type: "button", className: "danger" }, "Resolve");
    const form = el(
      "form",
      { id: formId, className: "act-form", hidden: true },
      el("div", { className: "field" }, el("label", { for: `note-${id}` }, "Note (optional)"), note),
      el(
        "div",
        { className: "check" },
        falseAlarm,
        el("label", { for: `false-${id}` }, "False alarm (acknowledge only)"),
      ),
      el("div", { className: "buttons" }, ackButton, resolveButton),
      errorLine,
    );
    const toggle = el(
      "button",
      { type: "button", className: "secondary", "aria-expanded": "false", "aria-controls": formId },
      "Acknowledge or resolve…",
    );
    toggle.addEventListener("click", () => {
      const open = form.hidden;
      form.hidden = !open;
      toggle.setAttribute("aria-expanded", String(open));
      if (open) note.focus();
    });
    const act = async (action) => {
      errorLine.textContent = "";
      ackButton.disabled = resolveButton.disabled = true;
      try {
        const body = { note: note.value.trim() || null };
        if (action === "ack") body.false_alarm = falseAlarm.checked;
        const updated = await postJson(`alerts/${encodeURIComponent(id)}/${action}`, body);
        status.className = `status status-${updated.status}`;
        status.textContent = updated.status;
        form.hidden = true;
        toggle.hidden = updated.status === "resolved";
        toggle.setAttribute("aria-expanded", "false");
        doneLine.textContent =
          updated.status === "resolved"
            ? `Resolved by ${updated.resolved?.by || "you"}.`
            : `Acknowledged by ${updated.acknowledged?.by || "you"}${updated.acknowledged?.false_alarm ? " as a false alarm" : ""}.`;
        refreshStatus();
      } catch (err) {
        errorLine.textContent = err.describe ? err.describe() : String(err);
      } finally {
        ackButton.disabled = resolveButton.disabled = false;
      }
    };
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      act("ack");
    });
    resolveButton.addEventListener("click", () => act("resolve"));
    if (alert.status === "resolved") toggle.hidden = true;
    if (alert.status === "acknowledged") ackButton.hidden = true;

    const headingId = `alert-title-${id}`;
    return el(
      "li",
      {
        className: `alert-item severity-${alert.severity} kind-${alert.kind}-item`,
        dataset: { alert: id, site: alert.site, kind: alert.kind },
      },
      el(
        "article",
        { "aria-labelledby": headingId },
        el(
          "h3",
          { id: headingId, className: "alert-title" },
          levelBadge(alert.severity),
          el("span", {}, `${alert.indicator_title || titleOf(alert.indicator)} — ${site}`),
        ),
        kindNote(alert),
        el("p", { className: "alert-facts" }, alertFacts(alert, threshold), " · ", status),
        alert.synthetic ? el("p", { className: "synthetic-tag" }, "SYNTHETIC demo data") : null,
        el("p", { className: "attribution" }, alert.attribution),
        el(
          "div",
          { className: "alert-actions" },
          el("button", { type: "button", className: "link", onclick: () => selectSite(alert.site) }, "Show site"),
          toggle,
        ),
        form,
        doneLine,
      ),
    );
  }

  /** A labelled line saying what kind of alert this is: observed, forecast (onset, lead, issue) or a
   * planning projection (period, scenario), so a forecast or projection is never read as an observation. */
  function kindNote(alert) {
    const facts = alert.provenance || {};
    let label;
    let text;
    if (alert.kind === "forecast") {
      label = "Forecast:";
      const until = alert.expected && alert.expected.end !== alert.onset ? ` to ${alert.expected.end}` : "";
      const lead = alert.lead_time_days === null || alert.lead_time_days === undefined
        ? "lead unknown"
        : `lead ${plural(alert.lead_time_days, "day")}`;
      text = `expected from ${alert.onset}${until}, ${lead}, issued ${formatUtc(alert.issued)}`;
    } else if (alert.kind === "projected") {
      label = "Projection (planning, not a forecast):";
      const period = facts.period ? `${facts.period.start}–${facts.period.end}` : alert.onset;
      text = `${period}, ${scenarioName(facts.scenario)}` + (facts.scenario ? ` (${facts.scenario})` : "");
    } else if (alert.kind === "system") {
      label = "System:";
      text = `since ${alert.onset}`;
    } else {
      label = "Observed:";
      text = `since ${alert.onset}`;
    }
    return el(
      "p",
      { className: `kind-note kind-${alert.kind}` },
      el("strong", { className: "kind-label" }, label),
      ` ${text}`,
    );
  }

  /** The value behind an alert, worded for its kind. */
  function alertFacts(alert, threshold) {
    const value = `${valueOf(alert.indicator, alert.value, alert.units)}${threshold}`;
    const facts = alert.provenance || {};
    if (alert.kind === "forecast") return `peak ${value} on ${alert.period.start}`;
    if (alert.kind === "projected") {
      const models = (facts.models || []).length;
      const baseline =
        facts.baseline_level && facts.baseline
          ? `, against ${LABELS[facts.baseline_level] || facts.baseline_level} ` +
            `(${valueOf(alert.indicator, facts.baseline_value, alert.units)}) in the baseline ${String(facts.baseline).replace("-", "–")}`
          : "";
      return `ensemble median of ${plural(models, "model")}: ${value}${baseline}`;
    }
    return `${value} · period ${alert.period.start} to ${alert.period.end}`;
  }

  function setupAlerts() {
    $("alert-filters").addEventListener("change", () => loadAlerts());
    $("alert-filters").addEventListener("submit", (event) => {
      event.preventDefault();
      loadAlerts();
    });
    $("more-alerts").addEventListener("click", () => showMore("action"));
    $("more-planning").addEventListener("click", () => showMore("planning"));
  }

  function fillFilterOptions() {
    const sites = [...state.sites.values()].sort((a, b) => a.properties.name.localeCompare(b.properties.name));
    $("filter-site").replaceChildren(
      el("option", { value: "" }, "All sites"),
      ...sites.map((f) => el("option", { value: f.id }, f.properties.name)),
    );
    const specs = [...state.indicators.values()].sort((a, b) => a.title.localeCompare(b.title));
    $("filter-indicator").replaceChildren(
      el("option", { value: "" }, "All indicators"),
      ...specs.map((s) => el("option", { value: s.id }, s.title)),
    );
  }

  // ---- loading ---------------------------------------------------------------------------------
  function showAttribution(first) {
    $("synthetic-banner").hidden = !first.synthetic;
    $("footer-attribution").textContent = first.attribution
      ? `Data attribution: ${first.attribution}`
      : "No indicator values stored yet.";
    $("map-attribution").textContent = first.attribution
      ? `Risk levels: ${first.synthetic ? "SYNTHETIC demo data. " : ""}See the data attribution at the foot of the page.`
      : "";
  }

  async function loadStatus() {
    const { items, pages } = await getAll("status", "sites");
    state.status = new Map(items.map((s) => [s.id, s]));
    const attributions = [...new Set(pages.map((page) => page.attribution).filter(Boolean))];
    showAttribution({ attribution: attributions.join(" "), synthetic: pages.some((page) => page.synthetic) });
  }

  async function refreshStatus() {
    try {
      await loadStatus();
      drawSites();
      drawLegend();
      drawSiteList();
    } catch (err) {
      showPageError(`Could not refresh the site status: ${err.describe ? err.describe() : err}`);
    }
  }

  async function loadAll() {
    document.body.dataset.loaded = "false";
    showPageError("");
    try {
      const [catalog, sites] = await Promise.all([getJson("indicators"), getAll("sites", "features")]);
      state.indicators = new Map(catalog.indicators.map((s) => [s.id, s]));
      state.sites = new Map(sites.items.map((f) => [f.id, f]));
      await loadStatus();
    } catch (err) {
      const hint = err.status === 401 ? " Paste an API key above." : "";
      showPageError(`Could not load the sites: ${err.describe ? err.describe() : err}.${hint}`);
      return;
    }
    drawSites();
    drawLegend();
    drawSiteList();
    fillFilterOptions();
    await loadAlerts();
    document.body.dataset.loaded = "true";
  }

  document.addEventListener("DOMContentLoaded", () => {
    setupKeyForm();
    setupMap();
    setupAlerts();
    $("close-panel").addEventListener("click", () => {
      $("site-panel").hidden = true;
      const button = document.querySelector(`.site-button[data-site="${CSS.escape(state.selected || "")}"]`);
      state.selected = null;
      if (button) {
        button.removeAttribute("aria-current");
        button.focus();
      }
    });
    loadAll();
  });
})();
