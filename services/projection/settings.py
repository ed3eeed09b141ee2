"""Projection settings from the environment (PROJECTION_*, BG_API_*)."""

from __future__ import annotations

import hmac
import os
import re

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.settings import development_mode

# Development tokens, so that the local demo and the tests work out of the box; the API starts
# with them only when BG_ENV=development (shared.settings.require_production_secrets).
DEV_READ_TOKEN = "dev-read-token"
DEV_WRITE_TOKEN = "dev-crm-token"
DEV_CORRECTION_TOKENS = {"Разработчик / developer": "dev-correction-token"}


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
    # Tokens of people who correct the machine (issue 16): {user name: token}. Each correction
    # records the name its token carries as its author; these tokens also read.
    correction_tokens: dict[str, str] = Field(
        # Nobody may correct unless configured; see _development_default.
        default_factory=dict,
        validation_alias=AliasChoices("BG_API_CORRECTION_TOKENS", "PROJECTION_CORRECTION_TOKENS"),
        description="JSON object {user name: token}: who may correct links, roles, stances, notes and merges "
                    "(POST/PUT /v1/.../members, /v1/accounts/merges, /v1/corrections/{id}/undo); the name is "
                    "recorded as the author of each correction; these tokens may also read. Default: none (nobody "
                    "may correct); with BG_ENV=development and the development read token in use, "
                    "{\"Разработчик / developer\": \"dev-correction-token\"}")
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

    @field_validator("correction_tokens")
    @classmethod
    def _named_tokens(cls, value: dict[str, str]) -> dict[str, str]:
        cleaned = {name.strip(): token.strip() for name, token in value.items()}
        if any(not name or not token or len(name) > 200 for name, token in cleaned.items()):
            raise ValueError("every user name and token must be non-empty (names up to 200 characters)")
        if len(set(cleaned.values())) != len(cleaned):
            raise ValueError("two users share a token: the author of a correction must be unambiguous")
        return cleaned

    @model_validator(mode="after")
    def _development_default(self) -> ProjectionSettings:
        """The development correction token only in development mode and while the read tokens
        are the development ones too: configuring real tokens never leaves a known one open."""
        if ("correction_tokens" not in self.model_fields_set and development_mode()
                and DEV_READ_TOKEN in _split(self.api_tokens)):
            self.correction_tokens = dict(DEV_CORRECTION_TOKENS)
        return self

    @property
    def read_tokens(self) -> list[str]:
        return _split(self.api_tokens) + _split(self.write_tokens) + list(self.correction_tokens.values())

    def author_of(self, token: str) -> str | None:
        """The user name a correction token carries, else None (a read or CRM token, or none).
        Compared in constant time, like every token."""
        found = None
        for name, allowed in self.correction_tokens.items():
            if hmac.compare_digest(token.encode(), allowed.encode()):
                found = name
        return found

    @property
    def crm_tokens(self) -> list[str]:
        return _split(self.write_tokens)

    @property
    def group_id(self) -> str:
        """The Kafka consumer group follows the topic namespace, like every other service's."""
        return os.environ.get("BG_TOPIC_NAMESPACE", "") + self.consumer_group

    def dev_tokens_in_use(self) -> list[str]:
        """The names of the settings that still hold a development token."""
        dev = {DEV_READ_TOKEN, DEV_WRITE_TOKEN, *DEV_CORRECTION_TOKENS.values()}
        return [name for name, tokens in (("BG_API_TOKENS", _split(self.api_tokens)),
                                          ("BG_API_WRITE_TOKENS", _split(self.write_tokens)),
                                          ("BG_API_CORRECTION_TOKENS", list(self.correction_tokens.values())))
                if dev & set(tokens)]

    def uses_dev_tokens(self) -> bool:
        return bool(self.dev_tokens_in_use())
