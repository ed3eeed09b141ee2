"""Run a service as its own process, the way it runs in production, for component and e2e tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"


class ServiceProcess:
    def __init__(self, name: str, args: list[str], env: dict[str, str] | None = None,
                 health_url: str | None = None) -> None:
        self.name = name
        self.args = args
        self.env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
        self.health_url = health_url
        self.proc: subprocess.Popen | None = None
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.log_path = ARTIFACTS / f"{name}.log"

    def start(self, timeout: float = 60.0) -> ServiceProcess:
        with open(self.log_path, "ab") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen([sys.executable, *self.args], cwd=ROOT, env=self.env,
                                         stdout=log, stderr=subprocess.STDOUT)
        if self.health_url:
            self.wait_healthy(timeout)
        return self

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc and self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.proc.returncode}; log: {self.tail()}")
            try:
                if httpx.get(self.health_url, timeout=1).status_code == 200 and self._owns(self.health_url):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"{self.name} not healthy at {self.health_url} in {timeout}s; log: {self.tail()}")

    def _owns(self, url: str) -> bool:
        """True when this process (or a child) listens on the url's port. A port free_port gave
        can be taken by another process before ours binds it (many test runs share the machine):
        that process then answered the health check, ours exited with "address already in
        use", and the test met a closed port later. Linux's /proc tells who listens."""
        port = httpx.URL(url).port
        if port is None or self.proc is None or not Path("/proc/net/tcp").exists():
            return True
        listening = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                rows = Path(table).read_text().splitlines()[1:]
            except OSError:
                continue
            for row in rows:
                fields = row.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                    listening.add(f"socket:[{fields[9]}]")
        pids = [self.proc.pid, *_children(self.proc.pid)]
        for pid in pids:
            try:
                fds = list(Path(f"/proc/{pid}/fd").iterdir())
            except OSError:
                continue
            for fd in fds:
                try:
                    if os.readlink(fd) in listening:
                        return True
                except OSError:
                    continue
        return False

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def kill(self) -> None:
        """SIGKILL: a crash, no clean shutdown."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> ServiceProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def _children(pid: int) -> list[int]:
    """Every descendant of `pid` (Linux /proc)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                kids = [int(k) for k in task.read_text().split()]
            except OSError:
                continue
            found += kids
            todo += kids
    return found


def free_port() -> int:
    """A free TCP port on 127.0.0.1 for a service a test starts, chosen BELOW the kernel's
    ephemeral range: a port the kernel hands out (bind to 0) is also what it gives the next
    outgoing connection (a Kafka or Redis client), which can take it before the service binds;
    the service then fails to start and a health check may reach someone else's server."""
    import random
    import socket

    low = _ephemeral_low()
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randrange(max(1024, low - 12000), low)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port below the ephemeral range ({low})")
