// The team's forms for a crisis plan and a premise caution, on a call's card (issue 16;
// docs/crisis-plans.md). A plan is never sent without the person's consent (who, when,
// how); what the service still refuses (422) is shown beside the field it names. Nothing
// typed here is kept on the device: the form lives in memory until it is sent or closed.
import { api, el } from "./common.js";

const DAY = 86400000;
const KEEP_DAYS = 90;  // the default expiry; the service allows at most 365 days
const MAX_DAYS = 365;
let nextId = 0;

const pad = (n) => String(n).padStart(2, "0");
function localDate(t) { return `${t.getFullYear()}-${pad(t.getMonth() + 1)}-${pad(t.getDate())}`; }
function localMinute(t) { return `${localDate(t)}T${pad(t.getHours())}:${pad(t.getMinutes())}`; }

// A date input's day as the start of that day on this device's clock, in UTC for the API.
function dayStart(value) {
  const [y, m, d] = value.split("-").map(Number);
  return new Date(y, m - 1, d).toISOString();
}

// A labelled control with the place for its reason beside it (aria-describedby; outside
// the label, so neither the reason nor a select's options become part of its name).
function field(text, control) {
  const id = `pf-${++nextId}`;
  const reason = el("span", { class: "field-error", id: `${id}-why` });
  control.id = id;
  control.setAttribute("aria-describedby", reason.id);
  return el("div", { class: "field" }, el("label", { for: id, text }), control, reason);
}

function input(name, props = {}) { return el("input", { name, ...props }); }
// A textarea's starting value is its text (the `value` attribute means nothing to it).
function text(name, value) { return el("textarea", { name, rows: 2, maxlength: 500, text: value || "" }); }

function expiryInput(current) {
  const now = new Date();
  return input("expires_at", {
    type: "date", required: true, min: localDate(new Date(now.getTime() + DAY)),
    max: localDate(new Date(now.getTime() + MAX_DAYS * DAY)),
    value: localDate(current ? new Date(current) : new Date(now.getTime() + KEEP_DAYS * DAY)) });
}

// Reasons beside the fields; those naming no field of the form go to its status line.
function showReasons(form, status, reasons, lead = "Not saved.") {
  for (const n of form.querySelectorAll(".field-error")) n.textContent = "";
  for (const c of form.querySelectorAll("[aria-invalid]")) c.removeAttribute("aria-invalid");
  const loose = [];
  let first = null;
  for (const { field: name, reason } of reasons) {
    // "consent" itself (absent) is shown at who gave it, the first of its fields.
    const control = form.elements.namedItem(name === "consent" ? "consent.given_by" : name);
    if (!control || !control.getAttribute) { loose.push(`${name}: ${reason}`); continue; }
    control.setAttribute("aria-invalid", "true");
    const where = document.getElementById(control.getAttribute("aria-describedby"));
    where.textContent = where.textContent ? `${where.textContent}; ${reason}` : reason;
    first = first || control;
  }
  status.textContent = reasons.length ? `${lead} ${loose.join("; ")}`.trim() : "";
  if (first) first.focus();
}

// Send; a 422's reasons go beside their fields, anything else to the status line.
async function send(form, status, path, method, json, onDone) {
  const submit = form.querySelector('button[type="submit"]');
  submit.disabled = true;
  try {
    await api(path, { method, json });
    onDone("Saved.");
  } catch (err) {
    const detail = err.status === 422 && err.body && Array.isArray(err.body.detail)
      ? err.body.detail.filter((d) => d && d.field) : [];
    if (detail.length) showReasons(form, status, detail);
    else status.textContent = `Not saved: ${err.message}`;
  } finally {
    submit.disabled = false;
  }
}

function shell(kind, title, onCancel) {
  const status = el("p", { class: "plan-form-status", role: "status" });
  const form = el("form", { class: `act-form plan-form`, novalidate: true,
                            dataset: { form: kind }, "aria-label": title },
    el("h4", { text: title }));
  const buttons = el("div", { class: "buttons" },
    el("button", { type: "submit", class: "primary" }, "Save"),
    el("button", { type: "button", on: { click: onCancel } }, "Cancel"));
  return { form, status, buttons };
}

// The plan form: `plan` to edit (PUT), or null to add one for the call (its address and
// callback phone prefilled). onDone(message) after a write; onCancel to close.
export function planForm({ call, plan, onDone, onCancel }) {
  const p = plan || { person: "", address: call.address || "",
                      phone: (call.person && call.person.phone) || "" };
  const c = plan ? plan.consent : { given_by: "", at: null, how: "" };
  const { form, status, buttons } = shell("plan", plan ? `Edit crisis plan: ${p.person}`
    : "Add crisis plan", onCancel);
  const how = el("select", { name: "consent.how", required: true },
    el("option", { value: "" }, "Choose…"),
    ["verbal", "written", "recorded"].map((v) => el("option", { value: v }, v)));
  how.value = c.how;
  form.append(
    field("Person", input("person", { required: true, maxlength: 120, value: p.person })),
    field("Address", input("address", { maxlength: 300, value: p.address || "" })),
    field("Phone", input("phone", { type: "tel", maxlength: 40, value: p.phone || "" })),
    field("What helps", text("helps", p.helps)),
    field("What to avoid", text("avoid", p.avoid)),
    field("Who to call", text("contacts", p.contacts)),
    el("fieldset", { class: "consent" }, el("legend", { text: "Consent (required)" }),
      field("Given by", input("consent.given_by", { required: true, maxlength: 120,
                                                     value: c.given_by })),
      field("When", input("consent.at", { type: "datetime-local", required: true,
                                          value: localMinute(c.at ? new Date(c.at) : new Date()) })),
      field("How", how)),
    field("Expires on (at most a year)", expiryInput(plan && plan.expires_at)),
    buttons, status);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const v = (name) => form.elements.namedItem(name).value.trim();
    const missing = [["person", "who the plan is for is required"],
      ["consent.given_by", "consent is required: who gave it"],
      ["consent.at", "consent is required: when it was given"],
      ["consent.how", "consent is required: how it was given"],
      ["expires_at", "an expiry is required"]].filter(([name]) => !v(name));
    if (missing.length) {
      showReasons(form, status, missing.map(([f, reason]) => ({ field: f, reason })),
                  "Not sent: fill in the marked fields.");
      return;  // the form does not send a plan without consent
    }
    const body = { person: v("person"), address: v("address"), phone: v("phone") || null,
      helps: v("helps") || null, avoid: v("avoid") || null, contacts: v("contacts") || null,
      consent: { given_by: v("consent.given_by"), at: new Date(v("consent.at")).toISOString(),
                 how: v("consent.how") },
      expires_at: dayStart(v("expires_at")) };
    const path = plan ? `/v1/crisis-plans/${encodeURIComponent(plan.id)}` : "/v1/crisis-plans";
    send(form, status, path, plan ? "PUT" : "POST", body, onDone);
  });
  return form;
}

// The caution form: `caution` to edit (PUT), or null to add one for the call's address.
export function cautionForm({ call, caution, onDone, onCancel }) {
  const { form, status, buttons } = shell("caution", caution ? "Edit caution" : "Add caution",
                                          onCancel);
  form.append(
    field("Address", input("address", { maxlength: 300,
                                        value: caution ? caution.address : call.address || "" })),
    field("Caution", text("text", caution && caution.text)),
    field("Expires on (at most a year)", expiryInput(caution && caution.expires_at)),
    buttons, status);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const v = (name) => form.elements.namedItem(name).value.trim();
    const missing = [["text", "the caution is required"], ["expires_at", "an expiry is required"]]
      .filter(([name]) => !v(name));
    if (missing.length) {
      showReasons(form, status, missing.map(([f, reason]) => ({ field: f, reason })),
                  "Not sent: fill in the marked fields.");
      return;
    }
    const body = { address: v("address"), text: v("text"), expires_at: dayStart(v("expires_at")) };
    const path = caution ? `/v1/premise-cautions/${encodeURIComponent(caution.id)}`
      : "/v1/premise-cautions";
    send(form, status, path, caution ? "PUT" : "POST", body, onDone);
  });
  return form;
}
