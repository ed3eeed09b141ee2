"""Where the real servers are, for tests.

Order: a server named by an environment variable; else testcontainers when a Docker engine
answers; else the project's local stack (deploy/stack.sh up). A server that does not answer
fails the test with what to start: tests never skip for a missing server.
"""

from __future__ import annotations

import os
import socket
from contextlib import ExitStack
from dataclasses import dataclass
from urllib.parse import urlparse

import pytest

START_HINT = "start the local stack with `bash deploy/stack.sh up` (or set {var})"


@dataclass(frozen=True)
class Servers:
    kafka_bootstrap: str
    database_url: str  # postgresql+asyncpg://... of a database the tests may wipe
    redis_url: str


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:
        return False


def _from_containers(stack: ExitStack) -> Servers:
    from testcontainers.kafka import KafkaContainer
    from testcontainers.postgres import PostgresContainer
    from testcontainers.redis import RedisContainer

    kafka = stack.enter_context(KafkaContainer("confluentinc/cp-kafka:7.7.1").with_kraft())
    pg = stack.enter_context(PostgresContainer("postgres:15", driver="asyncpg"))
    redis = stack.enter_context(RedisContainer("redis:7"))
    return Servers(
        kafka_bootstrap=kafka.get_bootstrap_server(),
        database_url=pg.get_connection_url(),
        redis_url=f"redis://{redis.get_container_host_ip()}:{redis.get_exposed_port(6379)}/0",
    )


def _local_stack() -> Servers:
    kafka_port = os.environ.get("BG_KAFKA_PORT", "19092")
    pg_port = os.environ.get("BG_PG_PORT", "15432")
    redis_port = os.environ.get("BG_REDIS_PORT", "16379")
    return Servers(
        kafka_bootstrap=f"127.0.0.1:{kafka_port}",
        database_url=f"postgresql+asyncpg://bg:bg@127.0.0.1:{pg_port}/buyinggroups_test",
        redis_url=f"redis://127.0.0.1:{redis_port}/15",
    )


def locate(stack: ExitStack) -> Servers:
    env = os.environ
    if env.get("TEST_KAFKA_BOOTSTRAP_SERVERS") or env.get("TEST_DATABASE_URL") or env.get("TEST_REDIS_URL"):
        local = _local_stack()
        return Servers(
            kafka_bootstrap=env.get("TEST_KAFKA_BOOTSTRAP_SERVERS", local.kafka_bootstrap),
            database_url=env.get("TEST_DATABASE_URL", local.database_url),
            redis_url=env.get("TEST_REDIS_URL", local.redis_url),
        )
    if env.get("BG_TESTS_USE_CONTAINERS", "auto") != "0" and _docker_answers():
        return _from_containers(stack)
    return _local_stack()


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def require(servers: Servers) -> None:
    """Fail (never skip) with a clear message when a server does not answer."""
    problems = []
    host, _, port = servers.kafka_bootstrap.split(",")[0].rpartition(":")
    if not _port_open(host, int(port)):
        problems.append(f"Kafka does not answer at {servers.kafka_bootstrap}: "
                        + START_HINT.format(var="TEST_KAFKA_BOOTSTRAP_SERVERS"))
    for url, var in ((servers.database_url, "TEST_DATABASE_URL"), (servers.redis_url, "TEST_REDIS_URL")):
        parsed = urlparse(url)
        if not _port_open(parsed.hostname or "127.0.0.1", parsed.port or 0):
            problems.append(f"{parsed.scheme.split('+')[0]} does not answer at "
                            f"{parsed.hostname}:{parsed.port}: " + START_HINT.format(var=var))
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)

