"""The projection writes a member's raw email and name only from values the vault opened."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from services.projection.domain import map_message, unseal
from shared.codec import scoring_messages
from shared.privacy.person import open_member_names
from shared.privacy.seal import new_key, new_token, seal
from shared.schemas.opportunity import AccountRef, MemberAdded, MemberRef
from shared.schemas.roles import BuyingRole, Department, RoleSource

EXAMPLES = Path(__file__).resolve().parents[3] / "shared" / "examples"


def member_added(token: str, key: bytes) -> MemberAdded:
    member = MemberRef(person_id=f"{token}@romashka.ru", email=f"{token}@romashka.ru",
                       name=seal(token, key, {"name": "Ольга Петрова"}),
                       sealed=seal(token, key, {"email": "o.petrova@romashka.ru"}), job_title="финансовый директор",
                       department=Department.finance, role=BuyingRole.budget_holder, role_source=RoleSource.title)
    return MemberAdded(event_id="romashka.ru:hr@2", opportunity_id="romashka.ru:hr", solution="hr",
                       account=AccountRef(account_id="romashka.ru"), version=2,
                       occurred_at=datetime(2026, 10, 1, tzinfo=UTC), member=member)


def test_a_member_row_holds_the_opened_email_and_name_or_nothing():
    token, key = new_token(), new_key()
    event = member_added(token, key)
    opened = {event.member.sealed: {"email": "o.petrova@romashka.ru"}, event.member.name: {"name": "Ольга Петрова"}}
    [row] = [r for r in map_message(unseal(event, opened)) if r.kind == "member"]
    assert (row.values["email"], row.values["name"]) == ("o.petrova@romashka.ru", "Ольга Петрова")
    assert row.values["person_id"] == f"{token}@romashka.ru"
    # Erased: nothing opens, and neither the pseudonym nor the ciphertext stands in for them.
    [row] = [r for r in map_message(unseal(event, {})) if r.kind == "member"]
    assert (row.values["email"], row.values["name"]) == (None, None)


def test_signals_and_scores_name_members_only_by_opened_names():
    signal = scoring_messages.decode((EXAMPLES / "signal.group_formed.v1.json").read_bytes())
    token, key = new_token(), new_key()
    sealed = seal(token, key, {"name": "Ольга Петрова"})
    first, *rest = signal.members
    signal = signal.model_copy(update={"members": (first.model_copy(update={"name": sealed}), *rest)})
    opened = open_member_names(signal, {sealed: {"name": "Ольга Петрова"}})
    assert opened.members[0].name == "Ольга Петрова" and opened.members[1:] == signal.members[1:]
    erased = open_member_names(signal, {})
    assert erased.members[0].name is None and erased.members[0].person_id == first.person_id
    [row] = [r for r in map_message(unseal(signal, {})) if r.kind == "signal"]
    assert sealed not in str(row.values)
