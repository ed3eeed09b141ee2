"""The webhook receiver over HTTP: authenticity first, a field named for bad input, pending
notices kept before the 200."""

from __future__ import annotations

from urllib.parse import urlencode

import httpx
from pydantic import SecretStr

from services.crm.adapters.amocrm import AmoCrm
from services.crm.adapters.bitrix24 import Bitrix24
from services.crm.app import create_app
from services.crm.settings import AmoCrmSettings, Bitrix24Settings

FORM = {"content-type": "application/x-www-form-urlencoded"}


def receiver(client):
    received, woken = [], []

    async def receive(notices) -> None:
        received.extend(notices)
    app = create_app(client, receive, lambda: woken.append(1))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://receiver"), received, woken


async def test_bitrix24_webhooks() -> None:
    client = Bitrix24(Bitrix24Settings(webhook_url=SecretStr("https://portal.bitrix24.ru/rest/1/x/"),
                                       application_token=SecretStr("token-1")))
    http, received, woken = receiver(client)
    good = {"event": "ONCRMDEALUPDATE", "data[FIELDS][ID]": "7", "ts": "1466439714",
            "auth[application_token]": "token-1", "auth[domain]": "portal.bitrix24.ru"}
    r = await http.post("/webhooks/bitrix24", content=urlencode(good), headers=FORM)
    assert r.status_code == 200 and r.json() == {"accepted": 1} and woken == [1]
    assert [(n.entity, n.record_id) for n in received] == [("deal", "7")]
    r = await http.post("/webhooks/bitrix24", content=urlencode({**good, "auth[application_token]": "forged"}),
                  headers=FORM)
    assert r.status_code == 403 and r.json()["errors"][0]["field"] == "auth[application_token]"
    r = await http.post("/webhooks/bitrix24", content=urlencode({**good, "data[FIELDS][ID]": "x"}), headers=FORM)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "data[FIELDS][ID]"
    r = await http.post("/webhooks/bitrix24", content=b"\xff\xfe", headers=FORM)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body"
    assert len(received) == 1  # nothing refused was kept


async def test_amocrm_webhooks_need_the_secret_path() -> None:
    client = AmoCrm(AmoCrmSettings(base_url="https://romashka.amocrm.ru", webhook_secret=SecretStr("s3cret"),
                                   account_subdomain="romashka"))
    http, received, _ = receiver(client)
    form = urlencode({"leads[status][0][id]": "25399013", "leads[status][0][status_id]": "142",
                      "leads[status][0][old_status_id]": "38307946", "leads[status][0][pipeline_id]": "4345612",
                      "account[subdomain]": "romashka", "account[id]": "29085955"})
    assert (await http.post("/webhooks/amocrm/guess", content=form, headers=FORM)).status_code == 403
    r = await http.post("/webhooks/amocrm/s3cret", content=form, headers=FORM)
    assert r.status_code == 200 and [(n.entity, n.record_id) for n in received] == [("deal", "25399013")]
    assert (await http.post("/webhooks/bitrix24", content=form, headers=FORM)).status_code == 404
