// Supervisor policy page: edit a draft (in the structured editor, or its YAML under
// "Advanced"), check it as it is typed, try a call and a what-if on it unsaved, save it,
// run its tests, diff with the published version, publish and roll back.
import { $, agencyChoice, api, clear, el, flash, layout, withAgency, words } from "./common.js";
import { debounced, placeChecks, validateBody } from "./policy-checks.js";
import { codesDatalist, exclusionsView, rulesView, settingsView } from "./policy-form.js";
import {
  casesView, decidedIds, markDecided, progressText, runCases, tryCall, tryCallReport,
  whatChanges, whatChangesReport,
} from "./policy-run.js";

let draft = null;      // label of the draft saved from this page
let inForce = null;

// The document being edited: `doc` the object the form edits, `yaml` the last YAML text
// (what the object came from, or what the server made of it: the base that keeps the
// comments), `view` which of the two is on screen.
const ed = { doc: null, yaml: "", view: "form", codes: [], lastCheck: null, decided: null,
             results: new Map(), stale: false, lastKind: {} };

const v = (label) => `/v1/policies/${encodeURIComponent(label)}`;

function busy(button, on) {
  button.disabled = on;
  button.classList.toggle("busy", on);
}

async function loadVersions({ reloadDoc = false } = {}) {
  const data = await api(withAgency("/v1/policies"));
  inForce = data.in_force;
  $("#in-force").textContent = inForce;
  clear($("#versions"), data.versions.slice().reverse().map((row) => {
    const actions = el("td", { class: "acts" });
    if (row.status === "superseded") {
      actions.append(el("button", { type: "button", dataset: { rollback: row.label }, on: {
        click: () => rollback(row.label) } }, "Roll back to this"));
    }
    if (row.status === "draft") {
      actions.append(el("button", { type: "button", class: "link", on: {
        click: () => useDraft(row.label) } }, "Work on this"));
    }
    if (row.publish_at) {
      actions.append(el("button", { type: "button", dataset: { unschedule: row.label }, on: {
        click: () => unschedule(row.label) } }, "Cancel scheduled publish"));
    }
    // A scheduled publish, or why a due one did not happen (another version went in).
    const status = el("td", { class: "status", text: words(row.status) });
    if (row.publish_at) {
      status.append(el("div", { class: "scheduled",
        text: `publishes ${new Date(row.publish_at).toLocaleString()}` }));
    }
    if (row.schedule_note) status.append(el("div", { class: "note", text: row.schedule_note }));
    return el("tr", { class: `st-${row.status}`, dataset: { label: row.label } },
      el("td", { text: row.label }), status,
      el("td", { text: row.author || "" }),
      el("td", { text: row.comment || "" }), actions);
  }));
  if (reloadDoc || !$("#doc").value) {
    const published = data.versions.find((r) => r.status === "published");
    const source = published ? published.label : inForce;
    loadDocument(await api(withAgency(v(source))));
  }
}

// --- the editor ---------------------------------------------------------------------

function loadDocument(row) {
  ed.doc = row.parsed;
  ed.yaml = row.document;
  $("#doc").value = row.document;
  ed.results = new Map();
  ed.stale = false;
  ed.decided = null;
  drawForm();
  checks.now();
}

// The document as the server should read it: the object (form) or the text (Advanced).
function current() { return ed.view === "form" ? ed.doc : $("#doc").value; }

function body() {
  return ed.view === "form" ? { json: { document: ed.doc } }
    : { body: $("#doc").value, headers: { "content-type": "text/yaml" } };
}

// The form, from the object; the focus goes back to the control `focusKey` names.
function drawForm(focusKey) {
  if (!ed.doc) return;
  const key = focusKey || (document.activeElement && document.activeElement.dataset
    ? document.activeElement.dataset.key : undefined);
  const ctx = { typed: changed, edited, lastKind: ed.lastKind,
                counts: new Map(ed.codes.map((c) => [c.code.toUpperCase(), c.calls])) };
  clear($("#settings"), settingsView(ed.doc, ctx));
  clear($("#exclusions"), exclusionsView(ed.doc, ctx, "nature-codes"));
  clear($("#rules"), rulesView(ed.doc, ctx, "nature-codes"));
  clear($("#cases"), casesView(ed.doc, ed.results, ed.stale));
  if (ed.lastCheck) placeChecks($("#form-view"), ed.lastCheck, ed.doc, $("#checks-summary"));
  markDecided($("#form-view"), ed.decided);
  const target = key && $(`#form-view [data-key="${CSS.escape(key)}"]`);
  if (target) target.focus();
}

// Any edit: checked soon; the test cases' last results are now from before it.
function changed() {
  if (!ed.stale && ed.results.size) {
    ed.stale = true;
    if (ed.doc) clear($("#cases"), casesView(ed.doc, ed.results, true));
  }
  ed.stale = true;
  checks.schedule();
}

// A change of shape (a chip, a rule added, moved or removed): draw again, check soon.
function edited(focusKey) {
  ed.stale = true;
  drawForm(focusKey);
  changed();
}

const checks = debounced(() => validateBody(body()), (res) => {
  ed.lastCheck = res;
  if (ed.view === "form") placeChecks($("#form-view"), res, ed.doc, $("#checks-summary"));
  else placeChecks($("#yaml-view"), res, ed.doc || {}, $("#checks-summary"));
}, (err) => {
  clear($("#checks-summary"), el("p", { class: "bad", text: `Not checked: ${err.message}` }));
});

function showView(view) {
  ed.view = view;
  $("#form-view").hidden = view !== "form";
  $("#yaml-view").hidden = view !== "yaml";
  $("#view-form").setAttribute("aria-pressed", String(view === "form"));
  $("#view-yaml").setAttribute("aria-pressed", String(view === "yaml"));
}

// The form's object as YAML, the comments of the last YAML kept where they still apply.
async function formYaml() {
  const res = await api(withAgency("/v1/policies/yaml"), { method: "POST",
    json: { document: ed.doc, base: ed.yaml || null } });
  return res.yaml;
}

// Bumped by whatever replaces the text or the view: an answer that comes back after it
// is dropped (a file imported while the form's YAML was being made, say).
let viewSeq = 0;

async function toYaml() {
  if (ed.view === "yaml") return;
  const mine = (viewSeq += 1);
  const text = await formYaml();
  if (mine !== viewSeq) return;
  ed.yaml = text;
  $("#doc").value = text;
  showView("yaml");
  checks.now();
}

async function toForm() {
  if (ed.view === "form") return;
  const mine = (viewSeq += 1);
  const text = $("#doc").value;
  const res = await validateBody({ body: text, headers: { "content-type": "text/yaml" } });
  if (mine !== viewSeq) return;
  if (!res.parsed || typeof res.parsed !== "object") {
    flash($("#flash"), "The YAML does not read as a policy; fix it here first: "
      + res.errors.map((e) => `${e.path}: ${e.reason}`).join("; "), "error");
    return;
  }
  ed.doc = res.parsed;
  ed.yaml = text;
  showView("form");
  drawForm();
  checks.now();
}

// The YAML to save or export: the text under Advanced, or the form's object as YAML.
async function yamlNow() {
  if (ed.view === "yaml") return $("#doc").value;
  const text = await formYaml();
  ed.yaml = text;
  $("#doc").value = text;
  return text;
}

async function exportYaml() {
  const text = await yamlNow();
  const name = ed.doc && ed.doc.policy ? `${ed.doc.policy.id}-${ed.doc.policy.version}.yaml`
    : "policy.yaml";
  const url = URL.createObjectURL(new Blob([text], { type: "text/yaml" }));
  const a = el("a", { href: url, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

async function importYaml(file) {
  const text = await file.text();
  viewSeq += 1;
  $("#doc").value = text;
  showView("yaml");
  checks.now();
  flash($("#flash"), `Imported ${file.name}: check it under Advanced, then switch to the form or save.`, "ok");
}

function tryCallFacts() {
  const when = $("#try-when").value;
  const call = {
    channel: $("#try-channel").value, nature_code: $("#try-code").value.trim(),
    nature_text: $("#try-text").value,
    occurred_at: (when ? new Date(when) : new Date()).toISOString(),
    flags: [...document.querySelectorAll('input[name="try-flag"]:checked')].map((c) => c.value),
  };
  if ($("#try-priority").value !== "") call.priority = Number($("#try-priority").value);
  if ($("#try-district").value.trim()) call.district = $("#try-district").value.trim();
  return call;
}

async function tryIt() {
  const res = await tryCall(current(), tryCallFacts(), Number($("#try-busy").value) || 0);
  ed.decided = decidedIds(res);
  markDecided($("#form-view"), ed.decided);
  clear($("#try-out"), tryCallReport(res));
}

async function whatChangesRun() {
  const out = $("#wc-out");
  const days = Number($("#wc-days").value) || 30;
  const job = await whatChanges(current(), days, (j) => clear(out, el("p", { text: progressText(j) })));
  clear(out, whatChangesReport(job));
}

async function runCasesNow() {
  const { res, byName } = await runCases(current());
  ed.results = byName;
  ed.stale = false;
  if (ed.doc) clear($("#cases"), casesView(ed.doc, ed.results, false));
  flash($("#flash"), res.passed ? `All ${res.results.length} test cases pass.`
    : `${res.failed} of ${res.results.length} test cases fail.`, res.passed ? "ok" : "error");
}

async function loadCodes() {
  try {
    const res = await api(withAgency("/v1/policies/nature-codes?days=90"));
    ed.codes = res.codes;
    $("#nature-codes").replaceWith(codesDatalist("nature-codes", ed.codes));
    drawForm();  // the chips show each code's count
  } catch (err) {
    flash($("#flash"), `The nature codes seen could not be loaded: ${err.message}`, "error");
  }
}

function setDraft(label) {
  draft = label;
  $("#draft-label").textContent = label || "none saved";
  for (const id of ["run-tests", "diff", "publish", "whatif"]) $(`#${id}`).disabled = !label;
}

async function useDraft(label) {
  loadDocument(await api(withAgency(v(label))));
  setDraft(label);
  flash($("#flash"), `Working on draft ${label}.`, "ok");
}

function list(items, cls) {
  return el("ul", { class: cls }, items.map((t) => el("li", { text: t })));
}

async function validate() {
  const out = $("#validation");
  const res = await validateBody(body());
  ed.lastCheck = res;
  placeChecks($(ed.view === "form" ? "#form-view" : "#yaml-view"), res, ed.doc || {},
    $("#checks-summary"));
  const warnings = res.warnings.map((w) =>
    `${w.kind || w.code || "warning"}: ${w.message || w.detail || JSON.stringify(w)}`);
  clear(out,
    el("h3", { class: res.valid ? "ok" : "bad",
               text: res.valid ? `Valid (${res.version})` : `Invalid: ${res.errors.length} error(s)` }),
    res.errors.length ? list(res.errors.map((e) => `${e.path}: ${e.reason}`), "errors") : null,
    warnings.length ? el("h4", { text: `${warnings.length} static-check warning(s)` }) : null,
    warnings.length ? list(warnings, "warnings") : el("p", { text: "No static-check warnings." }));
  return res.valid;
}

async function save() {
  if (!(await validate())) {
    flash($("#flash"), "Not saved: the draft is invalid (see Results).", "error");
    return;
  }
  const text = await yamlNow();
  const res = await api(withAgency("/v1/policies"), { method: "POST", json: {
    document: text,
    comment: $("#comment").value || "" } });
  ed.yaml = text;
  setDraft(res.label);
  flash($("#flash"), `Draft ${res.label} saved.`, "ok");
  await loadVersions();
}

async function runTests() {
  const res = await api(withAgency(`${v(draft)}/test`), { method: "POST" });
  clear($("#tests"),
    el("h3", { class: res.passed ? "ok" : "bad",
               text: res.passed ? `All ${res.results.length} tests pass`
                 : `${res.failed} of ${res.results.length} tests fail` }),
    el("ul", { class: "tests" }, res.results.map((r) => el("li", { class: r.passed ? "ok" : "bad" },
      `${r.passed ? "✓" : "✗"} ${r.name}`,
      r.failures && r.failures.length ? list(r.failures.map(String), "errors") : null))));
  return res.passed;
}

async function diff() {
  const res = await api(withAgency(`${v(draft)}/diff`));
  const pre = $("#diff-out");
  clear(pre, (res.diff || "(no difference)").split("\n").map((line) =>
    el("span", { class: line.startsWith("+") ? "add" : line.startsWith("-") ? "del" : "",
                 text: `${line}\n` })));
  pre.hidden = false;
}

async function publish() {
  const res = await api(withAgency(`${v(draft)}/publish`), { method: "POST", json: {} });
  flash($("#flash"), `Published ${res.label}; in force: ${res.in_force}.`, "ok");
  setDraft(null);
  await loadVersions();
}

async function unschedule(label) {
  try {
    await api(withAgency(`${v(label)}/unschedule`), { method: "POST" });
    flash($("#flash"), `The scheduled publish of ${label} is cancelled; it stays a draft.`, "ok");
  } catch (err) {
    flash($("#flash"), `Not cancelled: ${err.message}`, "error");
  }
  await loadVersions();
}

async function rollback(label) {
  const res = await api(withAgency(`${v(label)}/rollback`), { method: "POST" });
  flash($("#flash"), `Rolled back: ${res.in_force} is in force.`, "ok");
  await loadVersions({ reloadDoc: true });
}

function pct(x) { return `${(100 * x).toFixed(1)}%`; }

function whatIfReport(job) {
  const r = job.report;
  const row = (name, a, b) => el("tr", {}, el("th", { text: name }), el("td", { text: a }),
    el("td", { text: b }));
  const dest = (rep, d) => String(rep.destinations[d] || 0);
  return [
    el("h3", { text: `What-if: ${r.calls} stored calls, ${r.changed} change destination` }),
    el("table", { class: "whatif" },
      el("thead", {}, el("tr", {}, el("th"), el("th", { text: r.baseline.version }),
        el("th", { text: r.candidate.version }))),
      el("tbody", {},
        ["call_team", "joint", "police"].map((d) =>
          row(`to ${words(d)}`, dest(r.baseline, d), dest(r.candidate, d))),
        row("team share", pct(r.baseline.team_share), pct(r.candidate.team_share)),
        row("eligible", String(r.baseline.coverage.eligible), String(r.candidate.coverage.eligible)),
        row("unit utilisation", pct(r.baseline.coverage.utilisation),
          pct(r.candidate.coverage.utilisation)))),
    r.changes.length ? list(r.changes.map((g) =>
      `${g.count} ${words(g.from_destination)} → ${words(g.to_destination)} (${g.candidate_rule}, ${g.candidate_why})`),
    "changes") : null,
  ];
}

async function whatIf() {
  const from = $("#wi-from").value;
  const to = $("#wi-to").value;
  if (!from || !to) {
    flash($("#flash"), "Pick the what-if's dates (from and to).", "error");
    return;
  }
  const out = $("#whatif-out");
  let job = await api(withAgency(`${v(draft)}/what-if`), { method: "POST", json: {
    from: `${from}T00:00:00Z`, to: `${to}T00:00:00Z` } });
  const id = job.job_id;
  // The start answer has no report: a job already over is read back once.
  if (job.status !== "running") job = await api(`/v1/what-if/${encodeURIComponent(id)}`);
  for (;;) {
    clear(out, el("p", { text: `What-if ${words(job.status)}: ${job.progress.done} of ${job.progress.total ?? "?"} calls…` }));
    if (job.status !== "running" && job.status !== "queued" && job.status !== "pending") break;
    await new Promise((r) => setTimeout(r, 500));
    job = await api(`/v1/what-if/${encodeURIComponent(id)}`);
  }
  if (job.report) {
    clear(out, whatIfReport(job),
      el("p", {}, el("a", { href: `/v1/what-if/${encodeURIComponent(id)}/changed.csv` },
        "Changed calls (CSV)")));
  } else {
    clear(out, el("p", { class: "bad", text: `What-if ${job.status}: ${job.error || ""}` }));
  }
}

const OUTCOME = {
  took: "took the call", queued: "queued the call for its next free unit",
  deferred: "scheduled the call for its next shift", refused: "did not take the call",
  not_tried: "not tried",
};

function shapedText(s) {
  if (s.setting === "hours") {
    return `hours ${s.value} (call at ${s.local_time} local): ${s.effect}`;
  }
  if (s.setting === "capacity") return `units ${s.units_busy} of ${s.units_total} busy: ${s.effect}`;
  return `${words(s.setting)} ${s.value ?? ""}: ${s.effect}`;
}

// Each program of a policy of programs, in order: what it did with the call and why
// (the decision's steps that name it, and its hours and capacity as consulted).
function programsTried(programs) {
  return el("ol", { class: "programs-tried" }, programs.map((p) =>
    el("li", { class: `program ${p.outcome}`, dataset: { program: p.id, outcome: p.outcome } },
      el("strong", { text: `${p.name} (${p.id}, ${words(p.mode)})` }), ": ",
      el("span", { class: "outcome", text: p.takes_category || p.outcome !== "not_tried"
        ? OUTCOME[p.outcome] : "does not take this category" }),
      p.factors.length ? list(p.factors, "factors") : null,
      p.shaped_by.length ? list(p.shaped_by.map(shapedText), "shaped") : null)));
}

async function dryRun() {
  let call;
  let state;
  try {
    call = JSON.parse($("#dry-call").value);
    state = $("#dry-state").value.trim() ? JSON.parse($("#dry-state").value) : undefined;
  } catch (err) {
    flash($("#flash"), `The dry run's call or state is not JSON: ${err.message}`, "error");
    return;
  }
  const body = { ...call, units_busy: Number($("#dry-busy").value) || 0 };
  if (state !== undefined) body.programs = state;
  const res = await api(withAgency(`${v(draft || inForce)}/dry-run`), { method: "POST", json: body });
  const d = res.decision;
  clear($("#dry-out"),
    el("h3", { text: `Dry run (${res.version}): ${words(d.destination)}` +
      (d.program && d.program.name ? `, ${d.program.name}` : "") +
      (d.queued ? ", queued" : d.deferred_until ? ", scheduled" : "") +
      (d.not_served_reason ? ` (not served: ${words(d.not_served_reason)})` : "") }),
    res.programs.length ? programsTried(res.programs) : null,
    el("h4", { text: "Why" }), list(res.factors, "factors"),
    !res.programs.length && res.shaped_by.length ? list(res.shaped_by.map(shapedText), "shaped")
      : null);
}

// An unsaved document refused as invalid names each error twice (its path in the
// document, and the body's field): said once, by the path the checks show too.
function failure(err) {
  const errors = err.body && Array.isArray(err.body.errors) ? err.body.errors : [];
  if (!errors.length) return err.message;
  return `${err.body.message || "invalid"}: ${errors.map((e) => `${e.path}: ${e.reason}`).join("; ")}`;
}

function guard(button, fn) {
  button.addEventListener("click", async () => {
    busy(button, true);
    try { await fn(); }
    catch (err) { flash($("#flash"), failure(err), "error"); }
    finally { busy(button, false); if (!draft) setDraft(draft); }
  });
}

async function start() {
  await layout();
  // A regional supervisor works on one agency's policy at a time (versions, drafts and
  // what-ifs over its calls); the default agency's until another is chosen.
  await agencyChoice($("#agency-choice"), { every: false });
  const today = new Date();
  const monthAgo = new Date(today.getTime() - 30 * 86400000);
  $("#wi-to").value = new Date(today.getTime() + 86400000).toISOString().slice(0, 10);
  $("#wi-from").value = monthAgo.toISOString().slice(0, 10);
  const buttons = {
    validate, save, "run-tests": runTests, diff, publish, whatif: whatIf, "dry-run": dryRun,
    "view-form": toForm, "view-yaml": toYaml, export: exportYaml, "run-cases": runCasesNow,
    "try-run": tryIt, "wc-run": whatChangesRun,
  };
  for (const [id, fn] of Object.entries(buttons)) guard($(`#${id}`), fn);
  $("#doc").addEventListener("input", changed);
  $("#import").addEventListener("change", (ev) => {
    const file = ev.target.files && ev.target.files[0];
    if (file) importYaml(file).catch((err) => flash($("#flash"), err.message, "error"));
  });
  loadCodes();
  $("#dry-call").value = JSON.stringify({
    channel: "911", nature_code: "MNTL", nature_text: "Mental person non-violent",
    priority: 3, district: "D1", occurred_at: new Date().toISOString() }, null, 1);
  try { await loadVersions({ reloadDoc: true }); }
  catch (err) { flash($("#flash"), `Could not load the policies: ${err.message}`, "error"); }
}

start();
