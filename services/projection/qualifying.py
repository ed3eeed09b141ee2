"""The qualification rules applied where the facts are: inside the projection's transaction.

After a batch's rows and derived columns are written, the changed opportunities' facts are read
back, `qualification.evaluate` decides, and the result is stored on the opportunity (criteria,
proposed move). A move the rules make is a StageMoved message: its rows are written in the
same transaction (so that the next move of a chain sees it) and the message is published to
bg.crm-stage.v2 before the transaction commits, so that the topics stay the whole truth and a
rebuild replays the move. A crash between the publish and the commit publishes it twice; its
id is deterministic, so the second one is a duplicate the projection ignores.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Sequence

from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.projection import qualification as q
from services.projection.domain import map_qualification, reduce_rows
from services.projection.funnel import Funnel
from services.projection.repository import refresh, write_rows
from shared.schemas.crm import StageMoved

log = logging.getLogger("projection.qualifying")

Publish = Callable[[Sequence[StageMoved]], Awaitable[None]]

FACTS = text("""
SELECT o.opportunity_id, o.account_id, o.solution, o.stage, o.stage_changed_at, o.stage_author, o.outcome,
       o.created_at, o.formed_at, o.required_roles,
       (SELECT min(t.occurred_at) FROM touches t
        WHERE t.opportunity_id = o.opportunity_id
          AND concat_ws(' ', t.url, t.asset_id, t.topic, t.title) ~* :pattern) AS technical_touch_at
FROM opportunities o WHERE o.opportunity_id = ANY(CAST(:ids AS text[]))
""")
MEMBERS = text("""
SELECT opportunity_id, person_id, department, role, first_touch_at FROM opportunity_members
WHERE opportunity_id = ANY(CAST(:ids AS text[]))
""")
MARKS = text("""
SELECT opportunity_id, criterion, holds, evidence, marked_by, marked_at FROM criterion_marks
WHERE opportunity_id = ANY(CAST(:ids AS text[]))
""")
STORE = text("""
UPDATE opportunities SET criteria = CAST(:criteria AS jsonb), proposed_stage = :proposed,
       missing_criteria = CAST(:missing AS text[])
WHERE opportunity_id = :id
""").bindparams(bindparam("missing"))


async def load_facts(conn: AsyncConnection, ids: Sequence[str], pattern: str) -> list[q.Facts]:
    params = {"ids": list(ids)}
    members: dict[str, list[q.MemberFact]] = {}
    for row in (await conn.execute(MEMBERS, params)).mappings():
        members.setdefault(row["opportunity_id"], []).append(
            q.MemberFact(row["person_id"], row["department"], row["role"], row["first_touch_at"]))
    marks: dict[str, dict[str, q.Mark]] = {}
    for row in (await conn.execute(MARKS, params)).mappings():
        marks.setdefault(row["opportunity_id"], {})[row["criterion"]] = q.Mark(
            row["holds"], row["evidence"], row["marked_by"], row["marked_at"])
    out = []
    for row in (await conn.execute(FACTS, {**params, "pattern": pattern})).mappings():
        oid = row["opportunity_id"]
        out.append(q.Facts(
            opportunity_id=oid, account_id=row["account_id"], solution=row["solution"], stage=row["stage"],
            stage_changed_at=row["stage_changed_at"], stage_author=row["stage_author"], outcome=row["outcome"],
            created_at=row["created_at"], formed_at=row["formed_at"], required_roles=tuple(row["required_roles"]),
            members=tuple(sorted(members.get(oid, ()), key=lambda m: m.person_id)),
            technical_touch_at=row["technical_touch_at"], marks=marks.get(oid, {})))
    return out


def stage_moved(funnel: Funnel, facts: q.Facts, move: q.Move) -> StageMoved:
    names = ", ".join(funnel.criteria[c].name.en for c in move.criteria)
    return StageMoved(
        event_id=move.event_id(facts.opportunity_id, funnel.index(move.stage)),
        opportunity_id=facts.opportunity_id, account_id=facts.account_id, solution=facts.solution,
        stage=move.stage, from_stage=move.from_stage, changed_at=move.at, changed_by="rules", author="rules",
        reason=f"exit criteria of {move.from_stage} hold: {names}", criteria=move.criteria)


class Qualifier:
    """The UnitOfWork's qualify hook. `publish` None (a rebuild): criteria are evaluated and
    stored, but the rules move nothing: the rebuild replays the moves the live run published,
    and the topics, not a second reading of them in another interleaving, are the truth."""

    def __init__(self, funnel: Funnel, publish: Publish | None) -> None:
        self.funnel = funnel
        self.publish = publish

    async def __call__(self, conn: AsyncConnection, opportunity_ids: set[str]) -> set[str]:
        changed: set[str] = set()
        pending = sorted(opportunity_ids)
        moves: list[StageMoved] = []
        # One stage per round; a chain (target base -> cold -> warm on the same facts) takes as
        # many rounds as the funnel has open stages at most.
        for _ in range(len(self.funnel.open_stages)):
            facts = await load_facts(conn, pending, self.funnel.technical_content)
            round_moves, stored = [], []
            for f in facts:
                result = q.evaluate(self.funnel, f)
                stored.append({"id": f.opportunity_id, "criteria": json.dumps([c.as_json() for c in result.criteria]),
                               "proposed": result.proposed, "missing": list(result.missing)})
                if result.move is not None and self.publish is not None:
                    round_moves.append(stage_moved(self.funnel, f, result.move))
            if stored:
                await conn.execute(STORE, stored)  # one statement for the batch's opportunities
            if not round_moves:
                break
            rows = reduce_rows(row for m in round_moves for row in map_qualification(m))
            moved = await write_rows(conn, rows)
            await refresh(conn, moved)
            moves += round_moves
            changed |= moved
            pending = sorted(moved)
        if moves and self.publish is not None:
            await self.publish(moves)
            log.info("rules moved opportunities", extra={"moves": len(moves)})
        return changed
