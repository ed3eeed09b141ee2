"""Pure projection logic: messages -> rows to upsert, merging rows of one batch, attribution.

No I/O here. The repository turns each Row kind into one guarded upsert; this module decides
what each message means for each table and which of two rows for the same key wins. Each
merge rule matches the SQL guard of its kind, so that applying a batch in one statement or
message by message ends in the same rows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from services.projection.funnel import Funnel, configured
from shared.privacy.person import open_member_names
from shared.privacy.seal import is_sealed
from shared.schemas.correction import CorrectionMessage, CorrectionUndone, MemberNoteSet
from shared.schemas.crm import (
    CriterionMarked,
    DealTermsSet,
    QualificationEvent,
    StageChanged,
    StageMoved,
    TeamAssigned,
)
from shared.schemas.opportunity import (
    AccountRef,
    AccountTouch,
    ClockTick,
    MemberAdded,
    MemberRef,
    MemberRemoved,
    MemberRoleChanged,
    MemberStanceChanged,
    OpportunityCreated,
    OpportunityEvent,
    OpportunityLogMessage,
    OpportunityMerged,
    TouchAttributed,
    TouchRef,
)
from shared.schemas.scoring import OpportunityScore, ScoringMessage, Signal

Kind = Literal[
    "account_ref", "account_seen", "contact_ref", "contact_seen",
    "opportunity_stub", "opportunity_event", "opportunity_created", "opportunity_score", "opportunity_stage",
    "opportunity_merge", "member", "member_removed", "touch", "signal", "score_history", "stage_change",
    "opportunity_deal", "criterion_mark",
    "team_member", "correction", "correction_undo", "member_erased",
]


class NotApplicable(ValueError):
    """A message that decodes but cannot be projected; it goes to the dead-letter topic."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


# The primary key of each kind's table: one row per key survives reduce_rows.
KEYS: dict[Kind, tuple[str, ...]] = {
    "account_ref": ("account_id",), "account_seen": ("account_id",),
    "contact_ref": ("person_id",), "contact_seen": ("person_id",),
    "opportunity_stub": ("opportunity_id",), "opportunity_event": ("opportunity_id",),
    "opportunity_created": ("opportunity_id",), "opportunity_score": ("opportunity_id",),
    "opportunity_stage": ("opportunity_id",), "opportunity_merge": ("opportunity_id",),
    "member": ("opportunity_id", "person_id"), "member_removed": ("opportunity_id", "person_id"),
    "touch": ("scope", "touch_id"), "signal": ("signal_id",),
    "score_history": ("opportunity_id", "version", "as_of"), "stage_change": ("event_id",),
    "opportunity_deal": ("opportunity_id",), "criterion_mark": ("opportunity_id", "criterion"),
    "team_member": ("opportunity_id", "role"),
    "correction": ("correction_id",),
    # Keyed by the correction it reverts: one undo per correction (the consumer vets the rest).
    "correction_undo": ("correction_id",),
    "member_erased": ("scope", "person_id"),
}


@dataclass(frozen=True, slots=True)
class Row:
    kind: Kind
    values: dict[str, Any]

    @property
    def key(self) -> tuple:
        return tuple(self.values[f] for f in KEYS[self.kind])


def account_scope(account_id: str) -> str:
    """The touch scope of an account-level touch (no solution shown)."""
    return f"account:{account_id}"


# ---------------------------------------------------------------- mapping


def _account_rows(account: AccountRef, at: datetime, event_id: str) -> list[Row]:
    aid = account.account_id
    return [
        Row("account_ref", {
            "account_id": aid, "name": account.name, "domains": list(account.domains), "owner": account.owner,
            "ref_at": at, "ref_event_id": event_id,
        }),
        Row("account_seen", {"account_id": aid, "first_seen_at": at, "last_activity_at": at}),
    ]


def _contact_seen(person_id: str, account_id: str, at: datetime) -> Row:
    return Row("contact_seen", {
        "person_id": person_id, "account_id": account_id, "first_seen_at": at, "last_activity_at": at,
    })


def _contact_ref(member: MemberRef, at: datetime, event_id: str) -> Row:
    return Row("contact_ref", {
        "person_id": member.person_id, "email": member.email, "name": member.name, "job_title": member.job_title,
        "department": member.department.value, "role": member.role.value, "role_source": member.role_source.value,
        "ref_at": at, "ref_event_id": event_id,
    })


def _touch(scope: str, opportunity_id: str | None, account_id: str, event_id: str, version: int,
           touch: TouchRef) -> Row:
    return Row("touch", {
        "scope": scope, "touch_id": touch.event_id, "opportunity_id": opportunity_id, "account_id": account_id,
        "person_id": touch.person_id, "event_id": event_id, "version": version, "occurred_at": touch.occurred_at,
        "source": touch.source.value, "kind": touch.kind.value, "url": touch.url, "title": touch.title,
        "asset_id": touch.asset_id, "topic": touch.topic,
    })


def _solution_of(event: OpportunityEvent, opportunity_id: str) -> str:
    if event.solution:
        return event.solution
    prefix = f"{event.account.account_id}:"
    if opportunity_id.startswith(prefix) and len(opportunity_id) > len(prefix):
        return opportunity_id[len(prefix):]
    raise NotApplicable("no_solution", f"{event.type} {event.event_id}: solution is missing and "
                        f"opportunity_id {opportunity_id!r} does not name one")


def unseal(message: Any, opened: Mapping[str, Mapping[str, str]]) -> Any:
    """A member event with the member's raw email and name from their sealed values (`opened`:
    Vault.open's answer; `member.sealed` holds the email, a sealed `member.name` the name); what
    cannot be opened (erased, expired) is no email and no name, never the pseudonym or the
    ciphertext in their place (docs/privacy.md). A member_note_set's sealed note is opened into
    `note` the same way (none when it cannot be). Other messages are returned as they are."""
    if isinstance(message, OpportunityScore | Signal):
        return open_member_names(message, opened)
    if isinstance(message, MemberNoteSet) and message.sealed_note is not None:
        return message.model_copy(update={"note": (opened.get(message.sealed_note) or {}).get("note"),
                                          "sealed_note": None})
    member = getattr(message, "member", None)
    if not isinstance(member, MemberRef):
        return message
    update: dict[str, Any] = {}
    if member.sealed is not None:
        update |= {"email": (opened.get(member.sealed) or {}).get("email"), "sealed": None}
    if member.name is not None and is_sealed(member.name):
        update["name"] = (opened.get(member.name) or {}).get("name")
    return message.model_copy(update={"member": member.model_copy(update=update)}) if update else message


def _erased(event: MemberRemoved) -> Row:
    """An erased person (docs/privacy.md): their membership, touches of the scope, contact card and
    entries in stored signals and score breakdowns go (repository.ERASE_MEMBER)."""
    aid = event.account.account_id
    return Row("member_erased", {"scope": event.opportunity_id or account_scope(aid),
                                 "opportunity_id": event.opportunity_id, "person_id": event.member.person_id})


def map_opportunity_event(event: OpportunityEvent) -> list[Row]:
    aid = event.account.account_id
    rows = _account_rows(event.account, event.occurred_at, event.event_id)
    if isinstance(event, MemberRemoved) and event.erased and event.opportunity_id is None:
        return [*rows, _erased(event)]  # the account's own touches of the person
    if isinstance(event, AccountTouch):
        scope = account_scope(aid)
        return [*rows, _touch(scope, None, aid, event.event_id, event.version, event.touch),
                _contact_seen(event.touch.person_id, aid, event.touch.occurred_at)]
    oid = event.opportunity_id
    if oid is None:
        raise NotApplicable("no_opportunity", f"{event.type} {event.event_id}: opportunity_id is null")
    ident = {"opportunity_id": oid, "account_id": aid, "solution": _solution_of(event, oid)}
    rows.append(Row("opportunity_event", {**ident, "version": event.version, "last_event_id": event.event_id}))
    if isinstance(event, OpportunityCreated):
        rows.append(Row("opportunity_created", {
            **ident, "origin": event.origin, "expected_roles": [r.value for r in event.expected_roles],
            "required_roles": [r.value for r in event.required_roles], "created_at": event.occurred_at,
        }))
    elif isinstance(event, MemberAdded | MemberRoleChanged | MemberStanceChanged):
        m = event.member
        rows += [
            Row("member", {
                "opportunity_id": oid, "person_id": m.person_id, "account_id": aid, "email": m.email,
                "name": m.name, "job_title": m.job_title, "department": m.department.value, "role": m.role.value,
                "role_source": m.role_source.value, "why": m.why.model_dump(mode="json") if m.why else None,
                "version": event.version, "joined_at": event.occurred_at,
            }),
            _contact_ref(m, event.occurred_at, event.event_id),
            _contact_seen(m.person_id, aid, event.occurred_at),
        ]
    elif isinstance(event, TouchAttributed):
        rows += [_touch(oid, oid, aid, event.event_id, event.version, event.touch),
                 _contact_seen(event.touch.person_id, aid, event.touch.occurred_at)]
    elif isinstance(event, MemberRemoved):
        # The member row goes unless a later version brought the person back (repository).
        rows.append(Row("member_removed", {"opportunity_id": oid, "person_id": event.member.person_id,
                                           "version": event.version}))
        if event.erased:
            rows.append(_erased(event))
    elif isinstance(event, OpportunityMerged):
        # Read with the opportunity it was merged into: its members are there, its touches are
        # read with that one's (repository.Reader), and lists leave it out.
        rows.append(Row("opportunity_merge", {**ident, "merged_into": event.merged_into,
                                              "merge_version": event.version}))
    return rows


def _finite(name: str, value: float | None, message_id: str) -> None:
    if value is not None and not math.isfinite(value):
        raise NotApplicable("invalid_value", f"{message_id}: {name} is {value}, not a finite number")


def map_scoring_message(message: ScoringMessage) -> list[Row]:
    ident = {"opportunity_id": message.opportunity_id, "account_id": message.account_id,
             "solution": message.solution}
    if isinstance(message, OpportunityScore):
        mid = f"score {message.opportunity_id}@{message.version}"
        _finite("score", message.score, mid)
        for m in message.breakdown.members:
            _finite(f"engagement of {m.person_id}", m.engagement, mid)
        breakdown = message.breakdown.model_dump(mode="json")
        return [
            Row("opportunity_score", {
                **ident, "score": message.score, "tier": message.tier, "breakdown": breakdown,
                "score_version": message.version, "score_as_of": message.as_of,
                # The lifecycle recomputed over the full touch set (docs/time.md): a late touch
                # corrects formed_at here, while a signal keeps the moment it was announced at.
                "score_status": message.status, "score_formed_at": message.formed_at,
                "score_stalled_since": message.stalled_since,
            }),
            Row("score_history", {
                "opportunity_id": message.opportunity_id, "version": message.version, "as_of": message.as_of,
                "score": message.score, "tier": message.tier, "breakdown": breakdown,
            }),
        ]
    assert isinstance(message, Signal)
    _finite("score", message.score, f"signal {message.signal_id}")
    return [
        Row("opportunity_stub", ident),
        Row("signal", {
            **ident, "signal_id": message.signal_id, "signal": message.signal, "occurred_at": message.occurred_at,
            "score": message.score, "tier": message.tier,
            "members": [m.model_dump(mode="json") for m in message.members],
            "covered_roles": [r.value for r in message.covered_roles],
            "missing_roles": [r.value for r in message.missing_roles],
            "trigger_event_ids": list(message.trigger_event_ids),
            "breakdown": message.breakdown.model_dump(mode="json") if message.breakdown else None,
            "detail": message.detail,
        }),
    ]


def _stage_rows(ident: dict[str, Any], event_id: str, stage: str, outcome: str, changed_at: datetime,
                author: str, crm_stage: str | None, history: dict[str, Any]) -> list[Row]:
    return [
        Row("opportunity_stage", {
            **ident, "stage": stage, "outcome": outcome, "stage_changed_at": changed_at, "stage_event_id": event_id,
            "stage_author": author, "crm_stage": crm_stage,
        }),
        Row("stage_change", {
            "event_id": event_id, "opportunity_id": ident["opportunity_id"], "stage": stage, "outcome": outcome,
            "changed_at": changed_at, "author": author, "crm_stage": crm_stage, **history,
        }),
    ]


def _deal(ident: dict[str, Any], event_id: str, at: datetime, amount: float | None, currency: str | None,
          expected_close_on: Any = None) -> Row:
    return Row("opportunity_deal", {**ident, "amount": amount, "currency": currency,
                                    "expected_close_on": expected_close_on, "deal_at": at, "deal_event_id": event_id})


def map_stage_change(message: StageChanged, funnel: Funnel) -> list[Row]:
    """A v1 change (a CRM's own stage name): mapped onto the funnel; a name the funnel does not
    map stays as it is (the rules then treat the opportunity as at the funnel's first stage)."""
    ident = {"opportunity_id": message.opportunity_id, "account_id": message.account_id,
             "solution": message.solution}
    if message.outcome != "open":
        stage = funnel.outcome_stage(message.outcome).code
    else:
        found = funnel.stage_for(message.stage)
        stage = found.code if found else message.stage
    rows = _stage_rows(ident, message.event_id, stage, message.outcome, message.changed_at, "crm", message.stage, {
        "amount": message.amount, "currency": message.currency, "source": message.source,
        "changed_by": message.source, "from_stage": None, "reason": None, "criteria": [],
    })
    if message.amount is not None:
        rows.append(_deal(ident, message.event_id, message.changed_at, message.amount, message.currency))
    return rows


def map_qualification(message: QualificationEvent) -> list[Row]:
    """A v2 message (bg.crm-stage.v2): stage moves, a person's criteria, the team, deal terms."""
    oid = message.opportunity_id
    ident = {"opportunity_id": oid, "account_id": message.account_id, "solution": message.solution}
    if isinstance(message, StageMoved):
        rows = _stage_rows(ident, message.event_id, message.stage, message.outcome, message.changed_at,
                           message.author, message.crm_stage, {
                               "amount": message.amount, "currency": message.currency,
                               "source": message.author, "changed_by": message.changed_by,
                               "from_stage": message.from_stage, "reason": message.reason,
                               "criteria": list(message.criteria)})
        if message.amount is not None:
            rows.append(_deal(ident, message.event_id, message.changed_at, message.amount, message.currency))
        return rows
    if isinstance(message, CriterionMarked):
        return [Row("opportunity_stub", ident), Row("criterion_mark", {
            "opportunity_id": oid, "criterion": message.criterion, "holds": message.holds,
            "evidence": message.evidence, "marked_by": message.marked_by, "marked_at": message.marked_at,
            "event_id": message.event_id})]
    if isinstance(message, TeamAssigned):
        return [Row("opportunity_stub", ident), Row("team_member", {
            "opportunity_id": oid, "role": message.role, "person": message.person,
            "assigned_by": message.assigned_by, "assigned_at": message.assigned_at, "event_id": message.event_id})]
    assert isinstance(message, DealTermsSet)
    return [_deal(ident, message.event_id, message.set_at, message.amount, message.currency,
                  message.expected_close_on)]


# The fields every correction has; the rest is what the correction says (its `detail`).
_CORRECTION_COMMON = frozenset({"schema_version", "correction_id", "author", "made_at", "reason", "type"})


def map_correction(message: CorrectionMessage) -> list[Row]:
    """A correction (bg.correction.v1) is a history row; an undo also marks the correction it
    reverts. What the correction does to the group is applied by grouping and scoring, and
    arrives here as their events; notes and stances are derived from the history
    (repository.REFRESH_ANNOTATIONS), so that an undo restores the one before."""
    detail = {k: v for k, v in message.model_dump(mode="json").items()
              if k not in _CORRECTION_COMMON and k not in ("opportunity_id", "person_id", "sealed_note")}
    rows = [Row("correction", {
        "correction_id": message.correction_id, "type": message.type, "subject": message.key(),
        "opportunity_id": getattr(message, "opportunity_id", None), "person_id": getattr(message, "person_id", None),
        "author": message.author, "made_at": message.made_at, "reason": message.reason, "detail": detail,
        "undone_by_id": None, "undone_by": None, "undone_at": None, "undo_reason": None,
    })]
    if isinstance(message, CorrectionUndone):
        rows.append(Row("correction_undo", {
            "correction_id": message.undoes, "undone_by_id": message.correction_id, "undone_by": message.author,
            "undone_at": message.made_at, "undo_reason": message.reason,
        }))
    return rows


Message = (OpportunityLogMessage | ScoringMessage | StageChanged | StageMoved | CriterionMarked | TeamAssigned
           | DealTermsSet | CorrectionMessage)


def map_message(message: Message, funnel: Funnel | None = None) -> list[Row]:
    """Rows of one message; `funnel` (default: the configured one) maps a v1 CRM stage name."""
    if isinstance(message, ClockTick):
        return []  # the clock moves scoring's timers; their effects arrive as scores and signals
    if isinstance(message, OpportunityScore | Signal):
        return map_scoring_message(message)
    if isinstance(message, StageChanged):
        return map_stage_change(message, funnel or configured())
    if isinstance(message, StageMoved | CriterionMarked | TeamAssigned | DealTermsSet):
        return map_qualification(message)
    if isinstance(message, CorrectionMessage):
        return map_correction(message)
    return map_opportunity_event(message)


# ---------------------------------------------------------------- merging rows of one batch


def _latest(*fields: str) -> Callable[[dict, dict], dict]:
    def merge(old: dict, new: dict) -> dict:
        return new if tuple(new[f] for f in fields) > tuple(old[f] for f in fields) else old
    return merge


def _first(old: dict, new: dict) -> dict:
    return old


def _account_seen(old: dict, new: dict) -> dict:
    return {**old, "first_seen_at": min(old["first_seen_at"], new["first_seen_at"]),
            "last_activity_at": max(old["last_activity_at"], new["last_activity_at"])}


def _contact_seen_merge(old: dict, new: dict) -> dict:
    # A person belongs to the account of their latest activity (ties: the greater account id).
    latest = new if (new["last_activity_at"], new["account_id"]) > (old["last_activity_at"], old["account_id"]) else old
    return {**_account_seen(old, new), "account_id": latest["account_id"]}


def _member(old: dict, new: dict) -> dict:
    latest = new if new["version"] > old["version"] else old
    return {**latest, "joined_at": min(old["joined_at"], new["joined_at"])}


MERGE: dict[Kind, Callable[[dict, dict], dict]] = {
    "account_ref": _latest("ref_at", "ref_event_id"),
    "account_seen": _account_seen,
    "contact_ref": _latest("ref_at", "ref_event_id"),
    "contact_seen": _contact_seen_merge,
    "opportunity_stub": _first,
    "opportunity_event": _latest("version"),
    "opportunity_created": _first,
    "opportunity_score": _latest("score_version", "score_as_of"),
    "opportunity_stage": _latest("stage_changed_at", "stage_event_id"),
    "opportunity_merge": _latest("merge_version"),
    "member": _member,
    "member_removed": _latest("version"),
    "member_erased": _first,
    "touch": _first,
    "signal": _first,
    "score_history": _first,
    "stage_change": _first,
    "opportunity_deal": _latest("deal_at", "deal_event_id"),
    "criterion_mark": _latest("marked_at", "event_id"),
    "team_member": _latest("assigned_at", "event_id"),
    "correction": _first,
    "correction_undo": _first,
}


def reduce_rows(rows: Iterable[Row]) -> dict[Kind, list[dict]]:
    """One row per key and kind (a multi-row upsert may not touch one key twice), sorted by
    key so that concurrent writers lock rows in the same order."""
    merged: dict[Kind, dict[tuple, dict]] = {}
    for row in rows:
        by_key = merged.setdefault(row.kind, {})
        old = by_key.get(row.key)
        by_key[row.key] = row.values if old is None else MERGE[row.kind](old, row.values)
    return {kind: [by_key[k] for k in sorted(by_key)] for kind, by_key in merged.items()}


# ---------------------------------------------------------------- attribution

Model = Literal["linear", "first_touch", "last_touch", "position_based", "time_decay"]
TIME_DECAY_HALF_LIFE = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class TouchForCredit:
    touch_id: str
    occurred_at: datetime


def attribute(touches: Sequence[TouchForCredit], model: Model, until: datetime | None = None) -> dict[str, float]:
    """Share of the credit of each touch (summing to 1), by a multi-touch attribution model.

    Touches after `until` (the moment the deal was won) earn nothing. Ties in time are
    ordered by touch id, so the same touches always get the same shares.
    """
    ordered = sorted((t for t in touches if until is None or t.occurred_at <= until),
                     key=lambda t: (t.occurred_at, t.touch_id))
    n = len(ordered)
    if n == 0:
        return {}
    if model == "linear":
        weights = [1.0] * n
    elif model == "first_touch":
        weights = [1.0] + [0.0] * (n - 1)
    elif model == "last_touch":
        weights = [0.0] * (n - 1) + [1.0]
    elif model == "position_based":
        # 40% to the first touch, 40% to the last, 20% shared by those in between.
        weights = [1.0] * n if n <= 2 else [0.4] + [0.2 / (n - 2)] * (n - 2) + [0.4]
    else:
        end = until or ordered[-1].occurred_at
        weights = [0.5 ** ((end - t.occurred_at) / TIME_DECAY_HALF_LIFE) for t in ordered]
    total = sum(weights)
    shares: dict[str, float] = {}
    for touch, weight in zip(ordered, weights, strict=True):
        shares[touch.touch_id] = shares.get(touch.touch_id, 0.0) + weight / total
    return shares


def credit_groups(credited: Iterable[Mapping[str, Any]], key: Callable[[Mapping[str, Any]], str | None]
                  ) -> list[dict[str, Any]]:
    """Sum credit (and value, when every touch has one) per key; the biggest credit first."""
    groups: dict[str | None, dict[str, Any]] = {}
    for touch in credited:
        k = key(touch)
        group = groups.setdefault(k, {"key": k, "credit": 0.0, "value": 0.0, "touches": 0})
        group["credit"] += touch["credit"]
        group["touches"] += 1
        if group["value"] is not None:
            group["value"] = None if touch["value"] is None else group["value"] + touch["value"]
    return sorted(groups.values(), key=lambda g: (-g["credit"], g["key"] or ""))


def content_key(touch: Mapping[str, Any]) -> str | None:
    """What was consumed: the asset, else the page, else the webinar or event topic."""
    return touch.get("asset_id") or touch.get("url") or touch.get("topic") or touch.get("title")
