"""Fixtures for tests against the real servers (see tests/support/servers.py for the order)."""

from __future__ import annotations

import asyncio
import logging
import os
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.support.kafka import CREATED_NAMESPACES, delete_namespaces, new_namespace
from tests.support.servers import Servers, locate, require

# The tests use the development keys and tokens, which the services accept only in development
# mode (shared.settings.require_production_secrets); every service process inherits this.
os.environ.setdefault("BG_ENV", "development")


def _delete_session_topics() -> None:
    """Deletes the topics of every namespace the session made; logs, never raises."""
    try:
        # A thread of its own: pytest-asyncio's session loop is not disturbed by a second loop.
        with ThreadPoolExecutor(1) as pool:
            deleted = pool.submit(asyncio.run, delete_namespaces(set(CREATED_NAMESPACES))).result(timeout=120)
        logging.getLogger("tests.kafka").info(f"deleted {len(deleted)} topics of {len(CREATED_NAMESPACES)} namespaces")
    except Exception as exc:  # a cleanup error must not fail the run
        message = f"deleting the session's topics failed: {exc!r}"
        logging.getLogger("tests.kafka").warning(message)
        warnings.warn(message, stacklevel=1)


@pytest.fixture(autouse=True)
def _on_the_sessions_servers(request: pytest.FixtureRequest) -> None:
    """Component and end-to-end tests run on the session's servers, whichever comes first.

    Some reach Kafka, PostgreSQL or Redis only through shared.settings (a worker process, a
    fresh topic namespace) and ask for no server fixture. When such a test came first in a
    random order it read the settings' defaults (Kafka on 19092), not the servers the run was
    given (BG_KAFKA_PORT, TEST_*): a CI-like run on other ports failed test_grouping_faults.py.
    `servers` sets KAFKA_BOOTSTRAP_SERVERS, DATABASE_URL and REDIS_URL; unit tests need none.
    """
    if "unit" not in request.node.path.relative_to(Path(__file__).parent).parts[:1]:
        request.getfixturevalue("servers")


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
        # Torn down last of all (every fixture that makes a namespace needs the servers), when
        # no service of the session writes to its topics any more.
        stack.callback(_delete_session_topics)
        yield found


@pytest.fixture(scope="session")
async def topic_namespace(servers: Servers) -> str:
    """A fresh namespace per test session: its own topics, consumer groups and changelogs."""
    from shared.topics import ensure_topics

    namespace = new_namespace()
    os.environ["BG_TOPIC_NAMESPACE"] = namespace
    await ensure_topics(wait_seconds=30)
    return namespace


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """A module marked `story` is one story told in its file's order (a CRM deal created, then
    moved, then won): pytest-randomly shuffles the modules and every other module's tests
    (.ci/run), and this puts a story module's tests back in the order they are written. The
    module itself still runs at a random place, so it must not depend on other modules.

    A conftest's hook wrapper is entered before the plugins' (pluggy calls the last registered
    first), so this runs after pytest-randomly's shuffle."""
    result = yield
    written = {id(item): index for index, item in enumerate(sorted(items, key=_written_order))}
    start = 0
    while start < len(items):
        end = start + 1
        while end < len(items) and items[end].module is items[start].module:
            end += 1
        if items[start].get_closest_marker("story") is not None:
            items[start:end] = sorted(items[start:end], key=lambda item: written[id(item)])
        start = end
    return result


def _written_order(item) -> tuple[str, int]:
    path, line, _ = item.location
    return path, line if line is not None else -1
