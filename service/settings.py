"""One settings object, from arguments and the environment (LIAISON_*)."""

from __future__ import annotations

import re

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LIAISON_", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./liaison.db"
    # Empty means the shipped St. Petersburg CALL policy.
    policy: str = ""
    # How often each instance looks for a newly published (or due scheduled) policy version.
    policy_poll_interval: float = Field(default=2.0, gt=0)
    host: str = "127.0.0.1"
    port: int = 8000
    # How many board messages a slow websocket client may fall behind before resync.
    board_queue_size: int = 2000
    # Board websockets are written at most this often (seconds): messages that come
    # closer together go out in one write per client (service/live/board.py).
    board_flush_interval: float = Field(default=0.005, ge=0, le=1)
    # A board opened with ?scope=live replays only the live calls' messages: open calls,
    # calls with a pending follow-up, and calls changed within this many hours.
    board_replay_hours: float = Field(default=12.0, gt=0)
    # Events written in one transaction at most; more waiting events wait for the next one.
    ingest_batch_max: int = 256
    # The CAD's webhook for decisions (adapters/outbound.py); empty sends none. Every body
    # is signed with the secret (HMAC-SHA256), so a URL needs one.
    webhook_url: str = ""
    webhook_secret: str = ""
    # One attempt at most this long; failures are retried after base·2^n seconds (at
    # most the cap, with jitter); pending rows other instances wrote are polled for.
    webhook_timeout: float = Field(default=10.0, gt=0)
    webhook_backoff_base: float = Field(default=1.0, gt=0)
    webhook_backoff_cap: float = Field(default=300.0, gt=0)
    webhook_poll_interval: float = Field(default=1.0, gt=0)
    webhook_concurrency: int = Field(default=16, ge=1)
    # A delivery failing (5xx, no answer, timeout, 401/403/408/409/425/429) for longer than this
    # many seconds is given up: `failed`, listed and retried by hand; 0 never gives up on
    # these. A 4xx refusal (the CAD will never take that body) is given up at once.
    webhook_give_up_after: float = Field(default=3600.0, ge=0)
    # EIDO: refuse known deviations from NENA-STA-021.1b instead of accepting them with
    # warnings (a request's ?strict= wins); the APCO code mapping (empty means the shipped
    # adapters/eido/apco_mapping.yaml); the agency id Liaison signs the EIDOs it emits with.
    eido_strict: bool = False
    eido_mapping: str = ""
    eido_agency_id: str = "liaison.invalid"
    # Sessions of people logged in to the pages (service/access/auth.py): ended after this long
    # without a request, and at the latest this long after login. The cookie is Secure
    # when the request came over TLS (or LIAISON_COOKIE_SECURE=true behind a proxy).
    session_idle_minutes: float = Field(default=30.0, gt=0)
    session_max_hours: float = Field(default=12.0, gt=0)
    cookie_secure: bool | None = None
    # How often an open board websocket re-checks that its session is still alive.
    session_recheck_seconds: float = Field(default=15.0, gt=0)
    # When a CAD key is rotated, the old key keeps working this long beside the new one.
    key_rotation_grace_hours: float = Field(default=24.0, ge=0)
    # A revoked or expired key stops working within this many seconds on every instance
    # (keys are cached so the ingest path does not read the key table per event).
    key_cache_seconds: float = Field(default=5.0, ge=0)
    # NENA-STA-024 (adapters/eido/subscriber.py): the CAD's EIDO WebSocket service
    # (ws:// or wss://) to subscribe to for new incidents; empty subscribes to none. The
    # subscription period asked for (renewed before it runs out). After a drop or a
    # refusal, reconnects wait base·2^n seconds, at most the cap, with jitter.
    eido_subscribe: str = ""
    eido_subscribe_expires: int = Field(default=3600, gt=0)
    eido_subscribe_backoff_base: float = Field(default=1.0, gt=0)
    eido_subscribe_backoff_cap: float = Field(default=60.0, gt=0)
    # Hostile input (api/limits.py, api/headers.py, service/access/ratelimit.py). Request bodies
    # over max_body_bytes get 413; POST /v1/cad/eido and a reject's resubmit (whole EIDO
    # incident states) take up to max_eido_body_bytes. Messages a board websocket client
    # sends are capped at board_max_client_message bytes (closed with 1009).
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_eido_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    board_max_client_message: int = Field(default=4096, ge=16)
    # The largest message the EIDO subscriber takes from the CAD (the first notification
    # holds every active incident); a larger one ends the connection with 1009.
    eido_subscribe_max_message: int = Field(default=16 * 1024 * 1024, ge=1024)
    # Refused CAD bodies kept per sender (an API key, or the EIDO subscription): the
    # newest this many; older ones are deleted as new ones come. 0 keeps none (the 422
    # still names every field).
    rejects_per_key: int = Field(default=1000, ge=0)
    # Behind a TLS-terminating proxy: trust its X-Forwarded-Proto for "came over TLS"
    # (Strict-Transport-Security, Secure cookies). Off, only a direct TLS connection counts.
    behind_tls_proxy: bool = False
    # Requests per client address to routes without credentials: a bucket of `burst`,
    # refilled at `rate` per second; 0 turns it off.
    rate_limit_anonymous_rate: float = Field(default=5.0, ge=0)
    rate_limit_anonymous_burst: int = Field(default=30, ge=1)
    # Per API key (the lead's authentication applies it): rate per second and burst.
    rate_limit_key_rate: float = Field(default=200.0, ge=0)
    rate_limit_key_burst: int = Field(default=1000, ge=1)
    # Failed logins, per user name and per client address: each failure waits longer
    # (base·2^(n-1) seconds, at most the cap); `lockout_after` failures within the window
    # lock the name (or address) for lockout_seconds.
    login_delay_base: float = Field(default=1.0, ge=0)
    login_delay_cap: float = Field(default=30.0, ge=0)
    login_lockout_after: int = Field(default=5, ge=1)
    login_window_seconds: float = Field(default=900.0, gt=0)
    login_lockout_seconds: float = Field(default=900.0, gt=0)
    # The address limit is wider: many people may share one (a dispatch floor's NAT).
    login_address_lockout_after: int = Field(default=20, ge=1)
    # Field workflow (service/lifecycle/checkins.py): a unit on scene is asked to check in every
    # checkin_interval_seconds (0: no check-ins); the sweeper looks for missed check-ins
    # and newly due follow-ups every field_sweep_seconds.
    checkin_interval_seconds: float = Field(default=900.0, ge=0)
    field_sweep_seconds: float = Field(default=5.0, gt=0)
    # A care handoff not connected this long after being offered raises a follow-up
    # (service/lifecycle/care.py), and the figures count it as not confirmed in time.
    care_confirm_hours: float = Field(default=48.0, gt=0, le=24 * 90)
    # The field board's idempotency keys are kept this long (service/lifecycle/field_keys.py).
    field_key_hours: float = Field(default=168.0, gt=0)
    # The recommended unit (routing/recommend.py): the speed its estimated time assumes,
    # and how old a unit's position may be before it counts as unknown.
    recommend_speed_kmh: float = Field(default=30.0, gt=0, le=200)
    recommend_stale_minutes: float = Field(default=15.0, gt=0)
    # The rule scorecard's flags (service/figures/scorecard.py): over-broad at this share
    # of a rule's team calls needing backup or police, once it has this many; too narrow
    # at this many calls it kept from the team that were overridden and cleared w/o police.
    scorecard_over_broad_share: float = Field(default=0.25, gt=0, le=1)
    scorecard_over_broad_min_calls: int = Field(default=10, ge=1)
    scorecard_too_narrow_min_calls: int = Field(default=3, ge=1)
    # A database that stops answering (service/store/dbwait.py, service/store/db.py). A request (its
    # commit, the key or session lookup on its way) gets 503 with Retry-After once the
    # database has answered nothing, to anyone, for db_request_timeout seconds; a busy one
    # that still answers is waited for up to db_statement_timeout (a CAD retries a 503; its
    # event is idempotent). PostgreSQL ends a statement after db_statement_timeout (the
    # longest report query must fit); connecting, or waiting for a pooled connection,
    # gives up after db_connect_timeout. /v1/health waits at most health_timeout for its
    # ping and its write probe.
    db_request_timeout: float = Field(default=1.0, gt=0)
    db_connect_timeout: float = Field(default=10.0, gt=0)
    db_statement_timeout: float = Field(default=30.0, gt=0)
    health_timeout: float = Field(default=1.0, gt=0)
    # A board websocket whose client stops reading: a send that has not gone out after
    # this many seconds ends the connection (resync and close, then cut off).
    board_send_timeout: float = Field(default=10.0, gt=0)
    # Pages' origins besides Liaison's own (scheme://host[:port], comma-separated), for a
    # cookie session's websockets and changes (api/access.py checks Origin); API keys are
    # not subject to it.
    allowed_origins: str = ""
    # The map on the board and the console (web/static/map.js): a tile URL template
    # (https://tiles.example/{z}/{x}/{y}.png; `{s}.` before the host for subdomains) and
    # the attribution its provider asks for, shown as text. Empty: no tiles, the calls and
    # units on a plain background (a closed network). The template's origin, and only
    # it, is added to the pages' CSP img-src (api/headers.py).
    map_tiles: str = ""
    map_attribution: str = Field(default="", max_length=300)

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith("postgresql")

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def map_tile_origin(self) -> str | None:
        """The CSP source the tiles come from; None without tiles."""
        return tile_origin(self.map_tiles) if self.map_tiles else None

    @model_validator(mode="after")
    def _webhook_needs_secret(self) -> Settings:
        if self.webhook_url and not self.webhook_secret:
            raise ValueError("webhook_url is set but webhook_secret is empty: "
                             "set LIAISON_WEBHOOK_SECRET")
        return self

    @model_validator(mode="after")
    def _eido_subscribe_is_websocket(self) -> Settings:
        if self.eido_subscribe and not self.eido_subscribe.startswith(("ws://", "wss://")):
            scheme = self.eido_subscribe.partition("://")[0] if "://" in \
                self.eido_subscribe else "(none)"
            raise ValueError(f"eido_subscribe must be a ws:// or wss:// URL, not {scheme[:20]}")
        return self

    @model_validator(mode="after")
    def _map_tiles_is_a_template(self) -> Settings:
        if self.map_tiles:
            tile_origin(self.map_tiles)  # raises with the reason
        return self


# scheme://host[:port] of a tile template, `{s}.` allowed first (Leaflet's subdomains).
# Strict, because the origin goes into a header: no space, quote, ';' or ',' gets through.
_TILES = re.compile(r"(https?)://((?:\{s\}\.)?[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*(?::[0-9]{1,5})?)"
                    r"(/[A-Za-z0-9._~/{}@%+=&?-]*)")


def tile_origin(template: str) -> str:
    """The CSP source of a tile URL template: `https://tiles.example`, or
    `https://*.tiles.example` for `https://{s}.tiles.example/...`. ValueError says why
    a template is refused."""
    m = _TILES.fullmatch(template)
    if not m:
        raise ValueError("map_tiles must be an http(s) URL template like "
                         "https://tiles.example/{z}/{x}/{y}.png (letters, digits and "
                         "/._~-{}@%+=&? in the path)")
    missing = [p for p in ("{z}", "{x}", "{y}") if p not in m.group(3)
               and not (p == "{y}" and "{-y}" in m.group(3))]
    if missing:
        raise ValueError(f"map_tiles has no {', '.join(missing)} in its path")
    return f"{m.group(1)}://{m.group(2).replace('{s}.', '*.')}"

