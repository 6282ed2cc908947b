"""The package logger. ``PHYSICSML_LIKE_LOG_LEVEL=DEBUG`` shows, among others, each model's
structure before training. Nothing is configured at import: the handler is added the first time
the logger is asked for, and only when the variable is set."""

from __future__ import annotations

import logging
import os

__all__ = ["get_logger"]

_configured = False


def get_logger(name: str = "physicsml_like") -> logging.Logger:
    global _configured
    root = logging.getLogger("physicsml_like")
    if not _configured:
        _configured = True
        level = os.environ.get("PHYSICSML_LIKE_LOG_LEVEL")
        if level:
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
            root.addHandler(handler)
            root.setLevel(level.upper())
    return logging.getLogger(name)
