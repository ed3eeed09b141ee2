"""The connectors' settings (environment; pydantic-settings). Secrets are SecretStr: they never
reach a log line or a repr. Bitrix24's incoming-webhook URL holds its secret in the path, so it
is a secret as a whole and only its host is ever logged."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_READ_TOKEN = "dev-crm-token"


class ConnectorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CRM_", extra="ignore")

    host: str = "127.0.0.1"  # where the webhook receiver listens
    port: int = 8085
    public_url: str = "http://127.0.0.1:8085"  # how the CRM reaches the receiver (docs, set-up)
    read_api_url: str = "http://127.0.0.1:8082"
    read_api_token: SecretStr = SecretStr(DEV_READ_TOKEN)  # a CRM token of the read API (BG_API_WRITE_TOKENS)
    create_deals_from: Literal["created", "formed"] = "created"
    lang: Literal["ru", "en"] = "ru"
    stage_map: dict[str, str] = Field(default_factory=dict)  # CRM stage id -> stage, over config/stages.yaml
    reconcile_seconds: float = Field(300.0, gt=0)  # how often every deal changed since the last pass is re-read
    reconcile_overlap_seconds: float = Field(120.0, ge=0)  # re-read before the last pass (clock skew, slow index)
    feed_poll_seconds: float = Field(2.0, gt=0)  # the read API's change feed, when it had nothing new
    task_due_hours: float = Field(24.0, gt=0)
    http_timeout_seconds: float = Field(15.0, gt=0)
    attempts: int = Field(6, ge=1)  # per CRM call, for timeouts, 5xx and rate limits
    retry_base_seconds: float = Field(1.0, ge=0)  # doubles per attempt, capped at 30 s

    def dev_secrets_in_use(self) -> list[str]:
        return ["CRM_READ_API_TOKEN"] if self.read_api_token.get_secret_value() == DEV_READ_TOKEN else []


class Bitrix24Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BITRIX24_", extra="ignore")

    webhook_url: SecretStr = SecretStr("")  # incoming webhook: https://<portal>.bitrix24.ru/rest/<user>/<code>/
    application_token: SecretStr = SecretStr("")  # outgoing webhook's auth[application_token]
    field_opportunity: str = "UF_CRM_BG_OPPORTUNITY"  # deal user fields (crm.deal.userfield.add)
    field_score: str = "UF_CRM_BG_SCORE"
    field_tier: str = "UF_CRM_BG_TIER"
    field_missing_roles: str = "UF_CRM_BG_MISSING_ROLES"
    field_group: str = "UF_CRM_BG_GROUP"
    # Leaky bucket (https://apidocs.bitrix24.ru/limits.html): 2 requests/s drain, 50 before
    # blocking (250 and 5/s on Enterprise). The bucket is the portal's, shared with its other
    # apps, so ours stays below: 10 at 2/s.
    bucket_size: int = Field(10, ge=1)
    requests_per_second: float = Field(2.0, gt=0)

    def missing(self) -> list[str]:
        return [name for name, v in (("BITRIX24_WEBHOOK_URL", self.webhook_url),
                                     ("BITRIX24_APPLICATION_TOKEN", self.application_token))
                if not v.get_secret_value()]


class AmoCrmSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AMOCRM_", extra="ignore")

    base_url: str = ""  # https://<subdomain>.amocrm.ru (or .kommo.com)
    access_token: SecretStr = SecretStr("")  # OAuth 2 access token (or a long-lived token)
    refresh_token: SecretStr = SecretStr("")  # with client id/secret: refreshed on 401, kept in Redis
    client_id: str = ""
    client_secret: SecretStr = SecretStr("")
    redirect_uri: str = ""
    webhook_secret: SecretStr = SecretStr("")  # the last path segment of the webhook URL given to amoCRM
    account_subdomain: str = ""  # when set, a webhook from another account[subdomain] is refused
    field_opportunity: int = 0  # ids of the lead custom fields (GET /api/v4/leads/custom_fields)
    field_score: int = 0
    field_tier: int = 0
    field_missing_roles: int = 0
    field_group: int = 0
    company_inn_field: int = 0  # the company's INN field (text, or legal entity's vat_id); 0: none
    # https://www.amocrm.ru/developers/content/crm_platform/platform-abilities#lim: no more than
    # 7 requests per second; 429 above, and the IP is blocked after repeated excess.
    requests_per_second: float = Field(7.0, gt=0)

    def missing(self) -> list[str]:
        return [name for name, v in (("AMOCRM_BASE_URL", self.base_url),
                                     ("AMOCRM_ACCESS_TOKEN", self.access_token.get_secret_value()),
                                     ("AMOCRM_WEBHOOK_SECRET", self.webhook_secret.get_secret_value()),
                                     ("AMOCRM_FIELD_OPPORTUNITY", self.field_opportunity)) if not v]
