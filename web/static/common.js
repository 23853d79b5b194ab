// Shared by every page: the API client (401 -> /login), safe DOM building (text only,
// never innerHTML with data), the session badge, and the board stream.

// What the pages share with the service, drawn into every page by api/layout.py: where
// each role lands, dispositions, the team's statuses in order and the next ones each
// allows, the statuses a unit checks in from, destinations, and who may act.
export const SITE = JSON.parse(document.body.dataset.site || "{}");

export class ApiError extends Error {
  constructor(status, body) {
    super(describe(body) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

function describe(body) {
  if (!body || typeof body !== "object") return typeof body === "string" ? body : "";
  const parts = [];
  if (body.message) parts.push(body.message);
  for (const d of body.detail || []) {
    if (d && d.field) parts.push(`${d.field}: ${d.reason}`);
  }
  for (const e of body.errors || []) {
    if (e && e.path !== undefined) parts.push(`${e.path}: ${e.reason}`);
  }
  if (body.allowed && body.allowed.length) parts.push(`allowed: ${body.allowed.join(", ")}`);
  return parts.join("; ");
}

export function loginUrl() {
  const next = location.pathname + location.search;
  return `/login?next=${encodeURIComponent(next)}`;
}

export function toLogin() {
  if (location.pathname !== "/login") location.assign(loginUrl());
}

// fetch the API; JSON in and out. A 401 sends the browser to /login?next=<this page>.
export async function api(path, { method = "GET", json, body, headers = {}, raw = false } = {}) {
  const opts = { method, credentials: "same-origin", headers: { ...headers } };
  if (json !== undefined) {
    opts.body = JSON.stringify(json);
    opts.headers["content-type"] = "application/json";
  } else if (body !== undefined) {
    opts.body = body;
  }
  const res = await fetch(path, opts);
  if (res.status === 401 && !path.startsWith("/v1/session")) {
    toLogin();
    throw new ApiError(401, { message: "not logged in" });
  }
  const text = await res.text();
  let data = text;
  if (!raw) {
    try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

// el("div", {class: "x", dataset: {id: 1}, on: {click: f}}, "text", child, ...)
// Strings become text nodes: call data is never parsed as HTML.
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (k === "on") for (const [ev, fn] of Object.entries(v)) node.addEventListener(ev, fn);
    else if (k in node && typeof v !== "string") node[k] = v;
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

export function $(sel, root = document) { return root.querySelector(sel); }

export function age(iso, now = Date.now()) {
  const s = Math.max(0, Math.floor((now - Date.parse(iso)) / 1000));
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60), sec = s % 60;
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${String(m).padStart(2, "0")}m`;
  return `${m}:${String(sec).padStart(2, "0")}`;
}

export function words(s) { return s ? String(s).replaceAll("_", " ") : ""; }

// "Was this the right responder?": the optional one-choice answer at clearing and at an
// override (the rule scorecard counts it); empty means not answered.
export function rightResponder() {
  return el("select", { name: "right_responder", "aria-label": "Right responder?" },
    [["", "Right responder? (optional)"], ["yes", "Right responder: yes"],
     ["no", "Right responder: no"], ["unsure", "Right responder: unsure"]]
      .map(([v, text]) => el("option", { value: v }, text)));
}

export function clock(iso) {
  if (!iso) return "";
  const t = new Date(iso);
  return t.toLocaleString([], { month: "short", day: "numeric", hour: "2-digit",
                                minute: "2-digit" });
}

export function flash(node, message, kind = "ok") {
  clear(node, message);
  node.className = `flash ${kind}`;
  node.hidden = !message;
}

// The logged-in user, or null when the service has no sessions (before authentication
// is switched on). A 401 sends the browser to /login.
let sessionPromise = null;
export function session() {
  if (!sessionPromise) {
    sessionPromise = (async () => {
      try {
        const res = await fetch("/v1/session", { credentials: "same-origin" });
        if (res.status === 401) { toLogin(); return null; }
        if (!res.ok) return null;
        return await res.json();
      } catch {
        sessionPromise = null;  // no connection (a board opened offline): ask again later
        return null;
      }
    })();
  }
  return sessionPromise;
}

// Hides the pages this role may not open from the nav (each link's data-roles, from
// api/layout.py; the API decides, this only tidies the nav) and shows who is logged in,
// with a log-out button.
export async function layout() {
  const who = $("#who");
  const user = await session();
  if (user) {
    for (const a of document.querySelectorAll("nav.site a[data-roles]")) {
      const roles = a.dataset.roles.split(" ").filter(Boolean);
      if (roles.length && !roles.includes(user.role)) a.hidden = true;
    }
  }
  if (!who) return user;
  if (user) {
    clear(who, el("span", { class: "user", text: `${user.username} (${words(user.role)})` }),
      el("button", { type: "button", class: "link", on: { click: logout } }, "Log out"));
  } else {
    clear(who);
  }
  return user;
}

// Run before logging out (offline.js: drop what the board kept on this device); a hook
// answering false keeps the person logged in.
export const beforeLogout = [];

async function logout() {
  for (const hook of beforeLogout) {
    try { if ((await hook()) === false) return; } catch { /* log out all the same */ }
  }
  try { await fetch("/v1/session", { method: "DELETE", credentials: "same-origin" }); }
  finally { location.assign("/login"); }
}

// Agencies (issue 17): a regional person with several agencies picks one (or every one)
// on the board, the console, the figures and the policy page; the choice is the page
// URL's `?agency=`, so it is kept on reload and in a link. A person of one agency has no
// choice: the service gives them their agency's only.
export function chosenAgency() {
  return new URLSearchParams(location.search).get("agency") || "";
}

// `path` with the chosen agency, for the routes that take one (policies, what-if).
export function withAgency(path) {
  const agency = chosenAgency();
  if (!agency) return path;
  return `${path}${path.includes("?") ? "&" : "?"}agency=${encodeURIComponent(agency)}`;
}

// The agencies this person sees (GET /v1/agencies; none if they may not list them), and,
// when there are several, a labelled choice drawn into `box` that reloads the page with
// `?agency=` (`every`: whether "every agency" is a choice; the policy page's is not).
export async function agencyChoice(box, { every = true } = {}) {
  let agencies = [];
  try { agencies = await api("/v1/agencies"); } catch { return []; }
  if (!box || agencies.length < 2) return agencies;
  // No choice yet: every agency, or (one agency at a time) the default agency's, as the
  // service takes it.
  const chosen = chosenAgency() || (every ? "" : "default");
  const select = el("select", { id: "agency-select", name: "agency" },
    every ? el("option", { value: "", text: "Every agency" }) : null,
    ...agencies.map((a) => el("option", { value: a.id, text: `${a.name} (${a.id})`,
                                          selected: a.id === chosen })));
  select.addEventListener("change", () => {
    const url = new URL(location.href);
    if (select.value) url.searchParams.set("agency", select.value);
    else url.searchParams.delete("agency");
    location.assign(url.toString());
  });
  clear(box, el("label", { for: "agency-select" }, "Agency "), select);
  box.hidden = false;
  return agencies;
}

// A card's agency, when the person sees several: its id, or "no agency" (a call no
// agency claimed).
export function agencyTag(call, agencies) {
  if (!agencies || agencies.length < 2 || !call) return null;
  return el("span", { class: "agency-tag", text: call.agency_id || "no agency" });
}

// The board's websocket: replay after the last seq seen, then live. Reconnects with
// backoff and resumes with ?after=<last seq>, so nothing is missed or doubled. The
// replay holds only the calls live now (scope=live: open, recently changed, or with a
// follow-up to do), so opening a page does not replay the whole history.
export class BoardStream {
  // onCaughtUp: after the snapshot, which follows the whole replay: every call live now
  // has been given to onMessage.
  // caughtUp: true from the snapshot until the socket closes (a new one replays again).
  constructor({ onMessage, onState, onCaughtUp, after = 0 }) {
    this.onMessage = onMessage;
    const state = onState || (() => {});
    this.onState = (s) => { this.caughtUp = false; markCaughtUp(false); state(s); };
    this.caughtUp = false;
    this.onCaughtUp = onCaughtUp || (() => {});
    this.last = after;
    this.delay = 500;
    this.ws = null;
    this.stopped = false;
    this.timer = null;
  }

  start() { this.connect(); return this; }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close();
  }

  connect() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(
      `${proto}//${location.host}/v1/board?after=${this.last}&scope=live&snapshot=true`
      + (chosenAgency() ? `&agency=${encodeURIComponent(chosenAgency())}` : ""));
    this.ws = ws;
    let opened = false;
    ws.addEventListener("open", () => {
      opened = true;
      this.delay = 500;
      this.onState("online");
    });
    ws.addEventListener("message", (ev) => {
      let msg;
      try { msg = JSON.parse(ev.data); } catch { return; }
      if (msg.type === "resync") {
        // Fell behind: resume from where the server says, after this socket closes.
        if (typeof msg.seq === "number") this.last = Math.max(this.last, msg.seq);
        return;
      }
      // The roster as it is now, after the replay (no seq: it is state, not a change).
      if (msg.type === "snapshot") {
        this.onMessage(msg);
        this.caughtUp = true;
        this.onCaughtUp();
        return;
      }
      if (typeof msg.seq !== "number" || msg.seq <= this.last) return;  // never twice
      this.last = msg.seq;
      this.onMessage(msg);
    });
    ws.addEventListener("close", (ev) => {
      if (this.ws !== ws || this.stopped) return;
      if (ev.code === 4404) {  // another agency's board (a person of one agency): not theirs
        this.stop();
        this.onState("forbidden");
        return;
      }
      this.onState("offline");
      if (!opened || ev.code === 4401 || ev.code === 1008) {
        // Refused, or the session ended: ask who we are; a 401 goes to /login.
        fetch("/v1/session", { credentials: "same-origin" })
          .then((r) => {
            if (r.status === 401) toLogin();
            // Up and logged in, yet refused: this role may not follow the board.
            else if (r.ok && ev.code === 4403) { this.stop(); this.onState("forbidden"); }
          }).catch(() => {});
      }
      this.timer = setTimeout(() => this.connect(), this.delay);
      this.delay = Math.min(this.delay * 2, 8000) * (0.8 + Math.random() * 0.4);
    });
    ws.addEventListener("error", () => { /* the close handler reconnects */ });
  }
}

// #conn says the replay since this socket opened is drawn (data-caught-up): a page calls
// this at the end of each draw with its stream's caughtUp, so whoever waits on the page
// (a test clicking a card) waits for a fact, not a while.
export function markCaughtUp(caughtUp) {
  const badge = $("#conn");
  if (badge) badge.toggleAttribute("data-caught-up", caughtUp);
}

// The connection badge in the header: "live" or "offline — reconnecting".
export function connectionBadge(state) {
  const badge = $("#conn");
  if (!badge) return;
  badge.dataset.state = state;
  badge.textContent = state === "online" ? "live"
    : state === "forbidden" ? "not allowed for your role" : "offline, reconnecting";
  document.body.classList.toggle("is-offline", state !== "online");
}

// The call state a board keeps: one entry per call, from decision / update / status
// messages. Returns the entry, or null when the call left (closed).
export function foldMessage(calls, msg) {
  const id = msg.call_id;
  if (!id || String(msg.type).startsWith("follow_up_")) return null;  // about a follow-up
  let entry = calls.get(id);
  if (msg.type === "call_closed") {
    if (entry) entry.closed = true;
    if (entry && msg.call) entry.call = msg.call;
    if (entry && msg.decision) entry.decision = msg.decision;
    return entry || null;
  }
  if (!entry) {
    if (!msg.call) return null;
    entry = { id, call: msg.call, decision: msg.decision || null, seq: msg.seq,
              firstSeq: msg.seq, closed: false, notes: [], backup: null, history: null,
              checkin: null };
    calls.set(id, entry);
  }
  if (msg.history) entry.history = msg.history;  // repeat contact, on a new call's decision
  if (msg.decision && msg.decision.backup) {
    const b = msg.decision.backup;
    entry.backup = { at: b.at, reason: b.reason || "", by: b.by,
                     withheld: isWithheld(msg.decision, "backup_reason") };
  }
  if (msg.type === "checkin_missed" || msg.type === "checkin_escalated") {
    entry.checkin = { missed: msg.missed, level: msg.level, dueAt: msg.due_at,
                      escalateTo: msg.escalate_to || null, at: msg.at };
  } else if (msg.type === "checkin") {
    entry.checkin = null;
  }
  entry.seq = msg.seq;
  if (msg.call) entry.call = msg.call;
  if (msg.decision) entry.decision = msg.decision;
  if (msg.type === "status") {
    entry.call = { ...entry.call, team_status: msg.status, unit: msg.unit,
                   disposition: msg.disposition };
    if (msg.status === "backup_requested" && !entry.backup) {
      entry.backup = { at: msg.at, reason: msg.note || msg.reason || "", by: msg.by,
                       withheld: isWithheld(msg, "notes") };
    }
    if (msg.status !== "on_scene" && msg.status !== "backup_requested") entry.checkin = null;
    if (msg.note) entry.notes.push({ at: msg.at, status: msg.status, note: msg.note });
  }
  if (entry.call && entry.call.closed_at) entry.closed = true;
  return entry;
}

// What the server held back from this reader (service/calls/visibility.py): a message, a
// decision or a call names it in `withheld`.
export function isWithheld(obj, kind) {
  return Boolean(obj && Array.isArray(obj.withheld) && obj.withheld.includes(kind));
}

// The backup request's reason as a card shows it.
export function backupReasonText(backup) {
  if (backup.withheld) return "(reason withheld for your role)";
  return backup.reason || "(no reason given)";
}

// "Seen before: 3 calls about this person; last: referred to services, 'found a bed'".
export function historyText(h) {
  if (!h || !h.count) return "";
  const about = h.by === "person" ? "about this person" : "at this address";
  const last = [h.last_disposition ? words(h.last_disposition) : "", h.last_outcome || ""]
    .filter(Boolean).join(": ");
  return `Seen before: ${h.count}${h.more ? "+" : ""} call${h.count === 1 ? "" : "s"} ${about}`
    + (last ? `; last: ${last}` : "");
}

export function checkinText(c) {
  if (!c) return "";
  return c.level === "escalation"
    ? `Check-in missed ${c.missed} times: escalated${c.escalateTo ? ` to ${words(c.escalateTo)}` : ""}`
    : "Check-in missed: call the unit";
}

// The full call (narrative included) for a details panel, rendered as text.
export async function callDetails(id) {
  const data = await api(`/v1/calls/${encodeURIComponent(id)}`);
  const c = data.call;
  const withheld = new Set(c.withheld || []);
  const shown = (key, value, none = "(none)") =>
    withheld.has(key) ? "withheld for your role" : (value || none);
  const rows = [
    ["Incident", c.incident_id], ["Channel", words(c.channel)],
    ["Nature", `${c.nature_code || ""} ${c.nature_text || ""}`.trim()],
    ["Narrative", shown("narrative", c.narrative)],
    c.person || withheld.has("person")
      ? ["Person", shown("person", c.person && [c.person.name, c.person.phone,
        c.person.age ? `age ${c.person.age}` : ""].filter(Boolean).join(", "))] : null,
    c.referral_contact || withheld.has("referral_contact")
      ? ["Contact", shown("referral_contact", c.referral_contact)] : null,
    c.backup_reason || withheld.has("backup_reason")
      ? ["Backup reason", shown("backup_reason", c.backup_reason)] : null,
    data.history ? ["Seen before", historyText(data.history)] : null,
    ["Location", [c.location.address, c.location.district].filter(Boolean).join(", ")],
    ["Flags", (c.flags || []).join(", ") || "none"],
    ["Decisions", data.decisions.map((d) => `${d.cause}: ${d.decision.destination}`)
      .join(" → ")],
  ];
  return el("dl", { class: "details" },
    rows.filter(Boolean).map(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })]));
}
