"""Pure formatting and signing of alert deliveries: no I/O, no clock (the caller passes the time).

The text uses the words of the web pages (shared.vocabulary), in the webhook's language, and
ends with a link to the opportunity's page. Every piece of text that comes from the data
(company and people names, above all) is escaped as the target requires:
- json: plain text in a JSON string (the receiver renders it as it likes);
- slack: Slack treats `&`, `<` and `>` as control characters (links, @channel mentions), so
  they become `&amp;`, `&lt;`, `&gt;` (Slack's "Formatting text" reference); our own link is
  the only `<url|label>` in the text;
- telegram: parse_mode HTML, so `&`, `<`, `>` and `"` become entities (Telegram Bot API,
  "HTML style"); our own link is the only `<a href>`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from html import escape as html_escape
from typing import Literal
from urllib.parse import quote

from shared.schemas.roles import BuyingRole
from shared.schemas.scoring import Signal
from shared.vocabulary import Lang, number, word

Format = Literal["json", "slack", "telegram"]

SIGNATURE_HEADER = "X-BG-Signature"
TIMESTAMP_HEADER = "X-BG-Timestamp"
SIGNAL_ID_HEADER = "X-BG-Signal-Id"
# The signal id percent-encoded as UTF-8 (RFC 3986): ids carry account domains, and an
# internationalised one (ласточка.рф) cannot go into an HTTP header as it is.
HEADER_SAFE = ":/@!$&'()*+,;=-._~"

ROLE_ORDER = tuple(role.value for role in BuyingRole)  # the buying process's order, as on the pages

LINES: dict[str, dict[Lang, str]] = {
    "members": {"ru": "Участники ({n})", "en": "Members ({n})"},
    "priority": {"ru": "Уровень: {old} → {new}", "en": "Tier: {old} → {new}"},
    "when": {"ru": "Когда", "en": "When"},
}


def opportunity_link(base_url: str | None, opportunity_id: str) -> str | None:
    """The opportunity's page under the pages' base URL (e.g. https://bg.example.com), or None."""
    if not base_url:
        return None
    return base_url.rstrip("/") + "/web/opportunities/" + quote(opportunity_id, safe="")


def header_value(value: str) -> str:
    """An id as an HTTP header value: ASCII kept, anything else percent-encoded as UTF-8."""
    return quote(value, safe=HEADER_SAFE)


def _in_role_order(roles: tuple[str, ...]) -> list[str]:
    return sorted(roles, key=lambda r: (ROLE_ORDER.index(r) if r in ROLE_ORDER else len(ROLE_ORDER), r))


@dataclass(frozen=True)
class _Markup:
    """How one target escapes text and writes a link."""

    escape: Callable[[str], str]
    link: Callable[[str, str], str]


def slack_escape(text: str) -> str:
    """Slack's control characters as entities: & first, so that the others stay single."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def telegram_escape(text: str) -> str:
    """Text for Telegram's parse_mode HTML: &, <, > and " as entities (' as a numeric one)."""
    return html_escape(text, quote=True)


PLAIN = _Markup(lambda s: s, lambda url, label: f"{label}: {url}")
SLACK = _Markup(slack_escape, lambda url, label: f"<{url}|{slack_escape(label)}>")
TELEGRAM = _Markup(telegram_escape, lambda url, label: f'<a href="{telegram_escape(url)}">{telegram_escape(label)}</a>')
MARKUP: dict[Format, _Markup] = {"json": PLAIN, "slack": SLACK, "telegram": TELEGRAM}


def render_text(signal: Signal, lang: Lang = "ru", base_url: str | None = None, fmt: Format = "json") -> str:
    """A short message a salesperson reads in a chat, in `lang`, escaped for `fmt`:

        [A · 79,3] Группа сформирована: Красная ромашка · HR-система
        Участники (1): Елена Соколова (HR, Инициатор)
        Роли: Инициатор
        Не хватает: Принимает решение
        Когда: 10.01.2026 01:00 UTC
        Открыть возможность: https://bg.example.com/web/opportunities/romashka.ru%3Ahr
    """
    m = MARKUP[fmt]
    e = m.escape
    account = signal.account_name or signal.account_id
    head = (f"[{signal.tier} · {number(signal.score, lang)}] {word('signal', signal.signal, lang)}: "
            f"{e(account)} · {e(word('solution', signal.solution, lang))}")
    if signal.backfill:
        head += f" ({word('signal', 'backfill', lang)})"
    lines = [head]
    if signal.members:
        people = ", ".join(f"{e(x.name or x.person_id)} ({word('dept', x.department, lang)}, "
                           f"{word('role', x.role, lang)})" for x in signal.members)
        lines.append(LINES["members"][lang].format(n=len(signal.members)) + ": " + people)
    if signal.covered_roles:
        lines.append(word("col", "roles", lang) + ": "
                     + ", ".join(word("role", r, lang) for r in _in_role_order(signal.covered_roles)))
    if signal.missing_roles:
        lines.append(word("roles", "missing_list", lang) + ": "
                     + ", ".join(word("role", r, lang) for r in _in_role_order(signal.missing_roles)))
    if signal.signal == "priority_changed":
        lines.append(LINES["priority"][lang].format(old=e(str(signal.detail.get("from"))),
                                                    new=e(str(signal.detail.get("to")))))
    when = signal.occurred_at.strftime("%d.%m.%Y %H:%M" if lang == "ru" else "%Y-%m-%d %H:%M")
    lines.append(f"{LINES['when'][lang]}: {when} UTC")
    if link := opportunity_link(base_url, signal.opportunity_id):
        lines.append(m.link(link, word("opp", "open", lang)))
    return "\n".join(lines)


def body(signal: Signal, fmt: Format, chat_id: str | None = None, lang: Lang = "ru",
         base_url: str | None = None) -> bytes:
    """The request body (UTF-8 JSON) for a webhook of format `fmt`:
    json -> {"signal": <the Signal>, "text", "url"}; slack -> {"text"} (mrkdwn);
    telegram -> {"chat_id", "text", "parse_mode": "HTML", "disable_web_page_preview"}.
    Raises ValueError for telegram without a chat_id."""
    text = render_text(signal, lang, base_url, fmt)
    if fmt == "slack":
        payload: dict = {"text": text}
    elif fmt == "telegram":
        if not chat_id:
            raise ValueError("a telegram webhook needs a chat_id")
        payload = {"chat_id": chat_id, "text": text, "parse_mode": "HTML", "disable_web_page_preview": True}
    else:
        payload = {"signal": signal.model_dump(mode="json"), "text": text,
                   "url": opportunity_link(base_url, signal.opportunity_id)}
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def sign(secret: str, timestamp: int, content: bytes) -> str:
    """HMAC-SHA256 over "<timestamp>." + body, hex, prefixed "sha256=": the timestamp (Unix
    seconds, the X-BG-Timestamp header) is signed so that a captured request cannot be
    replayed later with a fresh one. The README's "Alerts" section shows how to verify it."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + content, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: int, content: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(secret, timestamp, content).encode(), signature.encode())


def headers(signal: Signal, content: bytes, secret: str | None, timestamp: int) -> dict[str, str]:
    """The delivery's headers, all ASCII: the signal id percent-encoded (header_value)."""
    result = {"Content-Type": "application/json; charset=utf-8", SIGNAL_ID_HEADER: header_value(signal.signal_id),
              TIMESTAMP_HEADER: str(timestamp)}
    if secret:
        result[SIGNATURE_HEADER] = sign(secret, timestamp, content)
    return result
