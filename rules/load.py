"""Load a policy document and report every error with its path and reason."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from rules.models import Policy, reference_errors

DEFAULT_POLICY = "st_petersburg_call.yaml"


@dataclass(frozen=True)
class PolicyError:
    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" if self.path else self.reason


class PolicyInvalid(Exception):
    """A policy document that cannot be used; carries every error found."""

    def __init__(self, errors: list[PolicyError], source: str = "policy") -> None:
        self.errors = errors
        self.source = source
        super().__init__(f"{source} is invalid:\n" + "\n".join(f"  {e}" for e in errors))


def error_path(loc: tuple[int | str, ...] | list[int | str]) -> str:
    """A validation error's location as a path a person reads: `rules[3].when.nature_code`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def errors_from_validation(exc: ValidationError) -> list[PolicyError]:
    return [PolicyError(error_path(err["loc"]), err["msg"].removeprefix("Value error, "))
            for err in exc.errors()]


def inline_area_files(document: dict[str, Any], base_dir: Path | None) -> list[PolicyError]:
    """Read each program's `area.file` (GeoJSON beside the policy) into `area.polygons`,
    in place; every file that cannot be used is an error at its path."""
    errors: list[PolicyError] = []
    programs = document.get("programs")
    for i, program in enumerate(programs if isinstance(programs, list) else []):
        area = program.get("area") if isinstance(program, dict) else None
        name = area.get("file") if isinstance(area, dict) else None
        if not isinstance(name, str):
            continue
        path = f"programs[{i}].area.file"
        if base_dir is None:
            errors.append(PolicyError(path, "an area file is read beside the policy file; "
                                            "a policy given as text must put its polygons "
                                            "inline (area.polygons)"))
            continue
        target = (base_dir / name).resolve()
        if Path(name).is_absolute() or not target.is_relative_to(base_dir.resolve()):
            errors.append(PolicyError(path, f"'{name}' must be a path inside the policy's "
                                            "folder"))
            continue
        if area.get("polygons") is not None:  # type: ignore[union-attr]
            errors.append(PolicyError(path, "give polygons or a file, not both"))
            continue
        try:
            area["polygons"] = json.loads(target.read_text(encoding="utf-8"))  # type: ignore[index]
        except OSError as exc:
            errors.append(PolicyError(path, f"cannot read {name}: {exc.strerror}"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            errors.append(PolicyError(path, f"{name} is not GeoJSON (JSON text): {exc}"))
    return errors


def parse_policy(document: Any, source: str = "policy", base_dir: Path | None = None
                 ) -> Policy:
    """Validate an already-parsed document; raise PolicyInvalid with every error.
    `base_dir`: the policy file's folder, where its area files are (none for text)."""
    if not isinstance(document, dict):
        raise PolicyInvalid([PolicyError("", "a policy must be a mapping at the top")], source)
    files = inline_area_files(document, base_dir)
    references = [PolicyError(path, reason) for path, reason in reference_errors(document)]
    try:
        policy = Policy.model_validate(document)
    except ValidationError as exc:
        # The model's own cross-reference check (empty loc) is reported from the raw
        # document instead, so it shows even when other fields are wrong too.
        fields = [e for e in errors_from_validation(exc) if e.path]
        raise PolicyInvalid(files + fields + references, source) from None
    if files:
        raise PolicyInvalid(files + references, source)
    return policy


def yaml_error(exc: yaml.YAMLError) -> PolicyError:
    """Where a YAML text stopped parsing (line and column, when YAML knows them), and why."""
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    return PolicyError(where, f"not valid YAML: {exc}")


def load_policy_text(text: str, source: str = "policy", base_dir: Path | None = None
                     ) -> Policy:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyInvalid([yaml_error(exc)], source) from None
    return parse_policy(document, source, base_dir)


def load_policy_file(path: str | Path) -> Policy:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyInvalid([PolicyError("", f"cannot read {p}: {exc.strerror}")], str(p)) from None
    except UnicodeDecodeError as exc:
        raise PolicyInvalid([PolicyError("", f"{p} is not UTF-8 text ({exc.reason} at byte "
                                             f"{exc.start})")], str(p)) from None
    return load_policy_text(text, str(p), p.parent)


def self_contained_text(path: str | Path) -> str:
    """A policy file's text as it is kept where no file sits beside it (the database, the
    API): the same text, or, when programs name area files, the document with each file's
    polygons put inline (`area.polygons`, the file's name dropped), so the stored version
    reads alone. The file must load (load_policy_file first)."""
    p = Path(path)
    text = p.read_text(encoding="utf-8")
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError:
        return text  # whoever reads it says where it is broken
    programs = document.get("programs") if isinstance(document, dict) else None
    if not any(isinstance(q, dict) and isinstance(q.get("area"), dict)
               and "file" in q["area"] for q in programs or []):
        return text
    errors = inline_area_files(document, p.parent)
    if errors:
        raise PolicyInvalid(errors, str(p))
    names = []
    for program in document["programs"]:
        area = program.get("area")
        if isinstance(area, dict) and "file" in area:
            names.append(area.pop("file"))
    head = (f"# {p.name}, with its area files ({', '.join(names)}) inline: the polygons\n"
            "# below were read from them when this version was stored.\n")
    return head + yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


def default_policy_text() -> str:
    return resources.files("rules.policies").joinpath(DEFAULT_POLICY).read_text("utf-8")


def load_default_policy() -> Policy:
    return load_policy_text(default_policy_text(), f"shipped {DEFAULT_POLICY}")
