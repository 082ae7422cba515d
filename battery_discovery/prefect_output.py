"""How Prefect's console output ends a command: our own errors as their one line, without tracebacks."""

from __future__ import annotations

import logging

from core.errors import DiscoveryError


class _DropOwnTracebacks(logging.Filter):
    """Our own errors (a store that stays away, a bad input) end a run with one line of their own: Prefect's log
    of the failed task and flow keeps its message but not the traceback (a lost store gave six)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, DiscoveryError):
            record.exc_info, record.exc_text = None, None
        return True


def one_line_errors() -> None:
    """Install :class:`_DropOwnTracebacks` on Prefect's log handlers (once)."""
    for logger in (logging.getLogger("prefect"), logging.getLogger()):
        for handler in logger.handlers:
            if not any(isinstance(f, _DropOwnTracebacks) for f in handler.filters):
                handler.addFilter(_DropOwnTracebacks())
