"""Structured logs (one JSON object a line, with the request id) and Prometheus metrics.

Nothing here ever receives a query string, a header value or a body: the request log names the
route template and the path only, so tokens in ``?token=`` and bearer keys never reach a log.
What other code logs — a message, its fields, a traceback — is redacted on the way out
(:func:`payhook.redaction.redact`): a library may put a URL with a key in its own errors.
"""

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from payhook.redaction import redact

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

_STANDARD_ATTRIBUTES = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
# One encoder for every line (json.dumps with an option builds a new one per call).
_line = json.JSONEncoder(default=str).encode


class RequestIdFilter(logging.Filter):
    """Stamps each record with the request being served when it was logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            current = request_id.get()
            if current is not None:
                record.request_id = current
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        entry.update({k: redact(v) if isinstance(v, str) else v
                      for k, v in vars(record).items() if k not in _STANDARD_ATTRIBUTES})
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack"] = redact(self.formatStack(record.stack_info))
        return _line(entry)


def configure_logging(level: str = "INFO") -> None:
    """Route every logger, uvicorn's included, through one JSON handler on stderr.

    uvicorn's own access log is silenced: it prints query strings. Requests
    are logged by :class:`payhook.api.middleware.Observe` instead.
    """
    # A line shows the formatter's fields only, never where the call was made or by which
    # thread or process: skip gathering those for every record (the logging HOWTO's
    # "Optimization"; the caller's file and line cost a walk up the stack).
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # httpx logs every URL it requests at INFO (a merchant's URL may carry its own secrets);
    # aiosqlite and SQLAlchemy log statement parameters at DEBUG.
    for chatty in ("httpx", "httpcore", "aiosqlite", "sqlalchemy.engine"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    access = logging.getLogger("uvicorn.access")
    access.handlers[:] = []
    access.propagate = False
    access.disabled = True


class Metrics:
    """The process's Prometheus instruments, in a registry of their own (one per app)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "payhook_http_requests", "HTTP requests by route, method and status",
            ["route", "method", "status"], registry=self.registry,
        )
        self.latency = Histogram(
            "payhook_http_request_duration_seconds", "HTTP request latency by route",
            ["route", "method"], registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self._labelled: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """One answered request. The instruments of each route, method and status are looked
        up once (``labels`` takes a lock and builds its key on every call)."""
        key = (route, method, status)
        instruments = self._labelled.get(key)
        if instruments is None:
            instruments = self._labelled[key] = (
                self.requests.labels(route, method, str(status)),
                self.latency.labels(route, method))
        instruments[0].inc()
        instruments[1].observe(seconds)
