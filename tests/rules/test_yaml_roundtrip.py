"""The editor's object written back as YAML (rules/yaml_roundtrip.py): what it writes always
reads back as the object (form → YAML → form loses nothing), and merged into the text it
came from, the comments of what was not touched are kept, travelling with their entries."""

from __future__ import annotations

import copy
import difflib
import re
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from rules.load import default_policy_text
from rules.yaml_roundtrip import to_yaml

BASE = default_policy_text()


def shipped() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(BASE)
    return loaded


def comments(text: str) -> list[str]:
    """Every comment in `text` (whole-line and end-of-line), as written. The shipped policy
    has no '#' inside a value."""
    return [line[line.index("#"):].strip() for line in text.splitlines() if "#" in line]


def lines_after(text: str, comment: str) -> str:
    """The first line that is not a comment after the line holding `comment`."""
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if comment in line)
    return next(line for line in lines[at + 1:] if not line.strip().startswith("#"))


def rule(d: dict[str, Any], rid: str) -> dict[str, Any]:
    found: dict[str, Any] = next(r for r in d["rules"] if r["id"] == rid)
    return found


def test_unchanged_reads_back_with_every_comment() -> None:
    d = shipped()
    out = to_yaml(d, BASE)
    assert yaml.safe_load(out) == d
    assert comments(out) == comments(BASE)
    assert 'version: "1"' in out and 'channel: "911"' in out  # quotes kept


def test_a_rule_added_one_moved_one_edited_keeps_the_comments_of_the_rest() -> None:
    d = shipped()
    d["rules"].insert(3, {"id": "welfare-words", "category": "call_for_assistance",
                          "action": "team", "when": {"nature_code": ["WELF"],
                                                     "text_any": ["check on"]}})
    d["rules"].insert(0, d["rules"].pop(d["rules"].index(rule(d, "truancy"))))  # moved
    homeless = rule(d, "homelessness")  # edited: an action, a condition, a new key
    homeless["action"] = "joint"
    homeless["when"]["any"][0]["nature_code"].append("CAMP")
    homeless["description"] = "Unhoused people, encampments."
    out = to_yaml(d, BASE)
    assert yaml.safe_load(out) == d
    assert comments(out) == comments(BASE)
    # Key order: the base's kept, the new key last.
    assert list(rule(yaml.safe_load(out), "homelessness")) == \
        ["id", "category", "action", "when", "description"]
    # A list of scalars edited keeps its flow style.
    assert "- nature_code: [VAG, PHANDLE, CAMP]" in out


def test_unchanged_is_the_base_word_for_word() -> None:
    # ruamel would write the base's wrapped flow lists on one line each.
    assert to_yaml(shipped(), BASE) == BASE


def changed_lines(before: str, after: str) -> list[str]:
    return [line for line in difflib.unified_diff(before.splitlines(), after.splitlines(),
                                                  lineterm="", n=0)
            if line[:1] in "+-" and line[:3] not in ("+++", "---")]


def test_a_saved_edit_changes_only_the_lines_of_what_was_edited() -> None:
    d = shipped()
    d["policy"]["version"] = "2"
    d["programs"][0]["units"] = 5
    at = next(i for i, r in enumerate(d["rules"]) if r["id"] == "mental-health")
    d["rules"][at]["when"]["any"][0]["nature_code"].append("HOARD")
    d["rules"].insert(at + 2, d["rules"].pop(at))
    d["rules"].append({"id": "hoarding", "category": "mental_health", "action": "team",
                       "when": {"nature_code": ["HOARD"], "text_any": ["hoarding"]}})
    gone = d["tests"].pop(3)["name"]
    out = to_yaml(d, BASE)
    assert yaml.safe_load(out) == d
    changed = changed_lines(BASE, out)
    # The version, the units (its comment kept), the moved rule out and in (its one edited
    # line and its wrapped phrases as written), the new rule, the test case removed.
    assert ['-  version: "1"', '+  version: "2"'] == changed[:2]
    assert any(line.startswith("+    units: 5 ") and "# navigator pairs" in line
               for line in changed)
    assert "+        - nature_code: [EDP, MNTL, SUICTHRT, SCRM, HOARD]" in changed
    assert "+                     hearing voices, baker act, emotionally disturbed, " \
           "behavioral health]" in changed
    assert "+  - id: hoarding" in changed
    assert f"-  - name: {gone}" in changed
    assert len(changed) == 2 + 2 + 8 + 8 + 6 + 4


def test_comments_travel_with_their_entry_and_go_with_it() -> None:
    d = shipped()
    heading = "# Programs, areas, queues and deferrals."
    first_of_section = "a local time without an offset is read in the program's zone"
    assert first_of_section in lines_after(BASE, heading)
    # The test case the comment heads, moved first: the comment comes along.
    at = next(i for i, t in enumerate(d["tests"]) if t["name"].startswith(first_of_section))
    d["tests"].insert(0, d["tests"].pop(at))
    out = to_yaml(d, BASE)
    assert yaml.safe_load(out) == d
    assert first_of_section in lines_after(out, heading)
    assert comments(out) == [c for c in comments(BASE)]  # none lost, none doubled
    # Removed: its comment goes with it, and no other.
    d["tests"].pop(0)
    out = to_yaml(d, BASE)
    assert yaml.safe_load(out) == d
    kept = [c for c in comments(BASE) if not c.startswith(heading)
            and not c.startswith("# policy's zone, so these cases")]
    assert comments(out) == kept


def test_a_program_setting_removed_leaves_the_next_ones_comment() -> None:
    d = shipped()
    del d["programs"][0]["units"]  # its own comment goes; the area's heading stays
    out = to_yaml(d, BASE)
    assert yaml.safe_load(out) == d
    assert "# navigator pairs on shift (navigators work in pairs)" not in out
    assert "# The city's police districts, as its CAD names them on each call (D1-D4). A call" \
        in out


def test_lists_of_scalars_keep_their_style_and_their_trailing_comment() -> None:
    d = shipped()
    d["categories"].append("welfare")  # a block list, followed by the exclusions' heading
    d["programs"][0]["categories"].remove("truancy")  # a flow list
    out = to_yaml(d, BASE)
    assert yaml.safe_load(out) == d
    assert "  - welfare\n" in out
    assert "    categories: [mental_health, substance_use, disorderly_juvenile, " \
           "neighbor_dispute," in out
    assert lines_after(out, "# Every exclusion is tested on every call") == "exclusions:"
    assert comments(out) == comments(BASE)


def test_strings_pyyaml_would_misread_are_quoted() -> None:
    d = shipped()
    words = ["yes", "no", "on", "12:30", "2026-03-10", "1e3", "0777", "~", "null", "911",
             "#hashtag", "- dash", "a: b", "", " padded ", "multi\nline",
             ":0", "::x", "?x", "? x"]  # plain in a flow list, PyYAML cannot read these
    rule(d, "truancy")["when"]["any"][1]["text_any"] = words
    d["policy"]["version"] = "2"
    out = to_yaml(d, BASE)
    assert yaml.safe_load(out) == d
    assert comments(out)[:3] == comments(BASE)[:3]  # merged, not the plain dump
    plain = to_yaml(d, None)
    assert yaml.safe_load(plain) == d


def test_without_a_base_a_plain_readable_dump() -> None:
    d = shipped()
    out = to_yaml(d, None)
    assert yaml.safe_load(out) == d
    assert "#" not in out
    assert "  - id: follow-up\n" in out  # block mappings
    assert "nature_code: [EDP, MNTL, SUICTHRT, SCRM]" in out  # short lists in flow style
    assert re.search(r"^ +- mental health$", out, re.M)  # long ones one item a line
    # A base that does not parse, or is not a mapping: the plain dump too.
    assert to_yaml(d, "policy: [unclosed\n") == out
    assert to_yaml(d, "- a list\n") == out


_TEXT = st.text(st.characters(exclude_categories=("Cs", "Cc")), max_size=20)
_SCALAR = st.one_of(_TEXT, st.integers(-10**6, 10**6), st.booleans(), st.none(),
                    st.floats(allow_nan=False, allow_infinity=False),
                    st.sampled_from(["yes", "off", "12:30", "2026-03-10T14:00:00-04:00",
                                     "null", "[x]", "{a: 1}", "*ref", "&a", "!tag", "'", '"']))


@settings(max_examples=25, deadline=None)
@given(description=_SCALAR, phrases=st.lists(_SCALAR, min_size=1, max_size=5),
       extra=st.dictionaries(_TEXT, _SCALAR, max_size=3), drop=st.booleans())
def test_any_edit_reads_back_as_the_object(description: Any, phrases: list[Any],
                                           extra: dict[str, Any], drop: bool) -> None:
    """Form → YAML → form loses nothing, whatever the values, and the merge (not the
    plain dump's safety net) wrote it: the file's heading comment is there."""
    d = copy.deepcopy(shipped())
    target = rule(d, "mental-health")
    target["description"] = description
    target["when"]["any"][1]["text_any"] = phrases
    target.update({f"x-{k}": v for k, v in extra.items()})
    if drop:
        del d["programs"][0]["area"]
    out = to_yaml(d, BASE)
    assert yaml.safe_load(out) == d
    assert out.startswith("# St. Petersburg, FL")


def test_what_no_yaml_writer_reads_back_is_escaped() -> None:
    """A NEL and a character beyond the BMP in a key: neither ruamel nor PyYAML writes it
    so that it reads back; the last resort, every string escaped, does. A base ruamel
    refuses (a duplicate key) is no base."""
    d = {"\x85\U00010000": None, "big": 1e300, "s": ["tab\there", "\ud800"]}
    out = to_yaml(d, "a: 1\na: 2\n")
    assert yaml.safe_load(out) == d


_FRAGMENTS = st.sampled_from([
    "a: 1\n", "b: [x, y]\n", "- z\n", "  c: 2\n", "m: &m {k: 1}\n", "<<: *m\n", "# c\n",
    "e: |\n  t\n", "? [k]\n: v\n", "f: 2026-01-01\n", "---\n", "\t\n", "rules:\n  - id: a\n",
    "  - id: a\n    x: 1 # eol\n", "tests: {name: 1}\n", "!!python/name:os.system x\n"])
_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), _TEXT),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(_TEXT, inner, max_size=3)), max_leaves=8)


@settings(max_examples=100, deadline=None)
@given(base=st.lists(_FRAGMENTS, max_size=6).map("".join),
       document=st.dictionaries(st.sampled_from(["a", "b", "m", "rules", "tests"]) | _TEXT,
                                _VALUES, max_size=4))
def test_any_object_over_any_base_reads_back(base: str, document: dict[str, Any]) -> None:
    assert yaml.safe_load(to_yaml(document, base)) == document
