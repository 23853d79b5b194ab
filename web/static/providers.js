// The provider directory page (/providers, supervisors; docs/care.md): list, add and
// edit, retire, and import a CSV file (all rows or none: each bad row is listed).
import { $, SITE, api, clear, el, flash, layout, words } from "./common.js";

const SERVICES = SITE.care_services || [];  // service/lifecycle/providers.py SERVICES
const providers = new Map();

function row(p) {
  return el("tr", { dataset: { provider: p.id } },
    el("td", { text: p.id }), el("td", { text: p.name }),
    el("td", { class: "services", text: p.services.map(words).join(", ") }),
    el("td", { text: p.eligibility || "" }), el("td", { text: p.hours || "" }),
    el("td", { class: "capacity", text: p.capacity === null ? "not known" : String(p.capacity) }),
    el("td", { text: p.contact || "" }),
    el("td", {},
      el("button", { type: "button", dataset: { act: "edit" }, on: { click: () => fill(p) } },
        "Edit"), " ",
      el("button", { type: "button", class: "danger", dataset: { act: "retire" },
        on: { click: () => retire(p) } }, "Retire")));
}

function draw() {
  const list = [...providers.values()].sort((a, b) => a.name.localeCompare(b.name));
  clear($("#providers"), list.map(row));
  $("#providers-empty").hidden = list.length > 0;
}

function fill(p) {
  const f = $("#provider-form");
  for (const k of ["id", "name", "eligibility", "hours", "contact"]) f.elements[k].value = p[k] || "";
  f.elements.capacity.value = p.capacity === null ? "" : p.capacity;
  for (const box of f.querySelectorAll("input[name=service]")) box.checked = p.services.includes(box.value);
  f.elements.name.focus();
}

async function load() {
  const got = await api("/v1/providers");
  providers.clear();
  for (const p of got.providers) providers.set(p.id, p);
  draw();
}

async function retire(p) {
  try {
    await api(`/v1/providers/${encodeURIComponent(p.id)}`, { method: "DELETE" });
    providers.delete(p.id);
    draw();
    flash($("#flash"), `${p.name} retired.`, "ok");
  } catch (err) { flash($("#flash"), `${p.name}: ${err.message}`, "error"); }
}

async function save(ev) {
  ev.preventDefault();
  const f = ev.target;
  const id = f.elements.id.value.trim();
  const text = (k) => f.elements[k].value.trim() || null;
  const capacity = f.elements.capacity.value.trim();
  try {
    const saved = await api(`/v1/providers/${encodeURIComponent(id)}`, { method: "PUT", json: {
      name: f.elements.name.value, eligibility: text("eligibility"), hours: text("hours"),
      contact: text("contact"), capacity: capacity === "" ? null : Number(capacity),
      services: [...f.querySelectorAll("input[name=service]:checked")].map((b) => b.value) } });
    providers.set(saved.provider.id, saved.provider);
    draw();
    flash($("#flash"), `${saved.provider.name} ${saved.created ? "added" : "saved"}.`, "ok");
    f.reset();
  } catch (err) { flash($("#flash"), `Not saved: ${err.message}`, "error"); }
}

async function importFile(ev) {
  ev.preventDefault();
  const file = ev.target.elements.file.files[0];
  clear($("#import-problems"));
  if (!file) return;
  try {
    const done = await api("/v1/providers/import", { method: "POST", body: await file.text(),
      headers: { "content-type": "text/csv" } });
    flash($("#flash"), `Imported ${done.imported} providers (${done.created} new, ${done.updated} changed).`, "ok");
    ev.target.reset();
    await load();
  } catch (err) {
    const detail = (err.body && err.body.detail) || [];
    flash($("#flash"), (err.body && err.body.message) || `Not imported: ${err.message}`, "error");
    clear($("#import-problems"), detail.map((d) => el("li", {
      text: `${d.line ? `line ${d.line}, ` : ""}${d.field}: ${d.reason}` })));
  }
}

async function start() {
  await layout();
  clear($("#services"), el("legend", { text: "Services" }), SERVICES.map((s) =>
    el("label", { class: "check" }, el("input", { type: "checkbox", name: "service", value: s }),
      ` ${words(s)}`)));
  $("#provider-form").addEventListener("submit", save);
  $("#import-form").addEventListener("submit", importFile);
  try { await load(); } catch (err) {
    flash($("#flash"), `Could not read the directory: ${err.message}`, "error");
  }
}

start();
