"""What a request may need, built by the lifespan (api/app.py) and held on
app.state.runtime."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.eido.subscriber import EidoSubscriber
from adapters.outbound import DeliveryWorker
from service.access.auth import KeyCache
from service.access.ratelimit import LoginThrottle, RateLimiter
from service.lifecycle.checkins import FieldSweeper
from service.live.board import BoardHub, read_after
from service.live.replay import Replays
from service.policy.holder import PolicyHolder
from service.policy.region import Region
from service.policy.whatif import WhatIfJobs
from service.settings import Settings
from service.writing.bus import PostgresListener
from service.writing.health import StorageCheck
from service.writing.writer import Writer


@dataclass
class Runtime:
    """Everything a request may need, held on app.state.runtime."""

    settings: Settings
    engine: AsyncEngine
    policy: PolicyHolder  # the default agency's (service/policy/region.py)
    writer: Writer
    hub: BoardHub
    listener: PostgresListener | None
    keys: KeyCache  # API keys seen lately (service/access/auth.py)
    key_limiter: RateLimiter  # requests per API key
    login_throttle: LoginThrottle  # failed logins, per name and address
    storage: StorageCheck  # /v1/health: the database answers, writes work
    delivery: DeliveryWorker | None = None  # with a CAD webhook configured
    eido_subscriber: EidoSubscriber | None = None  # with an EIDO service to subscribe to
    whatif: WhatIfJobs = field(default_factory=WhatIfJobs)  # jobs kept in the database
    sweeper: FieldSweeper | None = None  # missed check-ins, due follow-ups
    # Every agency and its policy in force (issue 17); made by the lifespan.
    region: Region = field(default=None)  # type: ignore[assignment]

    # Board replays, read once for the boards opening together (service/live/replay.py).
    replays: Replays = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.region is None:
            self.region = Region(default=self.policy)
        if self.replays is None:
            engine = self.engine
            self.replays = Replays(lambda after, live_since, agency, limit: read_after(
                engine, after, limit, live_since=live_since, agency=agency))
