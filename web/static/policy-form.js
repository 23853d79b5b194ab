// The structured view of a policy: program settings as a form, the exclusions ("Always
// win"), the rules as an ordered table with their conditions as chips. It edits the
// object in place: a typed value calls ctx.typed() (checks only); a change of shape
// (a chip, a rule added or moved) calls ctx.edited(focusKey), which draws the view
// again and puts the focus back on the control named by focusKey.
import { clear, el } from "./common.js";
import {
  ACTIONS, DAYS, KINDS, MODES, addChip, addGroup, addRule, deleteRule, duplicateRule, groupsOf,
  isObject, isSimple, listText, moveRule, parseList, parseShifts, removeChip, removeGroup,
  setDisabled,
  setOrDrop, shiftsText, valueText,
} from "./policy-model.js";

let uid = 0;
const nextId = (stem) => `${stem}-${(uid += 1)}`;

// A labelled control: <label>Text <input></label>.
function field(text, control, cls = "") {
  return el("label", { class: `field ${cls}`.trim() }, el("span", { text }), control);
}

function input(value, onInput, props = {}) {
  return el("input", { value: value ?? "", ...props, on: { input: (ev) => onInput(ev.target.value) } });
}

function select(options, value, onChange, props = {}) {
  const node = el("select", { ...props, on: { change: (ev) => onChange(ev.target.value) } },
    options.map((o) => {
      const [v, text] = Array.isArray(o) ? o : [o, o];
      return el("option", { value: String(v), selected: String(v) === String(value) }, text);
    }));
  node.value = String(value ?? "");
  return node;
}

function numberOrUndefined(text) {
  return text.trim() === "" ? undefined : Number(text);
}

// --- program settings ---------------------------------------------------------------

function metaForm(doc, ctx) {
  const meta = doc.policy;
  return el("fieldset", { class: "meta" }, el("legend", { text: "Policy" }),
    field("Id", input(meta.id, () => {}, { readonly: true, class: "code" })),
    field("Version", input(meta.version, (v) => { meta.version = v; ctx.typed(); },
      { id: "f-version", class: "code", dataset: { key: "meta:version" } })),
    field("Name", input(meta.name, (v) => { setOrDrop(meta, "name", v); ctx.typed(); })));
}

function hoursForm(p, ctx, label) {
  const hours = isObject(p.hours) ? p.hours : null;
  const days = ["daily", ...DAYS].map((day) => field(day,
    input(hours ? shiftsText(hours[day]) : "", (v) => {
      const h = isObject(p.hours) ? p.hours : (p.hours = {});
      setOrDrop(h, day, parseShifts(v));
      if (!Object.keys(h).length) delete p.hours;  // no shifts at all: at all hours
      ctx.typed();
    }, { class: "code", placeholder: day === "daily" ? "at all hours" : "as daily",
         "aria-label": `${label}: shifts on ${day}` }), "shift"));
  return el("fieldset", { class: "hours" },
    el("legend", { text: "Hours (HH:MM-HH:MM, several separated by commas; none: closed)" }),
    el("div", { class: "days" }, days));
}

function programForm(p, i, doc, ctx) {
  const label = p.name || p.id;
  const cats = el("fieldset", { class: "cats" }, el("legend", { text: "Categories" }),
    (doc.categories || []).map((c) => el("label", { class: "check" },
      el("input", { type: "checkbox", checked: !p.categories || p.categories.includes(c),
        "aria-label": `${label} takes ${c}`,
        on: { change: (ev) => {
          const now = p.categories ? [...p.categories] : [...doc.categories];
          const next = ev.target.checked ? [...new Set([...now, c])] : now.filter((x) => x !== c);
          // In the policy's order, so the YAML reads as before.
          p.categories = doc.categories.filter((x) => next.includes(x));
          ctx.typed();
        } } }), ` ${c}`)));
  const districts = input(listText(p.area && p.area.districts), (v) => {
    const list = parseList(v);
    if (list.length) {
      p.area = isObject(p.area) ? p.area : {};
      p.area.districts = list;
    } else if (isObject(p.area)) {
      delete p.area.districts;
      if (!Object.keys(p.area).length) delete p.area;
    }
    ctx.typed();
  }, { class: "code", placeholder: "everywhere" });
  return el("fieldset", { class: "program", dataset: { program: p.id, checks: `programs:${i}` } },
    el("legend", { text: `Program ${p.id}` }),
    el("div", { class: "row" },
      field("Name", input(p.name, (v) => { p.name = v; ctx.typed(); })),
      field("Mode", select(MODES, p.mode || "field", (v) => { p.mode = v; ctx.typed(); })),
      field("Units", input(p.units, (v) => { setOrDrop(p, "units", numberOrUndefined(v)); ctx.typed(); },
        { type: "number", min: "0", class: "num" })),
      field("Max queued", input(p.max_queued, (v) => {
        setOrDrop(p, "max_queued", numberOrUndefined(v)); ctx.typed(); },
      { type: "number", min: "1", class: "num", placeholder: "no limit" })),
      field("Districts of its area", districts)),
    cats, hoursForm(p, ctx, label),
    el("div", { class: "checks", dataset: { checks: `programs:${i}` } }));
}

function oneTeamForm(program, ctx) {
  const hours = isObject(program.hours) ? program.hours : {};
  // Written only when typed in: a policy without `hours` keeps the default (08:00-24:00).
  const setHour = (key, v) => {
    const h = isObject(program.hours) ? program.hours : (program.hours = {});
    setOrDrop(h, key, v);
    if (!Object.keys(h).length) delete program.hours;
    ctx.typed();
  };
  return el("div", { class: "row" },
    field("Units", input(program.units, (v) => { setOrDrop(program, "units", numberOrUndefined(v)); ctx.typed(); },
      { type: "number", min: "0", class: "num" })),
    field("Team starts", input(hours.start, (v) => setHour("start", v),
      { class: "code", placeholder: "08:00" })),
    field("Team ends", input(hours.end, (v) => setHour("end", v),
      { class: "code", placeholder: "24:00" })));
}

function zones() {
  try { return Intl.supportedValuesOf("timeZone"); } catch { return []; }
}

export function settingsView(doc, ctx) {
  const program = doc.program;
  const zoneList = nextId("zones");
  return el("div", {},
    metaForm(doc, ctx),
    el("fieldset", { class: "settings" }, el("legend", { text: "Program settings" }),
      el("div", { class: "row" },
        field("Phase", select([[1, "1: joint response"], [2, "2: team-led, police standby"],
          [3, "3: team direct"]], program.phase, (v) => { program.phase = Number(v); ctx.typed(); },
        { id: "f-phase" })),
        field("Time zone", input(program.timezone, (v) => { program.timezone = v; ctx.typed(); },
          { id: "f-timezone", list: zoneList, class: "code" })),
        el("datalist", { id: zoneList }, zones().map((z) => el("option", { value: z })))),
      Array.isArray(doc.programs) ? doc.programs.map((p, i) => programForm(p, i, doc, ctx))
        : oneTeamForm(program, ctx)));
}

// --- conditions as chips ------------------------------------------------------------

function chip(text, { label, onRemove, cls = "", title }) {
  return el("span", { class: `chip ${cls}`.trim(), title }, el("span", { class: "chip-text", text }),
    onRemove ? el("button", { type: "button", class: "chip-x", "aria-label": label,
      title: label, on: { click: onRemove } }, "×") : null);
}

// A condition the chips cannot show (not, all, any inside a group): kept exactly as it
// is, shown read-only.
function advancedChip(key, value) {
  return chip(`advanced condition (${key === "not_" ? "not" : key}) — edit in YAML`, {
    cls: "advanced" });
}

function addForm(group, ctx, focusKey, label, codesList) {
  const kindSel = select(Object.entries(KINDS).map(([k, v]) => [k, v.label]), "nature_code",
    () => drawValue(), { "aria-label": `${label}: kind of condition`, dataset: { key: `${focusKey}:kind` } });
  const valueBox = el("span", { class: "add-value" });
  let read = () => "";

  function drawValue() {
    const kind = KINDS[kindSel.value];
    if (kind.choices) {
      const s = select(kind.choices, kind.choices[0], () => {}, { "aria-label": `${label}: ${kind.label}` });
      read = () => s.value;
      clear(valueBox, s);
    } else if (kind.range) {
      const lo = el("input", { type: "number", min: "0", class: "num", "aria-label": `${label}: priority from` });
      const hi = el("input", { type: "number", min: "0", class: "num", "aria-label": `${label}: priority to` });
      read = () => ({ min: lo.value, max: hi.value });
      clear(valueBox, lo, "–", hi);
    } else if (kind.window) {
      const a = el("input", { type: "time", "aria-label": `${label}: from` });
      const b = el("input", { type: "time", "aria-label": `${label}: to` });
      read = () => ({ start: a.value, end: b.value });
      clear(valueBox, a, "–", b);
    } else {
      const box = el("input", { class: kind.upper ? "code" : "", "aria-label": `${label}: ${kind.label}`,
        list: kindSel.value === "nature_code" ? codesList : null,
        dataset: { key: `${focusKey}:value` },
        on: { keydown: (ev) => { if (ev.key === "Enter") { ev.preventDefault(); add(); } } } });
      read = () => box.value;
      clear(valueBox, box);
    }
  }

  function add() {
    if (addChip(group, kindSel.value, read())) ctx.edited(`${focusKey}:value`);
  }

  // The kind last picked in this group stays picked when the view is drawn again.
  if (ctx.lastKind[focusKey]) kindSel.value = ctx.lastKind[focusKey];
  drawValue();
  kindSel.addEventListener("change", () => { ctx.lastKind[focusKey] = kindSel.value; });
  return el("span", { class: "add-chip" }, kindSel, valueBox,
    el("button", { type: "button", class: "add", dataset: { key: `${focusKey}:add` },
      "aria-label": `${label}: add condition`, on: { click: add } }, "Add"));
}

function groupView(group, ctx, focusKey, label, codesList) {
  const chips = [];
  for (const [key, value] of Object.entries(group || {})) {
    if (!isSimple(key)) { chips.push(advancedChip(key, value)); continue; }
    const kind = KINDS[key];
    const values = kind.list && Array.isArray(value) ? value : [value];
    values.forEach((v, i) => {
      const text = `${kind.label}: ${valueText(key, v)}`;
      const seen = key === "nature_code" && ctx.counts.get(String(v).toUpperCase());
      const shown = `${kind.short ? `${kind.short} ` : ""}${key.startsWith("text_")
        ? `“${v}”` : valueText(key, v)}${seen !== undefined && seen !== false ? ` · ${seen}` : ""}`;
      chips.push(chip(shown, { cls: `k-${key}`, title: text, label: `${label}: remove ${text}`,
        onRemove: () => { removeChip(group, key, i); ctx.edited(`${focusKey}:kind`); } }));
    });
  }
  const editable = Object.keys(group || {}).every(isSimple);
  return el("div", { class: "group", dataset: { key: focusKey } },
    chips.length ? chips : el("span", { class: "none", text: "no condition yet" }),
    editable ? addForm(group, ctx, focusKey, label, codesList) : null);
}

// A `when`: one group, or "any of" groups (each all of its chips), and a button for
// another "or" group.
export function conditionsView(owner, ctx, stem, label, codesList) {
  const { anyOf, groups } = groupsOf(owner.when);
  const more = el("button", { type: "button", class: "link", dataset: { key: `${stem}:or` },
    "aria-label": `${label}: add an "or" group`,
    on: { click: () => ctx.edited(`${stem}:g${addGroup(owner)}:kind`) } }, "+ or");
  const simple = isObject(owner.when) && Object.keys(owner.when).every(isSimple);
  if (!anyOf) {
    return el("div", {}, groupView(owner.when, ctx, `${stem}:g0`, label, codesList),
      simple && Object.keys(owner.when).length ? more : null);
  }
  return el("div", { class: "any-of" }, el("span", { class: "any-label", text: "any of:" }),
    groups.map((g, gi) => el("div", { class: "or-group" },
      isObject(g) ? groupView(g, ctx, `${stem}:g${gi}`, `${label}, group ${gi + 1}`, codesList)
        : advancedChip("any", g),
      el("button", { type: "button", class: "link", dataset: { key: `${stem}:g${gi}:drop` },
        "aria-label": `${label}: remove group ${gi + 1}`,
        on: { click: () => { removeGroup(owner, gi); ctx.edited(`${stem}:or`); } } },
      "remove group"))),
    more);
}

export function exclusionsView(doc, ctx, codesList) {
  const list = doc.exclusions || [];
  return el("ol", { class: "exclusions" }, list.map((x, i) =>
    el("li", { class: "exclusion", dataset: { ruleId: x.id } },
      el("div", { class: "x-head" }, el("strong", { class: "code", text: x.id }),
        x.description ? el("span", { class: "desc", text: ` ${x.description}` }) : null),
      conditionsView(x, ctx, `x${i}`, `Exclusion ${x.id}`, codesList),
      el("div", { class: "checks", dataset: { checks: `exclusions:${i}` } }))));
}

// --- rules --------------------------------------------------------------------------

let dragFrom = null;

function ruleRow(rule, i, doc, ctx, codesList) {
  const n = doc.rules.length;
  const name = `Rule ${rule.id}`;
  const button = (text, key, onClick, props = {}) => el("button", {
    type: "button", dataset: { key: `r${i}:${key}` }, "aria-label": `${text}: ${rule.id}`,
    on: { click: onClick }, ...props }, text);
  const grip = el("span", { class: "grip", draggable: "true", title: "Drag to reorder",
    "aria-hidden": "true", text: "⋮⋮",
    on: { dragstart: (ev) => { dragFrom = i; ev.dataTransfer.effectAllowed = "move";
      ev.dataTransfer.setData("text/plain", String(i)); } } });
  return el("tr", { class: `rule${rule.disabled ? " disabled" : ""}`,
    dataset: { ruleId: rule.id, index: String(i) },
    on: {
      dragover: (ev) => { if (dragFrom !== null) { ev.preventDefault(); ev.currentTarget.classList.add("drop"); } },
      dragleave: (ev) => ev.currentTarget.classList.remove("drop"),
      drop: (ev) => {
        ev.preventDefault();
        const from = dragFrom ?? Number(ev.dataTransfer.getData("text/plain"));
        dragFrom = null;
        if (Number.isInteger(from) && from !== i) ctx.edited(`r${moveRule(doc, from, i)}:up`);
      },
      dragend: () => { dragFrom = null; },
    } },
    el("td", { class: "pos", "data-label": "#" }, grip, el("span", { text: String(i + 1) })),
    el("td", { "data-label": "Id" }, input(rule.id, (v) => { rule.id = v; ctx.typed(); },
      { class: "code rule-id", "aria-label": `Rule ${i + 1} id`, dataset: { key: `r${i}:id` } }),
    input(rule.description, (v) => { setOrDrop(rule, "description", v); ctx.typed(); },
      { class: "rule-desc", placeholder: "what it is for", "aria-label": `${name} description` })),
    el("td", { "data-label": "Category" }, select(doc.categories || [], rule.category,
      (v) => { rule.category = v; ctx.typed(); }, { "aria-label": `${name} category` })),
    el("td", { "data-label": "Action" }, select(ACTIONS, rule.action,
      (v) => { rule.action = v; ctx.typed(); }, { "aria-label": `${name} action` })),
    el("td", { class: "conds", "data-label": "When" },
      conditionsView(rule, ctx, `r${i}`, name, codesList),
      el("div", { class: "checks", dataset: { checks: `rules:${i}` } })),
    el("td", { class: "acts", "data-label": "" },
      button("Move up", "up", () => ctx.edited(`r${moveRule(doc, i, i - 1)}:up`), { disabled: i === 0 }),
      button("Move down", "down", () => ctx.edited(`r${moveRule(doc, i, i + 1)}:down`),
        { disabled: i === n - 1 }),
      button("Duplicate", "dup", () => ctx.edited(`r${duplicateRule(doc, i)}:id`)),
      el("label", { class: "check" }, el("input", { type: "checkbox", checked: Boolean(rule.disabled),
        dataset: { key: `r${i}:off` }, "aria-label": `Disable ${rule.id}`,
        on: { change: (ev) => { setDisabled(rule, ev.target.checked); ctx.edited(`r${i}:off`); } } }),
      " Disabled"),
      button("Delete", "del", () => {
        deleteRule(doc, i);
        ctx.edited(n > 1 ? `r${Math.min(i, n - 2)}:del` : "add-rule");
      }, { class: "danger" })));
}

export function rulesView(doc, ctx, codesList) {
  return el("div", {},
    el("table", { class: "rules" },
      el("caption", { class: "hint", text: "Tried in order: the first rule that holds decides. "
        + "Drag a row by ⋮⋮, or use Move up / Move down." }),
      el("thead", {}, el("tr", {}, ["#", "Id", "Category", "Action", "When (all of a group's chips)", ""]
        .map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", {}, doc.rules.map((r, i) => ruleRow(r, i, doc, ctx, codesList)))),
    el("div", { class: "buttons" }, el("button", { type: "button", id: "add-rule",
      dataset: { key: "add-rule" }, on: { click: () => ctx.edited(`r${addRule(doc)}:id`) } }, "Add rule")));
}

// The nature codes seen in stored calls, for the nature-code inputs (with their counts).
export function codesDatalist(id, codes) {
  return el("datalist", { id }, codes.map((c) => el("option", { value: c.code,
    label: `${c.code} ${c.text || ""} (${c.calls} call${c.calls === 1 ? "" : "s"})` })));
}
