"""Alert formatting, signing and routing: pure functions."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from services.scoring.alerts import format as fmt
from services.scoring.alerts.config import load_alerts_config
from shared.schemas.roles import BuyingRole, Department
from shared.schemas.scoring import MemberContribution, Signal
from tests.unit.scoring.stories import day

pytestmark = pytest.mark.unit

SIGNAL = Signal(
    signal_id="romashka.ru:hr:group_formed:1", signal="group_formed", opportunity_id="romashka.ru:hr",
    account_id="romashka.ru", account_name="Красная ромашка", account_owner="anna@vendor.example",
    solution="hr", occurred_at=day(10, 1), score=79.3, tier="A",
    members=(MemberContribution(person_id="e@romashka.ru", name="Елена Соколова", department=Department.hr,
                                role=BuyingRole.initiator, engagement=5.0, touches=3),),
    covered_roles=(BuyingRole.initiator,), missing_roles=(BuyingRole.decision_maker,),
)


def test_text_names_the_account_people_roles_and_gaps() -> None:
    text = fmt.render_text(SIGNAL)
    assert text.splitlines()[0] == "[A · 79.3] Группа закупки сформирована: Красная ромашка · hr"
    assert "Елена Соколова (hr, initiator)" in text
    assert "Не хватает: decision_maker" in text
    assert "romashka.ru:hr:group_formed:1" in text


def test_bodies_for_json_slack_and_telegram() -> None:
    generic = json.loads(fmt.body(SIGNAL, "json"))
    assert generic["signal"]["signal_id"] == SIGNAL.signal_id and generic["text"] == fmt.render_text(SIGNAL)
    assert json.loads(fmt.body(SIGNAL, "slack")) == {"text": fmt.render_text(SIGNAL)}
    telegram = json.loads(fmt.body(SIGNAL, "telegram", chat_id="-100123"))
    assert telegram == {"chat_id": "-100123", "text": fmt.render_text(SIGNAL), "disable_web_page_preview": True}
    with pytest.raises(ValueError):
        fmt.body(SIGNAL, "telegram")


def test_signature_is_hmac_sha256_over_timestamp_and_body() -> None:
    content = b'{"a":1}'
    expected = "sha256=" + hmac.new(b"s3cret", b"1700000000." + content, hashlib.sha256).hexdigest()
    assert fmt.sign("s3cret", 1700000000, content) == expected
    assert fmt.verify("s3cret", 1700000000, content, expected)
    assert not fmt.verify("s3cret", 1700000001, content, expected)
    assert not fmt.verify("other", 1700000000, content, expected)
    headers = fmt.headers(SIGNAL, content, "s3cret", 1700000000)
    assert headers[fmt.SIGNATURE_HEADER] == expected and headers[fmt.SIGNAL_ID_HEADER] == SIGNAL.signal_id
    assert fmt.SIGNATURE_HEADER not in fmt.headers(SIGNAL, content, None, 1700000000)


def test_routing_prefers_the_account_owner_and_expands_the_environment(tmp_path) -> None:
    path = tmp_path / "alerts.yaml"
    path.write_text("""
webhooks:
  team: {url: "${TEAM_URL}", format: slack, secret: "${SECRET:-}"}
  anna: {url: "http://tg/bot${TG_TOKEN}/sendMessage", format: telegram, chat_id: "42"}
  gaps: {url: "http://gaps", signals: [role_gap]}
routing:
  default: [team, gaps]
  owners: {Anna@Vendor.example: [anna]}
  signals: [group_formed, role_gap]
""")
    config = load_alerts_config(path, environ={"TEAM_URL": "http://team", "TG_TOKEN": "T"})
    assert config.webhooks["team"].url == "http://team" and config.webhooks["team"].secret is None
    assert config.webhooks["anna"].url == "http://tg/botT/sendMessage"
    assert config.route(SIGNAL) == ["anna"]
    assert config.route(SIGNAL.model_copy(update={"account_owner": None})) == ["team"]
    assert config.route(SIGNAL.model_copy(update={"account_owner": None, "signal": "role_gap"})) == ["team", "gaps"]
    assert config.route(SIGNAL.model_copy(update={"account_owner": "bob@vendor.example"})) == ["team"]
    assert config.route(SIGNAL.model_copy(update={"signal": "group_forming"})) == []
    with pytest.raises(ValueError, match="TEAM_URL"):
        load_alerts_config(path, environ={})


def test_backoff_doubles_up_to_the_cap(tmp_path) -> None:
    path = tmp_path / "alerts.yaml"
    path.write_text("""
webhooks: {}
routing: {signals: []}
delivery: {attempts: 6, backoff_initial: 0.5, backoff_max: 3}
""")
    delivery = load_alerts_config(path, environ={}).delivery
    assert [delivery.backoff(a) for a in range(1, 6)] == [0.5, 1, 2, 3, 3]
