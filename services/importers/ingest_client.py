"""Posts canonical events to the ingest API (/v1/events) in batches, as the importers' one way in."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import httpx
import orjson

from shared.schemas.touch import IdentityEvent, TouchEvent


class IngestRefused(RuntimeError):
    """The ingest API answered with an error: the batch was not written (the importer stops)."""


@dataclass
class Totals:
    accepted: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    failed: list[dict] = field(default_factory=list)

    def add(self, answer: dict) -> None:
        self.accepted += answer.get("accepted", 0)
        self.duplicates += answer.get("duplicates", 0)
        self.dead_lettered += answer.get("dead_lettered", 0)
        self.failed += answer.get("failed", [])


class IngestClient:
    """url: the ingest API's base URL; api_key: a key of source 'api' (INGEST_API_KEYS)."""

    def __init__(self, url: str, api_key: str, batch_size: int = 500, timeout: float = 30.0) -> None:
        self.http = httpx.Client(base_url=url, timeout=timeout, headers={"X-API-Key": api_key})
        self.batch_size = batch_size

    def send(self, events: Iterable[TouchEvent | IdentityEvent], totals: Totals | None = None) -> Totals:
        """POST the events in batches of `batch_size`; raises IngestRefused on any non-2xx answer.

        A batch the ingest API refused is not acknowledged, so the caller keeps its position
        and sends it again on the next run (ingest writes what it had already taken once).
        """
        totals = totals or Totals()
        batch: list[bytes] = []
        for event in events:
            batch.append(event.model_dump_json(exclude_none=True).encode())
            if len(batch) >= self.batch_size:
                self._post(batch, totals)
                batch = []
        if batch:
            self._post(batch, totals)
        return totals

    def _post(self, batch: list[bytes], totals: Totals) -> None:
        body = b'{"events":[' + b",".join(batch) + b"]}"
        r = self.http.post("/v1/events", content=body, headers={"content-type": "application/json"})
        if r.status_code >= 300:
            raise IngestRefused(f"ingest answered {r.status_code}: {r.text[:500]}")
        totals.add(orjson.loads(r.content))

    def close(self) -> None:
        self.http.close()
