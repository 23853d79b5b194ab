"""The policy in force, and how it is replaced without ever losing the last good one."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from rules.evaluate import CompiledPolicy, compile_policy
from rules.load import PolicyInvalid, load_default_policy, load_policy_file

log = logging.getLogger("liaison.policy")


@dataclass
class PolicyHolder:
    source: str  # a file path, or "" for the shipped policy
    compiled: CompiledPolicy
    last_error: PolicyInvalid | None = None

    @classmethod
    def load(cls, source: str) -> PolicyHolder:
        """Load at start-up: a broken policy here is fatal (there is no last good one)."""
        policy = load_policy_file(source) if source else load_default_policy()
        return cls(source=source, compiled=compile_policy(policy))

    def reload(self) -> bool:
        """Re-read the source; on any error keep the policy in force and say why."""
        try:
            policy = load_policy_file(self.source) if self.source else load_default_policy()
        except PolicyInvalid as exc:
            self.last_error = exc
            log.error("policy reload refused, keeping %s: %s", self.compiled.version, exc)
            return False
        self.compiled = compile_policy(policy)
        self.last_error = None
        log.info("policy %s in force", self.compiled.version)
        return True
