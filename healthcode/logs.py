"""One log format for the server: ours, uvicorn's (its access log included)
and the libraries' (alembic, SQLAlchemy, Litestar) all go through the root
logger's one handler.

Text (the default): ``2026-11-26T02:00:00.123Z INFO healthcode.api: message``,
the time in UTC, ISO 8601 with its zone. JSON lines (``--log-format json``,
``HEALTHCODE_LOG_FORMAT=json``): one object a line with ``time``, ``level``,
``logger`` and ``message``, plus ``http`` for access-log lines (client,
method, path, status) and any structured ``extra`` a line carries (e.g. the
day's ``rollover``).

Health checks (``/health/...``) stay out of the access log, and the access
log shows paths without their query strings. Alembic says only warnings:
``healthcode serve`` reports what it created or migrated itself.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import logging.config
from typing import Any, Literal

LOG_FORMAT_ENV = "HEALTHCODE_LOG_FORMAT"
LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")
SETUP_LOGGER = "healthcode.serve"
"""``healthcode serve``'s own lines (what it created, "serving on ..."): shown
at every log level, as a command's output is."""
QUIET_PREFIXES = ("/health/",)
"""Requests kept out of the access log: probes every few seconds."""

# Attributes every LogRecord has; anything else on a record came as ``extra``.
_RECORD_FIELDS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "color_message", "taskName"}
)


def utc_timestamp(created: float) -> str:
    """``2026-11-26T02:00:00.123Z``: ISO 8601, UTC, milliseconds."""
    moment = dt.datetime.fromtimestamp(created, dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class TextFormatter(logging.Formatter):
    """``<UTC time> <LEVEL> <logger>: <message>``, a traceback below when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line = (
            f"{utc_timestamp(record.created)} {record.levelname} {record.name}: "
            f"{record.getMessage()}"
        )
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ``time``, ``level``, ``logger``, ``message``,
    the ``extra`` fields of the record and ``exception`` when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": utc_timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def masked_client(client: object) -> str:
    """A client address as the log keeps it: an IPv4 address with its last
    octet zeroed, an IPv6 address cut to its /48, no port (enough to see a
    flood from one network, not enough to name a person's device)."""
    text = str(client)
    host = text.rsplit(":", 1)[0] if text.count(":") == 1 else text
    host = host.strip("[]")
    if host.count(".") == 3 and ":" not in host:
        return ".".join([*host.split(".")[:3], "0"])
    if ":" in host:
        groups = host.split("]")[0].split(":")
        return ":".join(groups[:3]) + "::/48"
    return host


class AccessLogFilter(logging.Filter):
    """uvicorn's access log: health checks dropped, query strings cut off
    (they are no business of a log), client addresses masked
    (:func:`masked_client`), and the request's parts in ``http``.

    uvicorn logs each request as ``'%s - "%s %s HTTP/%s" %d'`` with the
    client, method, path and query, HTTP version and status as arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if not isinstance(args, tuple) or len(args) != 5:
            return True
        client, method, target, version, status = args
        path = str(target).split("?", 1)[0]
        if path.startswith(QUIET_PREFIXES):
            return False
        client = masked_client(client)
        record.args = (client, method, path, version, status)
        record.__dict__["http"] = {
            "client": client,
            "method": method,
            "path": path,
            "status": status,
        }
        return True


def logging_config(fmt: LogFormat = "text", level: str = "info") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` dictionary (also uvicorn's ``log_config``,
    which every worker applies): one handler on stderr in ``fmt``."""
    formatter = JsonFormatter if fmt == "json" else TextFormatter
    passed_up = {"handlers": [], "propagate": True}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"healthcode": {"()": f"{__name__}.{formatter.__name__}"}},
        "filters": {"access": {"()": f"{__name__}.{AccessLogFilter.__name__}"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "healthcode",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": level.upper()},
        "loggers": {
            "uvicorn": {**passed_up, "level": level.upper()},
            "uvicorn.error": {**passed_up, "level": level.upper()},
            "uvicorn.access": {**passed_up, "level": level.upper(), "filters": ["access"]},
            "alembic": {**passed_up, "level": "WARNING"},
            "litestar": {**passed_up},
            SETUP_LOGGER: {**passed_up, "level": "INFO"},
        },
    }


def configure_logging(fmt: LogFormat = "text", level: str = "info") -> dict[str, Any]:
    """Configure this process's logging; returns the configuration, for uvicorn."""
    config = logging_config(fmt, level)
    logging.config.dictConfig(config)
    return config
