"""What the e2e stories of corrections and account merges share: touches and corrections written
straight to the pipeline's input topics (the corrections API writes the same messages to
bg.correction.v1), and a rebuild from the log: grouping, scoring and projection started afresh
on copies of the input topics in a new namespace, projecting into a new schema."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import AsyncIterator, Sequence

import httpx

from shared import topics
from shared.codec import encode
from shared.schemas.correction import CorrectionMessage
from shared.schemas.touch import TouchEvent
from shared.topics import Topic, ensure_topics
from tests.e2e.conftest import TOKEN, Pipeline
from tests.support.kafka import copy_log, namespace, new_namespace, produce
from tests.support.processes import ServiceProcess, free_port


async def send(ns: str, *events: TouchEvent) -> None:
    """Touches onto bg.person-events.v1 of namespace `ns`, keyed as ingest keys them."""
    await produce(ns + topics.PERSON_EVENTS.base_name, [(e.key(), encode(e)) for e in events])


async def correct(ns: str, *corrections: CorrectionMessage) -> None:
    """Corrections onto bg.correction.v1 of namespace `ns`, in this order, keyed by their subject."""
    await produce(ns + topics.CORRECTIONS.base_name, [(c.key(), encode(c)) for c in corrections])


@contextlib.asynccontextmanager
async def rebuilt(pipeline: Pipeline, source_ns: str, inputs: Sequence[Topic], label: str
                  ) -> AsyncIterator[httpx.Client]:
    """A read-API client of a pipeline rebuilt from copies of `inputs` (copied whole, one topic
    after the other in this order, so a test chooses which interleaving grouping reads first);
    `label` names its processes and schema (`<pipeline schema>_<label>`). The services stop when
    the block ends; a service that does not start raises from ServiceProcess.start."""
    rebuilt_ns = new_namespace("r")
    with namespace(rebuilt_ns):
        await ensure_topics(wait_seconds=30)
    for topic in inputs:
        await copy_log(source_ns + topic.base_name, rebuilt_ns + topic.base_name)
    port = free_port()
    # The idle clock is held as in the live pipeline (tests/e2e/conftest.py), so the rebuilt
    # groups are read as of the same time as the live ones.
    env = {"BG_TOPIC_NAMESPACE": rebuilt_ns, "PROJECTION_DB_SCHEMA": f"{pipeline.db_schema}_{label}",
           "BG_API_PORT": str(port), "BG_STATE_DIR": tempfile.mkdtemp(prefix=f"{label}-rebuild-"),
           "BG_CLOCK_IDLE_SECONDS": "3600", "LOG_LEVEL": "info"}
    services = [ServiceProcess(f"e2e-{label}-grouping", ["-m", "services.grouping"], env),
                ServiceProcess(f"e2e-{label}-scoring", ["-m", "services.scoring"], env),
                ServiceProcess(f"e2e-{label}-projection", ["-m", "services.projection"], env,
                               health_url=f"http://127.0.0.1:{port}/readyz")]
    try:
        for service in services:
            service.start(timeout=90)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=TOKEN, timeout=15) as api:
            yield api
    finally:
        for service in services:
            service.stop()
