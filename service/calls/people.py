"""Keys that link a call to earlier calls about the same person or address. Pure."""

from __future__ import annotations

import hashlib
import re

from service.calls.event import Person

YOUTH_UNDER = 18  # ages below this count as youth in the equity figures

_NOT_WORD = re.compile(r"[^0-9A-Z]+")


def person_key(source: str, person: Person | None) -> str | None:
    """A hash of the CAD's person id, scoped to the CAD: links repeat contacts and counts
    unique clients without keeping the id in an indexed column."""
    if person is None or not person.id:
        return None
    return hashlib.sha256(f"{source}\x1f{person.id.strip()}".encode()).hexdigest()


def address_key(address: str | None) -> str | None:
    """One spelling of an address: case, punctuation and spacing folded."""
    if not address:
        return None
    folded = _NOT_WORD.sub(" ", address.upper()).strip()
    return folded[:300] or None


def age_group(person: Person | None) -> str | None:
    if person is None:
        return None
    if person.age is not None:
        return "youth" if person.age < YOUTH_UNDER else "adult"
    return person.age_group
