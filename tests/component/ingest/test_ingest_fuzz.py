"""Property-based: whatever schemathesis sends per the OpenAPI spec, the ingest never answers 500."""

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from services.ingest.main import build_app

# The spec is the one the running service serves; building the app reads no servers.
schema = schemathesis.openapi.from_dict(build_app()[1].openapi())

KEYS = {
    "/v1/events": {"X-API-Key": "dev-api-key"},
    "/v1/sources/segment": {"X-API-Key": "dev-segment-key"},
    "/v1/sources/sendgrid": {"X-API-Key": "dev-sendgrid-key"},
}


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_makes_a_500(case, ingest_url):
    headers = KEYS.get(case.path, {})
    case.call_and_validate(base_url=ingest_url, headers=headers, checks=[not_a_server_error])
