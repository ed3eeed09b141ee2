"""What unauthenticated and slow clients cost the ingest service (issue 19, item 5).

    .venv/bin/python -m bench.edge_limits [--uploads 30] [--slow 220] [--wait 30] [--root DIR]

Loopback only, bounded in count and time. Starts its own ingest process (from --root, by
default this checkout, so that an older checkout can be measured the same way), then:

1. `--uploads` keyless requests to the Segment and SendGrid endpoints, each with a body just
   under 5 MiB, all at once: the answers, and the service's resident memory before and at its
   peak (VmHWM);
2. `--slow` connections that send part of their request headers and then nothing, and as many
   that send complete headers (with a valid key) and then part of a declared body: how many of
   each the service still holds open after `--wait` seconds, and again after `--later`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from bench.common import peak_rss_mib, run, save
from tests.support.processes import ServiceProcess, free_port

HERE = Path(__file__).resolve().parents[1]
BODY_BYTES = 5 * 1024 * 1024 - 64
SOURCES = ("/v1/sources/segment", "/v1/sources/sendgrid")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


async def keyless_uploads(url: str, count: int) -> dict[int, int]:
    body = b"[" + b" " * (BODY_BYTES - 2) + b"]"
    statuses: dict[int, int] = {}
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        async def one(path: str) -> None:
            try:
                async with session.post(f"{url}{path}", data=body,
                                        headers={"content-type": "application/json"}) as r:
                    await r.read()
                    statuses[r.status] = statuses.get(r.status, 0) + 1
            except (aiohttp.ClientError, TimeoutError):
                statuses[0] = statuses.get(0, 0) + 1  # the server closed the connection mid-upload

        # The platforms' endpoints: the ones that read the body before the key.
        await asyncio.gather(*(one(SOURCES[i % len(SOURCES)]) for i in range(count)))
    return statuses


def open_slow(port: int, count: int, partial: bytes) -> list[socket.socket]:
    socks = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(partial)
        socks.append(s)
    return socks


def still_open(socks: list[socket.socket]) -> int:
    """A connection the server closed reads as EOF, a reset or its 4xx answer; one it holds
    would block. The sockets stay open, so that they can be counted again later."""
    n = 0
    for s in socks:
        s.setblocking(False)
        try:
            data = s.recv(65536)
            n += 0 if data == b"" or data.startswith(b"HTTP/1.1 4") else 1
        except BlockingIOError:
            n += 1
        except OSError:
            pass
    return n


async def main(uploads: int, slow: int, wait: float, later: float, root: Path, label: str) -> None:
    port = free_port()
    env = {"BG_INGEST_PORT": str(port), "BG_ENV": "development", "BG_TOPIC_NAMESPACE": "bench-edge.",
           "LOG_LEVEL": "WARNING"}
    service = ServiceProcess("bench-edge-ingest", ["-m", "services.ingest"], env=env,
                             health_url=f"http://127.0.0.1:{port}/healthz")
    # Run the checkout under test with this environment's interpreter.
    with open(service.log_path, "ab") as log:  # the child keeps its own descriptor
        service.proc = subprocess.Popen([sys.executable, *service.args], cwd=root, env=service.env,
                                        stdout=log, stderr=subprocess.STDOUT)
    service.wait_healthy(60)
    pid = service.proc.pid
    try:
        idle = rss_mib(pid)
        started = time.perf_counter()
        statuses = await keyless_uploads(f"http://127.0.0.1:{port}", uploads)
        upload_seconds = time.perf_counter() - started
        peak = peak_rss_mib(pid)
        header_socks = open_slow(port, slow, b"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        body_socks = open_slow(port, slow, b"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                               b"X-API-Key: dev-api-key\r\nContent-Type: application/json\r\n"
                               b"Content-Length: 100000\r\n\r\n[")
        opened = time.monotonic()
        await asyncio.sleep(wait)
        headers_open, bodies_open = still_open(header_socks), still_open(body_socks)
        await asyncio.sleep(max(0.0, opened + later - time.monotonic()))
        headers_later, bodies_later = still_open(header_socks), still_open(body_socks)
        for s in header_socks + body_socks:
            s.close()
    finally:
        service.stop()
    results = {
        "label": label, "root": str(root), "uploads": uploads, "upload_statuses": statuses,
        "upload_seconds": round(upload_seconds, 2), "rss_idle_mib": round(idle, 1),
        "rss_peak_mib": round(peak, 1), "slow": slow, "wait_seconds": wait,
        "slow_headers_still_open": headers_open, "slow_bodies_still_open": bodies_open,
        "later_seconds": later, "slow_headers_open_later": headers_later, "slow_bodies_open_later": bodies_later,
    }
    print(results)
    save(f"edge_limits_{label}", results)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--uploads", type=int, default=30)
    parser.add_argument("--slow", type=int, default=220)
    parser.add_argument("--wait", type=float, default=30.0)
    parser.add_argument("--later", type=float, default=80.0,
                        help="count again this many seconds after opening (past the 10 s + 60 s body deadline)")
    parser.add_argument("--root", type=Path, default=HERE)
    parser.add_argument("--label", default="current")
    args = parser.parse_args()
    if args.uploads > 100 or args.slow > 500 or max(args.wait, args.later) > 120:
        sys.exit("bounded on purpose: at most 100 uploads, 500 slow connections, 120 s")
    os.environ.setdefault("BG_ENV", "development")
    run(main(args.uploads, args.slow, args.wait, args.later, args.root.resolve(), args.label))
