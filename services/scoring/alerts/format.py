"""Pure formatting and signing of alert deliveries: no I/O, no clock (the caller passes the time)."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Literal

from shared.schemas.scoring import Signal

Format = Literal["json", "slack", "telegram"]

SIGNATURE_HEADER = "X-BG-Signature"
TIMESTAMP_HEADER = "X-BG-Timestamp"
SIGNAL_ID_HEADER = "X-BG-Signal-Id"

TITLES = {
    "group_forming": "Группа закупки формируется",
    "group_formed": "Группа закупки сформирована",
    "group_expanded": "Группа закупки расширилась",
    "role_gap": "В группе не хватает ролей",
    "priority_changed": "Приоритет изменился",
    "stalled": "Группа затихла",
    "reactivated": "Группа снова активна",
}


def render_text(signal: Signal) -> str:
    """A short plain-text message a salesperson reads in a chat."""
    account = signal.account_name or signal.account_id
    lines = [f"[{signal.tier} · {signal.score:.1f}] {TITLES[signal.signal]}: {account} · {signal.solution}"]
    if signal.members:
        people = ", ".join(f"{m.name or m.person_id} ({m.department}, {m.role})" for m in signal.members)
        lines.append(f"Участники ({len(signal.members)}): {people}")
    if signal.covered_roles:
        lines.append("Роли: " + ", ".join(signal.covered_roles))
    if signal.missing_roles:
        lines.append("Не хватает: " + ", ".join(signal.missing_roles))
    if signal.signal == "priority_changed":
        lines.append(f"Приоритет: {signal.detail.get('from')} → {signal.detail.get('to')}")
    lines.append(f"Когда: {signal.occurred_at:%Y-%m-%d %H:%M} UTC · {signal.signal_id}")
    return "\n".join(lines)


def body(signal: Signal, fmt: Format, chat_id: str | None = None) -> bytes:
    if fmt == "slack":
        payload: dict = {"text": render_text(signal)}
    elif fmt == "telegram":
        if not chat_id:
            raise ValueError("a telegram webhook needs a chat_id")
        payload = {"chat_id": chat_id, "text": render_text(signal), "disable_web_page_preview": True}
    else:
        payload = {"signal": signal.model_dump(mode="json"), "text": render_text(signal)}
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def sign(secret: str, timestamp: int, content: bytes) -> str:
    """HMAC-SHA256 over "<timestamp>." + body: the timestamp is signed so a captured request
    cannot be replayed later with a fresh one."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + content, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: int, content: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(secret, timestamp, content), signature)


def headers(signal: Signal, content: bytes, secret: str | None, timestamp: int) -> dict[str, str]:
    result = {"Content-Type": "application/json; charset=utf-8", SIGNAL_ID_HEADER: signal.signal_id,
              TIMESTAMP_HEADER: str(timestamp)}
    if secret:
        result[SIGNATURE_HEADER] = sign(secret, timestamp, content)
    return result
