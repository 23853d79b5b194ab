"""A new call's id (service/store/ids.py): a UUID version 7, in the order made."""

from __future__ import annotations

import time
import uuid

from service.store.ids import time_ordered_id


def test_ids_are_uuid7_hex_and_sort_in_the_order_they_were_made() -> None:
    made = []
    for _ in range(5):
        made.append(time_ordered_id())
        time.sleep(0.002)  # the order is the millisecond's: ids of one millisecond tie
    assert made == sorted(made)
    for value in made:
        parsed = uuid.UUID(value)
        assert (len(value), value, parsed.version, parsed.variant) == (
            32, parsed.hex, 7, uuid.RFC_4122)
        # The first 48 bits are the time it was made, in milliseconds.
        assert abs(int(value[:12], 16) - time.time_ns() // 1_000_000) < 60_000


def test_ids_of_one_millisecond_differ() -> None:
    ids = {time_ordered_id() for _ in range(10_000)}
    assert len(ids) == 10_000
