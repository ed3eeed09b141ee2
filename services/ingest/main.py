"""Composition root of the ingest service: settings, clients, the app, the server."""

from __future__ import annotations

import os
import sys

from services.ingest.app import create_app
from services.ingest.dedupe import Deduper
from services.ingest.memory import Memory
from services.ingest.privacy import Guard
from services.ingest.publisher import Publisher
from services.ingest.settings import IngestSettings
from shared import http
from shared.logs import configure_logging
from shared.privacy.settings import PrivacySettings, vault_for
from shared.runtime import tune_gc
from shared.settings import DevelopmentSecretsError, RedisSettings, kafka_settings, require_production_secrets


def build_app():
    """(settings, app). Raises DevelopmentSecretsError when a development key or secret is in
    use and BG_ENV is not `development`."""
    settings = IngestSettings()
    privacy = PrivacySettings()
    require_production_secrets("ingest", settings.dev_secrets_in_use() + privacy.dev_secrets_in_use())
    redis = RedisSettings().client()
    namespace = os.environ.get("BG_TOPIC_NAMESPACE", "")
    deduper = Deduper(redis, settings.dedupe_ttl_seconds, prefix=f"bg:ingest:seen:{namespace}")
    memory = Memory(redis, settings.memory_ttl_seconds, prefix=f"bg:ingest:mem:{namespace}")
    guard = Guard(vault_for(privacy), privacy)
    return settings, create_app(settings, Publisher(kafka_settings()), deduper, redis, memory, guard)


def main() -> None:
    configure_logging("ingest")
    try:
        settings, app = build_app()
    except DevelopmentSecretsError as exc:
        sys.exit(f"refusing to start: {exc}")
    tune_gc()
    # Header and body deadlines, connection limit: shared/http.py.
    http.server(app, settings.host, settings.port).run()


if __name__ == "__main__":
    main()
