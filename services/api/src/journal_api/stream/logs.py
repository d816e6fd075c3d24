"""Log lines for people (``text``) or for log pipelines (``json``), with no query string in any request path
(docs/50_OPERATIONS.md#logs)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

__all__ = ["FIELDS", "LogFormat", "NoQueryStrings", "log_config"]

LogFormat = Literal["text", "json"]

FIELDS = "journal"
"""The ``extra`` key under which a log call passes structured fields: ``log.info("…", extra={FIELDS: {...}})``."""


def _when(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields: dict[str, Any] = getattr(record, FIELDS, {})
    return fields


class TextFormatter(logging.Formatter):
    """``2026-11-26T09:14:03.120Z INFO journal_api.ws: session closed session=… code=1000 …``"""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_when(record)} {record.levelname} {record.name}: {record.getMessage()}"
        fields = " ".join(f"{name}={orjson.dumps(value).decode()}" for name, value in _fields(record).items())
        if fields:
            line = f"{line} {fields}"
        if record.exc_info:
            line = f"{line}\n{self.formatException(record.exc_info)}"
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``message``, the record's fields, ``error``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": _when(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **_fields(record),
        }
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class NoQueryStrings(logging.Filter):
    """Cuts the query string out of the request paths uvicorn logs (``/ws?token=…`` becomes ``/ws?...``): the
    protocol keeps tokens out of URLs, and a client that puts one there anyway must not leave it in a log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.name.startswith("uvicorn"):
            record.args = tuple(_cut(arg) for arg in record.args)
        return True


def _cut(arg: object) -> object:
    # Any argument with a "?": a request target may be origin-form (/ws?…) or absolute-form (http://h/ws?…).
    if isinstance(arg, str) and "?" in arg:
        return arg.partition("?")[0] + "?..."
    return arg


def log_config(log_format: LogFormat, level: str = "INFO") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for uvicorn's ``log_config``: uvicorn's loggers and the journal's, one format,
    to stderr."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"no_query_strings": {"()": NoQueryStrings}},
        "formatters": {"line": {"()": JsonFormatter if log_format == "json" else TextFormatter}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "line",
                "filters": ["no_query_strings"],
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},  # uvicorn's own lines, and its WebSocket lines
            "uvicorn.access": {"level": level},
            # Propagates too: with no handler on the root logger (the default) nothing is printed twice, and a host
            # program's root handlers (pytest's caplog among them) see the journal's lines.
            "journal_api": {"handlers": ["stderr"], "level": level},
        },
    }
