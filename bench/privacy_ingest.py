"""What pseudonyms and sealing add to ingest per request (issue 18, docs/privacy.md).

    .venv/bin/python -m bench.privacy_ingest [--batch 500] [--rounds 5]

Two parts, each the best of `rounds`: the CPU of protect() per touch (pseudonyms, AES-256-GCM
seal, model copies; in microseconds), and one request's vault round trip for a batch of
`batch` touches of distinct people (the Lua script over their identifiers; in milliseconds),
against the Redis of REDIS_URL under a throwaway prefix it deletes afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid

from redis.asyncio import Redis

from bench.text_checks import TOUCH, best_microseconds
from services.grouping.domain.accounts import person_id
from shared.privacy.person import identifiers, protect
from shared.privacy.seal import new_key, new_token
from shared.privacy.vault import Entry, Vault
from shared.schemas.touch import TouchEvent
from shared.settings import RedisSettings


async def vault_round_trip(batch: int, rounds: int) -> float:
    redis = Redis.from_url(RedisSettings().redis_url)
    prefix = f"bench:privacy:{uuid.uuid4().hex[:8]}:"
    vault = Vault(redis, b"bench-pepper", prefix=prefix)
    best = float("inf")
    try:
        for r in range(rounds):
            wanted = []
            for i in range(batch):
                person = TouchEvent.model_validate({**TOUCH, "person": {
                    **TOUCH["person"], "email": f"p{r}-{i}@romashka.ru", "anonymous_id": f"a-{r}-{i}"}}).person
                wanted += identifiers(person, person_id)
            links = [(2 * i, 2 * i + 1) for i in range(batch)]
            started = time.perf_counter()
            await vault.ensure(wanted, links)
            best = min(best, time.perf_counter() - started)
        return best * 1e3
    finally:
        async for key in redis.scan_iter(match=prefix + "*", count=1000):
            await redis.delete(key)
        await redis.aclose()


def main(batch: int, rounds: int) -> None:
    event = TouchEvent.model_validate(TOUCH)
    entries = [Entry(new_token(), new_key()) for _ in identifiers(event.person, person_id)]
    cpu = best_microseconds(lambda: protect(event, entries), n=5000, rounds=rounds)
    names = best_microseconds(lambda: identifiers(event.person, person_id), n=5000, rounds=rounds)
    trip = asyncio.run(vault_round_trip(batch, rounds))
    print(f"protect {cpu:.1f} us per touch (+ identifiers {names:.1f} us); "
          f"vault round trip {trip:.1f} ms per request of {batch} touches ({trip * 1e3 / batch:.1f} us per touch)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    main(args.batch, args.rounds)
