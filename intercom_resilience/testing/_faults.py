"""Scriptable, deterministic faults: what goes wrong between a client and Intercom.

A fault script is a list of rules. Each rule matches requests by method and path pattern (see
:mod:`._paths`) and fires a bounded number of times (``times``) or until a moment on the fake's
clock (``until``). Faults sit in front of the API, like the load balancers and networks they
imitate: they fire before authentication and rate limiting, do not spend quota and do not change
state, except :meth:`Faults.lose_response`, whose whole point is that the write happened.

Latency rules add up and never stop the request; of the other rules the first matching one wins.
"""

from __future__ import annotations

import enum
import random
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .._clock import Clock
from ._paths import PathPattern

__all__ = ["LOST_ANSWERS", "FaultAction", "FaultKind", "Faults"]


class FaultKind(enum.Enum):
    """The kinds of fault the fake can inject."""

    STATUS = "status"  # a JSON error.list with the given status
    GATEWAY = "gateway"  # an HTML error page from a gateway, 502/504, no request id
    CONNECT_ERROR = "connect_error"  # connection refused
    CONNECTION_RESET = "connection_reset"  # connection dropped before the response
    LOSE_RESPONSE = "lose_response"  # processed and committed, then the response is lost
    LATENCY = "latency"  # extra time before the answer


#: How a lost response ends for the client (:meth:`Faults.lose_response`'s ``how``): a read
#: timeout, a JSON 500 ``server_error`` (a crash after the commit), or a dropped connection.
LOST_ANSWERS: tuple[str, ...] = ("timeout", "500", "drop")

#: What :meth:`Faults.chaos` mixes by default: every failure a real network and gateway produce,
#: except the lost response, which changes state and is opted into with ``kinds=``.
CHAOS_KINDS: tuple[str, ...] = ("500", "503", "502-html", "504-html", "reset", "refused")


@dataclass(frozen=True, slots=True)
class FaultAction:
    """What the fault script decided for one request."""

    kind: FaultKind
    status: int = 0
    code: str | None = None
    message: str | None = None
    name: str = ""  # short label for the journal, e.g. "fail_next:503"
    lost: str = "timeout"  # LOSE_RESPONSE only: how the answer is lost (see LOST_ANSWERS)


@dataclass(slots=True)
class _Rule:
    action: FaultAction
    pattern: PathPattern
    methods: frozenset[str] | None
    remaining: int | None  # None: unlimited
    until: float | None  # clock.time() after which the rule is spent
    delay: float = 0.0

    def matches(self, method: str, path: str, now: float) -> bool:
        if self.until is not None and now >= self.until:
            return False
        if self.remaining is not None and self.remaining <= 0:
            return False
        if self.methods is not None and method not in self.methods:
            return False
        return self.pattern.matches(path)

    def spend(self) -> None:
        if self.remaining is not None:
            self.remaining -= 1


@dataclass(slots=True)
class _Chaos:
    rate: float
    rng: random.Random
    kinds: tuple[str, ...]
    pattern: PathPattern
    methods: frozenset[str] | None


def _methods(method: str | Iterable[str] | None) -> frozenset[str] | None:
    if method is None:
        return None
    if isinstance(method, str):
        return frozenset({method.upper()})
    return frozenset(m.upper() for m in method)


def _chaos_action(label: str) -> FaultAction:
    if label.endswith("-html"):
        return FaultAction(FaultKind.GATEWAY, status=int(label[:3]), name=f"chaos:{label}")
    if label.isdigit():
        return FaultAction(FaultKind.STATUS, status=int(label), name=f"chaos:{label}")
    if label in _CHAOS_LOST:
        return FaultAction(FaultKind.LOSE_RESPONSE, name=f"chaos:{label}", lost=_CHAOS_LOST[label])
    kinds = {"reset": FaultKind.CONNECTION_RESET, "refused": FaultKind.CONNECT_ERROR}
    if label not in kinds:
        raise ValueError(
            f"unknown chaos kind {label!r}; use a status like '503', "
            "'502-html', 'reset', 'refused', 'lose', 'lose-500' or 'lose-drop'"
        )
    return FaultAction(kinds[label], name=f"chaos:{label}")


#: The chaos labels of a lost response, and how each ends.
_CHAOS_LOST = {"lose": "timeout", "lose-500": "500", "lose-drop": "drop"}


class Faults:
    """The fault script of one fake: ``fake.faults``.

    Every method returns ``self`` so scripts can be chained, and takes ``path`` (a pattern such as
    ``"/contacts/*"`` or ``"/conversations/{id}/reply"``; ``None`` for every path) and ``method``
    (one method or several; ``None`` for all).
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._rules: list[_Rule] = []
        self._chaos: _Chaos | None = None
        self._lock = threading.Lock()

    def _add(
        self,
        action: FaultAction,
        *,
        path: str | None,
        method: str | Iterable[str] | None,
        times: int | None,
        seconds: float | None = None,
        delay: float = 0.0,
    ) -> Faults:
        if times is not None and times < 0:
            raise ValueError(f"times must be >= 0, got {times!r}")
        until = None if seconds is None else self._clock.time() + seconds
        rule = _Rule(action, PathPattern(path), _methods(method), times, until, delay)
        with self._lock:
            self._rules.append(rule)
        return self

    def fail_next(
        self,
        n: int = 1,
        *,
        status: int = 503,
        path: str | None = None,
        method: str | Iterable[str] | None = None,
        code: str | None = None,
        message: str | None = None,
    ) -> Faults:
        """Answer the next *n* matching requests with *status* and an Intercom ``error.list``.

        A 429 carries the rate-limit headers (remaining 0, reset at the end of the window).
        """
        if not 400 <= status <= 599:
            raise ValueError(f"status must be an HTTP error status, got {status!r}")
        action = FaultAction(FaultKind.STATUS, status, code, message, f"fail_next:{status}")
        return self._add(action, path=path, method=method, times=n)

    def gateway_error(
        self,
        n: int = 1,
        *,
        status: int = 502,
        path: str | None = None,
        method: str | Iterable[str] | None = None,
    ) -> Faults:
        """Answer the next *n* matching requests with a gateway's HTML page (``text/html``)."""
        action = FaultAction(FaultKind.GATEWAY, status, name=f"gateway:{status}")
        return self._add(action, path=path, method=method, times=n)

    def refuse_connections(
        self, n: int = 1, *, path: str | None = None, method: str | Iterable[str] | None = None
    ) -> Faults:
        """Refuse the next *n* matching connections (``httpx.ConnectError``)."""
        action = FaultAction(FaultKind.CONNECT_ERROR, name="refused")
        return self._add(action, path=path, method=method, times=n)

    def reset_connections(
        self, n: int = 1, *, path: str | None = None, method: str | Iterable[str] | None = None
    ) -> Faults:
        """Drop the next *n* matching connections before any response (``RemoteProtocolError``).

        The request is not processed: nothing changes on the fake.
        """
        action = FaultAction(FaultKind.CONNECTION_RESET, name="reset")
        return self._add(action, path=path, method=method, times=n)

    def lose_response(
        self,
        *,
        path: str | None = None,
        method: str | Iterable[str] | None = "POST",
        times: int = 1,
        how: str = "timeout",
    ) -> Faults:
        """Process the next *times* matching requests, commit them, then lose the answer.

        *how* the answer is lost:

        * ``"timeout"``: never answered; in process the client gets ``httpx.ReadTimeout``
          after waiting its read timeout on the fake's clock;
        * ``"500"``: a JSON 500 ``server_error`` (Intercom crashing after the commit), with a
          request id of its own, not the committed request's;
        * ``"drop"``: the connection drops once the request was sent
          (``httpx.RemoteProtocolError``).

        Either way the journal shows the request as processed (its real status and request id,
        ``changed_state=True`` for a write) with ``fault`` naming the loss.
        """
        if how not in LOST_ANSWERS:
            raise ValueError(f"how must be one of {', '.join(LOST_ANSWERS)}, got {how!r}")
        name = "lose_response" if how == "timeout" else f"lose_response:{how}"
        action = FaultAction(FaultKind.LOSE_RESPONSE, name=name, lost=how)
        return self._add(action, path=path, method=method, times=times)

    def latency(
        self,
        seconds: float,
        *,
        path: str | None = None,
        method: str | Iterable[str] | None = None,
        times: int | None = None,
    ) -> Faults:
        """Delay matching responses by *seconds* on the fake's clock (``times=None``: forever).

        If the delay exceeds the client's read timeout, the client gets ``httpx.ReadTimeout``
        after its timeout, and a write was nevertheless processed.
        """
        if seconds < 0:
            raise ValueError(f"latency must be >= 0, got {seconds!r}")
        action = FaultAction(FaultKind.LATENCY, name=f"latency:{seconds:g}s")
        return self._add(action, path=path, method=method, times=times, delay=seconds)

    def outage(
        self,
        seconds: float,
        *,
        status: int = 503,
        refuse: bool = False,
        path: str | None = None,
        method: str | Iterable[str] | None = None,
    ) -> Faults:
        """A full outage for *seconds* on the fake's clock, starting now.

        Every matching request gets *status* (``service_unavailable``) or, with ``refuse=True``,
        a refused connection, until the clock passes the end of the outage.
        """
        if seconds <= 0:
            raise ValueError(f"outage seconds must be > 0, got {seconds!r}")
        if refuse:
            action = FaultAction(FaultKind.CONNECT_ERROR, name="outage:refused")
        else:
            action = FaultAction(FaultKind.STATUS, status, name=f"outage:{status}")
        return self._add(action, path=path, method=method, times=None, seconds=seconds)

    def chaos(
        self,
        rate: float,
        *,
        seed: int = 0,
        kinds: Sequence[str] = CHAOS_KINDS,
        path: str | None = None,
        method: str | Iterable[str] | None = None,
    ) -> Faults:
        """Fail a seeded random fraction *rate* of matching requests with a mix of faults.

        The same seed and the same request sequence give the same faults. *kinds* are labels:
        an error status (``"500"``, ``"503"``, ``"429"``), a gateway page (``"502-html"``,
        ``"504-html"``), ``"reset"``, ``"refused"``, or a lost response (processed and
        committed first, see :meth:`lose_response`): ``"lose"`` (read timeout), ``"lose-500"``
        (a 500 after the commit) or ``"lose-drop"`` (dropped after the send). A label given
        several times is drawn that much more often.
        """
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"chaos rate must be within [0, 1], got {rate!r}")
        labels = tuple(kinds)
        if not labels:
            raise ValueError("chaos needs at least one kind")
        for label in labels:
            _chaos_action(label)  # validate now, not on the first unlucky request
        with self._lock:
            self._chaos = _Chaos(
                rate, random.Random(seed), labels, PathPattern(path), _methods(method)
            )
        return self

    def clear(self) -> Faults:
        """Remove every rule and stop chaos."""
        with self._lock:
            self._rules.clear()
            self._chaos = None
        return self

    @property
    def active(self) -> bool:
        """Whether any rule could still fire."""
        now = self._clock.time()
        with self._lock:
            live = [
                r
                for r in self._rules
                if (r.remaining is None or r.remaining > 0) and (r.until is None or now < r.until)
            ]
            return bool(live) or self._chaos is not None

    def decide(self, method: str, path: str, now: float) -> tuple[FaultAction | None, float]:
        """The fault (if any) and the extra latency for one request; spends the rules it uses."""
        if not self._rules and self._chaos is None:
            return None, 0.0  # the common case, kept cheap for throughput
        delay = 0.0
        chosen: FaultAction | None = None
        with self._lock:
            for rule in self._rules:
                if not rule.matches(method, path, now):
                    continue
                if rule.action.kind is FaultKind.LATENCY:
                    rule.spend()
                    delay += rule.delay
                elif chosen is None:
                    rule.spend()
                    chosen = rule.action
            chaos = self._chaos
            if (
                chosen is None
                and chaos is not None
                and (chaos.methods is None or method in chaos.methods)
                and chaos.pattern.matches(path)
                and chaos.rng.random() < chaos.rate
            ):
                chosen = _chaos_action(chaos.rng.choice(chaos.kinds))
            # Spent rules are dropped so long scripts do not slow every request down.
            self._rules = [
                r
                for r in self._rules
                if (r.remaining is None or r.remaining > 0) and (r.until is None or now < r.until)
            ]
        return chosen, delay

    def __repr__(self) -> str:
        return f"Faults({len(self._rules)} rules, chaos={'on' if self._chaos else 'off'})"
