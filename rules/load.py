"""Load a policy document and report every error with its path and reason."""

from __future__ import annotations

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


def parse_policy(document: Any, source: str = "policy") -> Policy:
    """Validate an already-parsed document; raise PolicyInvalid with every error."""
    if not isinstance(document, dict):
        raise PolicyInvalid([PolicyError("", "a policy must be a mapping at the top")], source)
    references = [PolicyError(path, reason) for path, reason in reference_errors(document)]
    try:
        policy = Policy.model_validate(document)
    except ValidationError as exc:
        # The model's own cross-reference check (empty loc) is reported from the raw
        # document instead, so it shows even when other fields are wrong too.
        fields = [e for e in errors_from_validation(exc) if e.path]
        raise PolicyInvalid(fields + references, source) from None
    return policy


def yaml_error(exc: yaml.YAMLError) -> PolicyError:
    """Where a YAML text stopped parsing (line and column, when YAML knows them), and why."""
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    return PolicyError(where, f"not valid YAML: {exc}")


def load_policy_text(text: str, source: str = "policy") -> Policy:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyInvalid([yaml_error(exc)], source) from None
    return parse_policy(document, source)


def load_policy_file(path: str | Path) -> Policy:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyInvalid([PolicyError("", f"cannot read {p}: {exc.strerror}")], str(p)) from None
    except UnicodeDecodeError as exc:
        raise PolicyInvalid([PolicyError("", f"{p} is not UTF-8 text ({exc.reason} at byte "
                                             f"{exc.start})")], str(p)) from None
    return load_policy_text(text, str(p))


def default_policy_text() -> str:
    return resources.files("rules.policies").joinpath(DEFAULT_POLICY).read_text("utf-8")


def load_default_policy() -> Policy:
    return load_policy_text(default_policy_text(), f"shipped {DEFAULT_POLICY}")
