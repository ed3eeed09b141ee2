"""Alert configuration (YAML with ${ENV} references) and routing of a signal to its webhooks."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, model_validator

from services.scoring.alerts.format import Format
from shared.alert_routing import alert_recipients
from shared.schemas.scoring import Signal, SignalType
from shared.vocabulary import Lang

DEFAULT_PATH = Path(__file__).parents[1] / "config" / "alerts.yaml"
ENV_PATH = "BG_ALERTS_CONFIG"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Webhook(_Strict):
    url: str
    format: Format = "json"
    secret: str | None = None
    chat_id: str | None = None
    # The language of the text (the words of the web pages): ru or en.
    lang: Lang = "ru"
    # Only these signals go to this webhook (say, a manager's channel for group_formed only).
    signals: tuple[SignalType, ...] | None = None

    @model_validator(mode="after")
    def _telegram_chat(self) -> Webhook:
        if self.format == "telegram" and not self.chat_id:
            raise ValueError("a telegram webhook needs a chat_id")
        return self


class Routing(_Strict):
    default: tuple[str, ...] = ()
    owners: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    signals: tuple[SignalType, ...]


class Delivery(_Strict):
    attempts: PositiveInt = 5
    backoff_initial: float = Field(0.5, ge=0)
    backoff_max: float = Field(30.0, ge=0)
    timeout: PositiveFloat = 10.0

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed try number `attempt` (1-based)."""
        return min(self.backoff_initial * 2 ** (attempt - 1), self.backoff_max)

    def worst_case_seconds(self) -> float:
        return self.attempts * self.timeout + sum(self.backoff(a) for a in range(1, self.attempts))


class AlertsConfig(_Strict):
    webhooks: dict[str, Webhook]
    routing: Routing
    delivery: Delivery = Delivery()
    cooldown_seconds: int = Field(900, ge=0)
    dedupe_ttl_seconds: PositiveInt = 30 * 24 * 3600
    redis_prefix: str = "bg:alerts:"
    # Where the web pages are (the read API's address as people reach it); alerts link there.
    web_base_url: str | None = None
    # Where a dispatcher whose consumer group has no offsets yet starts: "latest" sends only
    # what is written from its first start on; "earliest" sends the whole topic.
    start: Literal["latest", "earliest"] = "latest"
    # Signals of history (Signal.backfill: a backfill, a replay) alert nobody unless true.
    include_backfill: bool = False

    @model_validator(mode="after")
    def _known_webhooks(self) -> AlertsConfig:
        named = set(self.routing.default).union(*self.routing.owners.values())
        unknown = named - set(self.webhooks)
        if unknown:
            raise ValueError(f"routing names unknown webhooks: {sorted(unknown)}")
        return self

    def route(self, signal: Signal, team: Mapping[str, str | None] | None = None) -> list[str]:
        """Webhook names for a signal: those the opportunity's seller team has under
        `routing.owners` (`team`: {role: person}, as GET /v1/opportunities/{id}/team and
        TeamAssigned on bg.crm-stage.v2 give it; shared.alert_routing orders them), else the
        account owner's, else the default; none for a backfill signal unless include_backfill."""
        if signal.signal not in self.routing.signals or (signal.backfill and not self.include_backfill):
            return []
        owners = {k.strip().lower(): v for k, v in self.routing.owners.items()}

        def webhooks_of(people: list[str]) -> list[str]:
            return list(dict.fromkeys(n for p in people for n in owners.get(p.strip().lower(), ())))

        names = (webhooks_of(alert_recipients(team or {}, None))
                 or webhooks_of(alert_recipients({}, signal.account_owner)) or list(self.routing.default))
        return [n for n in names if self.webhooks[n].signals is None or signal.signal in self.webhooks[n].signals]


def _expand(value: Any, environ: dict[str, str]) -> Any:
    if isinstance(value, str):
        def sub(match: re.Match) -> str:
            name, default = match.group(1), match.group(2)
            if name in environ:
                return environ[name]
            if default is not None:
                return default
            raise ValueError(f"alerts config needs the environment variable {name}")
        return _ENV_REF.sub(sub, value)
    if isinstance(value, dict):
        return {k: _expand(v, environ) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, environ) for v in value]
    return value


# Environment variables that override the file's settings of the same meaning, whatever file.
OVERRIDES = {"BG_ALERTS_START": "start", "BG_ALERTS_INCLUDE_BACKFILL": "include_backfill",
             "BG_WEB_BASE_URL": "web_base_url"}


def load_alerts_config(path: str | Path | None = None, environ: dict[str, str] | None = None) -> AlertsConfig:
    """The file at `path` (else BG_ALERTS_CONFIG, else the shipped one) with ${ENV} expanded and
    the OVERRIDES applied. Raises ValueError (pydantic's ValidationError among them) naming
    what is wrong: an unknown webhook in the routing, a missing variable, a bad value."""
    env = dict(os.environ if environ is None else environ)
    source = Path(path or env.get(ENV_PATH) or DEFAULT_PATH)
    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    data = _expand(data, env)
    for var, key in OVERRIDES.items():
        if env.get(var):
            data[key] = env[var]
    if data.get("web_base_url") == "":
        data["web_base_url"] = None
    for hook in data.get("webhooks", {}).values():
        for key in ("secret", "chat_id"):
            if hook.get(key) == "":
                hook[key] = None
    return AlertsConfig.model_validate(data)
