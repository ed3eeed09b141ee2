"""SQL of the projection: the unit of work that applies a batch (rows and consumer offsets in
one transaction), and the queries of the read API.

Every write is an upsert guarded so that a replay, a duplicate or an older message never
changes or regresses a row: by the entity's version, by event time and event id, or, for
immutable facts (touches, signals, score history, stage changes), by their id. Only rows an
upsert really changed mark their opportunity as changed; only those get a new change_seq.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from publicsuffixlist import PublicSuffixList
from sqlalchemy import (
    ColumnElement,
    Delete,
    Select,
    and_,
    bindparam,
    case,
    delete,
    func,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import Insert, insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.projection import schema as s
from services.projection.domain import Kind

# ---------------------------------------------------------------- upserts


def _newer(table_cols: tuple[ColumnElement, ...], excluded_cols: tuple[ColumnElement, ...]) -> ColumnElement[bool]:
    return or_(table_cols[0].is_(None), tuple_(*table_cols) < tuple_(*excluded_cols))


def _update(stmt: Insert, keys: list[str], columns: Iterable[str], where: Any) -> Insert:
    return stmt.on_conflict_do_update(
        index_elements=keys, set_={c: stmt.excluded[c] for c in columns}, where=where,
    )


def _account_ref() -> Insert:
    t, stmt = s.accounts.c, insert(s.accounts)
    return _update(stmt, ["account_id"], ("name", "domains", "owner", "ref_at", "ref_event_id"),
                   _newer((t.ref_at, t.ref_event_id), (stmt.excluded.ref_at, stmt.excluded.ref_event_id)))


def _seen(table: Any, key: str, with_account: bool) -> Insert:
    t, stmt = table.c, insert(table)
    ex = stmt.excluded
    set_: dict[str, Any] = {
        "first_seen_at": func.least(t.first_seen_at, ex.first_seen_at),
        "last_activity_at": func.greatest(t.last_activity_at, ex.last_activity_at),
    }
    where = or_(t.first_seen_at.is_(None), t.first_seen_at > ex.first_seen_at,
                t.last_activity_at < ex.last_activity_at)
    if with_account:
        # The account of the latest activity, as domain._contact_seen_merge decides.
        later = or_(t.account_id.is_(None), t.last_activity_at.is_(None),
                    tuple_(t.last_activity_at, t.account_id) < tuple_(ex.last_activity_at, ex.account_id))
        set_["account_id"] = case((later, ex.account_id), else_=t.account_id)
        where = or_(where, later)
    return stmt.on_conflict_do_update(index_elements=[key], set_=set_, where=where)


def _contact_ref() -> Insert:
    t, stmt = s.contacts.c, insert(s.contacts)
    return _update(stmt, ["person_id"],
                   ("email", "name", "job_title", "department", "role", "role_source", "ref_at", "ref_event_id"),
                   _newer((t.ref_at, t.ref_event_id), (stmt.excluded.ref_at, stmt.excluded.ref_event_id)))


def _opportunity(columns: tuple[str, ...], where: Any) -> Insert:
    stmt = insert(s.opportunities)
    return _update(stmt, ["opportunity_id"], columns, where(s.opportunities.c, stmt.excluded)).returning(
        s.opportunities.c.opportunity_id)


def _member() -> Insert:
    t, stmt = s.opportunity_members.c, insert(s.opportunity_members)
    ex = stmt.excluded
    set_ = {c: ex[c] for c in ("account_id", "email", "name", "job_title", "department", "role", "role_source",
                                "why", "version")}
    set_["joined_at"] = func.least(t.joined_at, ex.joined_at)
    return stmt.on_conflict_do_update(
        index_elements=["opportunity_id", "person_id"], set_=set_, where=t.version < ex.version,
    ).returning(t.opportunity_id)


def _member_removed() -> Delete:
    """A member taken out (member_removed) unless a later event brought them back (version)."""
    t = s.opportunity_members.c
    return delete(s.opportunity_members).where(
        t.opportunity_id == bindparam("r_opportunity_id"), t.person_id == bindparam("r_person_id"),
        t.version < bindparam("r_version"))


def _immutable(table: Any, returning: ColumnElement | None = None) -> Insert:
    stmt = insert(table).on_conflict_do_nothing()
    return stmt.returning(returning) if returning is not None else stmt


def _latest_by(table: Any, keys: list[str], at: str) -> Insert:
    """Latest (at, event_id) wins; returns the opportunity when the row changed."""
    t, stmt = table.c, insert(table)
    columns = [c.name for c in table.columns if c.name not in keys]
    return _update(stmt, keys, columns, _newer((t[at], t.event_id), (stmt.excluded[at], stmt.excluded.event_id))
                   ).returning(t.opportunity_id)


# In this order: parents first is not required (no foreign keys), but a fixed order of tables
# with rows sorted by key means concurrent consumers lock rows in the same order.
UPSERTS: dict[Kind, Insert | Delete] = {
    "account_ref": _account_ref(),
    "account_seen": _seen(s.accounts, "account_id", with_account=False),
    "contact_ref": _contact_ref(),
    "contact_seen": _seen(s.contacts, "person_id", with_account=True),
    "opportunity_stub": _immutable(s.opportunities, s.opportunities.c.opportunity_id),
    "opportunity_event": _opportunity(
        ("account_id", "solution", "version", "last_event_id"), lambda t, ex: t.version < ex.version),
    "opportunity_created": _opportunity(
        ("origin", "expected_roles", "required_roles", "created_at"), lambda t, ex: t.created_at.is_(None)),
    "opportunity_score": _opportunity(
        ("score", "tier", "breakdown", "score_version", "score_as_of", "score_status", "score_formed_at",
         "score_stalled_since"),
        lambda t, ex: _newer((t.score_version, t.score_as_of), (ex.score_version, ex.score_as_of))),
    "opportunity_stage": _opportunity(
        ("stage", "outcome", "stage_changed_at", "stage_event_id", "stage_author", "crm_stage"),
        lambda t, ex: _newer((t.stage_changed_at, t.stage_event_id), (ex.stage_changed_at, ex.stage_event_id))),
    "opportunity_deal": _opportunity(
        ("amount", "currency", "expected_close_on", "deal_at", "deal_event_id"),
        lambda t, ex: _newer((t.deal_at, t.deal_event_id), (ex.deal_at, ex.deal_event_id))),
    "opportunity_merge": _opportunity(
        ("merged_into", "merge_version"),
        lambda t, ex: or_(t.merge_version.is_(None), t.merge_version < ex.merge_version)),
    "member": _member(),
    "member_removed": _member_removed(),
    "touch": _immutable(s.touches, s.touches.c.opportunity_id),
    "signal": _immutable(s.signals, s.signals.c.opportunity_id),
    "score_history": _immutable(s.score_history),
    "stage_change": _immutable(s.stage_changes, s.stage_changes.c.opportunity_id),
    "criterion_mark": _latest_by(s.criterion_marks, ["opportunity_id", "criterion"], "marked_at"),
    "team_member": _latest_by(s.opportunity_team, ["opportunity_id", "role"], "assigned_at"),
    "correction": _immutable(s.corrections, s.corrections.c.opportunity_id),
}


async def _undo(conn: AsyncConnection, rows: list[dict]) -> set[str]:
    """Mark each reverted correction once (the first undo holds); the opportunities they were about."""
    c = s.corrections.c
    changed: set[str] = set()
    for row in rows:
        result = await conn.execute(
            update(s.corrections).where(c.correction_id == row["correction_id"], c.undone_by_id.is_(None))
            .values({k: v for k, v in row.items() if k != "correction_id"}).returning(c.opportunity_id))
        changed.update(oid for (oid,) in result.all() if oid is not None)
    return changed


# Notes and stances as the history says, per member: the latest (made_at, correction id) of each
# kind that is not undone, so that undoing the latest brings back the one before.
REFRESH_ANNOTATIONS = [text("DELETE FROM member_annotations WHERE opportunity_id = ANY(CAST(:ids AS text[]))"), text("""
INSERT INTO member_annotations (opportunity_id, person_id, stance, influence, stance_by, stance_at,
                                stance_correction_id, note, concerns, note_by, note_at, note_correction_id)
WITH live AS (
  SELECT * FROM corrections
  WHERE opportunity_id = ANY(CAST(:ids AS text[])) AND undone_by_id IS NULL AND person_id IS NOT NULL),
st AS (
  SELECT DISTINCT ON (opportunity_id, person_id) opportunity_id, person_id, detail->>'stance' AS stance,
         detail->>'influence' AS influence, author, made_at, correction_id
  FROM live WHERE type = 'member_stance_set' ORDER BY opportunity_id, person_id, made_at DESC, correction_id DESC),
nt AS (
  SELECT DISTINCT ON (opportunity_id, person_id) opportunity_id, person_id, detail->>'note' AS note,
         ARRAY(SELECT jsonb_array_elements_text(coalesce(detail->'concerns', '[]'))) AS concerns,
         author, made_at, correction_id
  FROM live WHERE type = 'member_note_set' ORDER BY opportunity_id, person_id, made_at DESC, correction_id DESC)
SELECT coalesce(st.opportunity_id, nt.opportunity_id), coalesce(st.person_id, nt.person_id),
       st.stance, st.influence, st.author, st.made_at, st.correction_id,
       nt.note, coalesce(nt.concerns, '{}'), nt.author, nt.made_at, nt.correction_id
FROM st FULL JOIN nt ON st.opportunity_id = nt.opportunity_id AND st.person_id = nt.person_id
""")]

# The merges in force, from the whole history (a handful of rows): the latest merge of each
# absorbed account that is not undone.
REFRESH_MERGES = [text("DELETE FROM account_merges"), text("""
INSERT INTO account_merges (merged, "into", correction_id, author, made_at)
SELECT DISTINCT ON (detail->>'merged') detail->>'merged', detail->>'into', correction_id, author, made_at
FROM corrections WHERE type = 'accounts_merged' AND undone_by_id IS NULL
ORDER BY detail->>'merged', made_at DESC, correction_id DESC
""")]


# An erased member (docs/privacy.md): the membership, the person's touches in the scope, their
# contact card, and their entries in stored signals and score breakdowns go. Runs after the
# upserts of its batch, so a member added and erased in one batch is gone; an erased person
# never comes back (a new pseudonym would be a new person), so no version guards it.
ERASE_MEMBER = [
    text("DELETE FROM opportunity_members WHERE opportunity_id = :opportunity_id AND person_id = :person_id"),
    text("DELETE FROM touches WHERE scope = :scope AND person_id = :person_id"),
    text("DELETE FROM contacts WHERE person_id = :person_id"),
    # What people wrote about them by hand (notes, stances) and the history of those corrections.
    text("DELETE FROM member_annotations WHERE person_id = :person_id"),
    text("DELETE FROM corrections WHERE person_id = :person_id"),
    text("""
UPDATE signals SET
  members = coalesce((SELECT jsonb_agg(m) FROM jsonb_array_elements(members) m
                      WHERE m->>'person_id' IS DISTINCT FROM :person_id), '[]'::jsonb),
  breakdown = CASE WHEN breakdown ? 'members' THEN jsonb_set(breakdown, '{members}', coalesce(
                (SELECT jsonb_agg(m) FROM jsonb_array_elements(breakdown->'members') m
                 WHERE m->>'person_id' IS DISTINCT FROM :person_id), '[]'::jsonb)) ELSE breakdown END,
  detail = CASE WHEN detail ? 'new_members' THEN jsonb_set(detail, '{new_members}', to_jsonb(
             array_to_string(array_remove(string_to_array(detail->>'new_members', ','), :person_id), ',')))
           ELSE detail END
WHERE opportunity_id = :opportunity_id AND position(:person_id in members::text || coalesce(breakdown::text, '')
                                                    || detail::text) > 0
"""),
    text("""
UPDATE score_history SET breakdown = jsonb_set(breakdown, '{members}', coalesce(
  (SELECT jsonb_agg(m) FROM jsonb_array_elements(breakdown->'members') m
   WHERE m->>'person_id' IS DISTINCT FROM :person_id), '[]'::jsonb))
WHERE opportunity_id = :opportunity_id AND breakdown ? 'members' AND position(:person_id in breakdown::text) > 0
"""),
    text("""
UPDATE opportunities SET breakdown = jsonb_set(breakdown, '{members}', coalesce(
  (SELECT jsonb_agg(m) FROM jsonb_array_elements(breakdown->'members') m
   WHERE m->>'person_id' IS DISTINCT FROM :person_id), '[]'::jsonb))
WHERE opportunity_id = :opportunity_id AND breakdown ? 'members' AND position(:person_id in breakdown::text) > 0
"""),
]

REFRESH_MEMBERS = text("""
UPDATE opportunity_members m SET
  (touches_count, first_touch_at, last_touch_at) = (
    SELECT count(DISTINCT t.touch_id), min(t.occurred_at), max(t.occurred_at) FROM touches t
    WHERE t.person_id = m.person_id AND (t.opportunity_id = m.opportunity_id OR t.opportunity_id IN (
      SELECT x.opportunity_id FROM opportunities x WHERE x.merged_into = m.opportunity_id))),
  engagement = (
    SELECT (c->>'engagement')::float8
    FROM opportunities o CROSS JOIN LATERAL jsonb_array_elements(coalesce(o.breakdown->'members', '[]')) c
    WHERE o.opportunity_id = m.opportunity_id AND c->>'person_id' = m.person_id LIMIT 1)
WHERE m.opportunity_id = ANY(CAST(:ids AS text[]))
""")

# The group at each stage transition, as of the transition's event time (not the group now).
REFRESH_TRANSITIONS = text("""
UPDATE stage_changes sc SET
  engaged_members = (SELECT count(DISTINCT t.person_id) FROM touches t
                     WHERE t.opportunity_id = sc.opportunity_id AND t.occurred_at <= sc.changed_at),
  members_count = (SELECT count(*) FROM opportunity_members m
                   WHERE m.opportunity_id = sc.opportunity_id AND m.joined_at <= sc.changed_at)
WHERE sc.opportunity_id = ANY(CAST(:ids AS text[]))
""")

# Derived columns, recomputed from the other tables: a function of their content only, so
# the final rows do not depend on how messages of different topics interleaved. Missing roles
# are the roles the group should have (the profile of the opportunity, else the scoring's)
# that no member covers. The lifecycle and formed_at follow the latest score (scoring
# recomputes them over the full touch set, so late touches correct them), else the formation
# signals; a CRM's won or lost outcome overrides it.
REFRESH_OPPORTUNITIES = text("""
WITH base AS (SELECT pg_current_xact_id()::text::bigint << :rank_bits AS at),
-- Ranks go on from those this transaction already took (a second refresh in it, qualifying.py).
taken AS (SELECT coalesce(max(x.change_seq) - base.at, 0) AS n FROM base
          LEFT JOIN opportunities x ON x.change_seq >= base.at AND x.change_seq < base.at + (1::bigint << :rank_bits)
          GROUP BY base.at),
ids AS (SELECT id, base.at + taken.n + row_number() OVER (ORDER BY id) AS seq
        FROM (SELECT DISTINCT unnest(CAST(:ids AS text[])) AS id) given, base, taken),
mem AS (
  SELECT m.opportunity_id AS id, count(*) AS members_count,
         count(*) FILTER (WHERE m.touches_count > 0) AS engaged,
         array_agg(DISTINCT m.department ORDER BY m.department) AS departments,
         array_agg(DISTINCT m.role ORDER BY m.role) AS covered
  FROM opportunity_members m JOIN ids ON m.opportunity_id = ids.id GROUP BY 1),
-- An opportunity's touches, and those of the opportunities merged into it (account merges;
-- a touch after the merge is attributed to both, and counts once).
tt AS (
  SELECT ids.id, count(DISTINCT t.touch_id) AS n, min(t.occurred_at) AS first_at, max(t.occurred_at) AS last_at
  FROM ids CROSS JOIN LATERAL (SELECT ids.id AS oid UNION ALL
                               SELECT x.opportunity_id FROM opportunities x WHERE x.merged_into = ids.id) src
  JOIN touches t ON t.opportunity_id = src.oid GROUP BY 1),
life AS (
  SELECT DISTINCT ON (sg.opportunity_id) sg.opportunity_id AS id,
         CASE sg.signal WHEN 'stalled' THEN 'stalled' ELSE 'formed' END AS lifecycle
  FROM signals sg JOIN ids ON sg.opportunity_id = ids.id
  WHERE sg.signal IN ('group_formed', 'stalled', 'reactivated')
  ORDER BY sg.opportunity_id, sg.occurred_at DESC, sg.signal_id DESC),
formed AS (
  SELECT sg.opportunity_id AS id, min(sg.occurred_at) AS formed_at
  FROM signals sg JOIN ids ON sg.opportunity_id = ids.id WHERE sg.signal = 'group_formed' GROUP BY 1)
UPDATE opportunities o SET
  members_count = coalesce(mem.members_count, 0),
  engaged_members = coalesce(mem.engaged, 0),
  departments = coalesce(mem.departments, '{}'),
  covered_roles = coalesce(mem.covered, '{}'),
  missing_roles = ARRAY(
    SELECT DISTINCT r FROM unnest(o.expected_roles || o.required_roles || ARRAY(
      SELECT jsonb_array_elements_text(coalesce(o.breakdown->'missing_roles', '[]')))) AS r
    WHERE NOT r = ANY(coalesce(mem.covered, '{}')) ORDER BY r),
  touches_count = coalesce(tt.n, 0),
  first_touch_at = tt.first_at,
  last_activity_at = coalesce(tt.last_at, o.created_at),
  formed_at = coalesce(o.score_formed_at, formed.formed_at),
  team = coalesce((SELECT jsonb_object_agg(tm.role, tm.person ORDER BY tm.role) FROM opportunity_team tm
                   WHERE tm.opportunity_id = o.opportunity_id AND tm.person IS NOT NULL), '{}'::jsonb),
  status = CASE WHEN o.outcome IN ('won', 'lost') THEN o.outcome
                ELSE coalesce(o.score_status, life.lifecycle, 'forming') END,
  change_seq = ids.seq
FROM ids
  LEFT JOIN mem ON mem.id = ids.id
  LEFT JOIN tt ON tt.id = ids.id
  LEFT JOIN life ON life.id = ids.id
  LEFT JOIN formed ON formed.id = ids.id
WHERE o.opportunity_id = ids.id
""")

# The change feed without a lock between writers. A change's position is its transaction's id
# (xid8, given in the order transactions first write) followed by the opportunity's rank in
# that transaction: change_seq = xid << RANK_BITS | rank. A reader returns only positions below
# the horizon of its snapshot, the oldest transaction still running (pg_snapshot_xmin): every
# transaction below it has ended, and any transaction ending later has an id at or above it, so
# a cursor never passes a change that commits later. A long transaction anywhere in the
# database holds the horizon back (the feed waits, nothing is lost).
RANK_BITS = 20  # up to 2**20 opportunities changed in one transaction (a batch changes hundreds)
HORIZON = text(f"(pg_snapshot_xmin(pg_current_snapshot())::text::bigint << {RANK_BITS})")


def _offsets_upsert() -> Insert:
    t, stmt = s.consumer_offsets.c, insert(s.consumer_offsets)
    # Only forward: a consumer that lost its partitions mid-batch must not move a new owner back.
    return stmt.on_conflict_do_update(
        index_elements=["consumer", "topic", "partition"], set_={"next_offset": stmt.excluded.next_offset},
        where=t.next_offset < stmt.excluded.next_offset,
    )


OFFSETS_UPSERT = _offsets_upsert()

TopicPartition = tuple[str, int]


async def _account_view(conn: AsyncConnection, account_ids: list[str]) -> dict[str, tuple]:
    a = s.accounts.c
    result = await conn.execute(select(a.account_id, a.name, a.domains, a.owner).where(a.account_id.in_(account_ids)))
    return {row[0]: tuple(row[1:]) for row in result}


async def write_rows(conn: AsyncConnection, rows: Mapping[Kind, list[dict]]) -> set[str]:
    """Upsert the rows of one batch; the ids of the opportunities they changed."""
    changed: set[str] = set()
    for kind, stmt in UPSERTS.items():
        batch = rows.get(kind)
        if not batch:
            continue
        if kind == "account_ref":
            # Every event carries its account, so the reference moves on almost every batch;
            # only a change a reader can see (name, domains, owner) puts the account's
            # opportunities, which show it, into the change feed.
            ids = [r["account_id"] for r in batch]
            before = await _account_view(conn, ids)
            await conn.execute(stmt, batch)
            after = await _account_view(conn, ids)
            renamed = [a for a in ids if before.get(a) != after.get(a)]
            if renamed:
                changed.update(await conn.scalars(select(o.opportunity_id).where(o.account_id.in_(renamed))))
            continue
        if kind == "member_removed":
            await conn.execute(stmt, [{f"r_{k}": v for k, v in r.items()} for r in batch])
            changed.update(r["opportunity_id"] for r in batch)
            continue
        if kind == "opportunity_merge":
            # The opportunity it goes into, or comes back from, shows its members and touches.
            ids = [r["opportunity_id"] for r in batch]
            before = await conn.scalars(select(o.merged_into).where(o.opportunity_id.in_(ids)))
            changed.update(i for i in [*before, *(r["merged_into"] for r in batch)] if i is not None)
        result = await conn.execute(stmt, batch)
        if result.returns_rows:
            changed.update(oid for (oid,) in result.all() if oid is not None)
    # Undos mark the corrections they revert once the batch's own corrections are in.
    if rows.get("correction_undo"):
        changed |= await _undo(conn, rows["correction_undo"])
    for erased in rows.get("member_erased", ()):
        for statement in ERASE_MEMBER:
            await conn.execute(statement, erased)
        if erased["opportunity_id"] is not None:
            changed.add(erased["opportunity_id"])
    return changed


async def refresh(conn: AsyncConnection, opportunity_ids: set[str]) -> None:
    if not opportunity_ids:
        return
    ids = sorted(opportunity_ids)
    if len(ids) >= 2**RANK_BITS:
        raise ValueError(f"{len(ids)} opportunities changed in one transaction; the change feed ranks at most "
                         f"{2**RANK_BITS - 1}")
    await conn.execute(REFRESH_MEMBERS, {"ids": ids})
    await conn.execute(REFRESH_OPPORTUNITIES, {"ids": ids, "rank_bits": RANK_BITS})
    await conn.execute(REFRESH_TRANSITIONS, {"ids": ids})


async def refresh_corrections(conn: AsyncConnection, opportunity_ids: set[str]) -> None:
    """Notes, stances and merges again from the history, after a batch that held corrections."""
    for statement in REFRESH_ANNOTATIONS:
        await conn.execute(statement, {"ids": sorted(opportunity_ids)})
    for statement in REFRESH_MERGES:
        await conn.execute(statement)


class Qualify(Protocol):
    async def __call__(self, conn: AsyncConnection, opportunity_ids: set[str]) -> set[str]: ...


class UnitOfWork:
    """`qualify` (qualifying.Qualifier) runs in the same transaction after the derived columns
    are fresh: it evaluates the changed opportunities and returns those its moves changed too."""

    def __init__(self, engine: AsyncEngine, qualify: Qualify | None = None) -> None:
        self.engine = engine
        self.qualify = qualify

    async def apply(self, consumer: str, rows: Mapping[Kind, list[dict]],
                    offsets: Mapping[TopicPartition, int]) -> int:
        """Rows and the consumer's next offsets in one transaction; the number of changed opportunities."""
        async with self.engine.begin() as conn:
            changed = await write_rows(conn, rows)
            if rows.get("correction") or rows.get("correction_undo"):
                await refresh_corrections(conn, changed)
            await refresh(conn, changed)
            if self.qualify is not None and changed:
                changed |= await self.qualify(conn, changed)
            if offsets:
                await conn.execute(OFFSETS_UPSERT, [
                    {"consumer": consumer, "topic": topic, "partition": partition, "next_offset": offset}
                    for (topic, partition), offset in sorted(offsets.items())
                ])
        return len(changed)

    async def correction_states(self, correction_ids: Iterable[str]) -> dict[str, tuple[str, bool]]:
        """{correction id: (type, undone)} of those of `correction_ids` the history holds."""
        c = s.corrections.c
        async with self.engine.connect() as conn:
            result = await conn.execute(select(c.correction_id, c.type, c.undone_by_id.is_not(None))
                                        .where(c.correction_id.in_(sorted(set(correction_ids)))))
            return {cid: (kind, bool(undone)) for cid, kind, undone in result}

    async def stored_offsets(self, consumer: str, topics: Iterable[str]) -> dict[TopicPartition, int]:
        c = s.consumer_offsets.c
        async with self.engine.connect() as conn:
            result = await conn.execute(
                select(c.topic, c.partition, c.next_offset).where(c.consumer == consumer, c.topic.in_(list(topics))))
            return {(topic, partition): offset for topic, partition, offset in result}


# ---------------------------------------------------------------- reads

o, m, t_, sig = s.opportunities.c, s.opportunity_members.c, s.touches.c, s.signals.c

TIER_RANK = case((o.tier == "A", 0), (o.tier == "B", 1), (o.tier == "C", 2), else_=3)
# Open opportunities first, then tier, score and recent activity; the id keeps pages stable.
PRIORITY = (case((o.outcome == "open", 0), else_=1), TIER_RANK, o.score.desc().nulls_last(),
            o.last_activity_at.desc().nulls_last(), o.opportunity_id)

SUMMARY_COLUMNS = (
    o.opportunity_id, o.account_id, s.accounts.c.name.label("account_name"), o.solution, o.stage, o.outcome,
    o.status, o.score, o.tier, o.origin, o.created_at, o.formed_at, o.first_touch_at, o.last_activity_at,
    o.members_count, o.engaged_members, o.touches_count, o.departments, o.covered_roles, o.missing_roles,
    o.amount, o.currency, o.stage_changed_at, o.version, o.change_seq,
    o.stage_author, o.crm_stage, o.expected_close_on, o.team, o.criteria, o.proposed_stage, o.missing_criteria,
    o.merged_into,
)


def _corrections_of(opportunity_id: str, account_id: str) -> Select:
    """The history shown with an opportunity: its own corrections, undos of them, and the merges
    of its account (either side), newest first."""
    c = s.corrections.c
    return select(s.corrections).where(or_(
        c.opportunity_id == opportunity_id, c.subject == opportunity_id,
        and_(c.type.in_(("accounts_merged", "correction_undone")), c.subject == account_id),
        and_(c.type == "accounts_merged", c.detail["merged"].astext == account_id),
    )).order_by(c.made_at.desc(), c.correction_id.desc())


def _summary() -> Select:
    return select(*SUMMARY_COLUMNS).select_from(
        s.opportunities.outerjoin(s.accounts, s.accounts.c.account_id == o.account_id))


@dataclass(frozen=True)
class OpportunityFilter:
    status: str | None = None
    tier: str | None = None
    solution: str | None = None
    account: str | None = None
    stage: str | None = None
    min_score: float | None = None
    formed_since: datetime | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        # An opportunity merged into another is listed as that one (account merges).
        out: list[ColumnElement[bool]] = [o.merged_into.is_(None)]
        for column, value in ((o.status, self.status), (o.tier, self.tier), (o.solution, self.solution),
                              (o.account_id, self.account), (o.stage, self.stage)):
            if value is not None:
                out.append(column == value)
        if self.min_score is not None:
            out.append(o.score >= self.min_score)
        if self.formed_since is not None:
            out.append(o.formed_at >= self.formed_since)
        return out


_PSL: PublicSuffixList | None = None


def registrable(domain: str) -> str | None:
    """The registrable domain (one label under its public suffix) of a host name, or None."""
    global _PSL
    if _PSL is None:
        _PSL = PublicSuffixList()
    try:
        return _PSL.privatesuffix(domain.strip(".")) or None
    except (ValueError, UnicodeError):
        return None


def _dicts(result: Any) -> list[dict[str, Any]]:
    return [dict(row) for row in result.mappings()]


class Reader:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1 FROM opportunities LIMIT 1"))

    async def list_opportunities(self, where: OpportunityFilter, limit: int, offset: int
                                 ) -> tuple[int, list[dict[str, Any]]]:
        conditions = where.conditions()
        async with self.engine.connect() as conn:
            total = await conn.scalar(select(func.count()).select_from(s.opportunities).where(*conditions))
            rows = await conn.execute(_summary().where(*conditions).order_by(*PRIORITY).limit(limit).offset(offset))
            return int(total or 0), _dicts(rows)

    async def opportunity(self, opportunity_id: str, timeline_limit: int) -> dict[str, Any] | None:
        async with self.engine.connect() as conn:
            head = (await conn.execute(
                select(*SUMMARY_COLUMNS, o.expected_roles, o.required_roles, o.breakdown, o.score_as_of,
                       o.score_version, s.accounts.c.owner.label("account_owner"))
                .select_from(s.opportunities.outerjoin(s.accounts, s.accounts.c.account_id == o.account_id))
                .where(o.opportunity_id == opportunity_id))).mappings().first()
            if head is None:
                return None
            an = s.member_annotations.c
            members = _dicts(await conn.execute(
                select(s.opportunity_members, an.stance, an.influence, an.stance_by, an.note,
                       func.coalesce(an.concerns, s.EMPTY_ARRAY).label("concerns"), an.note_by)
                .select_from(s.opportunity_members.outerjoin(s.member_annotations, and_(
                    an.opportunity_id == m.opportunity_id, an.person_id == m.person_id)))
                .where(m.opportunity_id == opportunity_id)
                .order_by(m.engagement.desc().nulls_last(), m.joined_at, m.person_id)))
            # The opportunities of accounts merged into this one: their touches are this one's.
            merged_from = list(await conn.scalars(
                select(o.opportunity_id).where(o.merged_into == opportunity_id).order_by(o.opportunity_id)))
            # A touch after the merge is attributed to both: shown once, as this opportunity's.
            own = (select(s.touches).distinct(t_.touch_id)
                   .where(t_.opportunity_id.in_([opportunity_id, *merged_from]))
                   .order_by(t_.touch_id, (t_.opportunity_id != opportunity_id)).subquery())
            recent = (select(own).order_by(own.c.occurred_at.desc(), own.c.touch_id.desc())
                      .limit(timeline_limit).subquery())
            timeline = _dicts(await conn.execute(select(recent).order_by(recent.c.occurred_at, recent.c.touch_id)))
            signals = _dicts(await conn.execute(
                select(sig.signal_id, sig.signal, sig.occurred_at, sig.score, sig.tier, sig.covered_roles,
                       sig.missing_roles, sig.trigger_event_ids, sig.members, sig.detail)
                .where(sig.opportunity_id == opportunity_id).order_by(sig.occurred_at, sig.signal_id)))
            stages = _dicts(await conn.execute(
                select(s.stage_changes).where(s.stage_changes.c.opportunity_id == opportunity_id)
                .order_by(s.stage_changes.c.changed_at, s.stage_changes.c.event_id)))
            history = _dicts(await conn.execute(_corrections_of(opportunity_id, head["account_id"])))
            return {**head, "members": members, "timeline": timeline, "signals": signals, "stage_history": stages,
                    "merged_from": merged_from, "corrections": history}

    async def correction(self, correction_id: str) -> dict[str, Any] | None:
        """One correction of the history (with whether and by whom it was undone), else None."""
        async with self.engine.connect() as conn:
            found = (await conn.execute(select(s.corrections).where(
                s.corrections.c.correction_id == correction_id))).mappings().first()
            return dict(found) if found else None

    async def merges(self) -> dict[str, str]:
        """The merges in force: {absorbed account: surviving account}."""
        am = s.account_merges.c
        async with self.engine.connect() as conn:
            return {merged: into for merged, into in await conn.execute(select(am.merged, am.into))}

    async def known(self, person_id: str | None = None, account_id: str | None = None,
                    member_of: str | None = None) -> bool:
        """Whether the projection knows the person (a contact), the account, or the person as a
        member of the opportunity `member_of`."""
        async with self.engine.connect() as conn:
            if member_of is not None:
                query = select(m.person_id).where(m.opportunity_id == member_of, m.person_id == person_id)
            elif person_id is not None:
                query = select(s.contacts.c.person_id).where(s.contacts.c.person_id == person_id)
            else:
                query = select(s.accounts.c.account_id).where(s.accounts.c.account_id == account_id)
            return (await conn.execute(query.limit(1))).first() is not None

    async def opportunity_ident(self, opportunity_id: str) -> dict[str, Any] | None:
        async with self.engine.connect() as conn:
            row = await conn.execute(select(o.opportunity_id, o.account_id, o.solution, o.merged_into)
                                     .where(o.opportunity_id == opportunity_id))
            found = row.mappings().first()
            return dict(found) if found else None

    async def stage_recorded(self, event_id: str) -> bool:
        """The change is in the stage history (applied to the row or not)."""
        async with self.engine.connect() as conn:
            return bool(await conn.scalar(
                select(func.count()).select_from(s.stage_changes).where(s.stage_changes.c.event_id == event_id)))

    async def holder(self, opportunity_id: str, what: str, key: str | None = None
                     ) -> tuple[str | None, datetime | None] | None:
        """Which event holds a piece of the opportunity's state now, and its time: what is
        'stage', 'deal', 'criterion' (key: the criterion) or 'team' (key: the role).
        None: no such opportunity; (None, None): nothing set yet."""
        async with self.engine.connect() as conn:
            if what in ("stage", "deal"):
                cols = (o.stage_event_id, o.stage_changed_at) if what == "stage" else (o.deal_event_id, o.deal_at)
                row = (await conn.execute(select(*cols).where(o.opportunity_id == opportunity_id))).first()
                return None if row is None else (row[0], row[1])
            table, at, key_col = ((s.criterion_marks, "marked_at", "criterion") if what == "criterion"
                                  else (s.opportunity_team, "assigned_at", "role"))
            row = (await conn.execute(select(table.c.event_id, table.c[at]).where(
                table.c.opportunity_id == opportunity_id, table.c[key_col] == key))).first()
            return (None, None) if row is None else (row[0], row[1])

    async def board(self, limit: int) -> list[dict[str, Any]]:
        """Open opportunities and the latest closed ones, for the funnel board."""
        async with self.engine.connect() as conn:
            return _dicts(await conn.execute(
                _summary().where(o.created_at.is_not(None), o.merged_into.is_(None)).order_by(*PRIORITY).limit(limit)))

    async def deals(self) -> list[dict[str, Any]]:
        """Open opportunities with what the forecast needs: the roles engaged members play."""
        engaged_roles = (select(func.array_agg(func.distinct(m.role))).where(
            m.opportunity_id == o.opportunity_id, m.touches_count > 0).scalar_subquery())
        async with self.engine.connect() as conn:
            return _dicts(await conn.execute(
                select(*SUMMARY_COLUMNS, o.required_roles, s.accounts.c.owner.label("account_owner"),
                       engaged_roles.label("engaged_roles"))
                .select_from(s.opportunities.outerjoin(s.accounts, s.accounts.c.account_id == o.account_id))
                .where(o.outcome == "open", o.created_at.is_not(None), o.merged_into.is_(None))
                .order_by(o.opportunity_id)))

    async def lead_history(self) -> tuple[list[datetime], list[tuple[datetime, datetime, float | None]]]:
        """First-seen times of every contact (the leads), and (start, won at, amount) of won deals."""
        c = s.contacts.c
        async with self.engine.connect() as conn:
            leads = list(await conn.scalars(select(c.first_seen_at).where(c.first_seen_at.is_not(None))))
            won = (await conn.execute(
                select(func.coalesce(o.first_touch_at, o.created_at), o.stage_changed_at, o.amount)
                .where(o.outcome == "won", o.stage_changed_at.is_not(None),
                       func.coalesce(o.first_touch_at, o.created_at).is_not(None)))).all()
        return leads, [(a, b, amt) for a, b, amt in won]

    async def funnel_facts(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, datetime]]:
        """For the analytics: opportunities, the stage history, the first touch of a finance member."""
        sc = s.stage_changes.c
        async with self.engine.connect() as conn:
            opportunities = _dicts(await conn.execute(
                select(o.opportunity_id, o.created_at, o.first_touch_at, o.stage, o.outcome, o.status)
                .where(o.created_at.is_not(None), o.merged_into.is_(None)).order_by(o.opportunity_id)))
            history = _dicts(await conn.execute(
                select(sc.opportunity_id, sc.event_id, sc.stage, sc.changed_at, sc.engaged_members)
                .order_by(sc.opportunity_id, sc.changed_at, sc.event_id)))
            finance = {oid: at for oid, at in await conn.execute(
                select(m.opportunity_id, func.min(m.first_touch_at))
                .where(or_(m.department == "finance", m.role == "budget_holder"), m.first_touch_at.is_not(None))
                .group_by(m.opportunity_id))}
        return opportunities, history, finance

    async def stage_counts(self) -> list[dict[str, Any]]:
        """Opportunities and their amounts per stage (open ones, and won and lost by outcome)."""
        stage = case((o.outcome == "open", o.stage), else_=o.outcome)
        async with self.engine.connect() as conn:
            return _dicts(await conn.execute(
                select(stage.label("stage"), func.count().label("opportunities"),
                       func.coalesce(func.sum(o.amount), 0.0).label("amount"))
                .where(o.created_at.is_not(None), o.merged_into.is_(None)).group_by(stage)))

    async def won_content_by_role(self, per_role: int) -> list[dict[str, Any]]:
        """What each role consumed in won groups: content (asset, else page, else topic), touches
        and won opportunities, the most used first."""
        async with self.engine.connect() as conn:
            return _dicts(await conn.execute(WON_CONTENT, {"per_role": per_role}))

    async def account(self, domain: str) -> dict[str, Any] | None:
        """By account id or any of its domains; as given first, then in lower case, then the
        registrable domain (Public Suffix List) of a subdomain: hr.romashka.ru -> romashka.ru,
        as grouping files a person of hr.romashka.ru under romashka.ru."""
        a = s.accounts.c
        names = list(dict.fromkeys(n for n in (domain, domain.lower(), registrable(domain.lower())) if n))
        async with self.engine.connect() as conn:
            found = (await conn.execute(
                select(s.accounts).where(or_(a.account_id.in_(names), a.domains.overlap(names)))
                .order_by(a.account_id.notin_(names), a.account_id != domain, a.account_id).limit(1))
            ).mappings().first()
            if found is None:
                return None
            aid = found["account_id"]
            opportunities = _dicts(await conn.execute(_summary().where(o.account_id == aid).order_by(*PRIORITY)))
            c = s.contacts.c
            contacts = _dicts(await conn.execute(
                select(c.person_id, c.email, c.name, c.job_title, c.department, c.role, c.role_source,
                       c.first_seen_at, c.last_activity_at)
                .where(c.account_id == aid).order_by(c.last_activity_at.desc().nulls_last(), c.person_id)))
            account_touches = await conn.scalar(
                select(func.count()).select_from(s.touches).where(t_.account_id == aid, t_.opportunity_id.is_(None)))
            return {**found, "opportunities": opportunities, "contacts": contacts,
                    "account_touches": int(account_touches or 0)}

    async def last_change_seq(self) -> int:
        """The change feed's present: the highest change_seq below the horizon (0 when empty)."""
        async with self.engine.connect() as conn:
            return int(await conn.scalar(
                select(func.coalesce(func.max(o.change_seq), 0)).where(o.change_seq < HORIZON)) or 0)

    async def changes(self, cursor: int, limit: int) -> list[dict[str, Any]]:
        """Opportunities changed after `cursor`, in change_seq order, up to the horizon (HORIZON)."""
        async with self.engine.connect() as conn:
            return _dicts(await conn.execute(
                _summary().where(o.change_seq > cursor, o.change_seq < HORIZON).order_by(o.change_seq).limit(limit)))

    async def credit_touches(self, opportunity_ids: list[str]) -> list[dict[str, Any]]:
        """Touches of these opportunities with the role and department of the member who made them."""
        join = s.touches.outerjoin(s.opportunity_members, and_(m.opportunity_id == t_.opportunity_id,
                                                               m.person_id == t_.person_id))
        async with self.engine.connect() as conn:
            return _dicts(await conn.execute(
                select(t_.opportunity_id, t_.touch_id, t_.person_id, t_.occurred_at, t_.source, t_.kind, t_.url,
                       t_.title, t_.asset_id, t_.topic, m.name, m.role, m.department)
                .select_from(join).where(t_.opportunity_id.in_(opportunity_ids))
                .order_by(t_.opportunity_id, t_.occurred_at, t_.touch_id)))

    async def won(self, since: datetime | None, until: datetime | None, limit: int) -> list[dict[str, Any]]:
        conditions = [o.outcome == "won"]
        if since is not None:
            conditions.append(o.stage_changed_at >= since)
        if until is not None:
            conditions.append(o.stage_changed_at < until)
        async with self.engine.connect() as conn:
            return _dicts(await conn.execute(
                select(o.opportunity_id, o.solution, o.amount, o.currency, o.stage_changed_at).where(*conditions)
                .order_by(o.stage_changed_at.desc(), o.opportunity_id).limit(limit)))

    async def metrics(self, since: datetime | None, until: datetime | None) -> dict[str, Any]:
        params = {"since": since, "until": until}
        async with self.engine.connect() as conn:
            head = (await conn.execute(METRICS_HEAD, params)).mappings().one()
            per_stage = _dicts(await conn.execute(METRICS_PER_STAGE, params))
            per_role = _dicts(await conn.execute(METRICS_PER_ROLE, params))
            per_status = _dicts(await conn.execute(METRICS_PER_STATUS, params))
        return {**head, "per_stage": per_stage, "per_role": per_role, "per_status": per_status}


# Opportunities count in the period they were identified (created); contacts ("leads") in the
# period they touched; formation in the period it happened. Stubs (scored, not yet created)
# are not identified opportunities.
# An opportunity merged into another counts as that one (account merges).
_IN_PERIOD = """o.created_at IS NOT NULL AND o.merged_into IS NULL
  AND (CAST(:since AS timestamptz) IS NULL OR o.created_at >= :since)
  AND (CAST(:until AS timestamptz) IS NULL OR o.created_at < :until)"""

METRICS_HEAD = text(f"""
SELECT
  (SELECT count(*) FROM opportunities o WHERE {_IN_PERIOD}) AS opportunities_identified,
  (SELECT count(DISTINCT t.person_id) FROM touches t
     WHERE (CAST(:since AS timestamptz) IS NULL OR t.occurred_at >= :since)
       AND (CAST(:until AS timestamptz) IS NULL OR t.occurred_at < :until)) AS raw_contacts,
  (SELECT avg(o.engaged_members)::float8 FROM opportunities o WHERE {_IN_PERIOD})
    AS engaged_members_per_opportunity,
  (SELECT avg(cardinality(o.covered_roles)::float8 / (cardinality(o.covered_roles) + cardinality(o.missing_roles)))
     FROM opportunities o
     WHERE {_IN_PERIOD} AND cardinality(o.covered_roles) + cardinality(o.missing_roles) > 0) AS role_coverage,
  (SELECT avg(extract(epoch FROM o.formed_at - o.first_touch_at) / 86400)::float8 FROM opportunities o
     WHERE o.formed_at IS NOT NULL AND o.first_touch_at IS NOT NULL
       AND (CAST(:since AS timestamptz) IS NULL OR o.formed_at >= :since)
       AND (CAST(:until AS timestamptz) IS NULL OR o.formed_at < :until)) AS days_first_touch_to_formation,
  (SELECT (percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM o.formed_at - o.first_touch_at)))::float8
          / 86400 FROM opportunities o
     WHERE o.formed_at IS NOT NULL AND o.first_touch_at IS NOT NULL
       AND (CAST(:since AS timestamptz) IS NULL OR o.formed_at >= :since)
       AND (CAST(:until AS timestamptz) IS NULL OR o.formed_at < :until)) AS median_days_first_touch_to_formation,
  (SELECT count(*) FILTER (WHERE o.status = 'stalled')::float8 / nullif(count(*), 0) FROM opportunities o
     WHERE {_IN_PERIOD} AND o.status IN ('formed', 'stalled')) AS stalled_share
""")

METRICS_PER_STAGE = text(f"""
SELECT o.stage, count(*) AS opportunities, avg(o.engaged_members)::float8 AS engaged_members
FROM opportunities o WHERE {_IN_PERIOD} GROUP BY o.stage ORDER BY o.stage
""")

METRICS_PER_ROLE = text(f"""
SELECT r.role, count(*) FILTER (WHERE r.role = ANY(o.covered_roles)) AS covered,
       count(*) FILTER (WHERE r.role = ANY(o.missing_roles)) AS missing
FROM opportunities o
CROSS JOIN LATERAL (SELECT DISTINCT x AS role FROM unnest(o.covered_roles || o.missing_roles) x) r
WHERE {_IN_PERIOD} GROUP BY r.role ORDER BY r.role
""")

METRICS_PER_STATUS = text(f"""
SELECT o.status, count(*) AS opportunities FROM opportunities o WHERE {_IN_PERIOD} GROUP BY o.status ORDER BY o.status
""")

WON_CONTENT = text("""
WITH used AS (
  SELECT m.role, coalesce(t.asset_id, t.url, t.topic, t.title) AS content,
         count(*) AS touches, count(DISTINCT t.opportunity_id) AS opportunities
  FROM touches t
  JOIN opportunities o ON o.opportunity_id = t.opportunity_id AND o.outcome = 'won'
  JOIN opportunity_members m ON m.opportunity_id = t.opportunity_id AND m.person_id = t.person_id
  WHERE coalesce(t.asset_id, t.url, t.topic, t.title) IS NOT NULL
  GROUP BY 1, 2),
ranked AS (SELECT *, row_number() OVER (PARTITION BY role ORDER BY opportunities DESC, touches DESC, content) AS n
           FROM used)
SELECT role, content, touches, opportunities FROM ranked WHERE n <= :per_role ORDER BY role, n
""")
