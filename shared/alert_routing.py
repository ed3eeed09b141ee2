"""Who an opportunity's alerts go to: the seller's team, falling back to the account owner.

The hook for the alert dispatcher (services/scoring/alerts): the team comes with every
opportunity of the read API (`team`, `alert_recipients` of GET /v1/opportunities/{id} and
GET /v1/opportunities/{id}/team) and as TeamAssigned messages on bg.crm-stage.v2.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def alert_recipients(team: Mapping[str, str | None], account_owner: str | None,
                     role_order: Sequence[str] = ()) -> list[str]:
    """The distinct people of the team in the order of `role_order` (the funnel's team roles;
    other roles after, by name); the account owner when nobody is assigned; [] when neither."""
    rank = {role: i for i, role in enumerate(role_order)}
    people = [team[r] for r in sorted(team, key=lambda r: (rank.get(r, len(rank)), r)) if team[r]]
    out = list(dict.fromkeys(p for p in people if p))
    return out or ([account_owner] if account_owner else [])
