"""Account merges in the accounts stage: two accounts that are one company become one, and back.

Two things start a merge (an AccountMerge, keyed by the account absorbed):

- the names stage, when a corporate colleague reveals the domain of an account made from a
  company name (`directory.register`, issue 15: "name:скворечник технологии" into
  skvorechnik.ru), merge id "merge:<name account>><domain account>";
- a person, with an accounts_merged correction (bg.correction.v1, issue 16; routed by
  corrections.route), merge id = the correction's id.

Then, through the log:

1. at the absorbed account, `hand_over`: its opportunities are announced merged into the
   surviving account's opportunity of the same solution (OpportunityMerged), and what it holds
   (people, each opportunity's members, touches still pending creation) leaves in one
   AccountMoved. It keeps its own view, hidden (`merged_into` set): everything that still
   arrives for it (its domain's touches, its free-mail people's) is applied there and forwarded
   (`forward`), so later touches to either account land in the surviving one, and an undo gives
   the same whether the merge was read before or after them (a rebuild from the topics reads
   them in another interleaving than live did);
2. at the surviving account, `absorb`: people join, each moved opportunity's members join
   this account's opportunity of that solution (created when there is none), pending touches
   count for creation as if they had come here; a MergeRecord says what the merge brought,
   and the people forwarded inputs make members later (`_forwarded_input`);
3. an undo (correction_undone naming the merge, its subject the surviving account), `undo`:
   what the record says the merge brought goes (MemberRemoved; an opportunity the merge
   created and that has nobody left is merged into the restored one), and an AccountRestored
   tells the absorbed account to stand on its own again (`restore`: its opportunities are
   announced unmerged, with their members and touches as if it had never been merged).
   An undo that arrives before its merge (the merge goes round through the absorbed account,
   the undo straight here; a rebuild may read both at once) waits for it in the state, and is
   refused (unknown_merge) once the account's touches are `correction_grace` past it.

Touches already attributed stay on their opportunity's events: consumers read the absorbed
opportunity's touches with the one it was merged into (projection), grouping keeps no touch
history. Every step is a pure function of its state and input, its ids derived from the
merge id, so a replay emits the same; the stages' stamps skip an input applied already.
Refused, with the reason (a person's correction to bg.correction.dlq.v1, anything else to
grouping's dead letters): a merge into itself, of an account merged already into another, into
an account it absorbed (a cycle), an undo of no merge the account knows, a correction of an
account that was absorbed.
"""

from __future__ import annotations

from collections.abc import Callable

from services.grouping.domain.corrections import refused
from services.grouping.domain.messages import (
    AccountActivity,
    AccountMerge,
    AccountMoved,
    AccountRestored,
    AccountStageInput,
    CorrectionInput,
    MemberUpdate,
    MovedOpportunity,
    Outbound,
    Precreate,
    Refused,
)
from services.grouping.domain.opportunities import (
    AccountState,
    MergeRecord,
    OpportunityRules,
    _Reducer,
    prune_people,
)
from services.grouping.domain.opportunities import step as account_step
from shared.schemas.correction import CorrectionUndone
from shared.schemas.opportunity import Basis, MemberRef, MemberRemoved, MemberWhy, OpportunityMerged, opportunity_id


def hand_over(state: AccountState, account_id: str, merge: AccountMerge,
              rules: OpportunityRules) -> list[Outbound]:
    """At the absorbed account: announce its opportunities merged, send what it holds to `into`.

    Updates `state` in place (`merged_into`, `merge_id`, the opportunities' versions); returns
    one OpportunityMerged per opportunity (solution order) and the AccountMoved. The same merge
    again (a second name of the account taken over) returns nothing.
    Raises Refused: merge_into_itself, already_merged (into another), merge_cycle.
    """
    into = merge.into.account_id
    if into == account_id:
        raise Refused("merge_into_itself", f"{account_id} cannot be merged into itself")
    if state.merged_into is not None:
        if state.merged_into.account_id == into:
            return []
        raise Refused("already_merged", f"{account_id} was merged into {state.merged_into.account_id} "
                                        f"({state.merge_id}); undo that first")
    if into in state.absorbed:
        raise Refused("merge_cycle", f"{into} was merged into {account_id}: merging {account_id} into it "
                                     "would make a cycle")
    reducer = _Reducer(state, rules)
    for solution, opp in sorted(state.opportunities.items()):
        reducer._emit_opportunity(opp, OpportunityMerged, merge.occurred_at,
                                  merged_into=opportunity_id(into, solution), merge_id=merge.merge_id)
    # Members carry their own card; state.people holds those of people with pending touches.
    # Each says why they are in the surviving account now: this merge (MemberRef.why).
    basis = Basis(rule="merge", detail=f"{account_id} merged into {into}",
                  correction_id=merge.correction.correction_id if merge.correction else None,
                  author=merge.correction.author if merge.correction else None)

    def moved_card(card: MemberRef) -> MemberRef:
        return card.model_copy(update={"why": (card.why or MemberWhy()).model_copy(update={"account": basis})})

    cards = {pid: card for opp in state.opportunities.values() for pid, card in opp.members.items()}
    cards.update(state.people)
    moved = AccountMoved(
        input_id=f"moved:{merge.merge_id}", merge_id=merge.merge_id, occurred_at=merge.occurred_at,
        account=merge.into, source=state.account, absorbed=tuple(state.absorbed),
        people=tuple(moved_card(cards[pid]) for pid in sorted(cards)),
        opportunities=tuple(
            MovedOpportunity(solution=solution, opportunity_id=opp.opportunity_id,
                             members=tuple(moved_card(opp.members[p]) for p in sorted(opp.members)))
            for solution, opp in sorted(state.opportunities.items())
        ),
        pending=tuple((solution, touch) for solution, touches in sorted(state.pending.items()) for touch in touches),
    )
    state.merged_into, state.merge_id = merge.into, merge.merge_id
    return [*reducer.outputs, Outbound(to="accounts", key=into, message=moved)]


def forward(state: AccountState, account_id: str,
            message: AccountActivity | MemberUpdate | AccountMoved) -> list[Outbound]:
    """At an absorbed account: the same input, re-addressed to the account it was merged into.

    Raises Refused (merge_cycle) when the input went through this account already: two merges
    made at once in opposite directions, which the corrections API refuses beforehand.
    """
    assert state.merged_into is not None
    if account_id in message.via:
        raise Refused("merge_cycle", f"{message.type} forwarded in a circle: {' > '.join(message.via)} > {account_id}")
    into = state.merged_into
    return [Outbound(to="accounts", key=into.account_id,
                     message=message.model_copy(update={"account": into, "via": (*message.via, account_id)}))]


def absorb(state: AccountState, moved: AccountMoved, rules: OpportunityRules) -> list[Outbound]:
    """At the surviving account: take the absorbed account's people, members and pending touches.

    A moved opportunity's members join this account's opportunity of the same solution, created
    (origin "auto") when there is none; a moved pending touch waits here and may complete the
    creation rule. Events carry this account's opportunity ids and versions, and the merge's
    event time. Records what the merge brought (`state.merges[merge_id]`) for an undo.
    """
    if moved.merge_id in state.merges:
        return []
    at = moved.occurred_at
    before = {solution: set(opp.members) for solution, opp in state.opportunities.items()}
    reducer = _Reducer(state, rules)
    # Someone the surviving account knows already keeps its card there (and why they are in it).
    known = {pid for opp in state.opportunities.values() for pid in opp.members} | set(state.people)
    for card in moved.people:
        if card.person_id not in known:
            reducer.card(card, at)
    for moved_opp in moved.opportunities:
        opp = state.opportunities.get(moved_opp.solution) or reducer.create(moved_opp.solution, "auto", at)
        reducer.revive(opp, at)
        for member in moved_opp.members:
            state.people.setdefault(member.person_id, member)
            reducer.join(opp, member.person_id, at)
    for solution, touch in moved.pending:
        opp = state.opportunities.get(solution)
        if opp is not None:
            reducer.revive(opp, at)
            if reducer.join(opp, touch.person_id, touch.occurred_at):
                reducer.attribute(opp, touch)
            continue
        waiting = state.pending.setdefault(solution, [])
        if touch not in waiting:
            waiting.append(touch)
            waiting.sort(key=lambda t: (t.occurred_at, t.event_id))
        if reducer._ready(solution):
            reducer._open_with_pending(solution, at, touch)
    absorbed = sorted({moved.source.account_id, *moved.absorbed})
    gained = {solution: set(opp.members) - before.get(solution, set()) for solution, opp in state.opportunities.items()}
    state.merges[moved.merge_id] = MergeRecord(
        source=moved.source, absorbed=absorbed,
        opportunities={o.solution: o.opportunity_id for o in moved.opportunities},
        created=sorted(s for s in state.opportunities if s not in before),
        added={solution: sorted(people) for solution, people in sorted(gained.items()) if people},
        pending=[touch.event_id for _, touch in moved.pending],
    )
    state.absorbed = sorted({*state.absorbed, *absorbed})
    return reducer.outputs


def undo(state: AccountState, account_id: str, message: CorrectionUndone, rules: OpportunityRules) -> list[Outbound]:
    """At the surviving account: take out what the merge brought, and restore the absorbed account.

    The people the merge made members leave each opportunity (MemberRemoved), unless they
    left already; an opportunity the merge created is merged into the restored account's one
    of its solution when nobody is left in it; moved touches still pending go. The people
    forwarded touches made members since are the merge's too; their touches stay on this
    account's opportunity events (the absorbed account holds them as well). Raises Refused:
    unknown_merge, merged_since (this account was itself merged into another since: that merge
    is undone first).
    """
    record = state.merges.get(message.undoes)
    if record is None:
        raise Refused("unknown_merge", f"{account_id} has no merge {message.undoes!r} to undo")
    if state.merged_into is not None:
        raise Refused("merged_since", f"{account_id} was merged into {state.merged_into.account_id} "
                                      f"({state.merge_id}) since; undo that first")
    at = message.made_at
    reducer = _Reducer(state, rules)
    for solution, people in sorted(record.added.items()):
        opp = state.opportunities.get(solution)
        for pid in people if opp is not None else ():
            if (gone := opp.members.pop(pid, None)) is not None:
                reducer._emit_opportunity(opp, MemberRemoved, at, member=gone, correction_id=message.correction_id,
                                          author=message.author)
    for solution in record.created:
        opp = state.opportunities.get(solution)
        restored = record.opportunities.get(solution)
        if opp is not None and restored is not None and not opp.members and opp.merged_into is None:
            reducer.retire(opp, restored, message.undoes, at)
    moved = set(record.pending)
    for solution, touches in list(state.pending.items()):
        state.pending[solution] = [t for t in touches if t.event_id not in moved]
    del state.merges[message.undoes]
    state.absorbed = sorted({a for r in state.merges.values() for a in r.absorbed})
    restored_message = AccountRestored(input_id=f"restored:{message.undoes}", merge_id=message.undoes,
                                       occurred_at=at, account=record.source)
    return [*reducer.outputs, Outbound(to="accounts", key=record.source.account_id, message=restored_message)]


def restore(state: AccountState, message: AccountRestored, rules: OpportunityRules) -> list[Outbound]:
    """At the absorbed account: its merge was undone; its opportunities stand on their own again.

    Returns one OpportunityMerged (merged_into None) per opportunity; nothing when the account
    is not merged by that merge (a replay).
    """
    if state.merge_id != message.merge_id:
        return []
    reducer = _Reducer(state, rules)
    for _, opp in sorted(state.opportunities.items()):
        reducer._emit_opportunity(opp, OpportunityMerged, message.occurred_at, merged_into=None,
                                  merge_id=message.merge_id)
    state.merged_into, state.merge_id = None, None
    return reducer.outputs


def step(state: AccountState | None, account_id: str, message: AccountStageInput,
         rules: OpportunityRules) -> tuple[AccountState, list[Outbound]]:
    """The accounts stage's reducer: opportunities.step, with merges, their undo and forwarding.

    Updates `state` in place. A merge or undo the domain will not apply leaves the state as it
    was: a person's correction is answered with a CorrectionRefused (to "correction_dlq"),
    anything else raises Refused.
    """
    try:
        return _step(state, account_id, message, rules)
    except Refused as refusal:
        correction = message.correction if isinstance(message, AccountMerge | CorrectionInput) else None
        if correction is None:
            raise
        return state or AccountState(account=message.account), [refused(correction, refusal.reason, refusal.detail)]


def _step(state: AccountState | None, account_id: str, message: AccountStageInput,
          rules: OpportunityRules) -> tuple[AccountState, list[Outbound]]:
    if isinstance(message, CorrectionInput) and isinstance(message.correction, CorrectionUndone) \
            and message.correction.subject == account_id:
        # The subject of an undo is an account only for a merge (corrections.account_of).
        state = state or AccountState(account=message.account)
        wanted = message.correction
        if wanted.undoes in state.merges:
            outputs = undo(state, account_id, wanted, rules)
        else:  # the merge itself is still on its way here (through the account it absorbs)
            if all(u.correction_id != wanted.correction_id for u in state.waiting_undos):
                state.waiting_undos.append(wanted)
            outputs = _expire_undos(state, rules)
        prune_people(state)
        return state, outputs
    if isinstance(message, AccountMerge | AccountMoved | AccountRestored):
        state = state or AccountState(account=message.account)
        if isinstance(message, AccountMerge):
            outputs = hand_over(state, account_id, message, rules)
        elif isinstance(message, AccountMoved):
            if state.merged_into:
                outputs = forward(state, account_id, message)
            else:
                outputs = absorb(state, message, rules)
                for waiting in [u for u in state.waiting_undos if u.undoes == message.merge_id]:
                    state.waiting_undos.remove(waiting)
                    outputs += _refusing(waiting, lambda w=waiting: undo(state, account_id, w, rules))
        else:
            outputs = restore(state, message, rules)
        prune_people(state)
        return state, outputs
    if state is not None and state.merged_into is not None:
        if isinstance(message, CorrectionInput):
            raise Refused("account_merged", f"{account_id} was merged into {state.merged_into.account_id} "
                                            f"({state.merge_id}): correct the opportunities there")
        return _absorbed_input(state, account_id, message, rules)
    if isinstance(message, AccountActivity | MemberUpdate) and message.via:
        state, outputs = _forwarded_input(state, account_id, message, rules)
    else:
        state, outputs = account_step(state, account_id, message, rules)
    return state, [*outputs, *_expire_undos(state, rules)] if state.waiting_undos else outputs


def _refusing(correction: CorrectionUndone, apply: Callable[[], list[Outbound]]) -> list[Outbound]:
    """`apply()`'s outputs, or the correction refused with the reason it raised."""
    try:
        return apply()
    except Refused as refusal:
        return [refused(correction, refusal.reason, refusal.detail)]


def _expire_undos(state: AccountState, rules: OpportunityRules) -> list[Outbound]:
    """Refuse (unknown_merge) the undos that waited for their merge longer than
    rules.correction_grace of the account's event time, or beyond rules.max_waiting."""
    clock, grace = state.clock, rules.correction_grace
    kept = [u for u in state.waiting_undos if clock is None or clock - u.made_at <= grace]
    late = [u for u in state.waiting_undos if u not in kept]
    overflow = kept[:max(0, len(kept) - rules.max_waiting)]
    state.waiting_undos = kept[len(overflow):]
    return [refused(u, "unknown_merge", f"no merge {u.undoes!r} reached {u.subject} within {grace} of its "
                                        "touches' time (or too many undos wait)") for u in late + overflow]


def _absorbed_input(state: AccountState, account_id: str, message: AccountActivity | MemberUpdate | Precreate,
                    rules: OpportunityRules) -> tuple[AccountState, list[Outbound]]:
    """At an absorbed account: apply the input to its own view (kept, hidden, for an undo, so that
    the undo gives the same whether the merge was read before or after the touches, as a rebuild
    from the topics may read them), and forward it to the surviving account."""
    assert state.merged_into is not None
    forwarded = [] if isinstance(message, Precreate) else forward(state, account_id, message)  # a cycle raises first
    before = set(state.opportunities)
    state, outputs = account_step(state, account_id, message, rules)
    reducer = _Reducer(state, rules)
    for solution in sorted(set(state.opportunities) - before):  # opened while merged: merged from the start
        reducer._emit_opportunity(state.opportunities[solution], OpportunityMerged, message.occurred_at,
                                  merged_into=opportunity_id(state.merged_into.account_id, solution),
                                  merge_id=state.merge_id)
    return state, [*outputs, *reducer.outputs, *forwarded]


def _forwarded_input(state: AccountState | None, account_id: str, message: AccountActivity | MemberUpdate,
                     rules: OpportunityRules) -> tuple[AccountState, list[Outbound]]:
    """At the surviving account: an input an absorbed account forwarded. Whoever it makes a member
    is the merge's (an undo takes them out). One forwarded before the merge was undone and read
    after it is dropped: the absorbed account, on its own again, applied it itself."""
    record = next((r for r in (state.merges.values() if state else ()) if r.source.account_id == message.via[-1]),
                  None)
    if state is None or record is None:
        return state or AccountState(account=message.account), []
    before = {solution: set(opp.members) for solution, opp in state.opportunities.items()}
    state, outputs = account_step(state, account_id, message, rules)
    for solution, opp in sorted(state.opportunities.items()):
        if solution not in before:
            # The absorbed account applied the same input under the same rules: it has the
            # opportunity of that solution, which an undo gives this one back to.
            record.created = sorted({*record.created, solution})
            record.opportunities.setdefault(solution, opportunity_id(record.source.account_id, solution))
        gained = set(opp.members) - before.get(solution, set())
        if gained:
            record.added[solution] = sorted({*record.added.get(solution, []), *gained})
    return state, outputs
