"""Ingest settings from the environment (INGEST_*)."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# Development keys, so that the local demo and tests work out of the box; the service starts
# with any of them only when BG_ENV=development (shared.settings.require_production_secrets).
DEV_API_KEYS = {
    "api": ["dev-api-key"],
    "segment": ["dev-segment-key"],
    "sendgrid": ["dev-sendgrid-key"],
    "zoom": ["dev-zoom-key"],
    # The Russian stack (services/ingest/sources_ru.py): Tilda, Calltouch and Roistat put the
    # key in the webhook URL (?key=); MTS Link may sign instead (INGEST_MTSLINK_WEBHOOK_SECRET).
    "tilda": ["dev-tilda-key"],
    "mtslink": ["dev-mtslink-key"],
    "calltouch": ["dev-calltouch-key"],
    "roistat": ["dev-roistat-key"],
}
DEV_UNISENDER_API_KEY = "dev-unisender-api-key"
# Calltouch sends its webhooks from this subnet (its documentation); loopback for local runs.
CALLTOUCH_SUBNET = "92.118.66.0/23"
DEV_CALLTOUCH_SUBNETS = [CALLTOUCH_SUBNET, "127.0.0.0/8", "::1/128"]
DEV_ZOOM_SECRET = "dev-zoom-secret-token"


class IngestSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="INGEST_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8081, validation_alias="BG_INGEST_PORT")
    # Per source, the accepted keys: {"segment": ["key1"], ...} as JSON in INGEST_API_KEYS.
    api_keys: dict[str, list[str]] = Field(default_factory=lambda: {k: list(v) for k, v in DEV_API_KEYS.items()})
    max_body_bytes: int = Field(5 * 1024 * 1024, ge=1024)
    max_batch: int = Field(1000, ge=1, le=10000)
    dedupe_ttl_seconds: int = Field(7 * 24 * 3600, ge=60)
    # Zoom signs every webhook with the app's secret token (x-zm-signature).
    zoom_secret_token: str = DEV_ZOOM_SECRET
    # How far a platform's signed timestamp (Zoom's x-zm-request-timestamp, SendGrid's
    # X-Twilio-Email-Event-Webhook-Timestamp) may be from now, either way (auth.require_fresh).
    signature_max_age_seconds: int = Field(300, ge=1, le=86400, validation_alias=AliasChoices(
        "INGEST_SIGNATURE_MAX_AGE_SECONDS", "INGEST_ZOOM_MAX_CLOCK_SKEW_SECONDS"))
    # Event times more than this ahead of ingest's clock are clamped to the receive time
    # (default) or refused to the dead-letter topic, the original kept (issue 11, timing.py).
    future_tolerance_seconds: int = Field(300, ge=0)
    future_policy: Literal["clamp", "refuse"] = "clamp"
    # A SendGrid click this soon after the message's delivery is a mail link scanner's.
    link_scanner_seconds: int = Field(10, ge=0)
    # How long ingest remembers deliveries, registrants and open webinar sessions (memory.py):
    # registrations come weeks before a webinar.
    memory_ttl_seconds: int = Field(120 * 24 * 3600, ge=3600)
    # Optional platform signatures; when set they are required.
    segment_shared_secret: str | None = None  # X-Signature: HMAC-SHA1 of the body
    sendgrid_public_key: str | None = None  # base64 DER ECDSA key of SendGrid's Signed Event Webhook
    # Russian stack: Unisender Go's `auth` is an MD5 keyed by the account's or project's API key.
    unisender_api_keys: list[str] = Field(default_factory=lambda: [DEV_UNISENDER_API_KEY])
    mtslink_webhook_secret: str | None = None  # X-Webhook-Signature: HMAC-SHA256 of the body
    calltouch_subnets: list[str] = Field(default_factory=lambda: list(DEV_CALLTOUCH_SUBNETS))
    roistat_timezone: str = "Europe/Moscow"  # Roistat's `date` is the project's local time

    def dev_secrets_in_use(self) -> list[str]:
        """The names of the settings that still hold a development default."""
        dev = {k for keys in DEV_API_KEYS.values() for k in keys}
        found = {
            "INGEST_API_KEYS": any(k in dev for keys in self.api_keys.values() for k in keys),
            "INGEST_ZOOM_SECRET_TOKEN": self.zoom_secret_token == DEV_ZOOM_SECRET,
            "INGEST_UNISENDER_API_KEYS": DEV_UNISENDER_API_KEY in self.unisender_api_keys,
            # Loopback may post as Calltouch only in development.
            "INGEST_CALLTOUCH_SUBNETS": any(s in self.calltouch_subnets for s in DEV_CALLTOUCH_SUBNETS
                                            if s != CALLTOUCH_SUBNET),
        }
        return [name for name, used in found.items() if used]
