"""The topic plan: every topic the project reads or writes, created explicitly.

    python -m shared.topics ensure [--wait SECONDS]   create what is missing, print the plan
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError

from shared.settings import kafka_settings


@dataclass(frozen=True)
class Topic:
    base_name: str
    description: str
    compacted: bool = False

    @property
    def name(self) -> str:
        """BG_TOPIC_NAMESPACE prefixes every topic, so that test runs and tenants stay apart."""
        return os.environ.get("BG_TOPIC_NAMESPACE", "") + self.base_name


PERSON_EVENTS = Topic("bg.person-events.v1", "touches and identity links from ingest, keyed by person")
OPPORTUNITY_EVENTS = Topic("bg.opportunity.v1", "opportunity events from grouping, keyed by opportunity")
SCORES = Topic("bg.score.v1", "group scores from scoring, keyed by opportunity")
SIGNALS = Topic("bg.signal.v1", "formation and priority signals from scoring, keyed by opportunity")
INGEST_DLQ = Topic("bg.ingest.dlq.v1", "payloads ingest accepted but could not map")
GROUPING_DLQ = Topic("bg.grouping.dlq.v1", "person events grouping could not use")
SCORING_DLQ = Topic("bg.scoring.dlq.v1", "opportunity events scoring could not use")
PROJECTION_DLQ = Topic("bg.projection.dlq.v1", "messages projection could not apply")
ALERTS_DLQ = Topic("bg.alerts.dlq.v1", "alerts not delivered after the last retry")
CRM_STAGES = Topic("bg.crm-stage.v1", "stage changes CRMs reported before v2 (old history), keyed by opportunity")
QUALIFICATION = Topic("bg.crm-stage.v2", "stage moves (rules, people, CRMs), exit criteria, seller's team, deal terms; "
                      "keyed by opportunity")
CRM_LINKS = Topic("bg.crm-links.v1", "CRM companies with their INN and contacts linked to deals by hand, "
                  "from the CRM connectors; keyed by CRM record")
CRM_DLQ = Topic("bg.crm.dlq.v1", "CRM records and writes the CRM connectors could not use")
CORRECTIONS = Topic("bg.correction.v1", "corrections people make to the rules' decisions (link, unlink, role, "
                    "merge, stance, note, undo), from the read API; keyed by opportunity or surviving account")
CORRECTIONS_DLQ = Topic("bg.correction.dlq.v1", "corrections a service could not apply, with the reason")
METRICA_WRITEBACK_DLQ = Topic("bg.metrica-writeback.dlq.v1", "offline conversions Metrica refused or never took")

ALL = (
    PERSON_EVENTS, OPPORTUNITY_EVENTS, SCORES, SIGNALS,
    INGEST_DLQ, GROUPING_DLQ, SCORING_DLQ, PROJECTION_DLQ, ALERTS_DLQ, CRM_STAGES, QUALIFICATION,
    METRICA_WRITEBACK_DLQ, CRM_LINKS, CRM_DLQ, CORRECTIONS, CORRECTIONS_DLQ,
)


async def ensure_topics(wait_seconds: float = 0.0) -> list[str]:
    """Create the missing topics; retry the connection up to wait_seconds. Returns created names."""
    settings = kafka_settings()
    deadline = time.monotonic() + wait_seconds
    while True:
        admin = AIOKafkaAdminClient(**settings.aiokafka_kwargs(), request_timeout_ms=10000)
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            missing = [t for t in ALL if t.name not in existing]
            if missing:
                await admin.create_topics([
                    NewTopic(
                        t.name,
                        num_partitions=settings.topic_partitions,
                        replication_factor=settings.replication_factor,
                        topic_configs={"cleanup.policy": "compact"} if t.compacted else {},
                    )
                    for t in missing
                ])
            return [t.name for t in missing]
        except (KafkaConnectionError, KafkaError, OSError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(1.0)
        finally:
            await admin.close()


def main(argv: list[str] | None = None) -> int:
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # retries while waiting are expected
    parser = argparse.ArgumentParser(prog="python -m shared.topics")
    parser.add_argument("command", choices=["ensure"])
    parser.add_argument("--wait", type=float, default=0.0, help="seconds to wait for the broker")
    args = parser.parse_args(argv)
    try:
        created = asyncio.run(ensure_topics(args.wait))
    except Exception as exc:
        print(f"could not reach Kafka at {kafka_settings().bootstrap_servers}: {exc!r}", file=sys.stderr)
        return 1
    partitions = kafka_settings().topic_partitions
    for t in ALL:
        mark = "created" if t.name in created else "exists "
        print(f"  {mark} {t.name:<24} {partitions} partitions  {t.description}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
