"""Privacy settings from the environment (BG_PRIVACY_*), shared by ingest, projection and the
privacy command; docs/privacy.md says what each does."""

from __future__ import annotations

import os

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from redis.asyncio import Redis

from shared.privacy.vault import Vault
from shared.settings import RedisSettings

# Known to everyone who read this repository: accepted only with BG_ENV=development.
DEV_PEPPER = "dev-privacy-pepper"


class PrivacySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BG_PRIVACY_", extra="ignore")

    # The secret of the identifiers' digests (HMAC-SHA256) in the vault and the suppression list.
    # Changing it orphans every vault entry: set it once per deployment and keep it with Redis's.
    pepper: str = Field(DEV_PEPPER, min_length=8)
    # Sources (ingest's names: api, segment, sendgrid, zoom, tilda, mtslink, unisender, calltouch,
    # roistat) whose touches of a suppressed person are dropped; "*" for all of them.
    suppress_sources: list[str] = Field(default_factory=lambda: ["*"])
    # SendGrid events that put the recipient on the suppression list (an opt-out).
    sendgrid_suppress_events: list[str] = Field(
        default_factory=lambda: ["unsubscribe", "group_unsubscribe", "spamreport"])
    # Unisender Go email statuses that put the recipient on the suppression list.
    unisender_suppress_statuses: list[str] = Field(default_factory=lambda: ["unsubscribed", "spam"])
    # Days without a touch after which a person's keys are destroyed (their raw values on the log
    # become unreadable) and the projection folds their touches into anonymous daily counts.
    retention_days: int = Field(730, ge=1, le=36500)
    # The vault is the only copy of everyone's keys: losing it erases everybody in effect. Its own
    # setting lets production keep it in a persistent Redis (AOF, backups) apart from the Redis of
    # ingest's dedupe claims and the other caches, which an operator may flush.
    vault_redis_url: str | None = Field(
        None, validation_alias=AliasChoices("BG_VAULT_REDIS_URL"),
        description="Redis of the privacy vault (keys, pseudonyms, suppressions); unset: REDIS_URL. "
                    "Production: a persistent Redis (AOF, backups) that nobody flushes")

    def dev_secrets_in_use(self) -> list[str]:
        return ["BG_PRIVACY_PEPPER"] if self.pepper == DEV_PEPPER else []

    def suppresses(self, source: str) -> bool:
        """True when touches from `source` of a suppressed person are dropped."""
        return "*" in self.suppress_sources or source in self.suppress_sources


def vault_for(settings: PrivacySettings | None = None) -> Vault:
    """The vault of this deployment: its own client of BG_VAULT_REDIS_URL (REDIS_URL when unset),
    under the topic namespace's prefix. The caller closes it (Vault.aclose) with its other clients."""
    settings = settings or PrivacySettings()
    url = settings.vault_redis_url or RedisSettings().redis_url
    return vault_in(RedisSettings(redis_url=url).client(), settings)


def vault_in(redis: Redis, settings: PrivacySettings | None = None) -> Vault:
    """The vault in this client, under the topic namespace's own prefix (as ingest's other keys):
    for a test reading what a service wrote through a client of its own."""
    settings = settings or PrivacySettings()
    namespace = os.environ.get("BG_TOPIC_NAMESPACE", "")
    return Vault(redis, settings.pepper.encode(), prefix=f"bg:privacy:{namespace}")
