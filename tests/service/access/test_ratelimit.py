"""The token bucket and the failed-login throttle, on a hand-driven clock: no I/O."""

from __future__ import annotations

import pytest

from service.access.ratelimit import LoginThrottle, RateLimiter, retry_after_header
from service.settings import Settings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def test_a_bucket_spends_its_burst_then_refills_at_the_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=2.0, burst=3, clock=clock)
    assert [limiter.take("k") for _ in range(3)] == [None, None, None]
    wait = limiter.take("k")
    assert wait == pytest.approx(0.5)
    clock.advance(0.25)
    assert limiter.take("k") == pytest.approx(0.25), "a refused take spends nothing"
    clock.advance(0.25)
    assert limiter.take("k") is None
    assert limiter.take("k") == pytest.approx(0.5)
    # Idle long enough, the bucket is full again and never more than full.
    clock.advance(3600)
    assert [limiter.take("k") for _ in range(3)] == [None, None, None]
    assert limiter.take("k") is not None


def test_keys_are_independent() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=1.0, burst=1, clock=clock)
    assert limiter.take("a") is None
    assert limiter.take("a") is not None
    assert limiter.take("b") is None
    limiter.reset("a")
    assert limiter.take("a") is None


def test_a_cost_larger_than_one() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=10.0, burst=10, clock=clock)
    assert limiter.take("k", cost=8) is None
    assert limiter.take("k", cost=8) == pytest.approx(0.6)


def test_rate_zero_is_off_and_memory_is_bounded() -> None:
    off = RateLimiter(rate=0, burst=1)
    assert all(off.take("k") is None for _ in range(1000)) and len(off) == 0
    clock = Clock()
    limiter = RateLimiter(rate=1.0, burst=1, clock=clock, max_keys=100)
    for i in range(1000):
        limiter.take(f"addr-{i}")
    assert len(limiter) == 100
    assert limiter.take("addr-999") is not None, "the most recent keys are kept"
    with pytest.raises(ValueError):
        RateLimiter(rate=1.0, burst=0)


def test_retry_after_header_is_whole_seconds_at_least_one() -> None:
    assert retry_after_header(0.01) == "1"
    assert retry_after_header(1.0) == "1"
    assert retry_after_header(1.2) == "2"
    assert retry_after_header(899.5) == "900"


def throttle(clock: Clock, **kw: float) -> LoginThrottle:
    options: dict[str, float] = {"delay_base": 1.0, "delay_cap": 8.0, "lockout_after": 5,
                                 "window": 900.0, "lockout": 900.0,
                                 "address_lockout_after": 20, **kw}
    return LoginThrottle(clock=clock, **options)  # type: ignore[arg-type]


def test_failures_wait_longer_each_time_then_lock_the_name() -> None:
    clock = Clock()
    t = throttle(clock)
    assert t.check("alice", "10.0.0.1") is None
    waits = []
    for _ in range(4):
        t.failed("alice", "10.0.0.1")
        wait = t.check("alice", "10.0.0.1")
        assert wait is not None
        waits.append(wait)
        clock.advance(wait)
        assert t.check("alice", "10.0.0.1") is None
    assert waits == [1.0, 2.0, 4.0, 8.0]
    assert not t.locked("alice")
    t.failed("alice", "10.0.0.1")  # the fifth within the window
    assert t.locked("alice")
    assert t.check("alice", "10.0.0.1") == pytest.approx(900.0)
    # From another address the name is locked too; another name from this address only
    # waits out the address's own delay (5 failures: 16 s, capped at 8).
    assert t.check("ALICE ", "10.9.9.9") == pytest.approx(900.0), "names are case-folded"
    assert t.check("bob", "10.0.0.1") == pytest.approx(8.0)
    assert t.check("bob", "10.0.0.2") is None
    clock.advance(899)
    assert t.check("alice", "10.9.9.9") == pytest.approx(1.0)
    clock.advance(1)
    assert t.check("alice", "10.9.9.9") is None
    assert not t.locked("alice")


def test_failures_outside_the_window_are_forgotten() -> None:
    clock = Clock()
    t = throttle(clock, delay_base=0.0, window=35.0)
    for _ in range(4):
        t.failed("alice", "a")
        clock.advance(10)
    # The first failure (40 s ago) has left the 35 s window: 4 within it, not locked.
    t.failed("alice", "a")
    assert not t.locked("alice") and t.check("alice", "a") is None
    t.failed("alice", "a")
    assert t.locked("alice")


def test_a_success_clears_the_name_but_not_the_address() -> None:
    clock = Clock()
    t = throttle(clock, delay_base=0.0, address_lockout_after=6)
    for _ in range(4):
        t.failed("alice", "a")
    t.succeeded("alice", "a")
    t.failed("alice", "a")
    assert not t.locked("alice"), "the name starts over after a success"
    # The address has six failures now: locked for every name, a good password or not.
    t.failed("bob", "a")
    assert t.check("carol", "a") == pytest.approx(900.0)
    assert t.check("carol", "elsewhere") is None


def test_one_address_trying_many_names_is_locked() -> None:
    clock = Clock()
    t = throttle(clock, delay_base=0.0)
    for i in range(20):
        assert t.check(f"user{i}", "6.6.6.6") is None
        t.failed(f"user{i}", "6.6.6.6")
    assert t.check("anyone", "6.6.6.6") == pytest.approx(900.0)
    assert not t.locked("user0")


def test_from_settings() -> None:
    clock = Clock()
    t = LoginThrottle.from_settings(Settings(login_lockout_after=2, login_delay_base=0.5,
                                             login_lockout_seconds=60), clock=clock)
    t.failed("x", "a")
    assert t.check("x", "a") == pytest.approx(0.5)
    t.failed("x", "a")
    assert t.check("x", "a") == pytest.approx(60.0)
    with pytest.raises(ValueError):
        LoginThrottle(lockout_after=0)
