// Checks as you type: the validation and static analysis of the document being edited
// (POST /v1/policies/validate), each error and warning shown beside the rule, exclusion
// or program it concerns; the rest in the summary above the form.
import { $, api, clear, el, withAgency } from "./common.js";
import { pathTarget } from "./policy-model.js";

export const DEBOUNCE_MS = 400;

function warningText(w) {
  return `${w.kind || "warning"}: ${w.message || JSON.stringify(w)}`;
}

// Where a warning is shown: beside the first rule or exclusion it names (the one it is
// about; the others are the rules that shadow or overlap it).
function warningTarget(w, doc) {
  for (const id of w.rules || []) {
    const r = (doc.rules || []).findIndex((x) => x.id === id);
    if (r >= 0) return `rules:${r}`;
    const x = (doc.exclusions || []).findIndex((e) => e.id === id);
    if (x >= 0) return `exclusions:${x}`;
  }
  return null;
}

// Fills each `[data-checks]` box under root from a validation answer; what no box takes
// goes to `general`. Returns the counts.
export function placeChecks(root, res, doc, general) {
  const boxes = new Map([...root.querySelectorAll("div.checks[data-checks]")]
    .map((b) => [b.dataset.checks, []]));
  const rest = [];
  const put = (key, node) => (key && boxes.has(key) ? boxes.get(key) : rest).push(node);
  for (const e of res.errors || []) {
    const t = pathTarget(e.path);
    put(t && `${t.section}:${t.index}`, el("li", { class: "error", dataset: { path: e.path } },
      `${e.path}: ${e.reason}`));
  }
  for (const w of res.warnings || []) {
    put(warningTarget(w, doc), el("li", { class: "warning", dataset: { kind: w.kind || "" } },
      warningText(w)));
  }
  for (const box of root.querySelectorAll("div.checks[data-checks]")) {
    const items = boxes.get(box.dataset.checks);
    clear(box, items.length ? el("ul", {}, items) : null);
    box.closest("tr, li, fieldset")?.classList.toggle("has-error",
      items.some((n) => n.classList.contains("error")));
  }
  const errors = (res.errors || []).length;
  const warnings = (res.warnings || []).length;
  clear(general,
    el("p", { class: res.valid ? "ok" : "bad", text: res.valid
      ? `Checked: valid${warnings ? `, ${warnings} static-check warning(s)` : ", no warnings"}`
      : `Checked: ${errors} error(s)` }),
    rest.length ? el("ul", { class: "general" }, rest) : null);
  return { errors, warnings };
}

// Runs `check` DEBOUNCE_MS after the last call to schedule(); an answer that comes back
// after a newer check started is dropped, so the page shows the latest edit's result.
export function debounced(check, onResult, onError) {
  let timer = null;
  let seq = 0;
  const run = async () => {
    const mine = (seq += 1);
    try {
      const res = await check();
      if (mine === seq) onResult(res);
    } catch (err) {
      if (mine === seq) onError(err);
    }
  };
  return {
    schedule() { clearTimeout(timer); timer = setTimeout(run, DEBOUNCE_MS); },
    now() { clearTimeout(timer); return run(); },
  };
}

export async function validateBody(body) {
  return api(withAgency("/v1/policies/validate"), { method: "POST", ...body });
}

export function summaryNode() { return $("#checks-summary"); }
