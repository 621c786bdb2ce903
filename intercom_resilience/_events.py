"""Structured events: what the pipeline tells the application, through structlog.

The library logs; the application configures logging. When the application has configured
structlog, events go through its processors. When it has not, they go to the standard library's
``logging`` under the ``intercom_resilience`` logger instead of structlog's default printer, so an
application that configured nothing sees nothing for successful calls (per-attempt events are
``debug``; retries, stale serves, breaker transitions and alerts are ``warning``).

Events are the typed, frozen objects of :mod:`intercom_resilience.events`; hooks receive them as
they are, and the log gets their name and :meth:`~intercom_resilience.events.Event.fields`.
Every logged event passes :func:`redact` first: the pipeline never puts a token in an event, and
this is the second lock on that door.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

import structlog

from .events import Event

__all__ = ["LOGGER_NAME", "EventHook", "EventLog", "redact"]

LOGGER_NAME = "intercom_resilience"

#: A hook receives every event the library emits, as a typed, frozen object: ``hook(event)``.
EventHook = Callable[[Event], None]

_SENSITIVE_KEYS = frozenset({"authorization", "token", "access_token", "api_key", "secret"})
_BEARER = re.compile(r"(?i)bearer\s+\S+")

_stdlib_logger = logging.getLogger(LOGGER_NAME)
# A library never decides where its logs go: without this, Python's last-resort handler would
# print our warnings to stderr in applications that configured no logging at all.
_stdlib_logger.addHandler(logging.NullHandler())
_DEBUG = logging.DEBUG
_LEVELS: dict[str, int] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def redact(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: mask sensitive keys and any ``Bearer …`` value."""
    for key, value in list(event_dict.items()):
        if key.lower() in _SENSITIVE_KEYS:
            event_dict[key] = "[redacted]"
        elif isinstance(value, str) and "earer" in value:
            event_dict[key] = _BEARER.sub("Bearer [redacted]", value)
    return event_dict


class EventLog:
    """Emits the library's typed events to registered hooks and to structlog (or ``logging``).

    Args:
        hooks: callables that receive every :class:`~intercom_resilience.events.Event`
            (metrics exporters, tests).
        context: fields bound to every logged event of this client (the credentials fingerprint).
    """

    __slots__ = ("_context", "hooks")

    def __init__(
        self, hooks: list[EventHook] | None = None, context: Mapping[str, Any] | None = None
    ) -> None:
        self.hooks: list[EventHook] = list(hooks or [])
        self._context: dict[str, Any] = dict(context or {})

    def wants_debug(self) -> bool:
        """Would a debug event go anywhere (a hook, structlog, or ``logging`` at debug)? Hot
        paths skip building events nobody reads; every other level is built and emitted."""
        return bool(self.hooks) or structlog.is_configured() or _stdlib_logger.isEnabledFor(_DEBUG)

    def emit(self, event: Event) -> None:
        """Hand *event* to every hook, then log it at its level (when anything listens)."""
        for hook in self.hooks:
            try:
                hook(event)
            except Exception:  # a broken metrics hook must never break a call
                _stdlib_logger.exception("intercom_resilience event hook failed")
        level = event.level
        if structlog.is_configured():
            data = redact(None, level, {**self._context, **event.fields()})
            getattr(structlog.get_logger(LOGGER_NAME), level)(event.name.value, **data)
            return
        numeric = _LEVELS[level]
        if not _stdlib_logger.isEnabledFor(numeric):
            return  # the common case for successful calls: nothing to format
        data = redact(None, level, {**self._context, **event.fields()})
        rendered = " ".join(f"{k}={v!r}" for k, v in data.items())
        _stdlib_logger.log(
            numeric, "%s %s", event.name.value, rendered, extra={"event_fields": data}
        )
