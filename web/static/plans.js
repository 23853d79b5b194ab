// A call's crisis plans and premise cautions, for the team that goes (issue 16): asked
// for when a card's details are opened, never carried by board messages nor kept on the
// device; the service audits each look. Roles without need are not offered them
// (SITE.may.plans, from service/calls/visibility.py SEES_PLANS), and are refused if they ask.
import { api, clear, clock, el, SITE } from "./common.js";
import { cautionForm, planForm } from "./plans-form.js";

// call id -> its plans box while the details are open. The card is built again on each
// message about the call; the same box moves into the new card, so a form being filled
// in, or a delete being confirmed, survives it (in memory only: nothing is stored).
const boxes = new Map();

export function mayReadPlans(user) { return !user || SITE.may.plans.includes(user.role); }

// Details closed: the next opening asks again (and is audited again); an open form goes.
export function forgetPlans(callId) { boxes.delete(callId); }

function row(k, v) { return v ? [el("dt", { text: k }), el("dd", { text: v })] : null; }

function planElement(p, tools) {
  const c = p.consent;
  return el("div", { class: "plan", dataset: { planId: p.id } },
    el("h4", { text: `Crisis plan: ${p.person}` }),
    el("dl", { class: "details" },
      row("Helps", p.helps), row("Avoid", p.avoid), row("Who to call", p.contacts),
      row("Phone", p.phone), row("Address", p.address),
      row("Consent", `${c.given_by}, ${c.how}, ${clock(c.at)}`),
      row("Expires", clock(p.expires_at))),
    tools);
}

function cautionElement(c, tools) {
  return el("div", { class: "caution", dataset: { cautionId: c.id } },
    el("strong", { text: "Caution: " }), c.text, tools);
}

class PlansBox {
  constructor(callId, call) {
    this.callId = callId;
    this.call = call;
    this.node = el("section", { class: "plans", "aria-label": "Crisis plans and cautions",
                                dataset: { callId } });
    this.list = el("div", { class: "plans-list", text: "Loading plans…" });
    this.pane = el("div", { class: "plans-pane" });  // an open form, or the add buttons
    this.status = el("p", { class: "plans-status", role: "status" });
    this.node.append(this.list, this.status, this.pane);
    this.closeForm();
    this.load();
  }

  // One read per opening and one after each write: each is audited by the service.
  load() {
    api(`/v1/calls/${encodeURIComponent(this.callId)}/plans`)
      .then((data) => this.drawList(data))
      .catch((err) => { this.list.textContent = `Plans not shown: ${err.message}`; });
  }

  drawList(data) {
    if (!data.plans.length && !data.cautions.length) {
      clear(this.list, el("p", { class: "plans-none", text: "No crisis plan or caution here." }));
      return;
    }
    clear(this.list,
      data.cautions.map((c) => cautionElement(c, this.tools("caution", c, "this caution"))),
      data.plans.map((p) => planElement(p, this.tools("plan", p, `the crisis plan for ${p.person}`))));
  }

  // Edit and Delete for a plan or caution; Delete asks first, in place.
  tools(kind, item, what) {
    const bar = el("div", { class: "plan-tools" });
    const offer = () => clear(bar,
      el("button", { type: "button", class: "link", "aria-label": `Edit ${what}`,
                     on: { click: () => this.openForm(kind, item) } }, "Edit"),
      el("button", { type: "button", class: "link", "aria-label": `Delete ${what}`,
                     on: { click: ask } }, "Delete"));
    const ask = () => {
      const keep = el("button", { type: "button", on: { click: () => { offer(); bar.firstChild.focus(); } } },
        "Keep");
      clear(bar, el("span", { text: `Delete ${what}? ` }),
        el("button", { type: "button", class: "danger", on: { click: () => this.remove(kind, item) } },
          "Yes, delete"), keep);
      keep.focus();
    };
    offer();
    return bar;
  }

  async remove(kind, item) {
    const path = kind === "plan" ? "/v1/crisis-plans/" : "/v1/premise-cautions/";
    try {
      await api(path + encodeURIComponent(item.id), { method: "DELETE" });
      this.written("Deleted.");
    } catch (err) {
      this.status.textContent = `Not deleted: ${err.message}`;
    }
  }

  // A new plan is prefilled with the call's callback phone, which board messages do not
  // carry: the call is read whole when the form opens (as its details are).
  async openForm(kind, item = null) {
    let call = { address: this.call.address, person: null };
    if (kind === "plan" && !item) {
      try {
        const got = (await api(`/v1/calls/${encodeURIComponent(this.callId)}`)).call;
        call = { address: got.location.address || call.address, person: got.person };
      } catch (err) {
        this.status.textContent = `Call not read (${err.message}): fill in its phone.`;
      }
    }
    const make = kind === "plan" ? planForm : cautionForm;
    const form = make({ call, [kind]: item, onDone: (m) => this.written(m),
                        onCancel: () => this.closeForm(true) });
    if (!this.status.textContent.startsWith("Call not read")) this.status.textContent = "";
    clear(this.pane, form);
    // The first field to fill in (the caution's text, its address being the call's).
    const controls = [...form.querySelectorAll("input, textarea")];
    (controls.find((x) => !x.value) || controls[0]).focus();
  }

  closeForm(refocus = false) {
    const add = el("button", { type: "button", on: { click: () => this.openForm("plan") } },
      "Add crisis plan");
    clear(this.pane, el("div", { class: "buttons" }, add,
      el("button", { type: "button", on: { click: () => this.openForm("caution") } }, "Add caution")));
    if (refocus) add.focus();
  }

  written(message) {
    this.closeForm(true);
    this.status.textContent = message;
    this.load();
  }
}

// The plans box of an open card, with the team's forms (the card is drawn again on each
// message about the call: one request per opening, whatever is drawn). `call`: the
// call as the board has it (its address and callback phone prefill a new plan).
export function plansBox(callId, call) {
  if (!boxes.has(callId)) boxes.set(callId, new PlansBox(callId, call));
  const box = boxes.get(callId);
  box.call = call;
  return box.node;
}
