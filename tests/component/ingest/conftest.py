from collections.abc import Iterator

import pytest

from tests.support.processes import ServiceProcess, free_port


@pytest.fixture(scope="module")
def ingest_url(topic_namespace: str) -> Iterator[str]:
    """The ingest service as its own process, against the real Kafka and Redis."""
    port = free_port()
    service = ServiceProcess("ingest", ["-m", "services.ingest"], env={"BG_INGEST_PORT": str(port)},
                             health_url=f"http://127.0.0.1:{port}/readyz")
    with service:
        yield f"http://127.0.0.1:{port}"
