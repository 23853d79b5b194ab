// Warm handoffs to care on the board's call cards (issue 16; docs/care.md): the card
// lists the call's handoffs (`care` board messages keep them current) and its Care form
// refers the person to a provider of the directory and records each step.
import { api, clock, el, SITE, words } from "./common.js";

const byCall = new Map();  // call id -> Map(referral id -> referral, as the API shows it)
const fetched = new Set();  // calls whose handoffs were read (when their form opened)
let directory = null;  // promise of the active providers

const KIND = { warm_line: "Warm line", care: "Care" };
const STEPS = SITE.care_next || {};  // what each status may go to (service/lifecycle/care.py)

function put(r) {
  if (!byCall.has(r.call_id)) byCall.set(r.call_id, new Map());
  byCall.get(r.call_id).set(r.id, r);
}

// A `care` board message: true when it was one. A reader from whom the handoff is
// withheld (`referral` null) keeps nothing.
export function onCareMessage(msg) {
  if (msg.type !== "care") return false;
  if (msg.referral) put(msg.referral);
  return true;
}

function handoffs(callId) {
  const m = byCall.get(callId);
  return m ? [...m.values()].sort((a, b) => Date.parse(a.offered_at) - Date.parse(b.offered_at)) : [];
}

// What the card shows of its handoffs, as a key (the card is built again when it changes).
export function careKey(callId) {
  return handoffs(callId).map((r) => `${r.id}:${r.status}:${r.follow_up_id || ""}`).join(",");
}

function line(r) {
  const late = r.follow_up_id ? " · not confirmed in time: follow-up raised" : "";
  const why = r.status === "declined" && r.declined_reason ? ` (${r.declined_reason})` : "";
  return `${KIND[r.kind] || "Care"}: ${r.provider_name} · ${words(r.status)} ${clock(r.steps.at(-1).at)}${why}${late}`;
}

// Read a call's handoffs once (those made before the board opened are in no message).
function load(callId, onChange, onError = () => {}) {
  if (fetched.has(callId)) return;
  fetched.add(callId);
  api(`/v1/calls/${encodeURIComponent(callId)}/care`).then((got) => {
    for (const r of got.referrals) put(r);
    if (got.referrals.length) onChange();
  }).catch((err) => { fetched.delete(callId); onError(err); });
}

// The handoffs on the card, or null when it has none. `onChange`: for the team, who may
// read them (they are read once, then the board's messages keep them); null for others.
export function careLines(callId, onChange) {
  if (onChange) load(callId, onChange);
  const list = handoffs(callId);
  if (!list.length) return null;
  return el("ul", { class: "care-list" }, list.map((r) =>
    el("li", { class: `care-item care-${r.status}`, dataset: { referral: r.id, kind: r.kind },
               text: line(r) })));
}

async function send(path, json, status, onChange) {
  try {
    put(await api(path, { method: "POST", json }));
    status.textContent = "";
    onChange();
  } catch (err) {
    status.textContent = `Not recorded: ${err.message}`;
  }
}

function stepControls(r, status, onChange) {
  const next = STEPS[r.status] || [];
  if (!next.length) return null;
  const reason = el("input", { name: "reason", maxlength: 2000, placeholder: "Why declined",
                               "aria-label": "Why declined" });
  const path = `/v1/care/${encodeURIComponent(r.id)}/steps`;
  return el("div", { class: "care-steps", dataset: { referral: r.id } },
    el("span", { text: `${r.provider_name}: ` }),
    next.filter((s) => s !== "declined").map((s) => el("button", {
      type: "button", dataset: { step: s },
      on: { click: () => send(path, { status: s }, status, onChange) } }, words(s))),
    reason,
    el("button", { type: "button", class: "danger", dataset: { step: "declined" }, on: { click: () => {
      if (!reason.value.trim()) { reason.focus(); return; }
      send(path, { status: "declined", reason: reason.value.trim() }, status, onChange);
    } } }, "Declined"));
}

// The Care form of a call's card: its open handoffs' steps, and a referral to a provider.
export function careForm(entry, onChange) {
  const wrap = el("form", { class: "act-form care", dataset: { form: "care" } });
  const status = el("div", { class: "care-status", role: "status" });
  load(entry.id, onChange, (err) => { status.textContent = err.message; });
  directory = directory || api("/v1/providers").then((d) => d.providers)
    .catch((err) => { directory = null; throw err; });
  const provider = el("select", { name: "provider_id", required: true, "aria-label": "Provider" },
    el("option", { value: "" }, "Provider…"));
  directory.then((list) => {
    for (const p of list) {
      const places = p.capacity === null ? "" : ` · ${p.capacity} places`;
      provider.append(el("option", { value: p.id },
        `${p.name} (${p.services.map(words).join(", ")})${places}`));
    }
  }).catch((err) => { status.textContent = `No directory: ${err.message}`; });
  const note = el("input", { name: "note", maxlength: 2000, placeholder: "What was agreed",
                             "aria-label": "Note" });
  wrap.append(...handoffs(entry.id).map((r) => stepControls(r, status, onChange)).filter(Boolean),
    provider, note, el("button", { type: "submit", class: "primary" }, "Refer"), status);
  wrap.addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (!provider.value) { provider.focus(); return; }
    send(`/v1/calls/${encodeURIComponent(entry.id)}/care`,
      { provider_id: provider.value, note: note.value.trim() || undefined }, status, onChange);
  });
  return wrap;
}
