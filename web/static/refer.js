// Officer referral: one short form, sent as an officer_referral call.
import { $, api, clear, el, flash, layout, words } from "./common.js";
import { referralWaiting } from "./queue.js";

const KEY = "liaison.officer";

async function start() {
  const user = await layout();
  // An officer refers as themselves; a supervisor may name an officer.
  const own = user && user.role === "officer" ? (user.officer_id || user.username) : null;
  const officer = $("#officer");
  officer.value = own || localStorage.getItem(KEY) || "";
  if (own) officer.readOnly = true;
  const form = $("#refer-form");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!form.checkValidity()) {
      form.reportValidity();
      const missing = [...form.elements].filter((f) => f.willValidate && !f.validity.valid)
        .map((f) => (f.name === "consent" ? "consent" : f.name));
      flash($("#flash"), `Please fill in: ${missing.join(", ")}`, "error");
      return;
    }
    const button = $("#refer-submit");
    button.disabled = true;
    button.textContent = "Sending…";
    try {
      const body = {
        officer: officer.value.trim(), concern: $("#concern").value,
        who: $("#who-field").value.trim(), where: $("#where").value.trim(),
        what: $("#what").value.trim(), consent: $("#consent").checked,
        contact: $("#contact").value.trim() || null,
      };
      const res = await api("/v1/referrals", { method: "POST", json: body });
      localStorage.setItem(KEY, body.officer);
      const d = res.decision;
      flash($("#flash"), `Referral sent: ${res.incident_id}`, "ok");
      const result = $("#result");
      clear(result,
        el("p", { class: "dest-line" }, "Routed to ",
          el("strong", { class: `dest dest-${d.destination}`, text: words(d.destination) }),
          d.category ? ` (${words(d.category)})` : ""),
        referralWaiting(d) ? el("p", { class: "waiting-note", text: referralWaiting(d) }) : null,
        el("p", { class: "why", text: d.explanation }));
      result.hidden = false;
      for (const id of ["who-field", "where", "what", "contact"]) $(`#${id}`).value = "";
      $("#consent").checked = false;
    } catch (err) {
      flash($("#flash"), `Not sent: ${err.message}`, "error");
    } finally {
      button.disabled = false;
      button.textContent = "Send referral";
    }
  });
}

start();
