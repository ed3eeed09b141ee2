"""What scoring keeps per opportunity and per partition (stored as JSON in faust tables)."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

from shared.schemas.correction import Influence, Stance
from shared.schemas.opportunity import ClockTick
from shared.schemas.roles import BuyingRole, Department
from shared.schemas.scoring import Tier
from shared.schemas.touch import TouchKind


class _State(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TouchRecord(_State):
    event_id: str
    person_id: str
    kind: TouchKind
    at: datetime
    weight: float


class MemberState(_State):
    person_id: str
    name: str | None = None
    department: Department
    role: BuyingRole
    stance: Stance | None = None  # set by hand (champion / blocker / neutral)
    influence: Influence | None = None
    # Touches older than the retention horizon, folded into decayed mass per kind at folded_at.
    folded: dict[TouchKind, float] = Field(default_factory=dict)
    folded_at: datetime | None = None
    folded_touches: int = 0


class OpportunityState(_State):
    opportunity_id: str
    account_id: str
    account_name: str | None = None
    account_owner: str | None = None
    solution: str
    # The input partition: this opportunity's timers follow that partition's clock.
    partition: int
    version: int = 0
    expected_roles: tuple[BuyingRole, ...] = ()
    required_roles: tuple[BuyingRole, ...] = ()
    members: dict[str, MemberState] = Field(default_factory=dict)
    touches: list[TouchRecord] = Field(default_factory=list)  # sorted by (at, event_id)
    last_touch_at: datetime | None = None
    tier: Tier | None = None  # of the latest score sent
    # Facts, each recomputed over the full touch set as touches arrive (late ones included),
    # and whether it was announced: a fact is announced once, under its own id.
    forming_at: datetime | None = None
    forming_announced: bool = False
    formed_at: datetime | None = None
    formed_announced: bool = False
    announced_members: list[str] = Field(default_factory=list)
    announced_roles: list[BuyingRole] = Field(default_factory=list)
    role_gap_checked: bool = False
    announced_blocked: list[str] = Field(default_factory=list)  # role_blocked facts announced
    stalled_since: datetime | None = None  # set while the group is stalled
    # The latest event time among this opportunity's own events.
    scored_at: datetime | None = None
    # The as_of of the latest score sent: a rescore moves it past scored_at.
    score_as_of: datetime | None = None
    # Set while the clock replays history (it trails the log's wall clock by more than
    # timers.backfill_after): the daily rescores wait until the clock reaches this moment (that
    # wall clock less backfill_after) or the last moment of the grid (signals._next_rescore).
    rescore_hold: datetime | None = None
    # Its account was merged into another (opportunity_merged): the opportunity it lives on in.
    # While set it announces nothing and no timer of it fires; the merge's undo clears it.
    merged_into: str | None = None

    def fork(self) -> OpportunityState:
        """A copy a step may change in place while this one stays as it was.

        Cheaper than a deep copy (which took a tenth of scoring's CPU, py-spy): the containers
        and the members are copied (folding old touches updates a member in place), the touch
        records are shared, as nothing changes a record once made."""
        return self.model_copy(update={
            "members": {person: member.model_copy() for person, member in self.members.items()},
            "touches": list(self.touches),
            "announced_members": list(self.announced_members),
            "announced_roles": list(self.announced_roles),
            "announced_blocked": list(self.announced_blocked),
        })


# How far an event time may run ahead of the log's wall clock (ingest's own limit, 5 minutes).
FUTURE_SKEW = timedelta(minutes=5)


class PartitionClock(_State):
    """The log's clock of one input partition of bg.opportunity.v1 (docs/time.md).

    `stage`: the latest watermark per partition of grouping's account stage, from the ticks it
    forwards in band (ClockTick stage "accounts"), and `stage_of`, how many partitions that
    stage has. The clock is their minimum once every one has been heard from: each promises
    that its partition wrote everything up to it before the tick, so a timer judged on it has
    every event of its opportunity that grouping's input had read by then.

    A log written before grouping forwarded its watermarks (ticks without a stage: route's
    watermarks per partition of bg.person-events.v1, `watermarks`) keeps its own rule, until the
    first account stage tick: the latest event time read (`max_event_time`), or the slowest
    input partition's watermark when ahead of it. `wall`: the latest writer wall clock read
    (record timestamps and ticks). All of it comes from the log, so a replay rebuilds it.
    """

    max_event_time: datetime | None = None
    watermarks: dict[int, datetime] = Field(default_factory=dict)
    wall: datetime | None = None
    stage: dict[int, datetime] = Field(default_factory=dict)
    stage_of: int | None = None

    def now(self) -> datetime | None:
        """The partition's clock (UTC), or None while it has none: no timer fires then."""
        if self.stage_of is not None:
            if any(partition not in self.stage for partition in range(self.stage_of)):
                return None  # an account stage partition not heard from holds the clock back
            return min(self.stage[partition] for partition in range(self.stage_of))
        if not self.watermarks:
            return None
        return max(filter(None, (self.max_event_time, min(self.watermarks.values()))))

    def at_event(self, occurred_at: datetime, wall: datetime | None) -> datetime:
        """The clock as an event of an opportunity sees it for that opportunity: the partition's
        clock, or the event's own time when later (its own data; capped as in observe_event)."""
        own = _capped(occurred_at, wall)
        now = self.now()
        return own if now is None else max(now, own)

    def observe_event(self, occurred_at: datetime, wall: datetime | None) -> PartitionClock:
        """The clock after an event. An event time further ahead of its record's timestamp than
        FUTURE_SKEW counts only that far: ingest corrects client clocks, and this keeps a clock
        that slipped through from firing every timer of the partition."""
        occurred_at = _capped(occurred_at, wall)
        latest = occurred_at if self.max_event_time is None else max(self.max_event_time, occurred_at)
        return self.model_copy(update={"max_event_time": latest, "wall": _later(self.wall, wall)})

    def observe_tick(self, tick: ClockTick) -> PartitionClock:
        """The clock after a tick; each partition's watermark only moves forward (a tick forwarded
        again after a restart may carry an older one)."""
        stage = tick.stage == "accounts"
        merged = dict(self.stage if stage else self.watermarks)
        for partition, at in tick.watermarks.items():
            merged[partition] = at if partition not in merged else max(merged[partition], at)
        update: dict[str, object] = {"wall": _later(self.wall, tick.wall)}
        if stage:
            update |= {"stage": merged, "stage_of": tick.of}
        else:
            update["watermarks"] = merged
        return self.model_copy(update=update)


def _capped(occurred_at: datetime, wall: datetime | None) -> datetime:
    return occurred_at if wall is None else min(occurred_at, wall + FUTURE_SKEW)


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)
