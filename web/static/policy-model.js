// The policy object the structured editor holds (what GET /v1/policies/{v} returns as
// `parsed`), and the edits the editor makes to it. No DOM here: every edit changes only
// the keys it is about, so whatever the form does not show is kept as it was.

const FLAGS = ["weapon", "violence", "injury", "medical", "crime_in_progress"];
const CHANNELS = ["911", "non_emergency", "officer_on_scene", "officer_referral",
  "follow_up", "crisis_line"];
export const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
export const ACTIONS = ["team", "police", "joint"];
export const MODES = ["field", "phone", "co_response"];

// The condition keys a chip stands for (rules/models.py Condition); `any`, `all` and
// `not` are not among them: nested, they are edited in YAML.
// `short`: the words on the chip before its value.
export const KINDS = {
  nature_code: { label: "nature code", short: "", list: true, upper: true },
  text_any: { label: "word or phrase", short: "says", list: true },
  text_none: { label: "not the word", short: "does not say", list: true },
  flags_any: { label: "flag", short: "flag", list: true, choices: FLAGS },
  flags_none: { label: "not flag", short: "no flag", list: true, choices: FLAGS },
  channel: { label: "channel", short: "channel", list: true, choices: CHANNELS },
  district: { label: "district", short: "district", list: true },
  day_of_week: { label: "day", short: "on", list: true, choices: DAYS },
  priority: { label: "priority", short: "priority", range: true },
  time_of_day: { label: "time of day", short: "from", window: true },
};

export function isSimple(key) { return Object.hasOwn(KINDS, key); }

export function isObject(x) { return x !== null && typeof x === "object" && !Array.isArray(x); }

// How a rule's `when` is shown: one group of chips (all must hold), or, for a `when`
// that is only `any: [...]`, "any of" groups, each a group of chips.
export function groupsOf(when) {
  if (isObject(when) && Object.keys(when).length === 1 && Array.isArray(when.any)) {
    return { anyOf: true, groups: when.any };
  }
  return { anyOf: false, groups: [when] };
}

// Another "or" group: a `when` of one group becomes `any: [that group, {}]`. The new,
// empty group is an error until it has a chip (the checks say so beside the rule).
export function addGroup(owner) {
  if (groupsOf(owner.when).anyOf) owner.when.any.push({});
  else owner.when = { any: [owner.when, {}] };
  return owner.when.any.length - 1;
}

// Removes "or" group `gi`; with one left, the `when` is that group again.
export function removeGroup(owner, gi) {
  owner.when.any.splice(gi, 1);
  if (owner.when.any.length === 1) owner.when = owner.when.any[0];
}

// A chip's words: "MNTL", "22:00–06:00", "priority 2–4".
export function valueText(key, value) {
  if (KINDS[key] && KINDS[key].range) {
    const lo = value && value.min !== undefined && value.min !== null ? value.min : "";
    const hi = value && value.max !== undefined && value.max !== null ? value.max : "";
    if (lo !== "" && hi !== "") return lo === hi ? `${lo}` : `${lo}–${hi}`;
    return lo !== "" ? `${lo} or more` : `${hi} or less`;
  }
  if (KINDS[key] && KINDS[key].window) return `${value.start}–${value.end}`;
  return String(value);
}

// Adds a value to a group; false when it was there already or is blank.
export function addChip(group, key, value) {
  const kind = KINDS[key];
  if (!kind) throw new Error(`unknown condition ${key}`);
  if (kind.list) {
    let v = String(value).trim();
    if (!v) return false;
    if (kind.upper) v = v.toUpperCase();
    const list = Array.isArray(group[key]) ? group[key] : [];
    if (list.some((x) => String(x).toLowerCase() === v.toLowerCase())) return false;
    group[key] = [...list, v];
    return true;
  }
  if (kind.range) {
    const out = {};
    if (value.min !== "" && value.min !== null && value.min !== undefined) out.min = Number(value.min);
    if (value.max !== "" && value.max !== null && value.max !== undefined) out.max = Number(value.max);
    if (!Object.keys(out).length) return false;
    group[key] = out;
    return true;
  }
  if (!value.start || !value.end) return false;
  group[key] = { start: value.start, end: value.end };
  return true;
}

// Removes one value (a list's item) or the whole key (a range or a window). A list
// emptied loses its key: an empty list is not a condition.
export function removeChip(group, key, index) {
  if (Array.isArray(group[key])) {
    group[key] = group[key].filter((_, i) => i !== index);
    if (!group[key].length) delete group[key];
  } else {
    delete group[key];
  }
}

// --- rules --------------------------------------------------------------------------

function freeId(doc, base) {
  const taken = new Set([...(doc.rules || []), ...(doc.exclusions || [])].map((r) => r.id));
  if (!taken.has(base)) return base;
  for (let n = 2; ; n += 1) if (!taken.has(`${base}-${n}`)) return `${base}-${n}`;
}

export function addRule(doc) {
  const rule = { id: freeId(doc, "new-rule"), category: (doc.categories || [])[0] || "",
                 action: "team", when: {} };
  doc.rules.push(rule);
  return doc.rules.length - 1;
}

export function duplicateRule(doc, i) {
  const copy = structuredClone(doc.rules[i]);
  copy.id = freeId(doc, `${doc.rules[i].id}-copy`);
  doc.rules.splice(i + 1, 0, copy);
  return i + 1;
}

export function deleteRule(doc, i) { doc.rules.splice(i, 1); }

// Moves rule `from` to position `to` (after removing it); the rule's new index.
export function moveRule(doc, from, to) {
  const n = doc.rules.length;
  const target = Math.max(0, Math.min(n - 1, to));
  if (from === target) return from;
  const [rule] = doc.rules.splice(from, 1);
  doc.rules.splice(target, 0, rule);
  return target;
}

export function setDisabled(rule, disabled) {
  if (disabled) rule.disabled = true;
  else delete rule.disabled;  // the default: no key, as a policy written by hand has it
}

// --- program settings ---------------------------------------------------------------

// "08:00-12:00, 13:00-20:00" <-> ["08:00-12:00", "13:00-20:00"]; "none" is no shift.
export function shiftsText(list) {
  if (list === undefined || list === null) return "";
  return list.length ? list.join(", ") : "none";
}

export function parseShifts(text) {
  const t = text.trim();
  if (!t) return undefined;
  if (t.toLowerCase() === "none") return [];
  return t.split(/[,\s]+/).filter(Boolean);
}

export function listText(list) { return Array.isArray(list) ? list.join(", ") : ""; }

export function parseList(text) {
  return text.split(",").map((s) => s.trim()).filter(Boolean);
}

// Sets obj[key], or removes it for undefined: a field left blank is not written.
export function setOrDrop(obj, key, value) {
  if (value === undefined || value === null || value === "") delete obj[key];
  else obj[key] = value;
}

// Where an error's path points: {section: "rules", index: 3} for "rules[3].when...".
export function pathTarget(path) {
  const m = /^(rules|exclusions|programs)\[(\d+)\]/.exec(path || "");
  return m ? { section: m[1], index: Number(m[2]) } : null;
}
