"""JSON log lines (structlog) with ``service``, ``process``, ``trace_id`` and ``event_id``."""

from __future__ import annotations

import logging
import logging.config
from typing import Any

import structlog

_IDENTITY: dict[str, str] = {}


def _identity(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    """``service`` and ``process`` on every line, from any thread (faust's consumer has its own)."""
    for key, value in _IDENTITY.items():
        event.setdefault(key, value)
    return event


_SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    _identity,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def json_formatter() -> logging.Formatter:
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_SHARED,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
    )


def dict_config(level: str = "INFO") -> dict[str, Any]:
    """Every stdlib log line as JSON on stdout, as a ``dictConfig`` (faust's worker wants one)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": json_formatter}},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stdout",
            }
        },
        "root": {"level": level, "handlers": ["default"]},
        "loggers": {name: {"level": "WARNING"} for name in ("kafka", "aiokafka", "uvicorn.access")},
    }


def configure(service: str, process: str, level: str = "INFO") -> None:
    structlog.configure(
        processors=[*_SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    _IDENTITY.update(service=service, process=process)
    logging.config.dictConfig(dict_config(level))
