"""A Kafka broker of a test's own (deploy/stack.sh on free ports, its own BG_STACK_DIR): a test can
stop, hang or restart it without disturbing anybody else's topics or consumers."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.processes import ROOT, free_port


def _kafka_libs() -> dict[str, str]:
    """Share the running stack's broker jars when they are there: fetching them takes a minute."""
    for libs in (os.environ.get("BG_KAFKA_LIBS"),
                 str(Path(os.environ.get("BG_STACK_DIR", ROOT / ".stack")) / "kafka" / "libs")):
        if libs and any(Path(libs).glob(".complete-*")):
            return {"BG_KAFKA_LIBS": libs}
    return {}


class OwnBroker:
    def __init__(self, namespace: str) -> None:
        self.dir = tempfile.mkdtemp(prefix="bg-own-broker-")
        port = free_port()
        self.bootstrap = f"127.0.0.1:{port}"
        # Every port its own, so that `down` stops nothing but this stack.
        self.env = {**os.environ, **_kafka_libs(), "BG_STACK_DIR": self.dir, "BG_KAFKA_PORT": str(port),
                    "BG_KAFKA_CONTROLLER_PORT": str(free_port()), "BG_PG_PORT": str(free_port()),
                    "BG_REDIS_PORT": str(free_port()), "BG_KAFKA_HEAP": "384m",
                    "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap, "BG_TOPIC_NAMESPACE": namespace}

    def stack(self, *args: str) -> None:
        subprocess.run(["bash", str(ROOT / "deploy" / "stack.sh"), *args], env=self.env, check=True,
                       stdout=subprocess.DEVNULL, timeout=300)

    def start(self) -> None:
        """Up (again) with the namespace's topics; stops a running broker first."""
        self.stack("restart", "kafka")

    def pid(self) -> int:
        return int((Path(self.dir) / "kafka" / "kafka.pid").read_text())

    def alive(self) -> bool:
        try:
            os.kill(self.pid(), 0)
            return True
        except (OSError, ValueError):
            return False

    def pause(self) -> None:
        """SIGSTOP: the broker hangs, its connections stay open and nothing is answered."""
        os.kill(self.pid(), signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.pid(), signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL, waited for: the broker's port refuses connections until start()."""
        pid = self.pid()
        os.kill(pid, signal.SIGCONT)  # a paused broker is killed all the same; resumed for `down`
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        raise AssertionError(f"the own broker (pid {pid}) outlived SIGKILL")

    def close(self) -> None:
        try:
            # A broker left paused by a failed test would not stop; gone already is fine.
            with contextlib.suppress(OSError, ValueError):
                self.resume()
            self.stack("down")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
