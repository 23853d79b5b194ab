"""Rate limits and the failed-login throttle: small, pure, in process, clock injected.

`RateLimiter` is a token bucket per key (an API key's id, a login name, a client
address): each key may spend `burst` requests at once and gets `rate` more per second.
`take(key)` answers None (go ahead) or how many seconds to wait, for a 429's Retry-After.

`LoginThrottle` slows down and then locks out password guessing, counted separately per
user name and per client address. After the n-th failure within `window` seconds, the next
attempt must wait `delay_base·2^(n-1)` seconds (at most `delay_cap`); after
`lockout_after` failures within the window the name is locked for `lockout` seconds (the
FBI CJIS Security Policy asks for a lock after at most 5 consecutive invalid attempts). The
address has its own, wider threshold (`address_lockout_after`), since a dispatch floor
may share one address, and catches one address trying many names. A success clears the
name's record, not the address's: one good account must not wash out guesses at others.
A lock can be used to keep a known user out for `lockout` seconds; that is the accepted
price of stopping guessing, and a supervisor sees the failed logins in the audit log.

    throttle = LoginThrottle()
    wait = throttle.check(username, addr)
    if wait is not None:
        -> 429 with Retry-After: retry_after_header(wait), and the password is not checked
    if password ok: throttle.succeeded(username, addr) else: throttle.failed(username, addr)

Why in process: the state is a dict in each Liaison process, which costs nothing per
request, needs no shared store and cannot fail with one. The stated limitation: several
instances behind a load balancer each count separately, so the effective limits are the
configured ones times the number of instances (a lockout after 5 failures becomes at most
5·N guesses per window), and a restart forgets every bucket and lockout. For the
deployments Liaison is built for (one to a few instances for one dispatch centre) that is
enough to stop brute force; a shared store (the database or Redis) would be the change if
it is not. Memory is bounded: each table keeps at most `max_keys` entries and drops the
least recently used beyond that (a dropped bucket is a full one again, so spraying
addresses can at worst reset the limit for the oldest keys).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from service.errors import DomainError
from service.settings import Settings

Clock = Callable[[], float]
DEFAULT_MAX_KEYS = 100_000


def retry_after_header(seconds: float) -> str:
    """Retry-After in whole seconds, never 0 (a 0 invites an immediate retry loop)."""
    return str(max(1, math.ceil(seconds)))


class RateLimiter:
    """A token bucket per key. `rate` <= 0 turns the limiter off."""

    def __init__(self, rate: float, burst: int, *, clock: Clock = time.monotonic,
                 max_keys: int = DEFAULT_MAX_KEYS) -> None:
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self.rate = rate
        self.burst = float(burst)
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, at

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def take(self, key: str, cost: float = 1.0) -> float | None:
        """Spend `cost` tokens of `key`'s bucket: None if there were enough, else the
        seconds until there will be (nothing is spent then)."""
        if not self.enabled:
            return None
        now = self.clock()
        tokens, at = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + max(0.0, now - at) * self.rate)
        if tokens >= cost:
            self._remember(key, (tokens - cost, now))
            return None
        self._remember(key, (tokens, now))
        return (cost - tokens) / self.rate

    def reset(self, key: str) -> None:
        self._buckets.pop(key, None)

    def __len__(self) -> int:
        return len(self._buckets)

    def _remember(self, key: str, value: tuple[float, float]) -> None:
        self._buckets[key] = value
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)


@dataclass
class _Failures:
    times: list[float] = field(default_factory=list)  # failures within the window
    not_before: float = 0.0  # the delay after the last failure, or the lock


class LoginThrottle:
    """Failed logins: growing delays, then a lockout; per user name and per address."""

    def __init__(self, *, delay_base: float = 1.0, delay_cap: float = 30.0,
                 lockout_after: int = 5, window: float = 900.0, lockout: float = 900.0,
                 address_lockout_after: int = 20, clock: Clock = time.monotonic,
                 max_keys: int = DEFAULT_MAX_KEYS) -> None:
        if lockout_after < 1 or address_lockout_after < 1:
            raise ValueError("lockout thresholds must be at least 1")
        self.delay_base = delay_base
        self.delay_cap = delay_cap
        self.lockout_after = lockout_after
        self.address_lockout_after = address_lockout_after
        self.window = window
        self.lockout = lockout
        self.clock = clock
        self.max_keys = max_keys
        self._users: OrderedDict[str, _Failures] = OrderedDict()
        self._addrs: OrderedDict[str, _Failures] = OrderedDict()

    @classmethod
    def from_settings(cls, s: Settings, *, clock: Clock = time.monotonic) -> LoginThrottle:
        return cls(delay_base=s.login_delay_base, delay_cap=s.login_delay_cap,
                   lockout_after=s.login_lockout_after, window=s.login_window_seconds,
                   lockout=s.login_lockout_seconds,
                   address_lockout_after=s.login_address_lockout_after, clock=clock)

    @staticmethod
    def user_key(username: str) -> str:
        return username.strip().casefold()

    def check(self, username: str, addr: str) -> float | None:
        """None: this attempt may go ahead. A number: refuse it (without checking the
        password) and tell the client to retry after that many seconds."""
        now = self.clock()
        waits = [rec.not_before - now for rec in (self._users.get(self.user_key(username)),
                                                  self._addrs.get(addr)) if rec is not None]
        wait = max(waits, default=0.0)
        return wait if wait > 0 else None

    def failed(self, username: str, addr: str) -> None:
        now = self.clock()
        self._fail(self._users, self.user_key(username), now, self.lockout_after)
        self._fail(self._addrs, addr, now, self.address_lockout_after)

    def succeeded(self, username: str, addr: str) -> None:
        self._users.pop(self.user_key(username), None)

    def locked(self, username: str) -> bool:
        rec = self._users.get(self.user_key(username))
        return rec is not None and len(rec.times) >= self.lockout_after and \
            rec.not_before > self.clock()

    def _fail(self, table: OrderedDict[str, _Failures], key: str, now: float,
              lock_after: int) -> None:
        rec = table.pop(key, None) or _Failures()
        rec.times = [t for t in rec.times if now - t < self.window]
        rec.times.append(now)
        n = len(rec.times)
        if n >= lock_after:
            rec.not_before = max(rec.not_before, now + self.lockout)
        else:
            delay = min(self.delay_cap, self.delay_base * 2 ** (n - 1))
            rec.not_before = max(rec.not_before, now + delay)
        table[key] = rec
        while len(table) > self.max_keys:
            table.popitem(last=False)


class TooManyRequests(DomainError):
    """429, with Retry-After (api/errors.py renders `retry_after` as the header)."""

    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: float, **extra: Any) -> None:
        super().__init__(message, retry_after=int(retry_after_header(retry_after)), **extra)
        self.retry_after = retry_after_header(retry_after)
