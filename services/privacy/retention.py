"""Retention (docs/privacy.md): people idle for BG_PRIVACY_RETENTION_DAYS lose their raw values.

Their keys are destroyed (every sealed value of theirs on the log can no longer be opened) and
the projection's cards lose their email, name and job title. What they did stays counted, under
pseudonyms nothing leads back from: scoring keeps it as decayed mass per member, the projection
as touches of an anonymous member.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from services.grouping.domain.accounts import person_id
from services.privacy import store
from shared.privacy.vault import Vault


async def run_retention(vault: Vault, engine: AsyncEngine, cutoff: datetime, dry_run: bool = False) -> dict[str, Any]:
    """Identifiers last seen before `cutoff`'s day (UTC): {idle, keys_destroyed, rows_changed}."""
    idle = await vault.idle_since(cutoff.date().isoformat())
    if dry_run:
        return {"cutoff": cutoff.date().isoformat(), "idle": len(idle), "keys_destroyed": 0, "rows_changed": 0}
    person_ids = sorted({person_id(k.pseudonym) for k in idle if k.kind == "email"})
    async with engine.begin() as conn:
        rows = await store.forget_raw_values(conn, person_ids)
    destroyed = await vault.shred(idle)
    return {"cutoff": cutoff.date().isoformat(), "idle": len(idle), "keys_destroyed": destroyed, "rows_changed": rows}
