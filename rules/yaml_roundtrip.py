"""A policy object written back as YAML, keeping the comments and layout of the text it
came from: what the structured policy editor saves.

The editor edits the policy as an object (JSON); its supervisor's comments live only in
the YAML. `to_yaml(document, base)` loads `base` in ruamel.yaml's round-trip mode and
merges the object into it:
- mappings key by key: the base's key order kept, new keys appended, keys gone removed;
- `rules`, `exclusions` and `programs` matched by `id`, `tests` by `name`, in the object's
  order (an entry whose key changed in place keeps its place's node); the comments before
  an entry travel with it, and an entry removed takes its comments with it;
- other lists of mappings by position; lists of scalars replaced, keeping their flow or
  block style;
- a scalar equal to the base's keeps the base's spelling (quotes and all).
With no base, a plain dump (block mappings, short lists of scalars in flow style).
Lines are not folded: ruamel folds flow lists mid-phrase. So that a flow list the base
wrapped over several lines does not come out on one (and a saved draft's diff shows only
what the supervisor changed), every part of the merged text whose value the edit left
unchanged is then replaced by the base's own lines for it (`_keep_untouched`).

Whatever the merge does, the text reads back (PyYAML, as the service parses policies) as
exactly the object: if it ever would not (or ruamel fails on the base), the plain dump is
given instead, and failing that PyYAML's, and failing that every string escaped.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

# The lists whose entries are named, and by what.
KEYED = {"rules": "id", "exclusions": "id", "programs": "id", "tests": "name"}
WIDTH = 4096  # no folding: ruamel folds flow lists mid-phrase and leaves trailing spaces
FLOW_UP_TO = 72  # a new list of scalars longer than this is written one item a line
_STR = "tag:yaml.org,2002:str"
_RESOLVER = yaml.resolver.Resolver()


def to_yaml(document: Mapping[str, Any], base: str | None = None) -> str:
    """`document` as YAML text, merged into `base` (YAML text) when given."""
    writers = [lambda: _merged(document, base)] if base is not None else []
    writers += [lambda: _dump(_fresh(document)),
                lambda: yaml.safe_dump(dict(document), sort_keys=False, allow_unicode=True,
                                       width=WIDTH),
                lambda: _escaped(document)]
    for write in writers:
        try:
            text = write()
        except Exception:  # noqa: BLE001 - any base or value ruamel chokes on: the next writer
            continue
        if text is not None and _reads_back(text, document):
            return text
    raise ValueError("the document cannot be written as YAML")  # _escaped always reads back


def _escaped(value: Any) -> str:
    """The last resort: flow YAML with every string double-quoted and escaped, which reads
    back exactly whatever it holds (PyYAML writes a NEL in a key it cannot read back, and
    JSON's surrogate pairs read back as two characters)."""
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_escaped(k)}: {_escaped(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_escaped(v) for v in value) + "]"
    if isinstance(value, str):
        return '"' + "".join(_escape(ch) for ch in value) + '"'
    if isinstance(value, float):
        return f"!!float {value!r}"  # PyYAML's plain floats need a dot: 1e+300 has none
    return json.dumps(value)  # null, true, false, an integer


def _escape(ch: str) -> str:
    code = ord(ch)
    if ch in '"\\':
        return "\\" + ch
    if 0x20 <= code < 0x7F:
        return ch
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}" if code <= 0xFFFF \
        else f"\\U{code:08x}"


def _merged(document: Mapping[str, Any], base: str) -> str | None:
    loaded = _yaml().load(base)
    if not isinstance(loaded, CommentedMap):
        return None  # the editor's last text may not parse to a mapping: a plain dump then
    merged = _dump(_merge(loaded, document, None))
    try:
        kept = _keep_untouched(base, merged, document)
    except Exception:  # noqa: BLE001 - keeping the base's lines is a nicety: the merge stands
        return merged
    return kept if _reads_back(kept, document) else merged


def _keep_untouched(base: str, merged: str, document: Mapping[str, Any]) -> str:
    """`merged` with the lines of every block-style part whose value is the base's (its key
    and value, or its list entry) taken from `base` as written, re-indented to the merged
    text's column; parts that changed are looked into the same way."""
    lines = merged.splitlines(keepends=True)
    base_lines = base.splitlines(keepends=True)
    swaps: list[tuple[int, int, list[str]]] = []

    def walk(b: Any, o: Any, bval: Any, dval: Any, b_stop: int, o_stop: int) -> None:
        if isinstance(b, CommentedMap) and isinstance(o, CommentedMap) \
                and isinstance(bval, Mapping) and isinstance(dval, Mapping) \
                and not b.fa.flow_style() and not o.fa.flow_style():
            pairs = [(k, k) for k in o if k in b and k in bval and k in dval]
            places_b = _places(b, list(b), lambda n, k: n.lc.key(k), b_stop)
            places_o = _places(o, list(o), lambda n, k: n.lc.key(k), o_stop)
        elif isinstance(b, CommentedSeq) and isinstance(o, CommentedSeq) \
                and isinstance(bval, list) and isinstance(dval, list) \
                and not b.fa.flow_style() and not o.fa.flow_style():
            pairs = _pair_items(bval, dval)
            places_b = _places(b, list(range(len(b))), lambda n, i: n.lc.item(i), b_stop)
            places_o = _places(o, list(range(len(o))), lambda n, i: n.lc.item(i), o_stop)
        else:
            return
        for bk, ok in pairs:
            (bs, bstop, bcol), (os_, ostop, ocol) = places_b[bk], places_o[ok]
            if bval[bk] == dval[ok] and type(bval[bk]) is type(dval[ok]):
                body = _reindent(base_lines[bs:_content_end(base_lines, bs, bstop)],
                                 ocol - bcol)
                if body is not None:
                    swaps.append((os_, _content_end(lines, os_, ostop), body))
            else:
                walk(b[bk], o[ok], bval[bk], dval[ok], bstop, ostop)

    walk(_yaml().load(base), _yaml().load(merged), yaml.safe_load(base), document,
         len(base_lines), len(lines))
    for start, end, body in sorted(swaps, reverse=True):
        lines[start:end] = body
    return "".join(lines)


def _pair_items(old: list[Any], new: list[Any]) -> list[tuple[int, int]]:
    """Each new entry with the old one it continues: an equal one first, else the one of
    the same id or name, else the one in its place."""
    pairs: dict[int, int] = {}
    free = list(range(len(old)))
    for i, value in enumerate(new):
        j = next((j for j in free if old[j] == value), None)
        if j is not None:
            pairs[i] = j
            free.remove(j)
    for i, value in enumerate(new):
        if i in pairs or not isinstance(value, Mapping):
            continue
        for field in ("id", "name"):
            j = next((j for j in free if isinstance(old[j], Mapping) and field in value
                      and old[j].get(field) == value[field]), None)
            if j is not None:
                pairs[i] = j
                free.remove(j)
                break
        else:
            if i in free:
                pairs[i] = i
                free.remove(i)
    return [(j, i) for i, j in sorted(pairs.items())]


def _places(node: Any, keys: list[Any], where: Any, stop: int) -> dict[Any, tuple[int, int, int]]:
    """Per key (or index) of a block node: its first line, the line its next sibling (or
    the node's end) starts on, and its column."""
    at = [where(node, k) for k in keys]
    return {k: (line, at[n + 1][0] if n + 1 < len(keys) else stop, col)
            for n, (k, (line, col)) in enumerate(zip(keys, at, strict=True))}


def _content_end(lines: list[str], start: int, stop: int) -> int:
    """The end of a part's own lines: the comment and blank lines before the next part are
    the next part's."""
    end = stop
    while end > start + 1 and (not lines[end - 1].strip()
                               or lines[end - 1].lstrip().startswith("#")):
        end -= 1
    return end


def _reindent(body: list[str], by: int) -> list[str] | None:
    if by >= 0:
        return [(" " * by + line) if line.strip() else line for line in body]
    cut = -by
    if any(line.strip() and not line.startswith(" " * cut) for line in body):
        return None
    return [line[cut:] if line.strip() else line for line in body]


def _yaml() -> YAML:
    y = YAML()  # round-trip mode
    y.preserve_quotes = True
    y.width = WIDTH
    y.indent(mapping=2, sequence=4, offset=2)
    y.representer.add_representer(_Float, _represent_float)
    return y


def _dump(node: Any) -> str:
    out = io.StringIO()
    _yaml().dump(node, out)
    return out.getvalue()


def _reads_back(text: str, document: Mapping[str, Any]) -> bool:
    try:
        return bool(yaml.safe_load(text) == document)
    except yaml.YAMLError:
        return False


def _is_scalar(value: Any) -> bool:
    return not isinstance(value, Mapping | list)


def _kind(value: Any) -> type:
    """The plain type of a scalar (ruamel's ScalarInt, quoted strings… as their base)."""
    for t in (bool, int, float, str):
        if isinstance(value, t):
            return t
    return type(value)


def _same(old: Any, new: Any) -> bool:
    return _is_scalar(old) and _is_scalar(new) and _kind(old) is _kind(new) and old == new


class _Float(str):
    """A float spelled so that PyYAML reads it as one (`5.0e-324`: its floats need a dot)."""


def _represent_float(representer: Any, data: _Float) -> Any:
    return representer.represent_scalar("tag:yaml.org,2002:float", str(data))


def _scalar(value: Any) -> Any:
    """A new scalar; a string PyYAML would read as something else (`yes`, `12:30`, a
    date) is quoted, whatever YAML 1.2 (ruamel's) makes of it; a float written without a
    dot (`5e-324`, which PyYAML reads as a string) gets one. A string that starts with `:`
    or `?` is quoted too: ruamel writes it plain, and in a flow list (`[:0]`) PyYAML
    cannot read it back."""
    if isinstance(value, str) and (value[:1] in (":", "?") or _RESOLVER.resolve(
            yaml.ScalarNode, value, (True, False)) != _STR):
        return DoubleQuotedScalarString(value)
    if isinstance(value, float) and "e" in repr(value) and "." not in repr(value):
        return _Float(repr(value).replace("e", ".0e", 1))
    return value


def _fresh(value: Any) -> Any:
    """A new node: mappings in block style, short lists of scalars in flow style."""
    if isinstance(value, Mapping):
        out = CommentedMap()
        for k, v in value.items():
            out[_scalar(k)] = _fresh(v)
        return out
    if isinstance(value, list):
        seq = CommentedSeq(_fresh(v) for v in value)
        if value and all(_is_scalar(v) for v in value) \
                and sum(len(str(v)) + 2 for v in value) <= FLOW_UP_TO:
            seq.fa.set_flow_style()
        return seq
    return _scalar(value)


def _merge(old: Any, new: Any, key: Any) -> Any:
    """`new` in the place of `old` (found under `key`), keeping what of `old` it can."""
    if isinstance(new, Mapping) and isinstance(old, CommentedMap):
        return _merge_map(old, new)
    if isinstance(new, list) and isinstance(old, CommentedSeq):
        if all(_is_scalar(v) for v in new) and all(_is_scalar(v) for v in old):
            return _merge_scalars(old, new)
        field = KEYED.get(key) if isinstance(key, str) else None
        return _merge_seq(old, new, field)
    if _same(old, new):
        return old
    return _fresh(new)


def _merge_map(old: CommentedMap, new: Mapping[str, Any]) -> CommentedMap:
    for k in [k for k in old if k not in new]:
        _drop_key(old, k)
    for k, v in new.items():
        if k in old:
            old[k] = _merge(old[k], v, k)
        else:
            old[_scalar(k)] = _fresh(v)
    return old


def _drop_key(node: CommentedMap, key: Any) -> None:
    """Remove `key`. The comment lines after its value are the next key's (ruamel keeps a
    key's leading comments on the key before it): they go to the key before when it has
    comments of its own to carry them (else they go with the key)."""
    keys = list(node)
    token = node.ca.items.get(key, [None] * 4)
    after = _following_lines(token[2]) if len(token) > 2 and token[2] is not None else ""
    del node[key]
    at = keys.index(key)
    prev = node.ca.items.get(keys[at - 1]) if at > 0 else None
    if after and prev is not None and len(prev) > 2 and prev[2] is not None:
        prev[2].value = prev[2].value.rstrip("\n") + "\n" + after


def _following_lines(token: Any) -> str:
    """The lines of a comment token after its first (the key's own end-of-line part)."""
    value = getattr(token, "value", "") or ""
    _, _, rest = value.partition("\n")
    return rest


def _merge_scalars(old: CommentedSeq, new: list[Any]) -> CommentedSeq:
    """A list of scalars replaced, keeping its style; the comments after its last item
    (often the next section's heading) stay after the last item."""
    if len(old) == len(new) and all(_same(a, b) for a, b in zip(old, new, strict=True)):
        return old
    seq = CommentedSeq(_scalar(v) for v in new)
    old.copy_attributes(seq)
    items = dict(old.ca.items)
    last = items.pop(len(old) - 1, None)
    seq.ca.items.clear()
    seq.ca.items.update({i: c for i, c in items.items() if i < len(new)})
    if last is not None and new:
        seq.ca.items[len(new) - 1] = last
    return seq


def _merge_seq(old: CommentedSeq, new: list[Any], field: str | None) -> CommentedSeq:
    """A list of mappings (or mixed): entries matched by `field` when the list is keyed,
    else by position; each entry's comments travel with it."""
    matched = _match(old, new, field)
    seq = CommentedSeq()
    old.copy_attributes(seq)
    items = dict(old.ca.items)
    seq.ca.items.clear()
    for i, (value, j) in enumerate(zip(new, matched, strict=True)):
        if j is None:
            seq.append(_fresh(value))
            continue
        seq.append(_merge(old[j], value, None))
        if j in items:
            seq.ca.items[i] = items[j]
    return seq


def _match(old: CommentedSeq, new: list[Any], field: str | None) -> list[int | None]:
    """For each new entry, the index of the old one it continues (None: a new entry)."""
    if field is None:
        return [i if i < len(old) else None for i in range(len(new))]
    free: dict[Any, list[int]] = {}
    for i, entry in enumerate(old):
        if isinstance(entry, Mapping):
            free.setdefault(entry.get(field), []).append(i)
    taken: set[int] = set()
    out: list[int | None] = []
    for value in new:
        ids = free.get(value.get(field)) if isinstance(value, Mapping) else None
        j = ids.pop(0) if ids else None
        out.append(j)
        if j is not None:
            taken.add(j)
    # An entry renamed where it stands (its key edited) continues the entry that was there.
    for i, j in enumerate(out):
        if j is None and i < len(old) and i not in taken and isinstance(new[i], Mapping) \
                and isinstance(old[i], Mapping):
            out[i] = i
            taken.add(i)
    return out
