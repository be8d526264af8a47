"""genrec's HTTP server for a registered model (`genrec serve`): SPEC's request and response shapes
(MLflow's `dataframe_records` / `dataframe_split` and `params`), with limits.

A request is checked before anything is scored: a body, record count or history over the limits of
`ServingConfig` is 413, a wrong type (ids are strings or numbers) or a `k` out of range is 400, each
answered with one line that names the field and never echoes the request or a server path. Records
are scored `batch_rows` at a time, so a request's memory is bounded by the batch, not by its size.

The server follows the alias: every `reload_seconds` it reads where `champion` points and, when it
moved, loads that version and answers with it from then on (a version that cannot be loaded is
logged and the one being served stays). `/version` says which version answers; `/metrics` has
request counts and latencies in Prometheus' format.
"""

from __future__ import annotations

import io
import json
import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import pandas as pd
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.concurrency import run_in_threadpool

from genrec.config import ServingConfig

log = logging.getLogger(__name__)
requests_log = logging.getLogger("genrec.server.requests")


class Rejected(Exception):
    """A request answered with a 4xx: its status and a one-line reason."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Served:
    """What the server answers with: the model and which registered version it is."""

    model: Any
    """A `genrec.serving.ServingModel`."""
    model_name: str
    version: str
    alias: str = "champion"


def _id(value: Any, what: str) -> str:
    """An id as SPEC's string: strings as they are, numbers without a spurious `.0`."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Rejected(400, f"{what} must be a string or a number, got {_type(value)}.")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise Rejected(400, f"{what} must be a finite number.")
        if value.is_integer():
            return str(int(value))
    return str(value)


def _type(value: Any) -> str:
    return {dict: "an object", list: "a list", bool: "a boolean", type(None): "null"}.get(type(value), type(value).__name__)


def parse_k(params: Any, limits: ServingConfig) -> int:
    if params is None:
        return 10
    if not isinstance(params, dict):
        raise Rejected(400, f"params must be an object, got {_type(params)}.")
    k = params.get("k", 10)
    if isinstance(k, float) and k.is_integer():
        k = int(k)
    if isinstance(k, bool) or not isinstance(k, int):
        raise Rejected(400, f"params.k must be an integer, got {_type(k)}.")
    if not 1 <= k <= limits.max_k:
        raise Rejected(400, f"params.k must be between 1 and {limits.max_k}, got {k}.")
    return k


def parse_records(records: Any, limits: ServingConfig) -> pd.DataFrame:
    """The request frame (`user_id`, `history` as lists of string ids) from JSON records."""
    if not isinstance(records, list):
        raise Rejected(400, f"dataframe_records must be a list of records, got {_type(records)}.")
    if len(records) > limits.max_records:
        raise Rejected(413, f"{len(records)} records in one request; the limit is {limits.max_records}.")
    users, histories = [], []
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise Rejected(400, f"record {i} must be an object, got {_type(record)}.")
        unknown = set(record) - {"user_id", "history"}
        if unknown:
            raise Rejected(400, f"record {i} has fields other than user_id and history ({len(unknown)} of them).")
        user = record.get("user_id")
        history = record.get("history")
        if user is None and history is None:
            raise Rejected(400, f"record {i} needs a user_id or a history.")
        if history is None:
            history = []
        if not isinstance(history, list):
            raise Rejected(400, f"record {i}: history must be a list of item ids, got {_type(history)}.")
        if len(history) > limits.max_history:
            raise Rejected(413, f"record {i}: a history of {len(history)} items; the limit is {limits.max_history}.")
        users.append("" if user is None else _id(user, f"record {i}: user_id"))
        histories.append([_id(item, f"record {i}: history item {j}") for j, item in enumerate(history)])
    return pd.DataFrame({"user_id": users, "history": histories})


def parse_body(body: bytes, content_type: str, limits: ServingConfig) -> tuple[pd.DataFrame, int]:
    """The request frame and k of one `/invocations` body."""
    mime = content_type.split(";")[0].strip().lower() or "application/json"
    if mime == "text/csv":
        try:
            frame = pd.read_csv(io.BytesIO(body), dtype=str, keep_default_na=False, nrows=limits.max_records + 1)
        except (ValueError, UnicodeDecodeError, pd.errors.ParserError):
            raise Rejected(400, "the body is not CSV with a header row.") from None
        if not {"user_id", "history"} & set(frame.columns):
            raise Rejected(400, "the CSV needs a user_id or a history column.")
        records = [{key: (value.split(",") if key == "history" and value else value or None)
                    for key, value in row.items() if key in ("user_id", "history")} for row in frame.to_dict("records")]
        return parse_records(records, limits), 10
    if mime != "application/json":
        raise Rejected(415, "the body must be application/json or text/csv.")
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise Rejected(400, "the body is not valid JSON.") from None
    if not isinstance(payload, dict):
        raise Rejected(400, f"the body must be a JSON object, got {_type(payload)}.")
    k = parse_k(payload.get("params"), limits)
    if "dataframe_records" in payload:
        return parse_records(payload["dataframe_records"], limits), k
    if "dataframe_split" in payload:
        split = payload["dataframe_split"]
        if not isinstance(split, dict) or not isinstance(split.get("columns"), list) \
                or not isinstance(split.get("data"), list):
            raise Rejected(400, "dataframe_split must be an object with 'columns' and 'data' lists.")
        columns = split["columns"]
        if len(split["data"]) > limits.max_records:
            raise Rejected(413, f"{len(split['data'])} records in one request; the limit is {limits.max_records}.")
        rows = []
        for i, row in enumerate(split["data"]):
            if not isinstance(row, list) or len(row) != len(columns):
                raise Rejected(400, f"dataframe_split row {i} must be a list of {len(columns)} values.")
            rows.append(dict(zip(columns, row)))
        return parse_records(rows, limits), k
    raise Rejected(400, "the body needs 'dataframe_records' or 'dataframe_split'.")


def answer(served: Served, frame: pd.DataFrame, k: int, limits: ServingConfig) -> list[dict[str, Any]]:
    """SPEC's predictions for `frame`, scored `limits.batch_rows` records at a time."""
    out = served.model.predict(frame, k=k, batch_rows=limits.batch_rows)
    return [{"user_id": row.user_id, "items": row.items, "scores": row.scores, "names": row.names,
             "fallback": row.fallback} for row in out.itertuples(index=False)]


class Following:
    """The version being served, swapped for the alias's new target when `champion` moves.

    `resolve` says which version the alias points at, `load` loads one; both are the registry's in
    `genrec serve` and plain functions in tests."""

    def __init__(self, served: Served, resolve: Callable[[], str | None], load: Callable[[str], Any], every: float):
        self.current = served
        self.reloads = 0
        self._resolve, self._load, self._every = resolve, load, every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self) -> bool:
        """Load the alias's target if it moved; True when the served version changed."""
        target = self._resolve()
        if target is None or target == self.current.version:
            return False
        try:
            model = self._load(target)
        except Exception as exc:  # noqa: BLE001 - keep answering with the version that works
            log.error("champion moved to version %s, which cannot be loaded (%s); still serving version %s",
                      target, exc, self.current.version)
            return False
        before, self.current = self.current, Served(model, self.current.model_name, target, self.current.alias)
        self.reloads += 1
        log.warning("champion moved: now serving version %s (was %s)", target, before.version)
        return True

    def _poll(self) -> None:
        while not self._stop.wait(self._every):
            try:
                self.check()
            except Exception as exc:  # noqa: BLE001 - a registry that does not answer now may later
                log.error("could not read where champion points: %s", exc)

    def start(self) -> None:
        if self._every > 0 and self._thread is None:
            self._thread = threading.Thread(target=self._poll, name="genrec-follow-champion", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()


class Metrics:
    """Prometheus metrics of one server (its own collector registry, so two apps never share counts)."""

    def __init__(self, following: Following):
        self.registry = CollectorRegistry()
        self.requests = Counter("genrec_requests", "Requests to /invocations, by HTTP status.", ["status"],
                                registry=self.registry)
        self.records = Counter("genrec_records", "Records answered (users or histories).", registry=self.registry)
        self.latency = Histogram("genrec_request_seconds", "Time to answer a request to /invocations.",
                                 registry=self.registry,
                                 buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10))
        Gauge("genrec_model_version", "The registered version being served.", registry=self.registry).set_function(
            lambda: float(following.current.version) if following.current.version.isdigit() else math.nan)
        Gauge("genrec_reloads", "Times the server switched to the version champion moved to.",
              registry=self.registry).set_function(lambda: following.reloads)


def create_app(source: Served | Following, limits: ServingConfig):
    """The ASGI app: `/ping` and `/health`, `/version`, `/metrics`, `POST /invocations`. `source`: a
    fixed version, or one that follows the alias."""
    from genrec.wheel import version as genrec_version

    following = source if isinstance(source, Following) else Following(source, lambda: None, lambda v: None, every=0)
    metrics = Metrics(following)
    app = FastAPI(title="genrec", docs_url=None, redoc_url=None, openapi_url=None)

    def error(status: int, reason: str) -> JSONResponse:
        code = {400: "BAD_REQUEST", 413: "REQUEST_TOO_LARGE", 415: "UNSUPPORTED_MEDIA_TYPE"}.get(status, "INTERNAL_ERROR")
        return JSONResponse({"error_code": code, "message": reason}, status_code=status)

    @app.get("/ping")
    @app.get("/health")
    async def ping():
        return Response("\n", media_type="application/json")

    @app.get("/version")
    async def version():
        served = following.current
        return {"model_name": served.model_name, "version": served.version, "alias": served.alias,
                "model_family": served.model.model_family, "data_fingerprint": served.model.data_fingerprint,
                "genrec": genrec_version()}

    @app.get("/metrics")
    async def prometheus():
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def respond(request: Request) -> tuple[JSONResponse | dict, pd.DataFrame | None, Served]:
        served = following.current  # one version answers the whole request, whatever moves meanwhile
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limits.max_body_bytes:
            return error(413, f"a body of {int(declared)} bytes; the limit is {limits.max_body_bytes}."), None, served
        body = bytearray()
        async for chunk in request.stream():  # a body without a length is cut off at the limit too
            body.extend(chunk)
            if len(body) > limits.max_body_bytes:
                return error(413, f"a body over {limits.max_body_bytes} bytes, the limit."), None, served
        try:
            frame, k = parse_body(bytes(body), request.headers.get("content-type", ""), limits)
            return {"predictions": await run_in_threadpool(answer, served, frame, k, limits)}, frame, served
        except Rejected as exc:
            return error(exc.status, exc.reason), None, served
        except Exception:  # noqa: BLE001 - the server's log gets the traceback, the client one line
            log.exception("scoring a request failed")
            return error(500, "the model failed to answer this request; the server's log has the details."), None, served

    @app.post("/invocations")
    async def invocations(request: Request):
        start = time.perf_counter()
        result, frame, served = await respond(request)
        seconds = time.perf_counter() - start
        status = result.status_code if isinstance(result, Response) else 200
        metrics.requests.labels(str(status)).inc()
        metrics.latency.observe(seconds)
        if frame is not None:
            metrics.records.inc(len(frame))
        if limits.log_requests:
            entry = {"status": status, "seconds": round(seconds, 4), "version": served.version}
            if frame is not None:
                entry |= {"records": frame.to_dict("records"), "predictions": result["predictions"]}
            else:
                entry["error"] = json.loads(result.body)["message"]
            requests_log.info(json.dumps(entry, default=str))
        return result

    return app


def serve(source: Served | Following, limits: ServingConfig, host: str, port: int) -> None:
    """Answer on host:port until interrupted."""
    import uvicorn

    if limits.log_requests:
        requests_log.setLevel(logging.INFO)
    if isinstance(source, Following):
        source.start()
    try:
        uvicorn.run(create_app(source, limits), host=host, port=port, log_level="warning", access_log=False)
    finally:
        if isinstance(source, Following):
            source.stop()
