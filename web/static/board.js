// CALL team live board: team calls grouped by status, with their age, category,
// location and the decision's explanation; the team's buttons; units; new-call alert.
import {
  $, agencyChoice, agencyTag, api, age, backupReasonText, BoardStream, callDetails,
  checkinText, clear, clock, connectionBadge, el, flash, foldMessage, historyText, layout,
  markCaughtUp, rightResponder, SITE, words,
} from "./common.js";
import {
  act, hhmm, keepBoard, keptBoard, label, pending, pendingStatus, startOffline,
} from "./offline.js";
import { KeyedList } from "./keyed.js";
import { drawQueue, startQueueClock, tickQueue, waitKind } from "./queue.js";
import { mountMap } from "./map.js";
import { forgetPlans, mayReadPlans, plansBox } from "./plans.js";
import { Recommendations } from "./recommend.js";
import { mountDutyControl, onUnitMessage, rosterNames } from "./units.js";
import { careForm, careKey, careLines, onCareMessage } from "./care.js";

// The team's flow, from the service (api/layout.py): a lane per status a call can still
// move on from, in order; the first is the queue.
const NEXT = Object.fromEntries(SITE.statuses.map((s) => [s.value, s.next]));
const LANES = SITE.statuses.filter((s) => s.next.length);
const QUEUED = LANES[0].value;
const calls = new Map();      // call id -> entry (see foldMessage)
const followUps = new Map();  // follow-up id -> follow-up (as the API shows it), due ones
let unitsTotal = 4;
let replayedUpTo = 0;         // seq of the last message that existed when the page opened
let unseen = 0;
let user = null;
let agencies = [];           // the agencies this person sees (several: each card says whose)
let lastSeq = 0;
let restored = false;         // the board shown is the one kept on the device (offline)
let stream = null;  // the board's BoardStream: caught up once its replay is drawn
const baseTitle = document.title;
const open = new Set();       // call ids whose forms or details are open (kept across renders)
// The unit chosen in a call's open assign form: a card drawn again while the form is open
// (a unit freed or taken, a recommendation come in) keeps the choice, not the first free.
const chosenUnit = new Map();
const map = mountMap($("#map-box"), { cards: "#lanes, #queue-box" });

// Without sessions (user null) everyone may act; with them, the roles the API lets move
// a call along.
function canAct() { return !user || SITE.may.status.includes(user.role); }

function done(status) { return Boolean(NEXT[status]) && NEXT[status].length === 0; }

function onTeam(entry) {
  const d = entry.decision;
  return !entry.closed && d && (d.destination === "call_team" || d.destination === "joint")
    && !waitKind(d) && !done(entry.call.team_status || QUEUED);
}

// Waiting for a unit or a shift: in the queue section, not yet in a lane.
function isWaiting(entry) { return !entry.closed && Boolean(waitKind(entry.decision)); }

// Where the call stands for this member: its status as the service last said, or as the
// changes waiting to be sent will make it (offline.js); a call cleared offline stays in
// its lane until the clearing is sent.
function status(entry) {
  const waiting = pendingStatus(entry.id);
  return (waiting && waiting.status) || entry.call.team_status || QUEUED;
}

function lane(entry) {
  const s = status(entry);
  return LANES.some((l) => l.value === s) ? s : entry.call.team_status || QUEUED;
}

// The unit to send, on each call nobody has taken yet (recommend.js).
const recs = new Recommendations({ onChange: () => render(), wanted: (id) => {
  const e = calls.get(id);
  return Boolean(e && onTeam(e) && lane(e) === QUEUED);
} });

function alertNewCall(entry) {
  unseen += 1;
  document.title = `(${unseen}) New call · ${baseTitle}`;
  const c = entry.call;
  $("#alert-text").textContent =
    `New call: ${c.nature_text || c.nature_code || "call"}${c.address ? ` at ${c.address}` : ""}`
    + (unseen > 1 ? ` (+${unseen - 1} more)` : "");
  $("#alert").hidden = false;
}

function ackAlert() {
  unseen = 0;
  document.title = baseTitle;
  $("#alert").hidden = true;
  for (const e of calls.values()) e.fresh = false;
  render();
}

// Through the queue (offline.js): sent now, or when the connection returns.
function checkIn(entry) { act(entry, "checkin", {}); }

function onSent(item) {
  const entry = calls.get(item.callId);
  if (item.kind === "checkin") {
    flash($("#flash"), `${(entry && entry.call.unit) || "Unit"} checked in.`, "ok");
  }
  render();
}

// An action the service refused (the call moved on meanwhile: it says what happened).
function notSent(text) {
  const list = $("#not-sent");
  const li = el("li", {}, el("span", { text }), " ",
    el("button", { type: "button", class: "link", on: { click: () => {
      li.remove();
      list.hidden = !list.children.length;
    } } }, "OK"));
  list.append(li);
  list.hidden = false;
}

async function followUpAction(fu, action) {
  try {
    await api(`/v1/follow-ups/${encodeURIComponent(fu.id)}/${action}`,
      { method: "POST", json: {} });
    followUps.delete(fu.id);
    render();
  } catch (err) {
    flash($("#flash"), `Follow-up not changed: ${err.message}`, "error");
  }
}

function followUpCard(fu) {
  const o = fu.original || {};
  return el("li", { class: "card followup", dataset: { followUpId: fu.id } },
    el("div", { class: "card-head" },
      el("span", { class: "cat", text: words(o.category) || "follow-up" }),
      el("span", { class: "time", text: `due ${clock(fu.due_at)}` })),
    el("div", { class: "nature", text: o.nature_text || "" }),
    el("div", { class: "where", text: [o.address, o.district].filter(Boolean).join(" · ") }),
    fu.note ? el("p", { class: "why", text: fu.note }) : null,
    o.outcome || o.disposition ? el("div", { class: "history",
      text: `Last time: ${[words(o.disposition), o.outcome].filter(Boolean).join(": ")}` }) : null,
    el("div", { class: "actions" },
      canAct() ? [
        el("button", { type: "button", class: "primary",
                       on: { click: () => followUpAction(fu, "open") } }, "Open as a call"),
        el("button", { type: "button", on: { click: () => followUpAction(fu, "cancel") } },
          "Cancel")] : null));
}

function onFollowUp(msg) {
  const fu = msg.follow_up;
  if (!fu) return;
  if (msg.type === "follow_up_due" || (msg.type === "follow_up_scheduled" && fu.due)) {
    followUps.set(fu.id, fu);
  } else if (msg.type !== "follow_up_scheduled") {
    followUps.delete(fu.id);  // opened, completed or cancelled
  }
  render();
}

function setStatus(entry, body) {
  const by = user ? user.username : undefined;
  act(entry, "status", { ...body, by });
  for (const kind of ["assign", "backup", "clear"]) open.delete(`${entry.id}:${kind}`);
  chosenUnit.delete(entry.id);
  flash($("#flash"), "");
  if (document.activeElement && document.activeElement.blur) document.activeElement.blur();
  render();
}

// "Waiting to send (2): en route 10:41, on scene 10:42" on the card.
function waitingToSend(entry) {
  const items = pending(entry.id);
  if (!items.length) return null;
  return el("div", { class: "pending", dataset: { pending: String(items.length) } },
    `Waiting to send (${items.length}): `,
    items.map((a) => `${label(a)} ${hhmm(a.actedAt)}`).join(", "));
}

// The call's unit, or the one an assignment waiting to be sent names.
function unitOf(entry) { return entry.call.unit || (pendingStatus(entry.id) || {}).unit; }

function busyUnits() {
  const busy = new Map();
  for (const e of calls.values()) {
    if (onTeam(e) && unitOf(e)) busy.set(unitOf(e), e);
  }
  return busy;
}

function unitNames() {
  // The roster's units on duty when one is kept; else the policy's count, numbered.
  const names = rosterNames() || [];
  if (!rosterNames()) for (let i = 1; i <= unitsTotal; i++) names.push(`CALL-${i}`);
  for (const u of busyUnits().keys()) if (!names.includes(u)) names.push(u);
  return names;
}

let unitList = null;
function renderUnits() {
  const busy = busyUnits();
  unitList = unitList || new KeyedList($("#units"));
  unitList.draw(unitNames().map((u) => {
    const e = busy.get(u);
    const text = e ? `${words(lane(e))} · ${e.call.address || e.call.incident_id}` : "available";
    return { id: u, key: `${Boolean(e)}|${text}`,
             build: () => el("li", { class: e ? "unit busy" : "unit free", dataset: { unit: u } },
               el("strong", { text: u }), " ", text) };
  }));
}

// What an assign form offers: the units and which are busy (a card with the form open is
// drawn again when they change).
function unitsKey() {
  return `${unitNames().join(",")}/${[...busyUnits().keys()].join(",")}`;
}

function actionForm(entry, kind) {
  const wrap = el("form", { class: `act-form ${kind}`, dataset: { form: kind } });
  if (kind === "assign") {
    const busy = busyUnits();
    const select = el("select", { name: "unit", "aria-label": "Unit", required: true },
      unitNames().map((u) => el("option", { value: u, disabled: busy.has(u) },
        busy.has(u) ? `${u} (busy)` : u)));
    const free = unitNames().find((u) => !busy.has(u));
    const chosen = chosenUnit.get(entry.id);
    if (chosen && unitNames().includes(chosen) && !busy.has(chosen)) select.value = chosen;
    else if (free) select.value = free;
    select.addEventListener("change", () => chosenUnit.set(entry.id, select.value));
    wrap.append(select, el("button", { type: "submit", class: "primary" }, "Assign"));
    wrap.addEventListener("submit", (ev) => {
      ev.preventDefault();
      setStatus(entry, { status: "assigned", unit: select.value });
    });
  } else if (kind === "backup") {
    const reason = el("input", { name: "reason", required: true, maxlength: 2000,
                                 placeholder: "Why police are needed", "aria-label": "Reason" });
    wrap.append(reason, el("button", { type: "submit", class: "danger" }, "Request backup"));
    wrap.addEventListener("submit", (ev) => {
      ev.preventDefault();
      if (!reason.value.trim()) { reason.focus(); return; }
      setStatus(entry, { status: "backup_requested", note: reason.value.trim() });
    });
  } else if (kind === "clear") {
    const disp = el("select", { name: "disposition", required: true, "aria-label": "Disposition" },
      el("option", { value: "" }, "Disposition…"),
      SITE.dispositions.map((d) => el("option", { value: d.value }, d.label)));
    const outcome = el("input", { name: "outcome", maxlength: 2000, placeholder: "Outcome",
                                  "aria-label": "Outcome" });
    const hurt = el("input", { type: "checkbox", name: "safety_incident" });
    const follow = el("select", { name: "follow_up", "aria-label": "Follow up" },
      [["", "No follow-up"], ["24", "Follow up in a day"], ["72", "Follow up in 3 days"],
       ["168", "Follow up in a week"]].map(([v, label]) => el("option", { value: v }, label)));
    // "Was this the right responder?": optional, one choice (the rule scorecard counts it).
    const right = rightResponder();
    const followNote = el("input", { name: "follow_up_note", maxlength: 2000,
                                     placeholder: "What the follow-up is for",
                                     "aria-label": "Follow-up note" });
    wrap.append(disp, outcome,
      el("label", { class: "check" }, hurt, "Someone on the team was hurt or threatened"),
      right, follow, followNote,
      el("button", { type: "submit", class: "primary" }, "Clear"));
    wrap.addEventListener("submit", (ev) => {
      ev.preventDefault();
      if (!disp.value) { disp.focus(); return; }
      const body = { status: "cleared", disposition: disp.value,
                     outcome: outcome.value.trim() || undefined,
                     safety_incident: hurt.checked,
                     right_responder: right.value || undefined };
      if (follow.value) {
        body.follow_up_in_hours = Number(follow.value);
        body.follow_up_note = followNote.value.trim() || undefined;
      }
      setStatus(entry, body);
    });
  }
  return wrap;
}

const details = new Map();    // call id -> promise of its details element

function toggle(entry, kind) {
  const key = `${entry.id}:${kind}`;
  if (kind === "details") { details.delete(entry.id); forgetPlans(entry.id); }
  if (open.has(key)) open.delete(key); else open.add(key);
  if (kind === "assign") chosenUnit.delete(entry.id);
  render();
}

// A step to another status, as a button; the steps a call may take come from the
// service (NEXT), so the board offers none the API refuses.
function step(entry, to) {
  switch (to) {
    case "assigned": return ["Assign unit", () => toggle(entry, "assign"), "primary"];
    case "backup_requested":
      return ["Request police backup", () => toggle(entry, "backup"), "danger"];
    case "cleared": return ["Clear", () => toggle(entry, "clear")];
    default: return [SITE.statuses.find((s) => s.value === to).label,
      () => setStatus(entry, { status: to })];
  }
}

const LAST = ["backup_requested", "cleared"];  // shown after the check-in, in this order

function buttons(entry) {
  const s = status(entry);
  const b = (label, fn, cls = "") =>
    el("button", { type: "button", class: cls, on: { click: fn } }, label);
  const next = NEXT[s] || [];
  const out = next.filter((to) => !LAST.includes(to)).map((to) => b(...step(entry, to)));
  if (SITE.checking_in.includes(s)) {
    out.push(b("Check in", () => checkIn(entry), entry.checkin ? "danger" : ""));
  }
  for (const to of LAST) if (next.includes(to)) out.push(b(...step(entry, to)));
  out.push(b("Care", () => toggle(entry, "care")));  // warm handoffs (care.js)
  out.push(b("Details", () => toggle(entry, "details"), "link"));
  return out;
}

function card(entry) {
  const c = entry.call;
  const d = entry.decision;
  const li = el("li", { class: `card${entry.fresh ? " fresh" : ""}${d.destination === "joint" ? " joint" : ""}${entry.checkin ? " missed" : ""}`,
                        dataset: { callId: entry.id, status: lane(entry) } },
    el("div", { class: "card-head" },
      el("span", { class: "cat", text: words(d.category) || "uncategorised" }),
      el("span", { class: "age", dataset: { opened: c.opened_at }, text: age(c.opened_at) })),
    el("div", { class: "nature", text: `${c.nature_code || ""} ${c.nature_text || ""}`.trim() }),
    el("div", { class: "where", text: [c.address, c.district].filter(Boolean).join(" · ") || "no location" }),
    el("div", { class: "meta" },
      el("span", { class: `dest dest-${d.destination}`, text: words(d.mode || d.destination) }),
      unitOf(entry) ? el("span", { class: "unit-tag", text: unitOf(entry) }) : null,
      agencyTag(c, agencies),
      el("span", { class: "inc", text: c.incident_id })),
    waitingToSend(entry),
    entry.checkin ? el("div", { class: `checkin-alert ${entry.checkin.level}`,
                                text: checkinText(entry.checkin) }) : null,
    entry.backup ? el("div", { class: "backup-reason",
                               text: `Backup: ${backupReasonText(entry.backup)}` }) : null,
    entry.history ? el("div", { class: "history", text: historyText(entry.history) }) : null,
    careLines(entry.id, canAct() ? render : null),
    el("p", { class: "why", text: d.explanation || "" }),
    lane(entry) === QUEUED ? recs.element(entry.id, canAct()
      ? (unit) => setStatus(entry, { status: "assigned", unit }) : null) : null,
    el("div", { class: "actions" }, canAct() ? buttons(entry)
      : el("button", { type: "button", class: "link", on: { click: () => toggle(entry, "details") } },
        "Details")));
  for (const kind of ["assign", "backup", "clear"]) {
    if (open.has(`${entry.id}:${kind}`)) li.append(actionForm(entry, kind));
  }
  if (open.has(`${entry.id}:care`)) li.append(careForm(entry, render));
  if (open.has(`${entry.id}:details`)) {
    const box = el("div", { class: "details-box", text: "Loading…" });
    li.append(box);
    if (!details.has(entry.id)) details.set(entry.id, callDetails(entry.id));
    details.get(entry.id).then((dl) => clear(box, dl.cloneNode(true)))
      .catch((err) => { box.textContent = `Could not load: ${err.message}`; });
    if (mayReadPlans(user)) li.append(plansBox(entry.id, c));  // the team's only, audited
  }
  return li;
}

// What a card shows, as a key: the card is built again only when it changes (the age
// ticks in place). seq moves with every message about the call.
const FORMS = ["assign", "backup", "clear", "care", "details"];
function cardKey(entry, units) {
  const forms = FORMS.filter((k) => open.has(`${entry.id}:${k}`));
  // What is waiting to be sent (offline.js) and the recommended unit (recommend.js) are
  // drawn on the card too, and change without a message about the call.
  const waiting = pending(entry.id).map((a) => a.key).join(",");
  const rec = lane(entry) === QUEUED ? recs.keyOf(entry.id) : "";
  return [entry.seq, entry.closed, Boolean(entry.fresh), lane(entry), canAct(), forms.join(","),
    forms.includes("assign") ? units() : "", waiting, rec, careKey(entry.id)].join("|");
}

const laneLists = new Map();  // lane -> KeyedList of its cards
function drawCards() {
  const groups = Object.fromEntries(LANES.map((l) => [l.value, []]));
  for (const e of calls.values()) {
    if (onTeam(e)) (groups[lane(e)] || groups[QUEUED]).push([Date.parse(e.call.opened_at), e]);
  }
  let units = null;  // computed once, only if an assign form is open
  const unitsOnce = () => (units === null ? (units = unitsKey()) : units);
  for (const { value: l } of LANES) {
    const section = $(`.lane[data-lane="${l}"]`);
    const group = groups[l].sort((a, b) => a[0] - b[0]).map(([, e]) => e);
    if (!laneLists.has(l)) laneLists.set(l, new KeyedList($(".cards", section)));
    laneLists.get(l).draw(group.map((e) =>
      ({ id: e.id, key: cardKey(e, unitsOnce), build: () => card(e) })));
    setText($(".count", section), String(group.length));
    section.classList.toggle("empty", group.length === 0);
  }
}

function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;  // a live region hears changes only
}

let followUpList = null;
let renderQueued = false;
let postponed = null;
let callsChanged = true;  // false: only units changed since the last draw
// At most one draw a frame, however many messages arrive. `what`: "units" when only the
// roster changed (a position, a duty): the call cards stay as they are.
function render(what = "calls") {
  if (what !== "units") callsChanged = true;
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    draw();
  });
}

function draw() {
  // Keep what a user is typing: no redraw while focus is in an open form's field.
  const a = document.activeElement;
  if (a && ["INPUT", "SELECT", "TEXTAREA"].includes(a.tagName) && a.closest(".act-form")) {
    if (!postponed) postponed = setTimeout(() => { postponed = null; render(); }, 1000);
    return;
  }
  renderUnits();
  if (!callsChanged) {
    // Units only (the map follows them itself): just the cards with an assign form open,
    // whose choice of units may have changed.
    if ([...open].some((k) => k.endsWith(":assign"))) drawCards();
    return;
  }
  callsChanged = false;
  drawCards();
  drawQueue($("#queue-box"), [...calls.values()].filter(isWaiting));
  if (map) map.sync(calls.values());
  const due = [...followUps.values()].sort((a, b) => Date.parse(a.due_at) - Date.parse(b.due_at));
  followUpList = followUpList || new KeyedList($("#followups"));
  followUpList.draw(due.map((fu) =>
    ({ id: fu.id, key: `${canAct()}|${JSON.stringify(fu)}`, build: () => followUpCard(fu) })));
  setText($("#fu-count"), String(due.length));
  $("#followups-box").hidden = due.length === 0;
  const missed = [...calls.values()].filter((e) => onTeam(e) && e.checkin);
  $("#safety").hidden = missed.length === 0;
  setText($("#safety-text"), missed.map((e) =>
    `${checkinText(e.checkin)}: ${e.call.unit || "unit"} at ${e.call.address || e.call.incident_id}`)
    .join(" · "));
  if (!restored) keepBoard(() => ({ seq: lastSeq, entries: [...calls.values()] }));
  markCaughtUp(Boolean(stream && stream.caughtUp));
}

function tick() {
  const now = Date.now();
  // Only the ages whose text moved (a day-old call's changes once an hour): a write of
  // the same text would still lay out every card again.
  for (const span of document.querySelectorAll(".age[data-opened]")) {
    setText(span, age(span.dataset.opened, now));
  }
  if (tickQueue($("#queue-box"))) render();  // a scheduled call is due: to the top
}

function onMessage(msg) {
  recs.onMessage(msg);  // a unit or the call moved: its recommendation is asked again
  if (onUnitMessage(msg)) { render("units"); return; }  // the roster: units.js keeps it
  if (String(msg.type).startsWith("follow_up_")) { onFollowUp(msg); return; }
  onCareMessage(msg);  // a handoff's step: its card is drawn again (foldMessage moves seq)
  const before = calls.get(msg.call_id);
  const wasOnTeam = before ? onTeam(before) : false;
  lastSeq = Math.max(lastSeq, msg.seq || 0);
  const entry = foldMessage(calls, msg);
  if (!entry) return;
  if (entry.decision && entry.decision.program && entry.decision.program.units_total) {
    unitsTotal = entry.decision.program.units_total;
  }
  if (!wasOnTeam && onTeam(entry) && msg.seq > replayedUpTo && lane(entry) === QUEUED) {
    entry.fresh = true;
    alertNewCall(entry);
  }
  if (entry.closed || !(onTeam(entry) || isWaiting(entry))) {
    // Off the board: forget it, except the unit it held (nothing; it is free again).
    calls.delete(entry.id);
  }
  render();
}

function drawLanes() {
  clear($("#lanes"), LANES.map((l) => el("section", {
    class: l.value === "backup_requested" ? "lane warn" : "lane", dataset: { lane: l.value } },
  el("h2", {}, l.label, " ", el("span", { class: "count" })), el("ol", { class: "cards" }))));
}

async function start() {
  drawLanes();
  $("#alert-ack").addEventListener("click", ackAlert);
  user = await layout();
  agencies = await agencyChoice($("#agency-choice"));
  await startOffline({
    user, onChange: render, onSent,
    onRefused: (item, err, text) => { notSent(text); render(); },
    onDiscarded: (items) => flash($("#flash"), `${items.length} change(s) another person `
      + "made on this device had not been sent and were discarded.", "error"),
  });
  const kept = await keptBoard();
  if (kept && Array.isArray(kept.entries) && calls.size === 0) {
    // Until the board stream answers: the board as this device last saw it.
    for (const e of kept.entries) calls.set(e.id, { ...e, fresh: false });
    replayedUpTo = kept.seq || 0;
    restored = true;
  }
  try {
    const health = await api("/v1/health");
    replayedUpTo = health.board_seq || 0;
  } catch (err) {
    if (err.body && typeof err.body.board_seq === "number") replayedUpTo = err.body.board_seq;
  }
  try {
    // The program in force: readable by everyone who may open the board (not the
    // supervisors' /v1/policies).
    const program = await api("/v1/program");
    if (program.units) unitsTotal = program.units;
  } catch { /* the decisions carry units_total too */ }
  mountDutyControl($("#duty"), user);
  render();
  stream = new BoardStream({ onMessage, onCaughtUp: render, onState: (state) => {
    if (state === "online" && restored) {
      calls.clear();  // the stream replays the board as it is now
      restored = false;
    }
    if (state === "online" && !user) {
      // Opened offline: who is logged in, now that the service can say.
      layout().then((u) => { user = u; render(); });
    }
    connectionBadge(state);
  } }).start();
  setInterval(tick, 1000);
  startQueueClock(render);
}

start();
