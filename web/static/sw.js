// The field board's service worker (served as /sw.js, registered by offline.js with the
// scope /board): keeps the board's shell (the page, its scripts, styles and vendor files)
// so /board opens without a connection after one visit.
//
// Network first: online, the board always runs today's files (and the copy is renewed);
// the cache answers only when the network does not (or is too slow to be of use). Only
// the shell is kept: the API (/v1/…) and the board's websocket never pass through here
// and nothing with call data is cached. offline.js asks for the cache to be dropped on
// logout ("forget").

const CACHE = "liaison-board-shell-v1";
// What the board needs to open; what else it loads (vendor files, modules other pages'
// helpers add) is kept as the board loads it (offline.js sends the list: "keep").
const SHELL = ["/board", "/static/board.js", "/static/common.js", "/static/queue.js",
  "/static/offline.js", "/static/liaison.css", "/static/favicon.svg"];
const SLOW_MS = 4000;  // a network this slow loses to the cached copy (it still renews it)

self.addEventListener("install", (ev) => {
  ev.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (ev) => {
  ev.waitUntil((async () => {
    for (const name of await caches.keys()) if (name !== CACHE) await caches.delete(name);
    await self.clients.claim();
  })());
});

function isShell(url) {
  return url.origin === self.location.origin
    && (url.pathname === "/board" || url.pathname.startsWith("/static/"));
}

// One copy per file: the query (/board?call=…) does not make another.
function keyOf(url) { return url.origin + url.pathname; }

async function fromNetwork(request, key) {
  const res = await fetch(request);
  if (res.ok && res.type === "basic") {
    const copy = res.clone();
    caches.open(CACHE).then((c) => c.put(key, copy)).catch(() => {});
  }
  return res;
}

async function networkFirst(request, url) {
  const key = keyOf(url);
  const network = fromNetwork(request, key);
  const slow = new Promise((resolve) => setTimeout(resolve, SLOW_MS, null));
  try {
    const first = await Promise.race([network, slow]);
    if (first) return first;
    const cached = await caches.match(key);
    return cached || await network;
  } catch (err) {
    const cached = await caches.match(key);
    if (cached) return cached;
    throw err;
  }
}

self.addEventListener("fetch", (ev) => {
  const request = ev.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (!isShell(url)) return;  // the API and everything else: the network, never kept
  ev.respondWith(networkFirst(request, url));
});

self.addEventListener("message", (ev) => {
  const msg = ev.data || {};
  if (msg.type === "keep" && Array.isArray(msg.urls)) {
    // What the board loaded before this worker controlled it (its first visit).
    const urls = msg.urls.map((u) => new URL(u, self.location.origin)).filter(isShell);
    ev.waitUntil(caches.open(CACHE).then((c) => Promise.all(urls.map(async (url) => {
      if (await c.match(keyOf(url))) return;
      const res = await fetch(url, { credentials: "same-origin" });
      if (res.ok) await c.put(keyOf(url), res);
    }))).catch(() => {}));
  } else if (msg.type === "forget") {
    ev.waitUntil(caches.delete(CACHE));
  }
});
