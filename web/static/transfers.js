// The crisis centre's transfers: the queue of calls 911 offered to it, and the steps a
// counsellor records (accept or decline an offer; complete or return an accepted call).
// Polled every 5 seconds: the board's stream carries every call, and a centre may read
// only those transferred to it (SECURITY.md), so it reads GET /v1/transfers instead.
import { careForm, careLines } from "./care.js";
import { $, api, clear, clock, el, flash, layout, SITE, words } from "./common.js";

const POLL_MS = 5000;
const OPEN = new Set(["offered", "accepted"]);
const LABEL = { accepted: "Accept", declined: "Decline", completed: "Complete",
                returned: "Return to 911" };
const NEEDS_REASON = new Set(["declined", "returned"]);
const reasons = new Map();  // transfer id -> the reason being typed, kept across refreshes
// A counsellor hands the person on (the warm line, a provider: care.js) once it has the
// call, and after; the Care form stays open across refreshes.
const CARE = new Set(["accepted", "completed"]);
const caring = new Set();  // transfer ids whose Care form is open
let user = null;
let shown = "";  // the last list drawn, so a refresh that changes nothing redraws nothing

function mayAct() { return !user || SITE.may.transfer.includes(user.role); }

async function record(t, status) {
  const reason = (reasons.get(t.id) || "").trim();
  if (NEEDS_REASON.has(status) && reason.length < 3) {
    flash($("#flash"), "Say why (3 characters or more): the call is decided again with it.",
      "error");
    return;
  }
  try {
    const res = await api(`/v1/transfers/${encodeURIComponent(t.id)}/steps`, {
      method: "POST", json: NEEDS_REASON.has(status) ? { status, reason } : { status } });
    reasons.delete(t.id);
    const again = res.decision ? ` The call now goes to ${words(res.decision.destination)}.` : "";
    flash($("#flash"), `${t.call.incident_id}: ${words(status)}.${again}`, "ok");
    shown = "";
    await load();
  } catch (err) {
    flash($("#flash"), `Could not record: ${err.message}`, "error");
  }
}

function actions(t) {
  if (!mayAct() || !t.allowed_next.length) return null;
  const reason = el("input", { name: "reason", maxlength: "2000", value: reasons.get(t.id) || "",
    placeholder: "Reason (to decline or return)", "aria-label": "Reason",
    on: { input: (ev) => reasons.set(t.id, ev.target.value) } });
  return el("div", { class: "actions" },
    t.allowed_next.some((s) => NEEDS_REASON.has(s)) ? reason : null,
    t.allowed_next.map((s) => el("button", { type: "button", dataset: { step: s },
      text: LABEL[s] || words(s), on: { click: () => record(t, s) } })));
}

function redraw() { shown = ""; load(); }

function care(t) {
  if (!mayAct() || !CARE.has(t.status)) return [];
  const open = caring.has(t.id);
  return [
    careLines(t.call_id, redraw),
    el("button", { type: "button", class: "link", "aria-expanded": String(open),
      dataset: { care: t.id }, on: { click: () => {
        if (open) caring.delete(t.id); else caring.add(t.id);
        redraw();
      } } }, open ? "Close care" : "Warm line or care…"),
    open ? careForm({ id: t.call_id }, redraw) : null,
  ];
}

function card(t) {
  const c = t.call || {};
  const person = c.person || {};
  const where = c.location ? [c.location.address, c.location.district].filter(Boolean).join(" · ") : "";
  const last = t.steps[t.steps.length - 1];
  return el("li", { class: "card dest-card-crisis_center", dataset: { transferId: t.id, status: t.status } },
    el("div", { class: "card-head" },
      el("span", { class: `status status-${t.status}`, text: words(t.status) }),
      el("span", { class: "time", text: `offered ${clock(t.offered_at)}` })),
    el("div", { class: "nature", text: `${c.nature_code || ""} ${c.nature_text || ""}`.trim() }),
    where ? el("div", { class: "where", text: where }) : null,
    person.name || person.phone ? el("div", { class: "person",
      text: `Callback: ${[person.name, person.phone].filter(Boolean).join(", ")}` }) : null,
    c.narrative ? el("div", { class: "narrative", text: c.narrative }) : null,
    el("div", { class: "meta" },
      el("span", { class: "dest dest-crisis_center", text: "988 transfer" }),
      el("span", { class: "inc", text: c.incident_id || t.call_id })),
    last && last.status !== "offered" ? el("div", { class: "step",
      text: `${words(last.status)} by ${last.by} ${clock(last.at)}${last.reason ? `: ${last.reason}` : ""}` }) : null,
    actions(t), ...care(t));
}

async function load() {
  const want = $("#status").value;
  const query = want && want !== "open" ? `?status=${encodeURIComponent(want)}` : "";
  try {
    const data = await api(`/v1/transfers${query}`);
    const list = want === "open" ? data.transfers.filter((t) => OPEN.has(t.status)) : data.transfers;
    const text = JSON.stringify(list);
    if (text === shown) return;
    shown = text;
    // A reason being typed keeps its focus across a redraw.
    const focused = document.activeElement && document.activeElement.name === "reason"
      ? document.activeElement.closest("li").dataset.transferId : null;
    clear($("#transfers"), list.length ? list.map(card)
      : el("li", { class: "empty-note", text: "No transfers." }));
    if (focused) {
      const input = $(`#transfers li[data-transfer-id="${CSS.escape(focused)}"] input[name=reason]`);
      if (input) input.focus();
    }
  } catch (err) {
    flash($("#flash"), `Could not load: ${err.message}`, "error");
  }
}

async function start() {
  user = await layout();
  $("#status").addEventListener("change", () => { shown = ""; load(); });
  await load();
  setInterval(() => { if (!document.hidden) load(); }, POLL_MS);
}

start();
