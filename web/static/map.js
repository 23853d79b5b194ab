// The map panel of the board and the dispatcher console: the calls the page holds and the
// units on duty, drawn with Leaflet (vendored in /static/vendor/leaflet, so the CSP stays
// 'self'). It draws from what the page already received on its board stream (no second
// connection, nothing a role does not already see). Tiles come from GET /v1/map; without
// them the markers sit on a plain background with a scale bar.
import "./vendor/leaflet/leaflet.js";  // a UMD bundle: defines window.L
import { $, api, clear, el, SITE, words } from "./common.js";
import { waitKind } from "./queue.js";
import { onRosterChange, roster } from "./units.js";

const L = window.L;
const HIDDEN_KEY = "liaison.map.hidden";

// A call's colour on the map, in legend order; every kind has a `call-<kind>` class
// (map.css). Team statuses are the service's own (SITE.statuses).
const CALL_KINDS = ["queued", "waiting",
  ...SITE.statuses.map((s) => s.value).filter((s) => s !== "queued"), "police"];
const KIND_LABELS = { queued: "Team call, no unit yet", waiting: "Waiting for a unit or shift",
                      police: "Police" };
const STATUS_LABELS = Object.fromEntries(SITE.statuses.map((s) => [s.value, s.label]));
const UNIT_KINDS = ["available", "assigned", "en_route", "on_scene", "backup_requested"];

function kindLabel(kind) { return KIND_LABELS[kind] || STATUS_LABELS[kind] || words(kind); }

// What a page entry (common.js foldMessage) is on the map; null: not drawn (closed).
export function callKind(entry) {
  if (!entry || entry.closed || !entry.decision || !entry.call) return null;
  if (waitKind(entry.decision)) return "waiting";
  if (entry.decision.destination === "police") return "police";
  if (entry.decision.destination === "crisis_center") return null;  // by phone, not drawn
  return entry.call.team_status || "queued";
}

function located(p) {
  return p && Number.isFinite(p.lat) && Number.isFinite(p.lon)
    && Math.abs(p.lat) <= 90 && Math.abs(p.lon) <= 180;
}

function plural(n, one, many = `${one}s`) { return `${n} ${n === 1 ? one : many}`; }

function loadCss(href) {
  if (document.querySelector(`link[href="${href}"]`)) return Promise.resolve();
  return new Promise((resolve) => {
    const link = el("link", { rel: "stylesheet", href });
    link.addEventListener("load", resolve);
    link.addEventListener("error", resolve);  // the map still works, unstyled
    document.head.append(link);
  });
}

function callLabel(entry, kind) {
  const c = entry.call;
  const d = entry.decision;
  return [`Call ${c.incident_id}`, kindLabel(kind) + (d.destination === "joint" ? ", joint" : ""),
    words(d.category), c.unit ? `unit ${c.unit}` : "", c.address || ""]
    .filter(Boolean).join(", ");
}

function unitLabel(u) {
  return [`Unit ${u.call_sign || u.id}`, words(u.status), u.call_id ? "on a call" : ""]
    .filter(Boolean).join(", ");
}

export class CallMap {
  // box: the page's empty <section id="map-box">; cards: where the page lists its calls
  // (a marker's click opens the call there, as the card's own Details button does).
  constructor(box, { cards }) {
    this.box = box;
    this.cardsSelector = cards;
    this.entries = [];
    this.callMarkers = new Map(); // call id -> {marker, sig}
    this.unitMarkers = new Map(); // unit id -> {marker, sig}
    this.map = null;
    // Following: the view fits every marker as they come and go, until the person moves
    // or zooms the map themselves; "Show all" follows again.
    this.follow = true;
    this.fittedOnce = false;
    this.hidden = localStorage.getItem(HIDDEN_KEY) === "1";
    this.build();
    // Units come from the roster the page keeps from its board stream (units.js).
    onRosterChange(() => this.redraw());
    this.ready = Promise.all([loadCss("/static/vendor/leaflet/leaflet.css"),
      loadCss("/static/map.css")]).then(() => this.source()).then((src) => {
      this.src = src;
      if (!this.hidden) this.show();
    });
  }

  build() {
    this.count = el("span", { class: "count" });
    this.toggleButton = el("button", { type: "button", class: "map-toggle",
      "aria-controls": "map-body", on: { click: () => this.setHidden(!this.hidden) } });
    this.fitButton = el("button", { type: "button", class: "link map-fit",
                                    on: { click: () => this.fit() } }, "Show all");
    this.canvas = el("div", { class: "map", role: "region",
      "aria-label": "Map of the calls and units listed on this page" });
    this.unlocated = el("p", { class: "map-unlocated hint", hidden: true });
    this.legend = el("ul", { class: "map-legend", "aria-label": "Map legend" });
    this.body = el("div", { id: "map-body", class: "map-body" },
      this.canvas, this.unlocated, this.legend);
    clear(this.box, el("div", { class: "map-head" },
      el("h2", { id: "map-h" }, "Map ", this.count), this.fitButton, this.toggleButton),
    this.body);
    this.box.classList.add("panel", "map-panel");
    this.box.setAttribute("aria-labelledby", "map-h");
    this.box.hidden = false;
    this.showHidden();
  }

  showHidden() {
    this.body.hidden = this.hidden;
    this.fitButton.hidden = this.hidden;
    this.toggleButton.textContent = this.hidden ? "Show map" : "Hide map";
    this.toggleButton.setAttribute("aria-expanded", String(!this.hidden));
    this.box.classList.toggle("map-off", this.hidden);
  }

  async source() {
    try { return await api("/v1/map"); } catch { return { tiles: null, attribution: "" }; }
  }

  setHidden(hidden) {
    this.hidden = hidden;
    if (hidden) localStorage.setItem(HIDDEN_KEY, "1"); else localStorage.removeItem(HIDDEN_KEY);
    this.showHidden();
    if (!hidden && this.src) this.show();
  }

  // Made on first show (Leaflet measures its container, which must be visible).
  show() {
    if (!this.map) {
      this.map = L.map(this.canvas, { zoomControl: true, attributionControl: Boolean(this.src.tiles),
                                      worldCopyJump: true });
      this.quietly(() => this.map.setView([20, 0], 2));
      if (this.src.tiles) {
        // Attribution as text: Leaflet would read it as HTML.
        L.tileLayer(this.src.tiles, { maxZoom: 19,
          attribution: escapeText(this.src.attribution || "") }).addTo(this.map);
      } else {
        this.canvas.classList.add("map-plain");
      }
      L.control.scale().addTo(this.map);
      this.map.on("movestart zoomstart", () => { if (!this.fitting) this.follow = false; });
    } else {
      this.quietly(() => this.map.invalidateSize());
    }
    this.draw();
  }

  // The page's calls changed (called from its draw, at most once a frame).
  sync(entries) {
    this.entries = [...entries];
    this.draw();
  }

  redraw() {
    if (this.queued) return;
    this.queued = true;
    requestAnimationFrame(() => { this.queued = false; this.draw(); });
  }

  draw() {
    if (this.hidden || !this.map) return;
    const t0 = performance.now();
    const counts = {};
    let unlocated = 0;
    const seen = new Set();
    for (const entry of this.entries) {
      const kind = callKind(entry);
      if (!kind) continue;
      if (!located(entry.call)) { unlocated += 1; continue; }
      counts[kind] = (counts[kind] || 0) + 1;
      seen.add(entry.id);
      this.placeCall(entry, kind);
    }
    for (const [id, m] of this.callMarkers) {
      if (!seen.has(id)) { m.marker.remove(); this.callMarkers.delete(id); }
    }
    const unitCounts = {};
    let unitsUnlocated = 0;
    const onDuty = new Set();
    for (const u of roster.values()) {
      if (!u.on_duty || u.status === "off_duty") continue;
      if (!located(u.position)) { unitsUnlocated += 1; continue; }
      onDuty.add(u.id);
      unitCounts[u.status] = (unitCounts[u.status] || 0) + 1;
      this.placeUnit(u);
    }
    for (const [id, m] of this.unitMarkers) {
      if (!onDuty.has(id)) { m.marker.remove(); this.unitMarkers.delete(id); }
    }
    const drawn = seen.size;
    setText(this.count,
      `${plural(drawn, "call")}${onDuty.size ? `, ${plural(onDuty.size, "unit")}` : ""}`);
    const missing = [unlocated ? `${plural(unlocated, "call")} without a location` : "",
      unitsUnlocated ? `${plural(unitsUnlocated, "unit")} on duty without a position` : ""]
      .filter(Boolean);
    setText(this.unlocated, missing.join(" · "));
    this.unlocated.hidden = missing.length === 0;
    this.drawLegend(counts, unitCounts);
    if (this.follow) this.fit(false);
    // bench/map.py sets this to time the map's own script (nothing else does).
    if (window.__mapDrawMs) window.__mapDrawMs.push(performance.now() - t0);
  }

  placeCall(entry, kind) {
    const have = this.callMarkers.get(entry.id);
    // Unchanged since last drawn: no message about it since (seq), same colour.
    if (have && have.seq === entry.seq && have.kind === kind) return;
    const joint = entry.decision.destination === "joint";
    const label = callLabel(entry, kind);
    const { lat, lon } = entry.call;
    const sig = `${kind}|${joint}|${label}`;
    if (have) {
      Object.assign(have, { seq: entry.seq, kind });
      const at = have.marker.getLatLng();
      if (at.lat !== lat || at.lng !== lon) have.marker.setLatLng([lat, lon]);
      if (have.sig !== sig) {
        have.marker.setIcon(callIcon(kind, joint, label));
        Object.assign(have, { sig, label });
      }
      return;
    }
    const marker = L.marker([lat, lon], { icon: callIcon(kind, joint, label), keyboard: true,
                                          riseOnHover: true });
    marker.bindTooltip(() => el("span", { text: this.callMarkers.get(entry.id)?.label || label }),
      { direction: "top", offset: [0, -8] });
    const open = () => this.openCall(entry.id);
    marker.on("click", open);
    marker.on("keypress", (ev) => {
      if (ev.originalEvent.key === "Enter" || ev.originalEvent.key === " ") open();
    });
    // The marker's element names its call (a new one each time Leaflet re-adds it).
    marker.on("add", () => { marker.getElement().dataset.callId = entry.id; });
    marker.addTo(this.map);
    this.callMarkers.set(entry.id, { marker, sig, label, seq: entry.seq, kind });
  }

  placeUnit(u) {
    const label = unitLabel(u);
    const sig = `${u.status}|${label}`;
    const { lat, lon } = u.position;
    const have = this.unitMarkers.get(u.id);
    if (have) {
      const at = have.marker.getLatLng();
      if (at.lat !== lat || at.lng !== lon) have.marker.setLatLng([lat, lon]);
      if (have.sig !== sig) { have.marker.setIcon(unitIcon(u, label)); have.sig = sig; }
      return;
    }
    const marker = L.marker([lat, lon], { icon: unitIcon(u, label), keyboard: false,
                                          zIndexOffset: 1000 });
    marker.on("add", () => { marker.getElement().dataset.unitId = u.id; });
    marker.addTo(this.map);
    this.unitMarkers.set(u.id, { marker, sig });
  }

  drawLegend(counts, unitCounts) {
    const key = JSON.stringify([counts, unitCounts]);
    if (key === this.legendKey) return;
    this.legendKey = key;
    const item = (cls, text, n) => el("li", { class: "map-key" },
      el("span", { class: `map-swatch ${cls}`, "aria-hidden": "true" }), `${text} (${n})`);
    clear(this.legend,
      CALL_KINDS.filter((k) => counts[k]).map((k) =>
        item(`call-${k}`, kindLabel(k), counts[k])),
      UNIT_KINDS.filter((k) => unitCounts[k]).map((k) =>
        item(`unit-swatch unit-${k}`, `Unit ${words(k)}`, unitCounts[k])));
  }

  // Fit the view to every marker: when asked, the first time, and when following, once
  // a marker is out of view (not on every move: a refit moves every marker on the map).
  fit(asked = true) {
    if (!this.map) return;
    if (asked) this.follow = true;
    const points = [...this.callMarkers.values(), ...this.unitMarkers.values()]
      .map((m) => m.marker.getLatLng());
    if (!points.length) return;
    const bounds = L.latLngBounds(points);
    if (!asked && this.fittedOnce && this.map.getBounds().contains(bounds)) return;
    this.fittedOnce = true;
    this.quietly(() => this.map.fitBounds(bounds, { padding: [24, 24], maxZoom: 15,
                                                    animate: false }));
  }

  // A move the map makes itself, not the person: it does not stop following.
  quietly(move) {
    this.fitting = true;
    try { move(); } finally { this.fitting = false; }
  }

  // Open the call as its card does: to it, and its details (the card's Details button).
  openCall(id) {
    const sel = `li.card[data-call-id="${CSS.escape(id)}"]`;
    const card = [...document.querySelectorAll(this.cardsSelector)]
      .map((root) => $(sel, root)).find(Boolean);
    if (!card) return;
    card.scrollIntoView({ block: "center" });
    if ($(".details, .details-box", card)) return;
    const details = [...card.querySelectorAll(".actions button")]
      .find((b) => b.textContent === "Details");
    if (details) details.click();
  }
}

function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

function escapeText(s) {
  const span = document.createElement("span");
  span.textContent = s;
  return span.innerHTML;
}

// Built as elements, never HTML strings: an address is data, not markup.
function callIcon(kind, joint, label) {
  return L.divIcon({ className: `map-call call-${kind}${joint ? " joint" : ""}`,
                     iconSize: [16, 16], html: el("span", { class: "sr-only", text: label }) });
}

function unitIcon(u, label) {
  return L.divIcon({ className: `map-unit unit-${u.status}`, iconSize: [14, 14],
    html: el("span", { class: "map-unit-tag" },
      el("span", { class: "map-unit-sign", "aria-hidden": "true", text: u.call_sign || u.id }),
      el("span", { class: "sr-only", text: label })) });
}

export function mountMap(box, options) {
  return box ? new CallMap(box, options) : null;
}
