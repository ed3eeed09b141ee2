"""A webhook receiver on 127.0.0.1 for the alert tests: records every call, and answers 503 to
its first `fail_first` calls, then 200."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

from services.scoring.alerts import format as fmt


@dataclass(frozen=True)
class Call:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int


class Receiver:
    """A webhook receiver that answers 503 to its first `fail_first` calls, then 200."""

    def __init__(self, fail_first: int) -> None:
        self.calls: list[Call] = []
        lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # the stdlib's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with lock:
                    status = 503 if len(receiver.calls) < fail_first else 200
                    receiver.calls.append(Call(self.path, dict(self.headers), body, status))
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def delivered(self) -> list[tuple[str, str]]:
        """(path, signal id) of each call answered 200, the id decoded from its header."""
        return [(c.path, unquote(c.headers[fmt.SIGNAL_ID_HEADER])) for c in self.calls if c.status == 200]


