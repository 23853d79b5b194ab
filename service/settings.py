"""One settings object, from arguments and the environment (LIAISON_*)."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LIAISON_", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./liaison.db"
    # Empty means the shipped St. Petersburg CALL policy.
    policy: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    # How many board messages a slow websocket client may fall behind before resync.
    board_queue_size: int = 2000
    # Events written in one transaction at most; more waiting events wait for the next one.
    ingest_batch_max: int = 256

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith("postgresql")

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
