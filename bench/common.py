"""What the benchmark scripts share: a fresh topic namespace, service processes, memory readings."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import uuid
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[1] / "bench-results"
# Benchmarks run the services with the development keys: development mode, said explicitly.
os.environ.setdefault("BG_ENV", "development")


async def fresh_namespace(prefix: str) -> str:
    """Topics of their own for this run, so that earlier runs do not count."""
    from shared.topics import ensure_topics

    namespace = f"{prefix}{uuid.uuid4().hex[:6]}."
    os.environ["BG_TOPIC_NAMESPACE"] = namespace
    await ensure_topics(wait_seconds=30)
    return namespace


async def records_in(namespace: str) -> dict[str, int]:
    """{topic without the namespace: records it holds} for every topic of `namespace` (end minus
    beginning offsets over its partitions; records a compacted changelog dropped are not counted)."""
    from aiokafka import AIOKafkaConsumer
    from aiokafka.structs import TopicPartition

    from shared.settings import kafka_settings

    consumer = AIOKafkaConsumer(**kafka_settings().aiokafka_kwargs())
    await consumer.start()
    try:
        metadata = await consumer._client.fetch_all_metadata()  # the public API lists only subscribed topics
        out: dict[str, int] = {}
        for topic in sorted(t for t in metadata.topics() if t.startswith(namespace)):
            tps = [TopicPartition(topic, p) for p in metadata.partitions_for_topic(topic) or ()]
            ends, begins = await consumer.end_offsets(tps), await consumer.beginning_offsets(tps)
            out[topic[len(namespace):]] = sum(ends[tp] - begins[tp] for tp in tps)
        return out
    finally:
        await consumer.stop()


def peak_rss_mib(pid: int) -> float:
    """VmHWM: the peak resident set size of a process so far."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for pid {pid}")


def rss_mib(pid: int) -> float:
    """VmRSS: the resident set size of a process now."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far (/proc/<pid>/stat, clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_with_children(pid: int) -> float:
    """cpu_seconds plus what its exited, reaped children used (/proc/<pid>/stat cutime, cstime)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def servers_cpu() -> dict[str, float]:
    """CPU seconds used so far by the local servers, by name: {"kafka", "postgresql", "redis"}.

    Found by process name among this machine's processes (the broker's java command line names
    kafka.Kafka); PostgreSQL's backends are summed with what the postmaster reaped. A server not
    running counts 0. Differences of two readings give a benchmark's cost outside the services.
    """
    out = {"kafka": 0.0, "postgresql": 0.0, "redis": 0.0}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            comm = (proc / "comm").read_text().strip()
            if "kafka.Kafka" in cmdline:
                out["kafka"] += cpu_seconds(int(proc.name))
            elif comm == "postgres":
                stat = (proc / "stat").read_text().rpartition(")")[2].split()
                # the postmaster (its parent is not postgres) also holds its reaped backends
                parent = Path(f"/proc/{stat[1]}/comm")
                is_postmaster = not parent.exists() or parent.read_text().strip() != "postgres"
                pid = int(proc.name)
                out["postgresql"] += _cpu_with_children(pid) if is_postmaster else cpu_seconds(pid)
            elif comm == "redis-server":
                out["redis"] += cpu_seconds(int(proc.name))
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue  # exited while read
    return out


def machine() -> dict[str, str | int]:
    return {"python": platform.python_version(), "cpus": os.cpu_count() or 0,
            "date": datetime.now(UTC).strftime("%Y-%m-%d")}


def save(name: str, results: dict) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **results}, indent=2, ensure_ascii=False))
    return path


BENCHMARKS_JSON = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.json"


def record(name: str, value: float, unit: str, baseline: float | None, command: str) -> None:
    """Put one headline figure into docs/benchmarks.json (committed), replacing an older one of
    the same name: {name, value, unit, baseline, ratio (value / baseline), date, command}."""
    entries = json.loads(BENCHMARKS_JSON.read_text()) if BENCHMARKS_JSON.exists() else []
    entries = [e for e in entries if e["name"] != name]
    entries.append({"name": name, "value": round(value, 3), "unit": unit,
                    "baseline": None if baseline is None else round(baseline, 3),
                    "ratio": None if not baseline else round(value / baseline, 4),
                    "date": datetime.now(UTC).strftime("%Y-%m-%d"), "command": command})
    BENCHMARKS_JSON.write_text(json.dumps(sorted(entries, key=lambda e: e["name"]), indent=2, ensure_ascii=False)
                               + "\n")


def run(coro) -> None:
    asyncio.run(coro)
