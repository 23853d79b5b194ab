"""The policy in force, and how it is replaced without ever losing the last good one."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

from rules.evaluate import CompiledPolicy, compile_policy
from rules.load import (
    PolicyInvalid,
    default_policy_text,
    load_default_policy,
    load_policy_file,
    load_policy_text,
    self_contained_text,
)
from rules.models import Policy
from service.store.tables import DEFAULT_AGENCY

log = logging.getLogger("liaison.policy")


@dataclass
class PolicyHolder:
    source: str  # a file path, or "" for the shipped policy
    compiled: CompiledPolicy
    last_error: PolicyInvalid | None = None
    # The stored published version last seen (service/policy/store.py): (row id, published_at).
    seen: tuple[int, Any] | None = None
    # Which stored version is in force, or None when a file given with --policy is.
    stored_id: int | None = None
    # The YAML text loaded at start-up (stored as the first version of an empty table).
    document: str = ""
    # Whose policy it is (service/policy/region.py): the default agency's unless told.
    agency: str = DEFAULT_AGENCY

    def _compile(self, policy: Policy) -> CompiledPolicy:
        return dataclasses.replace(compile_policy(policy), agency=self.agency)

    @classmethod
    def load(cls, source: str) -> PolicyHolder:
        """Load at start-up: a broken policy here is fatal (there is no last good one)."""
        policy = load_policy_file(source) if source else load_default_policy()
        holder = cls(source=source, compiled=compile_policy(policy))
        # Stored as the first version: area files beside the policy go in with it.
        holder.document = self_contained_text(source) if source else default_policy_text()
        return holder

    @classmethod
    def stored(cls, agency: str, row: Any) -> PolicyHolder | None:
        """The holder of an agency whose policy lives only in the database (not the
        default's file), with `row` in force; None when the row does not load."""
        try:
            policy = load_policy_text(row.document, f"stored version {row.policy_id}@"
                                                    f"{row.version}")
        except PolicyInvalid as exc:
            log.error("stored policy of agency %s refused: %s", agency, exc)
            return None
        compiled = dataclasses.replace(compile_policy(policy), agency=agency)
        log.info("policy %s in force for agency %s (stored version %s)", compiled.version,
                 agency, row.id)
        return cls(source="", compiled=compiled, agency=agency,
                   seen=(row.id, row.published_at), stored_id=row.id)

    def reload(self) -> bool:
        """Re-read the source; on any error keep the policy in force and say why."""
        if not self.source and self.stored_id is not None:
            log.info("policy reload: the stored published version %s stays in force "
                     "(publish a new version through /v1/policies)", self.compiled.version)
            return True
        try:
            policy = load_policy_file(self.source) if self.source else load_default_policy()
        except PolicyInvalid as exc:
            self.last_error = exc
            log.error("policy reload refused, keeping %s: %s", self.compiled.version, exc)
            return False
        self.compiled = self._compile(policy)
        self.last_error = None
        log.info("policy %s in force", self.compiled.version)
        return True

    def adopt(self, row: Any) -> bool:
        """Put a stored version in force; a document that fails to load is refused and the
        policy in force stays (it never should: only valid documents are stored)."""
        self.seen = (row.id, row.published_at)
        try:
            policy = load_policy_text(row.document, f"stored version {row.policy_id}@"
                                                    f"{row.version}")
        except PolicyInvalid as exc:
            self.last_error = exc
            log.error("stored policy refused, keeping %s: %s", self.compiled.version, exc)
            return False
        self.compiled = self._compile(policy)
        self.stored_id = row.id
        self.last_error = None
        log.info("policy %s in force for agency %s (stored version %s)",
                 self.compiled.version, self.agency, row.id)
        return True
