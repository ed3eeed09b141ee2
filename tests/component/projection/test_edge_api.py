"""Issue 19's web and read-API cases through the running projection against the real
PostgreSQL and Kafka (items 4, 6 and 9): security headers, same-origin form posts, text
PostgreSQL refuses, odd tokens, and the pages closed outside development mode."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.component.projection.conftest import CRM, READ, Env
from tests.support.processes import free_port

HEADERS = {"x-frame-options": "DENY", "x-content-type-options": "nosniff", "referrer-policy": "same-origin"}


@pytest.fixture(scope="module")
def production(env: Env) -> Iterator[str]:
    """The projection in production mode, with its own tokens."""
    port = free_port()
    service = env.service(f"projection-prod-{env.namespace.rstrip('.')}", port, BG_ENV="production",
                          BG_API_TOKENS="read-secret", BG_API_WRITE_TOKENS="crm-secret",
                          BG_PRIVACY_PEPPER="production-pepper")
    with service:
        yield f"http://127.0.0.1:{port}"


@pytest.mark.parametrize("path", ["/web/", "/web/login", "/v1/opportunities", "/docs", "/web/static/web.css"])
def test_every_answer_carries_the_security_headers(projection, path):
    r = httpx.get(f"{projection}{path}", headers=READ)
    assert r.status_code == 200, r.text
    for name, value in HEADERS.items():
        assert r.headers[name] == value
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "form-action 'self'" in csp


@pytest.mark.parametrize(("path", "status", "field"), [
    ("/web/opportunities/%00", 404, None), ("/web/opportunities/romashka.ru%00:hr", 404, None),
    ("/v1/opportunities/%00", 422, "path.opportunity_id"), ("/v1/accounts/a%00b", 422, "path.domain"),
])
def test_a_nul_in_the_path_is_refused_without_a_database_error(projection, path, status, field):
    # Issue 19, item 9: /web/opportunities/%00 showed PostgreSQL's raw error. A page for such an
    # id does not exist; the API names the parameter at fault.
    r = httpx.get(f"{projection}{path}", headers=READ)
    assert r.status_code == status, r.text
    assert "invalid byte sequence" not in r.text and "0x00" not in r.text
    if field:
        assert field in [e["field"] for e in r.json()["errors"]]


@pytest.mark.parametrize(("path", "field"), [
    ("/web/?q=%00", "query.q"), ("/web/?solution=a%00", "query.solution"),
    ("/v1/opportunities?stage=%00", "query.stage"), ("/web/live?opportunity=%00", "query.opportunity"),
    ("/v1/attribution?department=it%00", "query.department"),
])
def test_a_nul_in_a_query_parameter_is_422_naming_it(projection, path, field):
    r = httpx.get(f"{projection}{path}", headers=READ)
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == [field]
    assert "invalid byte sequence" not in r.text


@pytest.mark.parametrize("headers", [
    {"Origin": "https://evil.example"},
    {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
    {"Sec-Fetch-Site": "same-site"},
    {"Referer": "https://evil.example/page"},
    {"Origin": "null"},
])
def test_a_login_posted_from_another_site_is_refused(production, headers):
    # Issue 19, item 9: the login form accepted a POST from another origin.
    r = httpx.post(f"{production}/web/login", content="token=read-secret&next=/web/",
                   headers={"content-type": "application/x-www-form-urlencoded", **headers})
    assert r.status_code == 403, r.text
    assert "set-cookie" not in r.headers


@pytest.mark.parametrize("headers", [
    {"Sec-Fetch-Site": "same-origin", "Origin": "http://127.0.0.1"},  # Fetch Metadata decides
    {},  # not a browser: no ambient cookie to abuse
])
def test_a_login_from_this_site_signs_in(production, headers):
    r = httpx.post(f"{production}/web/login", content="token=read-secret&next=/web/",
                   headers={"content-type": "application/x-www-form-urlencoded", **headers})
    assert r.status_code == 303 and "bg_web_token=read-secret" in r.headers["set-cookie"]
    same = httpx.post(f"{production}/web/login", content="token=read-secret&next=/web/",
                      headers={"content-type": "application/x-www-form-urlencoded", "Origin": production})
    assert same.status_code == 303


def test_pages_need_a_token_outside_development_mode(production):
    # Issue 19, item 6: a default token left in the configuration opened the pages.
    assert httpx.get(f"{production}/web/").status_code == 401
    assert httpx.get(f"{production}/web/", headers={"Cookie": "bg_web_token=dev-read-token"}).status_code == 401
    assert httpx.get(f"{production}/v1/opportunities", headers=READ).status_code == 401
    assert httpx.get(f"{production}/web/", headers={"Authorization": "Bearer read-secret"}).status_code == 200


@pytest.mark.parametrize("headers", [
    {"Authorization": b"Bearer \xe9t\xe9"}, {"Authorization": b"Bearer \xff"},
    {"Cookie": b"bg_web_token=\xe9"}, {"Authorization": b"Basic \xe9"},
])
def test_odd_tokens_are_401_never_500(production, headers):
    # Issue 19, item 4's siblings in the read API's and the pages' token checks.
    for path in ("/v1/opportunities", "/web/"):
        r = httpx.get(f"{production}{path}", headers=headers)
        assert r.status_code == 401, (path, r.text)
    form = httpx.post(f"{production}/web/login", content="token=%C3%A9%00&next=/web/",
                      headers={"content-type": "application/x-www-form-urlencoded"})
    assert form.status_code == 401


def test_a_nul_in_a_stage_reason_is_422_naming_it(projection):
    # The same kind as issue 19, item 1, on the read API's one write: the NUL would have reached
    # Kafka and then been refused by PostgreSQL, losing the stage change.
    r = httpx.post(f"{projection}/v1/opportunities/romashka.ru:hr/stage", headers=CRM,
                   json={"stage": "closing", "reason": "Nul\u0000reason"})
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["body.reason"]
