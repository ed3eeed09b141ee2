"""The seller's team of each opportunity, as the alert dispatcher knows it: who an alert goes to.

Teams are assigned on bg.crm-stage.v2 (TeamAssigned: from the web page, the API or a CRM).
The dispatcher reads that topic from its beginning with a consumer group of its own and keeps
the team per opportunity in a Redis hash (`<prefix>team:<opportunity_id>`, role -> JSON
{"person", "at"}), so that `AlertsConfig.route(signal, team)` can send an opportunity's
alerts to its account executive rather than to everyone.

The latest assignment of a role by event time (`assigned_at`) wins, whatever order the
messages are read in: a replay or a redelivery of an older assignment never undoes a newer
one. An unassignment (person None) is kept as such, for the same reason.
"""

from __future__ import annotations

import json

from redis.asyncio import Redis

from shared.schemas.crm import TeamAssigned

# Two Lua-free steps would race between two dispatchers; one script compares and sets atomically.
_SET_IF_NEWER = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current then
  local at = cjson.decode(current)['at']
  if at >= ARGV[3] then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""


class TeamBook:
    """Seller teams per opportunity in Redis. `prefix` is the dispatcher's key prefix."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix
        self._set_if_newer = redis.register_script(_SET_IF_NEWER)

    def _key(self, opportunity_id: str) -> str:
        return f"{self.prefix}team:{opportunity_id}"

    async def apply(self, event: TeamAssigned) -> bool:
        """Record an assignment; False when a later one of the same role is already known."""
        # ISO-8601 in UTC with a fixed width compares in time order as text.
        at = event.assigned_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        value = json.dumps({"person": event.person, "at": at})
        return bool(await self._set_if_newer(keys=[self._key(event.opportunity_id)], args=[event.role, value, at]))

    async def team(self, opportunity_id: str) -> dict[str, str | None]:
        """{team role: person or None} of the opportunity; {} when nobody was ever assigned."""
        raw = await self.redis.hgetall(self._key(opportunity_id))
        return {role.decode(): json.loads(value)["person"] for role, value in raw.items()}
