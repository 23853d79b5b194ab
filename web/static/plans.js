// A call's crisis plans and premise cautions, for the team that goes (issue 16): asked
// for when a card's details are opened, never carried by board messages nor kept on the
// device; the service audits each look. Roles without need are not offered them
// (SITE.may.plans, from service/calls/visibility.py SEES_PLANS), and are refused if they ask.
import { api, clear, clock, el, SITE } from "./common.js";

const asked = new Map();  // call id -> promise of its plans element, while details are open

export function mayReadPlans(user) { return !user || SITE.may.plans.includes(user.role); }

// Details closed: the next opening asks again (and is audited again).
export function forgetPlans(callId) { asked.delete(callId); }

function row(k, v) { return v ? [el("dt", { text: k }), el("dd", { text: v })] : null; }

function planElement(p) {
  const c = p.consent;
  return el("div", { class: "plan", dataset: { planId: p.id } },
    el("h4", { text: `Crisis plan: ${p.person}` }),
    el("dl", { class: "details" },
      row("Helps", p.helps), row("Avoid", p.avoid), row("Who to call", p.contacts),
      row("Phone", p.phone), row("Address", p.address),
      row("Consent", `${c.given_by}, ${c.how}, ${clock(c.at)}`),
      row("Expires", clock(p.expires_at))));
}

async function load(callId) {
  const data = await api(`/v1/calls/${encodeURIComponent(callId)}/plans`);
  if (!data.plans.length && !data.cautions.length) {
    return el("p", { class: "plans-none", text: "No crisis plan or caution here." });
  }
  return el("div", {},
    data.cautions.map((c) => el("div", { class: "caution", dataset: { cautionId: c.id } },
      el("strong", { text: "Caution: " }), c.text)),
    data.plans.map(planElement));
}

// The plans box of an open card (the card is drawn again on each message about the call:
// one request per opening, whatever is drawn).
export function plansBox(callId) {
  const box = el("section", { class: "plans", "aria-label": "Crisis plans and cautions",
                              text: "Loading plans…" });
  if (!asked.has(callId)) asked.set(callId, load(callId));
  asked.get(callId).then((node) => clear(box, node.cloneNode(true)))
    .catch((err) => { box.textContent = `Plans not shown: ${err.message}`; });
  return box;
}
