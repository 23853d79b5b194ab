// What the editor runs on the document being edited, unsaved: its test cases (a table
// with each case's last result), "Try a call" (a dry run that marks the deciding rule)
// and "What changes?" (a what-if over the last N days, polled until done).
import { api, el, withAgency, words } from "./common.js";

// --- test cases ---------------------------------------------------------------------

function callText(call) {
  return [call.channel, call.nature_code, call.nature_text].filter(Boolean).join(" · ");
}

function expectText(expect) {
  return Object.entries(expect || {}).map(([k, v]) =>
    `${words(k)}: ${Array.isArray(v) ? v.join(", ") : v}`).join("; ");
}

function resultCell(result) {
  if (!result) return el("td", { class: "result none", "data-label": "Last result", text: "not run" });
  return el("td", { class: `result ${result.passed ? "ok" : "bad"}`, "data-label": "Last result" },
    result.passed ? "✓ passes" : "✗ fails",
    result.failures && result.failures.length
      ? el("ul", { class: "errors" }, result.failures.map((f) => el("li", { text: String(f) }))) : null);
}

// results: Map name -> {passed, failures} from the last run (kept across redraws);
// stale: the document was edited since.
export function casesView(doc, results, stale) {
  const tests = doc.tests || [];
  if (!tests.length) return el("p", { class: "hint", text: "This policy has no test cases." });
  return el("table", { class: `cases${stale && results.size ? " stale" : ""}` },
    stale && results.size ? el("caption", { class: "stale-note",
      text: "Last results are from before the latest edits: run the test cases again." }) : null,
    el("thead", {}, el("tr", {}, ["Test case", "Call", "Expected", "Last result"]
      .map((h) => el("th", { scope: "col", text: h })))),
    el("tbody", {}, tests.map((t) => el("tr", { dataset: { case: t.name } },
      el("td", { "data-label": "Test case", text: t.name }),
      el("td", { "data-label": "Call", text: callText(t.call || {}) }),
      el("td", { "data-label": "Expected", text: expectText(t.expect) }),
      resultCell(results.get(t.name))))));
}

export async function runCases(document) {
  const res = await api(withAgency("/v1/policies/test"), { method: "POST", json: { document } });
  return { res, byName: new Map(res.results.map((r) => [r.name, r])) };
}

// --- try a call ---------------------------------------------------------------------

export async function tryCall(document, call, unitsBusy) {
  return api(withAgency("/v1/policies/dry-run"), { method: "POST",
    json: { document, call, units_busy: unitsBusy } });
}

// The rows of what decided the call: the rule that held (and the exclusions that won).
export function decidedIds(res) {
  const c = res.classification || {};
  return { rule: c.rule_id || null, exclusions: c.exclusions || [] };
}

export function markDecided(root, decided) {
  for (const node of root.querySelectorAll(".decided")) {
    node.classList.remove("decided");
    node.querySelector(".decided-badge")?.remove();
  }
  if (!decided) return;
  const mark = (node, text) => {
    if (!node) return;
    node.classList.add("decided");
    const where = node.querySelector("td.pos, .x-head") || node;
    where.append(el("span", { class: "decided-badge", text }));
  };
  for (const id of decided.exclusions) {
    mark(root.querySelector(`li.exclusion[data-rule-id="${CSS.escape(id)}"]`), "won");
  }
  if (decided.rule) {
    mark(root.querySelector(`tr.rule[data-rule-id="${CSS.escape(decided.rule)}"]`), "decided");
  }
}

export function tryCallReport(res) {
  const d = res.decision;
  const c = res.classification || {};
  const by = c.exclusions && c.exclusions.length ? `exclusion ${c.exclusions.join(", ")}`
    : c.rule_id ? `rule ${c.rule_id}` : "no rule (the safe default)";
  // Looked up when clicked: the form may have been drawn again since.
  const row = () => c.rule_id && document.querySelector(
    `tr.rule[data-rule-id="${CSS.escape(c.rule_id)}"] input.rule-id`);
  return [
    el("h3", { class: "decision", dataset: { destination: d.destination, rule: c.rule_id || "" },
      text: `${words(d.destination)}, decided by ${by}` }),
    row() ? el("button", { type: "button", class: "link", on: { click: () => row()?.focus() } },
      `Go to rule ${c.rule_id}`) : null,
    el("ul", { class: "factors" }, (res.factors && res.factors.length ? res.factors
      : [d.explanation]).map((f) => el("li", { text: f }))),
  ];
}

// --- what changes? ------------------------------------------------------------------

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function whatChanges(document, days, onProgress) {
  let job = await api(withAgency("/v1/policies/what-if"), { method: "POST", json: { document, days } });
  const id = job.job_id;
  if (job.status !== "running") job = await api(`/v1/what-if/${encodeURIComponent(id)}`);
  while (job.status === "running") {
    onProgress(job);
    await sleep(500);
    job = await api(`/v1/what-if/${encodeURIComponent(id)}`);
  }
  return job;
}

export function whatChangesReport(job) {
  if (!job.report) {
    return [el("p", { class: "bad", text: `What-if ${job.status}: ${job.error || ""}` })];
  }
  const r = job.report;
  return [
    el("h3", { class: "changed-count", dataset: { changed: String(r.changed) },
      text: `${r.changed} call${r.changed === 1 ? "" : "s"} would change (of ${r.calls})` }),
    r.changes.length ? el("ul", { class: "changes" }, r.changes.map((g) => el("li", {},
      `${g.count}: ${words(g.from_destination)} → ${words(g.to_destination)} `
        + `(${g.candidate_rule}, ${g.candidate_why})`,
      g.examples && g.examples.length ? el("ul", { class: "examples" }, g.examples.map((x) =>
        el("li", { text: `${new Date(x.occurred_at).toLocaleString()}: ${x.nature_code} `
          + `${x.nature_text}` }))) : null))) : null,
    r.changed ? el("p", {}, el("a", { href: `/v1/what-if/${encodeURIComponent(job.job_id)}/changed.csv` },
      "Changed calls (CSV)")) : null,
  ];
}

export function progressText(job) {
  return `What-if ${words(job.status)}: ${job.progress.done} of ${job.progress.total ?? "?"} calls…`;
}
