"""A CRM connector as its own process, against the real Kafka and Redis, the projection (its own
process, real PostgreSQL) and the loopback contract server of the CRMs."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field

import pytest

from services.crm.loopback import Bucket, CrmLoopback, create_app
from services.importers.loopback import Served
from services.projection import db
from tests.component.projection.conftest import Env, wait_caught_up
from tests.support.kafka import namespace_with_topics
from tests.support.processes import ServiceProcess, free_port
from tests.unit.projection.stories import Log


@dataclass
class Crm:
    state: CrmLoopback
    url: str  # the contract server
    connector_port: int
    started: list[ServiceProcess] = field(default_factory=list)  # stopped when the module ends

    @property
    def connector_url(self) -> str:
        return f"http://127.0.0.1:{self.connector_port}"


@pytest.fixture(scope="module")
async def env(servers) -> AsyncIterator[Env]:
    name = await namespace_with_topics("c")
    found = Env(name, f"crm_{uuid.uuid4().hex[:8]}", servers.database_url)
    yield found
    engine = db.create_engine(found.database_url, found.schema)
    await db.drop(engine, found.schema)
    await engine.dispose()


@pytest.fixture(scope="module")
def projection(env: Env) -> Iterator[str]:
    port = free_port()
    with env.service(f"projection-{env.namespace.rstrip('.')}", port):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def crm() -> Iterator[Crm]:
    state = CrmLoopback(hang_seconds=60.0)
    # A roomy bucket on both sides: the limit itself is tests/unit/crm/test_clients.py's.
    state.b24_bucket = Bucket(size=1000, per_second=1000.0)
    state.amo_per_second = 1000.0
    with Served(create_app(state)) as url:
        found = Crm(state, url, free_port())
        state.handler_url = found.connector_url
        try:
            yield found
        finally:
            for process in found.started:
                process.stop()


def connector(env: Env, crm: Crm, projection: str, which: str, **extra: str) -> ServiceProcess:
    s = crm.state
    settings = {
        "bitrix24": {"BITRIX24_WEBHOOK_URL": f"{crm.url}/rest/{s.b24_user}/{s.b24_code}/",
                     "BITRIX24_APPLICATION_TOKEN": s.b24_application_token,
                     "BITRIX24_BUCKET_SIZE": "500", "BITRIX24_REQUESTS_PER_SECOND": "500"},
        "amocrm": {"AMOCRM_BASE_URL": crm.url, "AMOCRM_ACCESS_TOKEN": s.amo_access,
                   "AMOCRM_REFRESH_TOKEN": s.amo_refresh, "AMOCRM_CLIENT_ID": s.amo_client_id,
                   "AMOCRM_CLIENT_SECRET": s.amo_client_secret, "AMOCRM_WEBHOOK_SECRET": s.amo_webhook_secret,
                   "AMOCRM_ACCOUNT_SUBDOMAIN": s.amo_subdomain,
                   "AMOCRM_FIELD_OPPORTUNITY": str(s.amo_field_opportunity),
                   "AMOCRM_FIELD_SCORE": str(s.amo_field_score), "AMOCRM_COMPANY_INN_FIELD": str(s.amo_field_inn),
                   "AMOCRM_REQUESTS_PER_SECOND": "500", "CRM_STAGE_MAP": '{"38307946": "new"}'},
    }[which]
    process = ServiceProcess(
        f"crm-{which}-{env.namespace.rstrip('.')}", ["-m", "services.crm", which],
        env={"BG_TOPIC_NAMESPACE": env.namespace, "LOG_LEVEL": "info", "CRM_PORT": str(crm.connector_port),
             "CRM_READ_API_URL": projection, "CRM_READ_API_TOKEN": "dev-crm-token",
             "CRM_RECONCILE_SECONDS": "2", "CRM_FEED_POLL_SECONDS": "0.5", "CRM_ATTEMPTS": "3",
             "CRM_RETRY_BASE_SECONDS": "0.2", "CRM_HTTP_TIMEOUT_SECONDS": "5", **settings, **extra},
        health_url=f"{crm.connector_url}/healthz")
    crm.started.append(process)
    return process


async def projected(env: Env, story: Callable[[Log], str], token: str) -> str:
    """One of DOMAIN.md's stories written to the namespace's topics; its opportunity id once the
    projection (the read API the connectors read) has caught up with it."""
    log = Log(token=token)
    opportunity = story(log)
    await env.produce(log)
    engine = db.create_engine(env.database_url, env.schema, pool_size=1)
    try:
        await wait_caught_up(env, engine)
    finally:
        await engine.dispose()
    return opportunity
