"""Ids of new rows that are inserted often (a call's): time-ordered, so index inserts
land at the right-hand edge of each index.

Why: a call's id is the key of the call table and of the call_id indexes of its events,
decisions and board messages. A random id (uuid4) puts each new call's entries on a page
of its own in every one of those indexes, so a batch of calls dirties a page per call
per index: more pages for SQLite's WAL and PostgreSQL's (its full-page images after
each checkpoint), and, once the indexes outgrow the cache, a read per entry. A
time-ordered id puts a batch's entries side by side.

The id is a UUID version 7 (RFC 9562) as 32 hex digits, like uuid4().hex was: 48 bits of
Unix time in milliseconds, then 74 random bits, so ids stay unguessable and unique.
"""

from __future__ import annotations

import secrets
import time
import uuid


def time_ordered_id() -> str:
    """A new UUIDv7, as 32 lowercase hex digits."""
    ms = time.time_ns() // 1_000_000
    rand = secrets.randbits(74)
    value = (ms & (2**48 - 1)) << 80 | 0x7 << 76 | (rand >> 62) << 64 | 0b10 << 62 \
        | (rand & (2**62 - 1))
    return uuid.UUID(int=value).hex
