// Dispatcher console: every incoming call with its decision and explanation, the
// eligible-but-not-served calls and why, backup requests highlighted, and an override
// with a required reason.
import {
  $, agencyChoice, agencyTag, api, backupReasonText, BoardStream, callDetails, checkinText,
  clock, connectionBadge, el, flash, foldMessage, historyText, layout, markCaughtUp,
  rightResponder, SITE, words,
} from "./common.js";
import {
  drawQueue, programName, startQueueClock, tickQueue, waitingText, waitKind,
} from "./queue.js";
import { KeyedList } from "./keyed.js";
import { mountMap } from "./map.js";
import { Recommendations } from "./recommend.js";
import { onUnitMessage } from "./units.js";

const MAX_CALLS = 200;
const calls = new Map();
const openForms = new Set();
let user = null;
let agencies = [];  // the agencies this person sees (several: each card says whose)
let stream = null;  // the console's BoardStream: caught up once its replay is drawn
const map = mountMap($("#map-box"), { cards: "#calls" });

const NOT_SERVED = {
  off_hours: "outside the team's hours",
  units_busy: "every team unit was busy",
  override: "a dispatcher overrode it",
  wait_exceeded: "it waited for the team past its wait limit",
  outside_area: "outside every team's service area",
};

// A call transferred to the crisis centre shows as 988's (its own badge colour).
function destText(dest) { return dest === "crisis_center" ? "988 transfer" : words(dest); }

function canOverride() {
  return !user || SITE.may.override.includes(user.role);
}

function isBackup(e) {
  return !e.closed && (e.call.team_status === "backup_requested" || Boolean(e.backup)
    && e.call.team_status !== "cleared");
}

// An open team call nobody has taken: its recommended unit is shown (recommend.js).
function awaitsUnit(e) {
  const d = e && e.decision;
  return Boolean(d && !e.closed && !e.call.team_status && !waitKind(d)
    && (d.destination === "call_team" || d.destination === "joint"));
}
const recs = new Recommendations({ onChange: () => render(),
                                   wanted: (id) => awaitsUnit(calls.get(id)) });

// Assigning is the team's and supervisors' (POST /v1/calls/{id}/status).
async function assign(entry, unit) {
  try {
    await api(`/v1/calls/${encodeURIComponent(entry.id)}/status`,
      { method: "POST", json: { status: "assigned", unit } });
    flash($("#flash"), `${unit} assigned to ${entry.call.incident_id}.`, "ok");
  } catch (err) {
    flash($("#flash"), `Could not assign: ${err.message}`, "error");
  }
}

function isNotServed(e) {
  const d = e.decision;
  return d && d.eligible && d.not_served_reason;
}

async function override(entry, destination, reason, right) {
  try {
    await api(`/v1/calls/${encodeURIComponent(entry.id)}/override`, {
      method: "POST",
      json: { destination, reason, by: user ? user.username : "dispatcher",
              right_responder: right || undefined },
    });
    openForms.delete(entry.id);
    flash($("#flash"), `Override recorded for ${entry.call.incident_id}.`, "ok");
    if (document.activeElement && document.activeElement.blur) document.activeElement.blur();
    render();
  } catch (err) {
    flash($("#flash"), `Override refused: ${err.message}`, "error");
  }
}

function overrideForm(entry) {
  const dest = el("select", { name: "destination", "aria-label": "Send to" },
    SITE.destinations.filter((d) => d !== entry.decision.destination)
      .map((d) => el("option", { value: d }, words(d))));
  const reason = el("input", { name: "reason", required: true, minlength: 3, maxlength: 2000,
                               placeholder: "Reason (required)", "aria-label": "Reason" });
  // "Was the recommended responder the right one?": optional (the rule scorecard counts it).
  const right = rightResponder();
  const form = el("form", { class: "act-form override", noValidate: true }, dest, reason,
    right, el("button", { type: "submit", class: "primary" }, "Override"));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const why = reason.value.trim();
    if (why.length < 3) {
      flash($("#flash"), "An override needs a reason (at least 3 characters).", "error");
      reason.focus();
      return;
    }
    override(entry, dest.value, why, right.value);
  });
  return form;
}

function card(entry, { compact = false } = {}) {
  const c = entry.call;
  const d = entry.decision;
  const li = el("li", { class: `card dest-card-${d.destination}${isBackup(entry) ? " backup" : ""}`,
                        dataset: { callId: entry.id } },
    el("div", { class: "card-head" },
      el("span", { class: `dest dest-${d.destination}`, text: destText(d.destination) }),
      el("span", { class: "mode", text: words(d.mode) }),
      el("span", { class: "time", text: clock(c.opened_at) })),
    el("div", { class: "nature", text: `${c.nature_code || ""} ${c.nature_text || ""}`.trim() }),
    el("div", { class: "where", text: [c.address, c.district].filter(Boolean).join(" · ") }),
    el("div", { class: "meta" },
      el("span", { class: "cat", text: words(d.category) || "no category" }),
      el("span", { class: "basis", text: `basis: ${words(d.basis)}` }),
      programName(d) ? el("span", { class: "program", text: programName(d) }) : null,
      c.team_status ? el("span", { class: "status", text: words(c.team_status) }) : null,
      c.unit ? el("span", { class: "unit-tag", text: c.unit }) : null,
      agencyTag(c, agencies),
      el("span", { class: "inc", text: c.incident_id })),
    !entry.closed && waitKind(d) ? el("div", { class: "waiting-note", text: waitingText(d) }) : null,
    isNotServed(entry) ? el("div", { class: "not-served",
      text: `Eligible, not served: ${NOT_SERVED[d.not_served_reason] || words(d.not_served_reason)}` }) : null,
    entry.backup ? el("div", { class: "backup-reason",
      text: `Police backup requested ${clock(entry.backup.at)}${entry.backup.by ? ` by ${entry.backup.by}` : ""}: ${backupReasonText(entry.backup)}` }) : null,
    d.override ? el("div", { class: "override-note",
      text: `Overridden by ${d.override.by}: ${d.override.reason} (recommended: ${words(d.override.from_destination)})` }) : null,
    entry.checkin && !entry.closed ? el("div", { class: `checkin-alert ${entry.checkin.level}`,
      text: `${checkinText(entry.checkin)} (${entry.call.unit || "unit"})` }) : null,
    entry.history ? el("div", { class: "history", text: historyText(entry.history) }) : null,
    el("p", { class: "why", text: d.explanation || "" }),
    !compact && awaitsUnit(entry) ? recs.element(entry.id,
      !user || SITE.may.status.includes(user.role) ? (unit) => assign(entry, unit) : null)
      : null);
  if (!compact) {
    const actions = el("div", { class: "actions" });
    if (!entry.closed && canOverride()) {
      actions.append(el("button", { type: "button", on: { click: () => {
        if (openForms.has(entry.id)) openForms.delete(entry.id); else openForms.add(entry.id);
        render();
      } } }, "Override…"));
    }
    const det = el("button", { type: "button", class: "link" }, "Details");
    det.addEventListener("click", async () => {
      try { li.append(await callDetails(entry.id)); det.remove(); }
      catch (err) { flash($("#flash"), err.message, "error"); }
    });
    actions.append(det);
    li.append(actions);
    if (openForms.has(entry.id)) li.append(overrideForm(entry));
  }
  return li;
}

// What a card shows, as a key: built again only when it changes. seq moves with every
// message about the call but its closing; a waiting line may change with the clock.
function cardKey(e, compact) {
  const d = e.decision;
  return [e.seq, e.closed, compact || openForms.has(e.id), compact || canOverride(),
    !e.closed && waitKind(d) ? waitingText(d) : "",
    !compact && awaitsUnit(e) ? recs.keyOf(e.id) : ""].join("|");  // recommend.js
}

const lists = new Map();  // list id -> KeyedList
function drawList(id, entries, compact = false) {
  if (!lists.has(id)) lists.set(id, new KeyedList($(`#${id}`)));
  lists.get(id).draw(entries.map((e) =>
    ({ id: e.id, key: cardKey(e, compact), build: () => card(e, { compact }) })));
}

let queued = false;
let postponed = null;
function render() {
  if (queued) return;
  queued = true;
  requestAnimationFrame(() => { queued = false; draw(); });
}

function draw() {
  const a = document.activeElement;
  if (a && ["INPUT", "SELECT", "TEXTAREA"].includes(a.tagName) && a.closest(".act-form")) {
    if (!postponed) postponed = setTimeout(() => { postponed = null; render(); }, 1000);
    return;
  }
  const all = [...calls.values()].sort((x, y) => y.firstSeq - x.firstSeq);
  const backups = all.filter(isBackup);
  const notServed = all.filter(isNotServed);
  const missed = all.filter((e) => e.checkin && !e.closed
    && ["on_scene", "backup_requested"].includes(e.call.team_status));
  drawList("checkins", missed, true);
  $("#ci-count").textContent = String(missed.length);
  $("#checkins-box").hidden = missed.length === 0;
  drawList("backups", backups, true);
  drawList("not-served", notServed.slice(0, 50), true);
  drawList("calls", all);
  drawQueue($("#queue-box"), all.filter((e) => !e.closed));
  if (map) map.sync(all);
  $("#backup-count").textContent = String(backups.length);
  $("#ns-count").textContent = String(notServed.length);
  $("#all-count").textContent = String(all.length);
  document.title = backups.length ? `(${backups.length} backup) Dispatcher console · Liaison`
    : "Dispatcher console · Liaison";
  markCaughtUp(Boolean(stream && stream.caughtUp));
}

function onMessage(msg) {
  onUnitMessage(msg);  // the roster (units.js), whose units the map draws
  recs.onMessage(msg);
  const entry = foldMessage(calls, msg);
  if (!entry) return;
  if (!entry.decision) {
    // A status or check-in about a call this page has not kept (too old): skip it.
    calls.delete(entry.id);
    return;
  }
  if (calls.size > MAX_CALLS) {
    // Oldest first out; a call with a backup request stays while it is open, a waiting
    // call while it waits.
    for (const [id, e] of calls) {
      if (calls.size <= MAX_CALLS) break;
      if (!isBackup(e) && !waitKind(e.decision)) calls.delete(id);
    }
  }
  render();
}

async function start() {
  user = await layout();
  agencies = await agencyChoice($("#agency-choice"));
  stream = new BoardStream({ onMessage, onCaughtUp: render, onState: connectionBadge });
  stream.start();
  setInterval(() => { if (tickQueue($("#queue-box"))) render(); }, 1000);
  startQueueClock(render);
}

start();
