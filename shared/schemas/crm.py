"""Stage changes a CRM reports through the projection API (bg.crm-stage.v1).

Keyed by opportunity_id. The projection API writes them to Kafka instead of straight into its
own tables, so that the topics stay the whole truth: a rebuild from the topics keeps them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shared.schemas.base import Message, ShortStr, UtcDatetime

SCHEMA_VERSION = 1

Outcome = Literal["open", "won", "lost"]


class StageChanged(Message):
    schema_version: Literal[1] = SCHEMA_VERSION
    type: Literal["stage_changed"] = "stage_changed"
    event_id: ShortStr  # deterministic for a given change, so a CRM's retry is a duplicate
    opportunity_id: ShortStr
    account_id: ShortStr
    solution: ShortStr
    stage: ShortStr  # the CRM's own stage name ("cold", "closing", "contract", ...)
    outcome: Outcome = "open"
    amount: float | None = Field(None, ge=0, allow_inf_nan=False)  # deal value, credited to touches when won
    currency: ShortStr | None = None
    changed_at: UtcDatetime  # when the CRM recorded the change; the latest one wins
    source: ShortStr = "crm"  # which CRM reported it

    def key(self) -> str:
        return self.opportunity_id
