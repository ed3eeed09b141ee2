"""The key vault and the suppression list (Redis): the one place a pseudonym can be turned back
into a person, and the place erasing destroys.

Layout (prefix ``bg:privacy:`` by default; digests and tokens from shared/privacy/seal.py):

    id:<digest>     -> token                  which pseudonym an identifier has
    key:<token>     -> hash k (AES key, 32 bytes), d (digest), t (kind), p (pseudonym on the log),
                       s (the last day, UTC, the identifier was seen: retention)
    links:<token>   -> set of tokens seen in the same event (one person's identifiers)
    sup:<digest>    -> JSON {reason, source, at}: a suppressed identifier (kept after an erase,
                       as Segment's "delete and suppress" keeps the suppression)

Every request of ingest costs one round trip (a Lua script over the batch's identifiers), not
one per identifier. Redis must persist (AOF or RDB with backups): losing the vault is erasing
everybody; a restored backup brings back keys erased since it was taken (docs/privacy.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from redis.asyncio import Redis

from shared.privacy.seal import Identifier, Kind, SealError, digest, new_key, new_token, open_sealed, token_of

# Per identifier (5 ARGV after the header): its digest, a candidate token, key, kind and pseudonym,
# used only when it is new; then link pairs (1-based indices). Returns per identifier {token, key,
# suppression JSON or ""}.
_ENSURE = """
local prefix, today, n = ARGV[1], ARGV[2], tonumber(ARGV[3])
local out, tokens = {}, {}
for i = 1, n do
  local base = 3 + (i - 1) * 5
  local d, cand, key, kind, pseud = ARGV[base + 1], ARGV[base + 2], ARGV[base + 3], ARGV[base + 4], ARGV[base + 5]
  local token = redis.call('GET', prefix .. 'id:' .. d)
  if not token then
    token = cand
    redis.call('SET', prefix .. 'id:' .. d, token)
    redis.call('HSET', prefix .. 'key:' .. token, 'k', key, 'd', d, 't', kind, 'p', pseud, 's', today)
  else
    redis.call('HSET', prefix .. 'key:' .. token, 's', today)
  end
  tokens[i] = token
  out[i] = {token, redis.call('HGET', prefix .. 'key:' .. token, 'k'), redis.call('GET', prefix .. 'sup:' .. d) or ''}
end
for j = 3 + n * 5 + 1, #ARGV, 2 do
  local a, b = tokens[tonumber(ARGV[j])], tokens[tonumber(ARGV[j + 1])]
  if a ~= b then
    redis.call('SADD', prefix .. 'links:' .. a, b)
    redis.call('SADD', prefix .. 'links:' .. b, a)
  end
end
return out
"""


@dataclass(frozen=True)
class Entry:
    """An identifier's vault entry: its token and key, and since when it is suppressed (if it is)."""

    token: str
    key: bytes
    suppressed_at: datetime | None = None


@dataclass(frozen=True)
class Known:
    """What the vault keeps about one token (export, erase)."""

    token: str
    kind: Kind
    pseudonym: str
    digest: str
    last_seen: str | None


class Vault:
    def __init__(self, redis: Redis, pepper: bytes, prefix: str = "bg:privacy:") -> None:
        self.redis = redis
        self.pepper = pepper
        self.prefix = prefix
        self._ensure = redis.register_script(_ENSURE)

    def digest(self, identifier: Identifier) -> str:
        return digest(self.pepper, identifier)

    async def aclose(self) -> None:
        """Close the vault's Redis client (its own: shared.privacy.settings.vault_for)."""
        await self.redis.aclose()

    async def ensure(self, identifiers: list[tuple[Identifier, str]], links: Iterable[tuple[int, int]] = (),
                     today: str | None = None) -> list[Entry]:
        """The entry of each (identifier, pseudonym-to-be) pair, created when new, in one round trip.

        `pseudonym-to-be` is a function of the token only known here, so the caller passes a
        template with ``{token}`` (seal.pseudonym(kind, raw, "{token}")). `links`: 0-based index
        pairs of identifiers seen in one event. Each entry says since when the identifier is
        suppressed, if it is."""
        if not identifiers:
            return []
        today = today or datetime.now(UTC).date().isoformat()
        args: list[str | bytes] = [self.prefix, today, str(len(identifiers))]
        for identifier, template in identifiers:
            token = new_token()
            args += [self.digest(identifier), token, new_key(), identifier.kind, template.replace("{token}", token)]
        for a, b in links:
            args += [str(a + 1), str(b + 1)]
        answers = await self._ensure(keys=[], args=args)
        return [Entry(token.decode(), key, datetime.fromisoformat(orjson.loads(sup)["at"]) if sup else None)
                for token, key, sup in answers]

    async def keys(self, tokens: Iterable[str]) -> dict[str, bytes]:
        """The keys of these tokens that still exist (an erased token has none)."""
        tokens = list(dict.fromkeys(tokens))
        if not tokens:
            return {}
        async with self.redis.pipeline(transaction=False) as pipe:
            for token in tokens:
                pipe.hget(f"{self.prefix}key:{token}", "k")
            found = await pipe.execute()
        return {t: k for t, k in zip(tokens, found, strict=True) if k is not None}

    async def open(self, sealed: Iterable[str]) -> dict[str, dict[str, str]]:
        """The values of each sealed string whose key still exists; the others are left out
        (erased, expired by retention, or not sealed values at all)."""
        sealed = list(dict.fromkeys(sealed))
        tokens = {}
        for s in sealed:
            try:
                tokens[s] = token_of(s)
            except SealError:
                continue
        keys = await self.keys(tokens.values())
        opened = {}
        for s, token in tokens.items():
            if token in keys:
                try:
                    opened[s] = open_sealed(s, keys[token])
                except SealError:
                    continue
        return opened

    async def person(self, identifier: Identifier, limit: int = 200) -> list[Known]:
        """Every token of the person the identifier belongs to: its own and those linked to it,
        transitively (identifiers seen together in an event), up to `limit`. [] when unknown."""
        token = await self.redis.get(f"{self.prefix}id:{self.digest(identifier)}")
        if token is None:
            return []
        seen, queue = [token.decode()], [token.decode()]
        while queue and len(seen) < limit:
            linked = await self.redis.smembers(f"{self.prefix}links:{queue.pop()}")
            for t in sorted(x.decode() for x in linked):
                if t not in seen and len(seen) < limit:
                    seen.append(t)
                    queue.append(t)
        known = []
        for t in seen:
            fields = await self.redis.hgetall(f"{self.prefix}key:{t}")
            if fields:
                known.append(Known(t, fields[b"t"].decode(), fields[b"p"].decode(), fields[b"d"].decode(),
                                   fields.get(b"s", b"").decode() or None))
        return known

    async def shred(self, known: Iterable[Known]) -> int:
        """Destroy these tokens' keys, index entries and links; returns how many keys went."""
        known = list(known)
        async with self.redis.pipeline(transaction=True) as pipe:
            for k in known:
                pipe.delete(f"{self.prefix}key:{k.token}")
                pipe.delete(f"{self.prefix}id:{k.digest}")
                pipe.delete(f"{self.prefix}links:{k.token}")
            results = await pipe.execute()
        return sum(results[0::3])

    async def suppress(self, identifier: Identifier, reason: str, source: str, at: datetime) -> bool:
        """Put the identifier on the suppression list; False when it was there already."""
        value = orjson.dumps({"reason": reason, "source": source, "at": at.isoformat()})
        return bool(await self.redis.set(f"{self.prefix}sup:{self.digest(identifier)}", value, nx=True))

    async def unsuppress(self, identifier: Identifier) -> bool:
        return bool(await self.redis.delete(f"{self.prefix}sup:{self.digest(identifier)}"))

    async def suppression(self, identifier: Identifier) -> dict | None:
        raw = await self.redis.get(f"{self.prefix}sup:{self.digest(identifier)}")
        return None if raw is None else orjson.loads(raw)

    async def idle_since(self, day: str, batch: int = 500) -> list[Known]:
        """Tokens last seen before `day` (ISO date, UTC): those retention shreds."""
        stale = []
        async for name in self.redis.scan_iter(match=f"{self.prefix}key:*", count=batch):
            fields = await self.redis.hgetall(name)
            if fields and fields.get(b"s", b"").decode() < day:
                stale.append(Known(name.decode().rpartition(":")[2], fields[b"t"].decode(), fields[b"p"].decode(),
                                   fields[b"d"].decode(), fields.get(b"s", b"").decode() or None))
        return stale
