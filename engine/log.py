"""Logging: loguru, human lines on stderr, or flat JSON lines with --log-json."""

from __future__ import annotations

import json
import sys
from typing import Any

from loguru import logger

from engine.progress import STATUS

_FIELDS = ("run_id", "client", "stage")


def _json_sink(message: Any) -> None:
    record = message.record
    line = {
        "time": record["time"].isoformat(),
        "level": record["level"].name,
        "message": record["message"],
    }
    extra = dict(record["extra"])
    for key in _FIELDS:
        line[key] = extra.pop(key, None)
    line.update({k: v for k, v in extra.items() if isinstance(v, str | int | float | bool)})
    sys.stderr.write(json.dumps(line, default=str) + "\n")


def setup(json_lines: bool = False, verbose: bool = False) -> None:
    logger.remove()
    level = "DEBUG" if verbose else "INFO"
    terminal = sys.stderr.isatty()
    STATUS.enabled = terminal and not json_lines  # progress only for a person watching
    if json_lines:
        logger.add(_json_sink, level=level)
    else:
        logger.add(STATUS.log, level=level, colorize=terminal,
                   format="<green>{time:HH:mm:ss}</green> <level>{level: <7}</level> "
                          "{extra[client]: <10} {message}")
    logger.configure(extra={"client": "-", "run_id": None, "stage": None})
