"""Alert formatting, signing and routing: pure functions."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from services.scoring.alerts import format as fmt
from services.scoring.alerts.config import Webhook, load_alerts_config
from services.scoring.alerts.dispatcher import cooldown_level, redact
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


def test_text_uses_the_pages_words_in_russian_with_a_link() -> None:
    text = fmt.render_text(SIGNAL, "ru", "https://bg.example.com/")
    assert text.splitlines() == [
        "[A · 79,3] Группа сформирована: Красная ромашка · HR-система",
        "Участники (1): Елена Соколова (HR, Инициатор)",
        "Роли: Инициатор",
        "Не хватает: Принимает решение",
        "Когда: 13.03.2025 10:00 UTC",
        "Открыть возможность: https://bg.example.com/web/opportunities/romashka.ru%3Ahr",
    ]


def test_text_in_english_and_the_page_word_for_stalled() -> None:
    text = fmt.render_text(SIGNAL, "en", "http://pages")
    assert text.splitlines()[0] == "[A · 79.3] Group formed: Красная ромашка · HR system"
    assert "Members (1): Елена Соколова (HR, Initiator)" in text and "Missing: Decision maker" in text
    stalled = fmt.render_text(SIGNAL.model_copy(update={"signal": "stalled"}), "ru")
    assert "Группа застопорилась" in stalled and "затихла" not in stalled
    assert "Открыть" not in stalled  # no base URL configured: no link
    assert "(из истории)" in fmt.render_text(SIGNAL.model_copy(update={"backfill": True}), "ru")


EVIL = SIGNAL.model_copy(update={"account_name": "<!channel> <https://evil.example|Открыть сделку>"})


def test_slack_text_escapes_control_characters_so_nothing_pings_or_links() -> None:
    text = json.loads(fmt.body(EVIL, "slack", base_url="https://bg.example.com"))["text"]
    assert "&lt;!channel&gt; &lt;https://evil.example|Открыть сделку&gt;" in text.splitlines()[0]
    # The only link Slack parses is our own.
    assert text.count("<") == 1 and text.count(">") == 1
    assert text.splitlines()[-1] == "<https://bg.example.com/web/opportunities/romashka.ru%3Ahr|Открыть возможность>"
    amp = json.loads(fmt.body(SIGNAL.model_copy(update={"account_name": "A&B"}), "slack"))["text"]
    assert "A&amp;B" in amp


def test_telegram_text_is_html_escaped_for_its_parse_mode() -> None:
    body = json.loads(fmt.body(EVIL, "telegram", chat_id="-100123", base_url="https://bg.example.com"))
    assert body["parse_mode"] == "HTML" and body["chat_id"] == "-100123"
    text = body["text"]
    assert "&lt;!channel&gt; &lt;https://evil.example|Открыть сделку&gt;" in text
    assert text.count("<a ") == 1 and "evil.example\"" not in text
    assert text.endswith('<a href="https://bg.example.com/web/opportunities/romashka.ru%3Ahr">Открыть возможность</a>')


def test_json_body_keeps_the_signal_and_plain_text() -> None:
    generic = json.loads(fmt.body(EVIL, "json", base_url="https://bg.example.com"))
    assert generic["signal"]["account_name"] == EVIL.account_name
    assert generic["text"].startswith("[A · 79,3] Группа сформирована: <!channel> <https://evil.example|")
    assert generic["url"] == "https://bg.example.com/web/opportunities/romashka.ru%3Ahr"
    with pytest.raises(ValueError):
        fmt.body(SIGNAL, "telegram")


def test_headers_of_an_idn_signal_are_ascii_and_decode_back() -> None:
    idn = SIGNAL.model_copy(update={"signal_id": "ласточка.рф:hr:group_formed:1", "opportunity_id": "ласточка.рф:hr"})
    headers = fmt.headers(idn, b"{}", "s3cret", 1700000000)
    for value in headers.values():
        value.encode("ascii")
    from urllib.parse import unquote
    assert unquote(headers[fmt.SIGNAL_ID_HEADER]) == idn.signal_id
    assert fmt.headers(SIGNAL, b"{}", None, 1)[fmt.SIGNAL_ID_HEADER] == "romashka.ru:hr:group_formed:1"


def test_cooldown_levels_never_hold_back_a_tier_upgrade() -> None:
    change = SIGNAL.model_copy(update={"signal": "priority_changed", "detail": {"from": "B", "to": "A"}})
    assert cooldown_level(change) is None
    assert cooldown_level(change.model_copy(update={"detail": {"from": "C", "to": "B"}, "tier": "B"})) is None
    assert cooldown_level(change.model_copy(update={"detail": {"from": "A", "to": "B"}, "tier": "B"})) == "B"
    assert cooldown_level(SIGNAL) == "A"
    assert cooldown_level(SIGNAL.model_copy(update={"tier": "B"})) == "B"


def test_redact_names_the_webhook_instead_of_its_url() -> None:
    hook = Webhook(url="https://api.telegram.org/bot123:SECRET/sendMessage", format="telegram", chat_id="1")
    error = redact("ConnectError: https://api.telegram.org/bot123:SECRET/sendMessage failed; /bot123:SECRET/", hook,
                   "owner")
    assert "SECRET" not in error and "<webhook owner>" in error


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
    # The opportunity's seller team first (issue 17), then the account owner, then the default.
    bob = SIGNAL.model_copy(update={"account_owner": "bob@vendor.example"})
    assert config.route(bob, team={"ae": "bob@vendor.example", "se": "ANNA@vendor.example"}) == ["anna"]
    assert config.route(SIGNAL, team={"ae": "bob@vendor.example"}) == ["anna"]  # nobody's hook: the owner's
    assert config.route(bob, team={"ae": "bob@vendor.example", "csm": None}) == ["team"]
    # History alerts nobody unless asked for.
    assert config.route(SIGNAL.model_copy(update={"backfill": True})) == []
    assert config.start == "latest" and config.include_backfill is False
    told = load_alerts_config(path, environ={"TEAM_URL": "http://team", "TG_TOKEN": "T", "BG_ALERTS_START": "earliest",
                                             "BG_ALERTS_INCLUDE_BACKFILL": "1", "BG_WEB_BASE_URL": "https://bg"})
    assert told.start == "earliest" and told.web_base_url == "https://bg"
    assert told.route(SIGNAL.model_copy(update={"backfill": True})) == ["anna"]
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


def test_the_readme_snippet_verifies_a_real_delivery() -> None:
    """The README's verifying code, run as written against what the dispatcher sends."""
    import re
    import time
    from pathlib import Path

    readme = (Path(__file__).parents[3] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Verifying an alert's signature"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    scope: dict = {}
    exec(code, scope)  # the documentation's own snippet
    content = fmt.body(SIGNAL, "json")
    now = int(time.time())
    sent = fmt.headers(SIGNAL, content, "s3cret", now)
    assert scope["verify"]("s3cret", sent, content)
    assert not scope["verify"]("s3cret", sent, content + b" ")
    assert not scope["verify"]("other", sent, content)
    assert not scope["verify"]("s3cret", fmt.headers(SIGNAL, content, "s3cret", now - 3600), content)
