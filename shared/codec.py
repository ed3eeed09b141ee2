"""The one codec for messages on Kafka: pydantic models <-> JSON bytes.

Decoding validates (pydantic-core, from bytes, no intermediate dict) and rejects what does
not fit the schema with a DecodeError that names the fields at fault, so a consumer can
dead-letter it with the reason.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from shared.schemas.correction import Correction
from shared.schemas.crm import QualificationEvent, StageChanged
from shared.schemas.crm_sync import CrmLinkMessage
from shared.schemas.deadletter import DeadLetter
from shared.schemas.opportunity import OpportunityEvent, OpportunityLogMessage
from shared.schemas.privacy import PersonLogMessage
from shared.schemas.scoring import ScoringMessage
from shared.schemas.touch import PersonEvent

T = TypeVar("T")


class DecodeError(ValueError):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def describe_errors(exc: ValidationError, limit: int = 5) -> str:
    """'person.email: value is not a valid email address; ...' (field path, then message)."""
    parts = []
    for err in exc.errors()[:limit]:
        path = ".".join(str(p) for p in err["loc"]) or "(message)"
        parts.append(f"{path}: {err['msg']}")
    more = len(exc.errors()) - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


class Codec(Generic[T]):
    def __init__(self, type_: Any) -> None:
        self._adapter: TypeAdapter[T] = TypeAdapter(type_)

    def decode(self, data: bytes | str) -> T:
        try:
            return self._adapter.validate_json(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            reason = "invalid_json" if first["type"] == "json_invalid" else "invalid_schema"
            raise DecodeError(reason, describe_errors(exc)) from None

    @staticmethod
    def encode(message: BaseModel) -> bytes:
        return message.__pydantic_serializer__.to_json(message)


person_events: Codec[PersonEvent] = Codec(PersonEvent)
# What consumers of bg.person-events.v1 decode: person events and erasures (docs/privacy.md).
person_log: Codec[PersonLogMessage] = Codec(PersonLogMessage)
opportunity_events: Codec[OpportunityEvent] = Codec(OpportunityEvent)
# What consumers of bg.opportunity.v1 decode: opportunity events and clock ticks.
opportunity_log: Codec[OpportunityLogMessage] = Codec(OpportunityLogMessage)
scoring_messages: Codec[ScoringMessage] = Codec(ScoringMessage)
dead_letters: Codec[DeadLetter] = Codec(DeadLetter)
crm_events: Codec[StageChanged] = Codec(StageChanged)
qualification_events: Codec[QualificationEvent] = Codec(QualificationEvent)
crm_links: Codec[CrmLinkMessage] = Codec(CrmLinkMessage)
corrections: Codec[Correction] = Codec(Correction)
encode = Codec.encode
