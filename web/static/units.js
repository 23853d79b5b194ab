// Units as records (issue 14; docs/units.md). Two uses:
// - the board imports the roster it keeps from the board stream (the opening snapshot,
//   then `unit` messages) and the sign on / sign off control, which shares the device's
//   position only when the member opts in and the unit is on duty;
// - the roster page (/units) for supervisors: list, add and edit, duty, retention.
import { $, age, api, clear, el, flash, layout, words } from "./common.js";

// The roster as the board stream tells it: unit id -> Unit (docs/units.md).
export const roster = new Map();
const listeners = new Set();

function changed() { for (const fn of listeners) fn(); }

// Call fn after every change of the roster (the map draws its units from it).
export function onRosterChange(fn) { listeners.add(fn); }

// A board message about units: the opening snapshot or a `unit` change. True when it
// was one (the caller need not fold it as a call's).
export function onUnitMessage(msg) {
  if (msg.type === "snapshot" && Array.isArray(msg.units)) {
    roster.clear();
    for (const u of msg.units) roster.set(u.id, u);
  } else if (msg.type === "unit" && msg.unit) {
    if (msg.retired) roster.delete(msg.unit.id);
    else roster.set(msg.unit.id, msg.unit);
  } else {
    return false;
  }
  changed();
  return true;
}

// The names the board offers for units: the roster's units on duty (and any busy one),
// or null when no roster is kept (the board then numbers the policy's units).
export function rosterNames() {
  if (!roster.size) return null;
  return [...roster.values()].filter((u) => u.on_duty).map((u) => u.id);
}

// -- sign on / sign off, and sharing the position ----------------------------------------

const MINE = "liaison.myUnit";  // the unit this device belongs to, remembered here only
const SEND_EVERY_MS = 5000;     // a position at most this often

class PositionSharing {
  constructor(onState) {
    this.watch = null;
    this.unit = null;
    this.lastSent = 0;
    this.onState = onState;
  }

  get active() { return this.watch !== null; }

  start(unitId) {
    if (this.active && this.unit === unitId) return;
    this.stop();
    if (!navigator.geolocation) { this.onState("this browser cannot share a position"); return; }
    this.unit = unitId;
    this.lastSent = 0;
    this.watch = navigator.geolocation.watchPosition((pos) => this.send(pos),
      (err) => this.onState(`position not shared: ${err.message}`),
      { enableHighAccuracy: true, maximumAge: 0 });
    this.onState(`sharing ${unitId}'s position`);
  }

  stop() {
    if (this.watch !== null && navigator.geolocation) navigator.geolocation.clearWatch(this.watch);
    this.watch = null;
    this.unit = null;
  }

  async send(pos) {
    const now = Date.now();
    if (!this.unit || now - this.lastSent < SEND_EVERY_MS) return;
    this.lastSent = now;
    const c = pos.coords;
    try {
      await api(`/v1/units/${encodeURIComponent(this.unit)}/position`, { method: "POST", json: {
        lat: c.latitude, lon: c.longitude,
        accuracy_m: Number.isFinite(c.accuracy) ? c.accuracy : null,
        at: new Date(pos.timestamp || now).toISOString() } });
      this.onState(`sharing ${this.unit}'s position (sent ${new Date(now).toLocaleTimeString()})`);
    } catch (err) {
      // Off duty (409) or gone: stop; the member opts in again once on duty.
      this.onState(`position not shared: ${err.message}`);
      if (err.status === 409 || err.status === 404) this.stop();
    }
  }
}

// The board's control: pick my unit, sign it on or off, opt in to sharing its position.
export function mountDutyControl(box, user) {
  if (!box) return;
  const mayAct = !user || ["call_team", "supervisor"].includes(user.role);
  const select = el("select", { name: "my-unit", "aria-label": "My unit" });
  const signOn = el("button", { type: "button", class: "primary", dataset: { act: "sign-on" } },
    "Sign on");
  const signOff = el("button", { type: "button", dataset: { act: "sign-off" } }, "Sign off");
  const share = el("input", { type: "checkbox", name: "share-position" });
  const note = el("span", { class: "hint", dataset: { role: "sharing" } });
  const sharing = new PositionSharing((text) => { note.textContent = text; });

  const mine = () => roster.get(select.value);
  function follow() {
    const unit = mine();
    if (unit && unit.on_duty && share.checked) sharing.start(unit.id);
    else {
      if (sharing.active) note.textContent = "not sharing";
      sharing.stop();
    }
  }
  let shown = null;  // the options drawn last: a position alone leaves the select as it is
  function draw() {
    box.hidden = !roster.size || !mayAct;
    const options = [...roster.values()].map((u) =>
      [u.id, `${u.call_sign || u.id}${u.on_duty ? " (on duty)" : ""}`]);
    const key = JSON.stringify(options);
    if (key !== shown) {
      shown = key;
      const keep = select.value || localStorage.getItem(MINE) || "";
      clear(select, options.map(([id, text]) => el("option", { value: id }, text)));
      if (roster.has(keep)) select.value = keep;
    }
    const unit = mine();
    signOn.disabled = !unit || unit.on_duty;
    signOff.disabled = !unit || !unit.on_duty;
    follow();  // signed off (here or elsewhere): sharing stops
  }
  async function setDuty(on) {
    const unit = mine();
    if (!unit) return;
    try {
      const now = await api(`/v1/units/${encodeURIComponent(unit.id)}/duty`,
        { method: "POST", json: { on_duty: on } });
      roster.set(now.id, now);
      changed();
    } catch (err) {
      note.textContent = `not changed: ${err.message}`;
    }
  }
  select.addEventListener("change", () => { localStorage.setItem(MINE, select.value); draw(); });
  signOn.addEventListener("click", () => setDuty(true));
  signOff.addEventListener("click", () => setDuty(false));
  share.addEventListener("change", follow);
  clear(box, el("label", {}, "My unit ", select), " ", signOn, " ", signOff, " ",
    el("label", {}, share, " Share my position while on duty"), " ", note);
  listeners.add(draw);
  draw();
}

// -- the roster page ---------------------------------------------------------------------

function list(value) {
  return value.split(",").map((s) => s.trim()).filter(Boolean);
}

function rosterRow(u, edit) {
  const duty = el("button", { type: "button", dataset: { act: "duty" },
    on: { click: () => pageDuty(u, !u.on_duty) } }, u.on_duty ? "Sign off" : "Sign on");
  return el("tr", { dataset: { unit: u.id } },
    el("td", { text: u.id }), el("td", { text: u.call_sign }), el("td", { text: u.program_id }),
    el("td", { text: u.members.join("; ") }),
    el("td", { text: u.capabilities.map(words).join(", ") }),
    el("td", { class: "status", text: words(u.status) + (u.call_id ? ` (${u.call_id})` : "") }),
    el("td", { text: u.position ? `${age(u.position.at)} ago (${u.position.source})` : "" }),
    el("td", {}, duty, " ",
      el("button", { type: "button", dataset: { act: "edit" }, on: { click: () => edit(u) } },
        "Edit"), " ",
      el("button", { type: "button", class: "danger", dataset: { act: "retire" },
        on: { click: () => retire(u) } }, "Retire")));
}

function drawRoster() {
  const units = [...roster.values()].sort((a, b) =>
    a.program_id.localeCompare(b.program_id) || a.id.localeCompare(b.id));
  clear($("#roster"), units.map((u) => rosterRow(u, fillForm)));
  $("#roster-empty").hidden = units.length > 0;
}

function fillForm(u) {
  const f = $("#unit-form");
  f.elements.id.value = u.id;
  f.elements.program_id.value = u.program_id;
  f.elements.call_sign.value = u.call_sign;
  f.elements.members.value = u.members.join(", ");
  f.elements.capabilities.value = u.capabilities.join(", ");
  f.elements.on_duty.checked = u.on_duty;
  f.elements.id.focus();
}

async function pageDuty(u, on) {
  try {
    roster.set(u.id, await api(`/v1/units/${encodeURIComponent(u.id)}/duty`,
      { method: "POST", json: { on_duty: on } }));
    drawRoster();
  } catch (err) { flash($("#flash"), `${u.id}: ${err.message}`, "error"); }
}

async function retire(u) {
  try {
    await api(`/v1/units/${encodeURIComponent(u.id)}`, { method: "DELETE" });
    roster.delete(u.id);
    drawRoster();
    flash($("#flash"), `${u.id} retired.`, "ok");
  } catch (err) { flash($("#flash"), `${u.id}: ${err.message}`, "error"); }
}

async function save(ev) {
  ev.preventDefault();
  const f = ev.target;
  const id = f.elements.id.value.trim();
  try {
    const saved = await api(`/v1/units/${encodeURIComponent(id)}`, { method: "PUT", json: {
      program_id: f.elements.program_id.value.trim(), call_sign: f.elements.call_sign.value,
      members: list(f.elements.members.value), capabilities: list(f.elements.capabilities.value),
      on_duty: f.elements.on_duty.checked } });
    roster.set(saved.unit.id, saved.unit);
    drawRoster();
    flash($("#flash"), `${saved.unit.id} ${saved.created ? "added" : "saved"}.`, "ok");
    f.reset();
  } catch (err) { flash($("#flash"), `Not saved: ${err.message}`, "error"); }
}

async function saveRetention(ev) {
  ev.preventDefault();
  const hours = Number(ev.target.elements.hours.value);
  try {
    const now = await api("/v1/roster/retention", { method: "PUT",
      json: { position_retention_hours: hours } });
    flash($("#flash"), `Positions are kept ${now.position_retention_hours} h.`, "ok");
  } catch (err) { flash($("#flash"), `Not saved: ${err.message}`, "error"); }
}

async function startRosterPage() {
  await layout();
  $("#unit-form").addEventListener("submit", save);
  $("#retention-form").addEventListener("submit", saveRetention);
  try {
    const [units, keep, programs] = await Promise.all([api("/v1/units"),
      api("/v1/roster/retention"), api("/v1/programs").catch(() => ({ programs: [] }))]);
    for (const u of units.units) roster.set(u.id, u);
    $("#retention-form").elements.hours.value = keep.position_retention_hours;
    clear($("#program-ids"), [...programs.programs.map((p) => p.id), "team"].map((id) =>
      el("option", { value: id })));
  } catch (err) {
    flash($("#flash"), `Could not read the roster: ${err.message}`, "error");
  }
  drawRoster();
}

if (document.body.classList.contains("page-units")) startRosterPage();
