"""Fixtures for tests against the real servers (see tests/support/servers.py for the order)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from tests.support.servers import Servers, locate, require

# The tests use the development keys and tokens, which the services accept only in development
# mode (shared.settings.require_production_secrets); every service process inherits this.
os.environ.setdefault("BG_ENV", "development")


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    with ExitStack() as stack:
        found = locate(stack)
        require(found)
        # The services and shared.settings read these names.
        os.environ["KAFKA_BOOTSTRAP_SERVERS"] = found.kafka_bootstrap
        os.environ["DATABASE_URL"] = found.database_url
        os.environ["REDIS_URL"] = found.redis_url
        from shared.settings import kafka_settings

        kafka_settings.cache_clear()
        yield found


@pytest.fixture(scope="session")
async def topic_namespace(servers: Servers) -> str:
    """A fresh namespace per test session: its own topics, consumer groups and changelogs."""
    from shared.topics import ensure_topics

    namespace = f"t{uuid.uuid4().hex[:8]}."
    os.environ["BG_TOPIC_NAMESPACE"] = namespace
    await ensure_topics(wait_seconds=30)
    return namespace
