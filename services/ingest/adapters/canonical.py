"""POST /v1/events: our own canonical format, one event, a list, or {"events": [...]}."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from services.ingest.adapters.results import MapResult
from shared.schemas.touch import PersonEvent

_single: TypeAdapter[PersonEvent] = TypeAdapter(PersonEvent)


@lru_cache
def _batch_types(max_batch: int) -> tuple[TypeAdapter, type[BaseModel]]:
    events = Annotated[list[PersonEvent], Field(min_length=1, max_length=max_batch)]

    class Batch(BaseModel):
        model_config = ConfigDict(extra="forbid")
        events: events  # type: ignore[valid-type]

    return TypeAdapter(events), Batch


def parse(body: Any, max_batch: int) -> list[MapResult]:
    as_list, batch = _batch_types(max_batch)
    if isinstance(body, list):
        return list(as_list.validate_python(body))
    if isinstance(body, dict) and "events" in body:
        return list(batch.model_validate(body).events)
    return [_single.validate_python(body)]
