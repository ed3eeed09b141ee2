"""Projection settings from the environment (PROJECTION_*, BG_API_*)."""

from __future__ import annotations

import os
import re

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Development tokens, so that the local demo and the tests work out of the box; the API starts
# with them only when BG_ENV=development (shared.settings.require_production_secrets).
DEV_READ_TOKEN = "dev-read-token"
DEV_WRITE_TOKEN = "dev-crm-token"


def _split(value: str) -> list[str]:
    return [t.strip() for t in value.split(",") if t.strip()]


class ProjectionSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PROJECTION_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8082, validation_alias=AliasChoices("PROJECTION_PORT", "BG_API_PORT"))
    # Comma-separated bearer tokens: read tokens may read; write tokens (the CRMs) may also
    # report stage changes.
    api_tokens: str = Field(DEV_READ_TOKEN, validation_alias=AliasChoices("BG_API_TOKENS", "PROJECTION_API_TOKENS"))
    write_tokens: str = Field(DEV_WRITE_TOKEN,
                              validation_alias=AliasChoices("BG_API_WRITE_TOKENS", "PROJECTION_WRITE_TOKENS"))
    # The PostgreSQL schema of every projection table (search_path of each connection).
    db_schema: str = "projection"
    consumer_group: str = "bg-projection"
    batch_max_records: int = Field(2000, ge=1, le=100_000)
    poll_timeout_ms: int = Field(200, ge=10, le=60_000)
    # How long POST .../stage waits for its change to show in the database before answering.
    stage_wait_seconds: float = Field(5.0, ge=0, le=60)

    @field_validator("db_schema")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", value):
            raise ValueError("must be a lower-case SQL identifier (letters, digits, _)")
        return value

    @property
    def read_tokens(self) -> list[str]:
        return _split(self.api_tokens) + _split(self.write_tokens)

    @property
    def crm_tokens(self) -> list[str]:
        return _split(self.write_tokens)

    @property
    def group_id(self) -> str:
        """The Kafka consumer group follows the topic namespace, like every other service's."""
        return os.environ.get("BG_TOPIC_NAMESPACE", "") + self.consumer_group

    def dev_tokens_in_use(self) -> list[str]:
        """The names of the settings that still hold a development token."""
        return [name for name, tokens in (("BG_API_TOKENS", _split(self.api_tokens)),
                                          ("BG_API_WRITE_TOKENS", _split(self.write_tokens)))
                if DEV_READ_TOKEN in tokens or DEV_WRITE_TOKEN in tokens]

    def uses_dev_tokens(self) -> bool:
        return bool(self.dev_tokens_in_use())
