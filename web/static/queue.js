// Calls waiting for a team (issue 13, docs/programs.md): queued for a program's next free
// unit (`decision.queued`), or scheduled for the start of its next shift
// (`decision.deferred_until`). Shared by the board and the dispatcher console. A call
// leaves the queue when a later decision (a unit took it, its shift began, it fell back)
// says it no longer waits. Text only, as everywhere (common.js `el`).
import { age, api, clear, el, words } from "./common.js";

// Warn this long before a queued call falls back to the next program or police.
export const WARN_S = 5 * 60;

const BROWSER_ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone;

// The queue's clock (GET /v1/programs `at`: the CAD time of the event received last plus
// the time since; live, the wall clock). Ages and time left are counted on it, so a
// replay of old calls, or a computer whose clock is off, shows no call overdue that the
// service has not let fall back. Until it is read, and for those who may not read it,
// the browser's clock.
let offset = 0;
export function queueNow() { return Date.now() + offset; }

async function syncClock() {
  try {
    const sent = Date.now();
    const res = await api("/v1/programs");
    offset = Date.parse(res.at) - (sent + Date.now()) / 2;
  } catch { /* keep the last offset */ }
}

// Reads the queue's clock now and every 30 s (the feed may move it); `onSync` redraws.
export function startQueueClock(onSync) {
  const sync = () => syncClock().then(onSync);
  sync();
  setInterval(sync, 30000);
}

// "queued", "deferred", "due" (a deferred call whose shift has begun and no unit has
// taken yet: the day's first work), or null for a call that does not wait.
export function waitKind(d, now = queueNow()) {
  if (!d || d.destination === "police") return null;
  if (d.queued) return "queued";
  if (d.deferred_until) return Date.parse(d.deferred_until) <= now ? "due" : "deferred";
  return null;
}

export function deadline(q) { return Date.parse(q.since) + q.wait_limit_s * 1000; }

function zoneOk(zone) {
  if (!zone) return false;
  try { new Intl.DateTimeFormat("en-GB", { timeZone: zone }); return true; } catch { return false; }
}

// "08:00" in `zone` (the policy's, which every decision names), else the browser's.
function parts(iso, zone) {
  const tz = zoneOk(zone) ? zone : undefined;
  const f = (o) => new Intl.DateTimeFormat("en-GB", { ...o, timeZone: tz }).format(new Date(iso));
  return { hhmm: f({ hour: "2-digit", minute: "2-digit", hourCycle: "h23" }),
           day: f({ weekday: "short", day: "numeric", month: "short" }),
           zone: tz ? `${tz} time` : `this device's time, ${BROWSER_ZONE}` };
}

// "scheduled for 08:00 (America/New_York time)", the day added when it is not today.
export function scheduledText(iso, zone, now = queueNow()) {
  const at = parts(iso, zone);
  const today = parts(new Date(now).toISOString(), zone).day;
  return `scheduled for ${at.hhmm}${at.day === today ? "" : ` on ${at.day}`} (${at.zone})`;
}

// A program's name where the policy has several: a one-team policy's single program
// takes the policy's id (docs/programs.md), so its version reads "<id>@<n>".
export function programName(d) {
  const p = d && d.program;
  if (!p || !p.id || !p.name) return "";
  return String(d.policy_version || "").startsWith(`${p.id}@`) ? "" : p.name;
}

function leftText(ms) {
  const s = Math.round(Math.abs(ms) / 1000);
  const clockText = `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  if (ms <= 0) return `overdue by ${clockText}: falling back`;
  return ms < WARN_S * 1000 ? `falls back soon: in ${clockText}` : `falls back in ${clockText}`;
}

function leftState(ms) { return ms <= 0 ? "overdue" : ms < WARN_S * 1000 ? "soon" : "in-time"; }

// The queue as the service offers it (routing/queue.py offer_order): the most urgent
// first (lowest priority number, none last), the oldest among equals.
function offerOrder(a, b) {
  const pa = a.call.priority ?? Infinity, pb = b.call.priority ?? Infinity;
  if (pa !== pb) return pa - pb;
  return Date.parse(a.decision.queued.since) - Date.parse(b.decision.queued.since);
}

function byStart(a, b) {
  return Date.parse(a.decision.deferred_until) - Date.parse(b.decision.deferred_until)
    || Date.parse(a.call.opened_at) - Date.parse(b.call.opened_at);
}

function card(entry, kind, position, now) {
  const c = entry.call, d = entry.decision;
  const since = kind === "queued" ? d.queued.since : c.opened_at;
  const name = programName(d);
  let line;
  if (kind === "queued") {
    const left = deadline(d.queued) - now;
    line = el("div", { class: "q-line" },
      el("span", { class: "q-position", text: `position ${position}` }),
      el("span", { class: `q-left ${leftState(left)}`, role: "status",
                   dataset: { deadline: String(deadline(d.queued)) }, text: leftText(left) }),
      el("span", { class: "q-limit", text: `limit ${Math.round(d.queued.wait_limit_s / 60)} min` }));
  } else {
    const text = scheduledText(d.deferred_until, d.program && d.program.timezone, now);
    line = el("div", { class: "q-line" },
      el("span", { class: "q-scheduled", dataset: { at: d.deferred_until },
                   text: kind === "due" ? `Today's first work: was ${text}` : text }));
  }
  const state = kind === "queued" ? ` ${leftState(deadline(d.queued) - now)}` : "";
  return el("li", { class: `card waiting ${kind}${state}`, dataset: { callId: entry.id, wait: kind } },
    el("div", { class: "card-head" },
      el("span", { class: "cat", text: words(d.category) || "uncategorised" }),
      el("span", { class: "q-age", dataset: { since }, title: "waiting for",
                   text: age(since, now) })),
    el("div", { class: "nature", text: `${c.nature_code || ""} ${c.nature_text || ""}`.trim() }),
    el("div", { class: "where", text: [c.address, c.district].filter(Boolean).join(" · ") || "no location" }),
    line,
    // Under its program's heading, but for the day's first work (all programs at once).
    name && kind === "due" ? el("div", { class: "q-program", text: `for ${name}` }) : null,
    el("span", { class: "inc", text: c.incident_id }),
    el("p", { class: "why", text: d.explanation || "" }));
}

// Draws the waiting calls in `box` (a section with an ol-free div `.queue-list` and a
// `.count`): the day's first work (deferred calls now due) on top, then each program's
// queue in offer order followed by what is scheduled for it. Hidden when none wait.
export function drawQueue(box, entries, now = queueNow()) {
  const waiting = entries.map((e) => [e, waitKind(e.decision, now)]).filter(([, k]) => k);
  const due = waiting.filter(([, k]) => k === "due").map(([e]) => e).sort(byStart);
  const programs = new Map();
  for (const [e, k] of waiting) {
    if (k === "due") continue;
    const id = (e.decision.program && e.decision.program.id) || "";
    if (!programs.has(id)) programs.set(id, { name: programName(e.decision), queued: [], deferred: [] });
    programs.get(id)[k].push(e);
  }
  const groups = [];
  if (due.length) {
    groups.push(el("section", { class: "q-group q-first" },
      el("h3", { text: "Today's first work" }),
      el("ol", { class: "cards" }, due.map((e) => card(e, "due", 0, now)))));
  }
  for (const [id, p] of programs) {
    p.queued.sort(offerOrder);
    p.deferred.sort(byStart);
    groups.push(el("section", { class: "q-group", dataset: { program: id } },
      p.name ? el("h3", { text: p.name }) : null,
      el("ol", { class: "cards" }, p.queued.map((e, i) => card(e, "queued", i + 1, now)),
        p.deferred.map((e) => card(e, "deferred", 0, now)))));
  }
  clear(box.querySelector(".queue-list"), groups);
  box.querySelector(".count").textContent = String(waiting.length);
  box.hidden = waiting.length === 0;
}

// Every second: ages and time left, and the warning as the limit nears. Returns true when
// a scheduled call has become due (the caller redraws, to move it to the top).
export function tickQueue(root, now = queueNow()) {
  for (const span of root.querySelectorAll(".q-age[data-since]")) {
    span.textContent = age(span.dataset.since, now);
  }
  for (const span of root.querySelectorAll(".q-left[data-deadline]")) {
    const left = Number(span.dataset.deadline) - now;
    const state = leftState(left);
    span.textContent = leftText(left);
    span.className = `q-left ${state}`;
    const li = span.closest("li.waiting");
    if (li) {
      li.classList.toggle("soon", state === "soon");
      li.classList.toggle("overdue", state === "overdue");
    }
  }
  return [...root.querySelectorAll('li[data-wait="deferred"] .q-scheduled[data-at]')]
    .some((s) => Date.parse(s.dataset.at) <= now);
}

// One line for a call's card elsewhere (the console's list, an officer's referral).
export function waitingText(d, now = queueNow()) {
  const kind = waitKind(d, now);
  if (!kind) return "";
  const name = programName(d);
  if (kind === "queued") return `Queued for ${name || "the team"}: waiting for a free unit`;
  const text = scheduledText(d.deferred_until, d.program && d.program.timezone, now);
  return kind === "due" ? `Due now for ${name || "the team"}: was ${text}`
    : `${name ? `${name}: ` : ""}${text[0].toUpperCase()}${text.slice(1)}`;
}

// What an officer reads on a referral that waits: "queued for the team" or "scheduled for
// 08:00 (America/New_York time)". `w`: {destination, queued, deferred_until, program}.
export function referralWaiting(w, now = queueNow()) {
  const kind = waitKind(w, now);
  if (kind === "queued") return "queued for the team";
  if (!kind) return "";
  const text = scheduledText(w.deferred_until, w.program && w.program.timezone, now);
  return kind === "due" ? `the team's first work now (was ${text})` : text;
}
