"""Personal data requests from the command line (docs/privacy.md).

    python -m services.privacy export    (--email X | --user-id X | --anonymous-id X)
    python -m services.privacy erase     (--email X | ...) [--suppress]      with progress per step
    python -m services.privacy suppress  (--email X | ...) [--reason TEXT]
    python -m services.privacy unsuppress (--email X | ...)
    python -m services.privacy retention [--days N] [--dry-run]

Environment: as the projection (DATABASE_URL, PROJECTION_DB_SCHEMA), REDIS_URL, KAFKA_*,
BG_TOPIC_NAMESPACE, BG_PRIVACY_*. Exit codes: 0 done, 1 a store unavailable, 2 bad arguments,
3 no one known by the identifier.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from redis.exceptions import RedisError
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from services.privacy.requests import STEPS, Privacy, Subject, UnknownSubject
from services.privacy.retention import run_retention
from services.projection import db
from services.projection.settings import ProjectionSettings
from shared.privacy.settings import PrivacySettings, vault_for
from shared.settings import DatabaseSettings, RedisSettings, kafka_settings

STEP_TEXT = {
    "find": "find the person's identifiers / поиск идентификаторов",
    "log": "erasure on the log / стирание в журнале",
    "projection": "projection rows / строки проекции",
    "redis": "Redis keys / ключи Redis",
    "keys": "destroy keys / уничтожение ключей",
}


def _subject(args: argparse.Namespace) -> Subject:
    for kind in ("email", "user_id", "anonymous_id"):
        if getattr(args, kind):
            return Subject(kind, getattr(args, kind))
    raise SystemExit("give one of --email, --user-id, --anonymous-id")


async def _run(args: argparse.Namespace) -> int:
    privacy_settings = PrivacySettings()
    projection = ProjectionSettings()
    engine = db.create_engine(DatabaseSettings().database_url, projection.db_schema)
    redis = RedisSettings().client()
    kafka = kafka_settings()
    producer = AIOKafkaProducer(**kafka.aiokafka_kwargs(), acks="all", enable_idempotence=True)
    vault = vault_for(privacy_settings)
    try:
        now = datetime.now(UTC)
        if args.command == "retention":
            days = args.days or privacy_settings.retention_days
            report = await run_retention(vault, engine, now - timedelta(days=days), dry_run=args.dry_run)
        elif args.command == "erase":
            await producer.start()
            privacy = Privacy(vault, engine, redis, producer)
            columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
            with Progress(*columns, transient=False) as bar:
                tasks = {s: bar.add_task(STEP_TEXT[s], total=1) for s in STEPS}

                def step(name: str, done: int, of: int) -> None:
                    bar.update(tasks[name], completed=done, total=max(of, 1))

                report = await privacy.erase(_subject(args), now, suppress=args.suppress, progress=step)
        else:
            privacy = Privacy(vault, engine, redis, producer)
            subject = _subject(args)
            if args.command == "export":
                report = await privacy.export(subject)
            elif args.command == "suppress":
                report = {"suppressed": True, "new": await privacy.suppress(subject, args.reason, "command", now)}
            else:
                report = {"suppressed": False, "was_suppressed": await privacy.unsuppress(subject)}
        print(json.dumps(report, ensure_ascii=False, indent=2, default=str))
        return 0
    except UnknownSubject as exc:
        print(f"{exc} / никто не известен по этому идентификатору", file=sys.stderr)
        return 3
    except (RedisError, KafkaError, OSError) as exc:
        print(f"a store is unavailable / хранилище недоступно: {exc!r}", file=sys.stderr)
        return 1
    finally:
        await producer.stop()
        await redis.aclose()
        await vault.aclose()
        await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.privacy", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("export", "erase", "suppress", "unsuppress"):
        p = sub.add_parser(name)
        who = p.add_mutually_exclusive_group(required=True)
        who.add_argument("--email")
        who.add_argument("--user-id", dest="user_id")
        who.add_argument("--anonymous-id", dest="anonymous_id")
        if name == "erase":
            p.add_argument("--suppress", action="store_true", help="also drop the person's later touches")
        if name == "suppress":
            p.add_argument("--reason", default="requested")
    r = sub.add_parser("retention", help="destroy idle people's keys, fold old touches into counts")
    r.add_argument("--days", type=int, help="default BG_PRIVACY_RETENTION_DAYS")
    r.add_argument("--dry-run", action="store_true", help="count, change nothing")
    args = parser.parse_args(argv)
    if args.command == "retention" and args.days is not None and args.days < 1:
        parser.error("--days: at least 1")
    return asyncio.run(_run(args))


if __name__ == "__main__":
    sys.exit(main())
