"""A loopback contract server for the vendor APIs this project pulls from or writes to.

Yandex Metrica and MTS Link cannot be reached from where this project is built and tested,
so the importers, the write-back and the demo talk to this server, which implements the
endpoints, parameters, authentication and response shapes of the vendors' documentation:

Yandex Metrica (https://yandex.ru/dev/metrika/, header `Authorization: OAuth <token>`):
- GET  /management/v1/counter/{counterId}/logrequests/evaluate?date1&date2&fields&source
       -> {"log_request_evaluation": {"possible", "max_possible_day_quantity"}}
- POST /management/v1/counter/{counterId}/logrequests?date1&date2&fields&source -> {"log_request": ...}
- GET  /management/v1/counter/{counterId}/logrequest/{requestId} -> status created -> processed, parts
- GET  /management/v1/counter/{counterId}/logrequest/{requestId}/part/{partNumber}/download -> TSV
- POST /management/v1/counter/{counterId}/logrequest/{requestId}/clean -> status cleaned_by_user
- POST /management/v1/counter/{counterId}/offline_conversions/upload?client_id_type=CLIENT_ID
       multipart `file`: CSV with the header ClientId,Target,DateTime[,Price,Currency]
MTS Link UserAPI v3 (https://help.mts-link.ru, header `x-auth-token`):
- GET /v3/eventsessions/{eventsessionID} -> {"id", "name", "startsAt", ...}
- GET /v3/eventsessions/{eventsessionID}/participations?page&perPage -> [{id, name, secondName,
      email, userId, registerDate, additionalFieldValues: [{label, value}], visited, ...}]

It is a test double with a contract, not a mock of our own code: what it accepts and answers is
what the documentation says, and it refuses what the documentation does not allow (a date
range ahead of today, a CSV without its header, a wrong token), so the clients are checked
against the vendors' rules. `fail_downloads` makes the next part downloads fail with 500, to
test that an import resumes where it stopped; `fail_parts` fails the first download of those
part numbers.
"""

from __future__ import annotations

import csv
import io
import threading
import time
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import uvicorn
from fastapi import FastAPI, File, HTTPException, Request, UploadFile
from fastapi.responses import PlainTextResponse

Row = dict[str, str]
PREFIX = {"visits": "ym:s:", "hits": "ym:pv:"}
DATE_FIELD = {"visits": "ym:s:date", "hits": "ym:pv:date"}


@dataclass
class LogRequest:
    request_id: int
    counter_id: int
    source: str
    date1: str
    date2: str
    fields: list[str]
    status: str = "created"
    polls: int = 0
    parts: list[str] = field(default_factory=list)  # TSV text of each part

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"request_id": self.request_id, "counter_id": self.counter_id, "source": self.source,
                               "date1": self.date1, "date2": self.date2, "fields": self.fields,
                               "status": self.status, "attribution": "LASTSIGN"}
        if self.status == "processed":
            out["size"] = sum(len(p.encode()) for p in self.parts)
            out["parts"] = [{"part_number": n, "size": len(p.encode())} for n, p in enumerate(self.parts)]
        return out


@dataclass
class Loopback:
    """The vendors' data and what clients did to it (inspected by tests and the demo)."""

    metrica_token: str = "loopback-metrica-token"
    mtslink_token: str = "loopback-mtslink-token"
    counter_id: int = 44147844
    today: date = field(default_factory=date.today)
    rows: dict[str, list[Row]] = field(default_factory=lambda: {"visits": [], "hits": []})
    rows_per_part: int = 2
    polls_until_processed: int = 1
    fail_downloads: int = 0
    fail_parts: set[int] = field(default_factory=set)
    requests: dict[int, LogRequest] = field(default_factory=dict)
    uploads: list[dict[str, Any]] = field(default_factory=list)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    participations: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def created(self) -> int:
        return len(self.requests)


def create_app(state: Loopback) -> FastAPI:
    app = FastAPI(title="Vendor APIs loopback contract server")

    def metrica_auth(request: Request, counter_id: int) -> None:
        if request.headers.get("authorization") != f"OAuth {state.metrica_token}":
            raise HTTPException(403, {"errors": [{"error_type": "access_denied", "message": "Access is denied"}],
                                      "code": 403})
        if counter_id != state.counter_id:
            raise HTTPException(404, {"errors": [{"error_type": "not_found", "message": "Counter not found"}]})

    def params(request: Request) -> tuple[str, str, str, list[str]]:
        q = request.query_params
        missing = [k for k in ("date1", "date2", "fields", "source") if not q.get(k)]
        if missing:
            raise HTTPException(400, {"errors": [{"error_type": "invalid_parameter",
                                                  "message": f"Required parameter {missing[0]} is missing"}]})
        source, fields = q["source"], q["fields"].split(",")
        if source not in PREFIX or any(not f.startswith(PREFIX[source]) for f in fields):
            raise HTTPException(400, {"errors": [{"error_type": "invalid_parameter",
                                                  "message": f"Wrong fields for source {source}"}]})
        d1, d2 = date.fromisoformat(q["date1"]), date.fromisoformat(q["date2"])
        # The Logs API exports complete days only: date2 must be before today.
        if d1 > d2 or d2 >= state.today:
            raise HTTPException(400, {"errors": [{"error_type": "invalid_parameter",
                                                  "message": "date2 must be >= date1 and before today"}]})
        return q["date1"], q["date2"], source, fields

    @app.get("/management/v1/counter/{counter_id}/logrequests/evaluate")
    async def evaluate(counter_id: int, request: Request) -> dict:
        metrica_auth(request, counter_id)
        params(request)
        return {"log_request_evaluation": {"possible": True, "max_possible_day_quantity": 365}}

    @app.post("/management/v1/counter/{counter_id}/logrequests")
    async def create(counter_id: int, request: Request) -> dict:
        metrica_auth(request, counter_id)
        date1, date2, source, fields = params(request)
        with state.lock:
            rid = 7000 + len(state.requests) + 1
            selected = [r for r in state.rows[source] if date1 <= r[DATE_FIELD[source]] <= date2]
            parts = [selected[i:i + state.rows_per_part] for i in range(0, len(selected), state.rows_per_part)]
            tsv = ["\t".join(fields) + "\n" + "".join("\t".join(r.get(f, "") for f in fields) + "\n" for r in p)
                   for p in parts or [[]]]
            state.requests[rid] = LogRequest(rid, counter_id, source, date1, date2, fields, parts=tsv)
            return {"log_request": state.requests[rid].body()}

    def find(counter_id: int, request_id: int, request: Request) -> LogRequest:
        metrica_auth(request, counter_id)
        found = state.requests.get(request_id)
        if found is None:
            raise HTTPException(404, {"errors": [{"error_type": "not_found", "message": "Log request not found"}]})
        return found

    @app.get("/management/v1/counter/{counter_id}/logrequest/{request_id}")
    async def info(counter_id: int, request_id: int, request: Request) -> dict:
        found = find(counter_id, request_id, request)
        with state.lock:
            found.polls += 1
            if found.status == "created" and found.polls >= state.polls_until_processed:
                found.status = "processed"
        return {"log_request": found.body()}

    @app.get("/management/v1/counter/{counter_id}/logrequest/{request_id}/part/{part}/download")
    async def download(counter_id: int, request_id: int, part: int, request: Request) -> PlainTextResponse:
        found = find(counter_id, request_id, request)
        if found.status != "processed" or not 0 <= part < len(found.parts):
            raise HTTPException(400, {"errors": [{"error_type": "invalid_parameter", "message": "Part not ready"}]})
        with state.lock:
            if state.fail_downloads > 0 or part in state.fail_parts:
                state.fail_downloads = max(0, state.fail_downloads - 1)
                state.fail_parts.discard(part)
                raise HTTPException(500, {"errors": [{"error_type": "backend_error", "message": "Internal error"}]})
        return PlainTextResponse(found.parts[part], media_type="text/tab-separated-values")

    @app.post("/management/v1/counter/{counter_id}/logrequest/{request_id}/clean")
    async def clean(counter_id: int, request_id: int, request: Request) -> dict:
        found = find(counter_id, request_id, request)
        if found.status != "processed":
            raise HTTPException(400, {"errors": [{"error_type": "invalid_parameter", "message": "Not processed"}]})
        found.status = "cleaned_by_user"
        return {"log_request": found.body()}

    @app.post("/management/v1/counter/{counter_id}/offline_conversions/upload")
    async def upload(counter_id: int, request: Request, file: UploadFile = File(...)) -> dict:
        metrica_auth(request, counter_id)
        client_id_type = request.query_params.get("client_id_type", "CLIENT_ID")
        if client_id_type not in ("CLIENT_ID", "USER_ID", "YCLID", "PURCHASE_ID"):
            raise HTTPException(400, {"errors": [{"error_type": "invalid_parameter", "message": "client_id_type"}]})
        text = (await file.read()).decode("utf-8")
        reader = csv.DictReader(io.StringIO(text))
        id_column = {"CLIENT_ID": "ClientId", "USER_ID": "UserId"}.get(client_id_type, "ClientId")
        header = reader.fieldnames or []
        if id_column not in header or "Target" not in header or "DateTime" not in header:
            raise HTTPException(400, {"errors": [{"error_type": "invalid_upload",
                                                  "message": f"CSV header must have {id_column}, Target, DateTime"}]})
        lines = list(reader)
        now = int(time.time())
        # "DateTime can only be in the past" (Metrica's documentation).
        if any(not r["DateTime"].isdigit() or int(r["DateTime"]) > now for r in lines):
            raise HTTPException(400, {"errors": [{"error_type": "invalid_upload",
                                                  "message": "DateTime must be unix seconds in the past"}]})
        with state.lock:
            uploading = {"id": len(state.uploads) + 1, "source_quantity": len(lines), "line_quantity": len(lines),
                         "client_id_type": client_id_type, "status": "UPLOADED",
                         "comment": request.query_params.get("comment", "")}
            state.uploads.append({**uploading, "rows": lines})
        return {"uploading": uploading}

    def mtslink_auth(request: Request) -> None:
        if request.headers.get("x-auth-token") != state.mtslink_token:
            raise HTTPException(401, {"error": {"code": 401, "message": "Unauthorized"}})

    @app.get("/v3/eventsessions/{session_id}")
    async def session(session_id: str, request: Request) -> dict:
        mtslink_auth(request)
        if session_id not in state.sessions:
            raise HTTPException(404, {"error": {"code": 404, "message": "Event session not found"}})
        return state.sessions[session_id]

    @app.get("/v3/eventsessions/{session_id}/participations")
    async def participations(session_id: str, request: Request, page: int = 1, perPage: int = 50) -> list:
        mtslink_auth(request)
        if perPage not in (10, 50, 100, 250, 500):
            raise HTTPException(400, {"error": {"code": 400, "message": "perPage: 10, 50, 100, 250 or 500"}})
        rows = state.participations.get(session_id, [])
        return rows[(page - 1) * perPage: page * perPage]

    return app


class Served:
    """The app on a free loopback port in a background thread: `with Served(app) as url: ...`."""

    def __init__(self, app: FastAPI) -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
