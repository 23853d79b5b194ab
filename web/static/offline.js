// The field board without a connection: its writes (status changes, check-ins) go through
// a queue kept on the device (IndexedDB), each with an Idempotency-Key made when the member
// acts, and are sent in order, once, when the connection allows (at once when it does; on
// the browser's "online" event; on a retry with backoff; when the page opens). The server
// answers a retry with its first answer (service/lifecycle/field_keys.py), and an action
// the call has moved past with a 409 that says what happened, which the page shows.
//
// Also kept on the device: the board as it last stood (what the page holds in memory: the
// board stream's call summaries, never a call's details), so a board opened offline shows
// the calls it had; and the service worker's copy of the shell (sw.js). All of it is
// dropped on logout, and another person's on the first load of the board by someone else.
import { api, ApiError, beforeLogout, words } from "./common.js";

const DB_NAME = "liaison-field";
const ACTIONS = "actions";  // the queue, in order: {seq, key, callId, incident, kind, body, …}
const KEPT = "kept";        // "board": {user, at, seq, entries}
const FIRST_DELAY = 1000;
const MAX_DELAY = 60000;

let db = null;              // null: no IndexedDB here (the queue lives in memory only)
let queue = [];
let me = null;              // who acts: the logged-in user, or (offline) the board's last
let localSeq = 1;
let sending = false;
let timer = null;
let delay = FIRST_DELAY;
let keepTimer = null;
const hooks = { onChange() {}, onSent() {}, onRefused() {}, onDiscarded() {} };

function openDb() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB_NAME, 1);
    req.onupgradeneeded = () => {
      req.result.createObjectStore(ACTIONS, { keyPath: "seq", autoIncrement: true });
      req.result.createObjectStore(KEPT);
    };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
    req.onblocked = () => reject(new Error("IndexedDB blocked"));
  });
}

// One request in its own transaction; resolves once the transaction has committed.
function store(name, mode, fn) {
  if (!db) return Promise.resolve(undefined);
  return new Promise((resolve, reject) => {
    const tx = db.transaction(name, mode);
    const req = fn(tx.objectStore(name));
    let result;
    req.onsuccess = () => { result = req.result; };
    tx.oncomplete = () => resolve(result);
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error);
  });
}

function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export function hhmm(iso) {
  return new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

// "on scene", "check-in": what the member did, as the page says it.
export function label(item) {
  return item.kind === "checkin" ? "check-in" : words(item.body.status);
}

// Opens the queue and starts sending; registers the service worker. `user`: who is
// logged in (null offline or without sessions).
export async function startOffline({ user, ...handlers }) {
  Object.assign(hooks, handlers);
  try { db = await openDb(); } catch { db = null; }
  const kept = await keptBoard();
  me = user ? user.username : (kept && kept.user) || null;
  queue = (await store(ACTIONS, "readonly", (s) => s.getAll())) || [];
  if (user) {
    // Someone else's on this device: never sent as this person, never shown to them.
    const others = queue.filter((a) => a.user && a.user !== me);
    for (const a of others) await remove(a);
    if (others.length) hooks.onDiscarded(others);
    if (kept && kept.user && kept.user !== me) await store(KEPT, "readwrite", (s) => s.delete("board"));
  }
  beforeLogout.push(logoutHook);
  addEventListener("online", () => { delay = FIRST_DELAY; flush(); });
  registerWorker();
  hooks.onChange();
  flush();
}

async function registerWorker() {
  if (!("serviceWorker" in navigator)) return;  // not over plain http, except on localhost
  try {
    await navigator.serviceWorker.register("/sw.js", { scope: "/board" });
    const reg = await navigator.serviceWorker.ready;
    // What this page loaded before the worker controlled it: kept for the next time.
    const urls = [location.pathname,
      ...performance.getEntriesByType("resource").map((e) => e.name)];
    if (reg.active) reg.active.postMessage({ type: "keep", urls });
  } catch { /* without a worker the board works online as before */ }
}

// The member acted: queued (with its key and time) and sent as soon as possible.
export async function act(entry, kind, body) {
  const actedAt = new Date().toISOString();
  // A status change carries when it happened, so a change sent late keeps its time.
  const item = { key: newKey(), callId: entry.id, incident: entry.call.incident_id,
                 kind, user: me, actedAt,
                 body: kind === "status" ? { ...body, at: actedAt } : { ...body } };
  try {
    item.seq = await store(ACTIONS, "readwrite", (s) => s.add(item));
  } catch { /* full or refused: kept in memory for this page */ }
  if (item.seq === undefined) item.seq = `m${localSeq++}`;
  queue.push(item);
  hooks.onChange();
  flush();
  return item;
}

async function remove(item) {
  queue = queue.filter((a) => a !== item && a.key !== item.key);
  if (typeof item.seq === "number") {
    try { await store(ACTIONS, "readwrite", (s) => s.delete(item.seq)); } catch { /* gone */ }
  }
}

// Sends the queue in order, one at a time; stops at the first that must wait.
async function flush() {
  if (sending) return;
  sending = true;
  clearTimeout(timer);
  timer = null;
  try {
    if (queue.length && await someoneElse() === "later") {
      timer = setTimeout(flush, delay);
      delay = Math.min(delay * 2, MAX_DELAY);
      return;
    }
    while (queue.length) {
      const item = queue[0];
      if (await send(item) === "later") {
        timer = setTimeout(flush, delay);
        delay = Math.min(delay * 2, MAX_DELAY);
        return;
      }
      delay = FIRST_DELAY;
      await remove(item);
      hooks.onChange();
    }
  } finally {
    sending = false;
  }
}

// Another person may have logged in on this device since these changes were made (in
// another tab, after this one's session ended): theirs are never sent under that name.
// Drops them (the page says so); "later" when the service cannot be asked.
async function someoneElse() {
  let who;
  try {
    const res = await fetch("/v1/session", { credentials: "same-origin" });
    if (!res.ok) return "ok";  // 401: sending goes to the login page; or no sessions here
    who = (await res.json()).username;
  } catch { return "later"; }
  const others = queue.filter((a) => a.user && a.user !== who);
  for (const a of others) await remove(a);
  if (others.length) {
    me = who;
    hooks.onDiscarded(others);
    hooks.onChange();
  }
  return "ok";
}

function names(body, field) {
  return Boolean(body && Array.isArray(body.detail) && body.detail.some((d) => d.field === field));
}

async function send(item) {
  const path = `/v1/calls/${encodeURIComponent(item.callId)}/${item.kind}`;
  try {
    const answer = await api(path, { method: "POST", json: item.body,
                                     headers: { "Idempotency-Key": item.key } });
    hooks.onSent(item, answer);
    return "sent";
  } catch (err) {
    // No connection, or the service busy or away: the same request again later. (A 401
    // goes to the login page, and the queue waits for the same person to log in.)
    if (!(err instanceof ApiError) || err.status === 401 || err.status === 408
        || err.status === 429 || err.status >= 500) return "later";
    if (err.status === 422 && item.body.at && names(err.body, "at")) {
      // The device's clock runs ahead of the service's: the service's time will do.
      delete item.body.at;
      if (typeof item.seq === "number") await store(ACTIONS, "readwrite", (s) => s.put(item));
      return send(item);
    }
    hooks.onRefused(item, err, refusalText(item, err));
    return "refused";
  }
}

// "INC-1: CALL-2 (j.okafor) had already cleared this call at 10:40: your 'on scene' at
// 10:42 was not recorded."
export function refusalText(item, err) {
  const what = item.incident || "A call";
  if (err.status === 409 && err.body && err.body.error === "stale") {
    return `${what}: ${err.body.message}`;
  }
  return `${what}: your '${label(item)}' at ${hhmm(item.actedAt)} was not recorded: `
    + `${err.message}`;
}

// What waits to be sent for a call, in order.
export function pending(callId) { return queue.filter((a) => a.callId === callId); }

export function pendingCount() { return queue.length; }

// The status the call will have once its queue is sent (null: none waiting).
export function pendingStatus(callId) {
  const changes = pending(callId).filter((a) => a.kind === "status");
  return changes.length ? changes[changes.length - 1].body : null;
}

// The board as it stands (`snapshot()`: {seq, entries}), kept at most every second, for
// opening it offline.
export function keepBoard(snapshot) {
  if (keepTimer || !db) return;
  keepTimer = setTimeout(async () => {
    keepTimer = null;
    const board = { user: me, at: new Date().toISOString(), ...snapshot() };
    try { await store(KEPT, "readwrite", (s) => s.put(board, "board")); } catch { /* full */ }
  }, 1000);
}

export async function keptBoard() {
  try { return (await store(KEPT, "readonly", (s) => s.get("board"))) || null; } catch { return null; }
}

// Logging out drops what this device kept: the queue (asking first when something waits),
// the board, the shell's cache and the worker.
async function logoutHook() {
  if (queue.length && !confirm(`${queue.length} change${queue.length === 1 ? " has" : "s have"} `
      + "not been sent yet. Logging out discards them. Log out?")) return false;
  await forget();
  return true;
}

export async function forget() {
  queue = [];
  clearTimeout(keepTimer);
  keepTimer = null;
  try {
    await store(ACTIONS, "readwrite", (s) => s.clear());
    await store(KEPT, "readwrite", (s) => s.clear());
  } catch { /* nothing kept */ }
  try {
    for (const name of await caches.keys()) if (name.startsWith("liaison-")) await caches.delete(name);
    for (const reg of await navigator.serviceWorker.getRegistrations()) await reg.unregister();
  } catch { /* no worker */ }
}
