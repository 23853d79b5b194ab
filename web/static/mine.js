// An officer's referrals: what became of the people they referred.
import { $, api, clear, clock, el, flash, isWithheld, layout, words } from "./common.js";
import { referralWaiting } from "./queue.js";

const KEY = "liaison.officer";

function card(r) {
  // Waiting for a unit or a shift: said instead of the team's status (nobody has it yet).
  const waiting = r.closed_at ? "" : referralWaiting(r);
  return el("li", { class: `card dest-card-${r.destination}`, dataset: { callId: r.call_id } },
    el("div", { class: "card-head" },
      el("span", { class: `status${waiting ? " waiting" : ""}`, text: waiting || words(r.status) }),
      el("span", { class: "time", text: clock(r.opened_at) })),
    el("div", { class: "nature", text: r.nature_text }),
    el("div", { class: "where", text: r.address || "" }),
    el("div", { class: "meta" },
      el("span", { class: `dest dest-${r.destination}`, text: words(r.destination) }),
      r.category ? el("span", { class: "cat", text: words(r.category) }) : null,
      r.unit ? el("span", { class: "unit-tag", text: r.unit }) : null,
      el("span", { class: "inc", text: r.incident_id })),
    r.disposition ? el("div", { class: "outcome",
      text: `Outcome: ${words(r.disposition)}${r.outcome ? ` · ${r.outcome}`
        : isWithheld(r, "outcome") ? " · the team's notes stay with the team" : ""}` })
      : el("div", { class: "outcome pending", text: "Outcome: not yet" }),
    r.care && r.care.connected
      ? el("div", { class: "care reached", text: `Care reached: ${r.care.services.map(words).join(", ")}` })
      : null);
}

async function load(officer) {
  try {
    const data = await api(`/v1/referrals?officer=${encodeURIComponent(officer)}`);
    localStorage.setItem(KEY, officer);
    clear($("#referrals"), data.referrals.length ? data.referrals.map(card)
      : el("li", { class: "empty-note", text: "No referrals yet." }));
    flash($("#flash"), "");
  } catch (err) {
    flash($("#flash"), `Could not load: ${err.message}`, "error");
  }
}

async function start() {
  const user = await layout();
  // An officer refers as themselves; a supervisor may name an officer.
  const own = user && user.role === "officer" ? (user.officer_id || user.username) : null;
  const field = $("#officer");
  field.value = own || new URLSearchParams(location.search).get("officer")
    || localStorage.getItem(KEY) || "";
  if (own) field.readOnly = true;
  $("#mine-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (field.value.trim()) load(field.value.trim());
  });
  if (field.value) load(field.value.trim());
  setInterval(() => { if (field.value.trim() && !document.hidden) load(field.value.trim()); },
    15000);
}

start();
