// The recommended unit for a team call nobody has taken (GET /v1/calls/{id}/recommendation,
// routing/recommend.py): "Recommended: CALL-3 — 1.2 km, about 4 min, youth_trained;
// CALL-1 is nearer but on scene", with an Assign button that sends the usual status
// change. Units move, so the pages ask again when a `unit` message or the call's own
// message arrives, at most once per REFRESH_MS for all calls together.
import { api, el } from "./common.js";

const REFRESH_MS = 1500;

export class Recommendations {
  // onChange(): redraw; wanted(callId): the call is still shown unassigned.
  constructor({ onChange, wanted }) {
    this.onChange = onChange;
    this.wanted = wanted;
    this.found = new Map();    // call id -> recommendation answer, or {error}
    this.asking = new Set();   // call ids with a request out
    this.stale = new Set();    // call ids to ask again
    this.timer = null;
  }

  // A board message: a unit changed (every recommendation may), or a call did (its own).
  onMessage(msg) {
    if (msg.type === "unit" || msg.type === "snapshot") {
      for (const id of this.found.keys()) this.stale.add(id);
    } else if (msg.call_id) {
      this.stale.add(msg.call_id);
    }
    this.schedule();
  }

  schedule() {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      for (const id of this.stale) this.ask(id);
      this.stale.clear();
    }, REFRESH_MS);
  }

  // What element(callId) would show, as a key for pages that build a card only when it
  // changes (keyed.js): the answer as it stands, or that none has come yet.
  keyOf(callId) {
    return this.found.has(callId) ? JSON.stringify(this.found.get(callId)) : "-";
  }

  forget(callId) { this.found.delete(callId); this.stale.delete(callId); }

  async ask(callId) {
    if (!this.wanted(callId)) { this.forget(callId); return; }
    if (this.asking.has(callId)) { this.stale.add(callId); this.schedule(); return; }
    this.asking.add(callId);
    try {
      this.found.set(callId, await api(
        `/v1/calls/${encodeURIComponent(callId)}/recommendation`));
    } catch (err) {
      this.found.set(callId, { error: err.message });
    } finally {
      this.asking.delete(callId);
    }
    this.onChange();
  }

  // The call's recommendation as an element (asking for it the first time);
  // assign(unitId) is given where the reader may assign.
  element(callId, assign) {
    if (!this.found.has(callId)) {
      if (!this.asking.has(callId)) this.ask(callId);
      return el("div", { class: "recommend pending", text: "Finding the nearest unit…" });
    }
    const got = this.found.get(callId);
    if (got.error) {
      return el("div", { class: "recommend none", text: `No recommendation: ${got.error}` });
    }
    const r = got.recommendation;
    if (!r) return null;
    if (!r.unit_id) return el("div", { class: "recommend none", text: r.reason });
    return el("div", { class: "recommend", dataset: { unit: r.unit_id, basis: r.basis } },
      el("span", { class: "recommend-text", text: `Recommended: ${recommendedText(r)}` }),
      assign ? el("button", { type: "button", class: "primary assign-recommended",
                              on: { click: () => assign(r.unit_id) } },
        `Assign ${r.unit_id}`) : null);
  }
}

// "CALL-3: 1.2 km, …" as the pages say it: "CALL-3 — 1.2 km, …".
export function recommendedText(r) {
  const head = `${r.unit_id}: `;
  return r.reason.startsWith(head) ? `${r.unit_id} — ${r.reason.slice(head.length)}` : r.reason;
}
