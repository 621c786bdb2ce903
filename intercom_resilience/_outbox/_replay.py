"""Replaying one queued write, exactly once: a sans-I/O generator of requests.

The generator yields the requests to send (through the client's resilient transport: limiter,
breaker, reconciliation) and is sent back each response, or the exception the send raised. It
returns what to do with the entry. A write that an earlier replay may have sent (it was marked
*sent*, then the worker died) is never sent blindly: its row of the write-safety table says how
to find out (look its trace up, read the 409's id, take a DELETE's 404 as done); an
unresolvable one goes to the dead letters with the reason, for a person to check.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Generator, Mapping
from typing import Any

import httpx

from .._core.requests import classify
from .._core.status import meaning
from .._core.writes import (
    Resolution,
    WriteRule,
    conflict_id,
    find_trace,
    rule_for,
    trace_request,
)
from .._errors import (
    CircuitOpenError,
    DeadlineExceededError,
    IntercomDisabledError,
    OutcomeUnknownError,
    RateLimitedError,
)
from ._model import OutboxEntry

__all__ = ["REPLAY", "Dead", "Deferred", "Delivered", "Outcome", "replay"]

#: The request extension that marks a replay (never queued again by ``queue_when_unavailable``).
REPLAY = "intercom_resilience.outbox_replay"

#: Unavailability: the write was not sent; it waits for a later drain.
_LATER = (CircuitOpenError, IntercomDisabledError, RateLimitedError, DeadlineExceededError)


@dataclasses.dataclass(frozen=True, slots=True)
class Delivered:
    """Intercom has the write (``how``: ``sent``, ``resent``, ``conflict``, ``lookup``)."""

    how: str
    status: int | None
    request_id: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class Dead:
    """Into the dead letters: Intercom rejected it, or its outcome cannot be known."""

    error: str
    status: int | None
    request_id: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class Deferred:
    """Not now: Intercom is unavailable; try again on a later drain."""

    error: str


Outcome = Delivered | Dead | Deferred
Reply = httpx.Response | BaseException
Replay = Generator[httpx.Request, Reply, Outcome]


def _json(body: bytes) -> Mapping[str, Any] | None:
    try:
        value = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


def _request_id(response: httpx.Response) -> str | None:
    rid: str | None = response.headers.get("x-request-id")
    if rid:
        return rid
    try:
        body = response.json()
    except ValueError:
        return None
    value = body.get("request_id") if isinstance(body, dict) else None
    return value if isinstance(value, str) else None


def _errors(response: httpx.Response) -> str:
    """Intercom's error list as text (the first message), or the start of the body."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        return f"{first.get('code', '')}: {first.get('message', '')}".strip(": ")
    return response.text[:200]


def replay(
    entry: OutboxEntry,
    base_url: str,
    headers: Callable[[], Mapping[str, str]],
    now: Callable[[], float],
) -> Replay:
    """Replay *entry*; see the module's docstring.

    Args:
        base_url: the API's base URL.
        headers: the client's current headers (credentials included: they are never stored).
        now: the wall clock (the sent mark's time bounds a lookup).
    """
    kind = classify(entry.method, entry.path)
    rule = rule_for(kind.method, kind.template)
    body = _json(entry.body)
    resolution = rule.resolution_for(body) if rule is not None else Resolution.UNRESOLVABLE
    since = entry.first_sent_at if entry.first_sent_at is not None else now()

    def request(method: str, path: str, content: bytes = b"") -> httpx.Request:
        sent = {k: v for k, v in headers().items() if k.lower() != "content-type"}
        if content and entry.content_type:
            sent["content-type"] = entry.content_type
        return httpx.Request(
            method, base_url + path, headers=sent, content=content, extensions={REPLAY: True}
        )

    if entry.maybe_sent:
        if resolution is Resolution.UNRESOLVABLE:
            hint = rule.by_hand if rule is not None else "check the resource"
            return Dead(
                "an earlier replay was interrupted after sending it: its outcome is unknown and "
                f"this write has no safe way to find out; {hint}",
                entry.status,
                entry.request_id,
            )
        if resolution is Resolution.LOOKUP and rule is not None and body is not None:
            found = yield from _look_up(rule, entry, body, since, request)
            if isinstance(found, (Delivered, Deferred)):
                return found

    reply = yield request(entry.method, entry.path, entry.body)
    if isinstance(reply, BaseException):
        if isinstance(reply, OutcomeUnknownError):
            if resolution is Resolution.UNRESOLVABLE:
                return Dead(f"outcome unknown: {reply}", reply.status_code, reply.request_id)
            return Deferred(f"outcome unknown, reconciled on the next drain: {reply}")
        if isinstance(reply, (*_LATER, httpx.TransportError)):
            return Deferred(f"{type(reply).__name__}: {reply}")
        return Deferred(f"unexpected {type(reply).__name__}: {reply}")
    status = reply.status_code
    rid = _request_id(reply)
    if 200 <= status < 300:
        return Delivered("sent", status, rid)
    if entry.maybe_sent and rule is not None:
        if status == 409 and resolution is Resolution.CONFLICT:
            found = yield from _existing(rule, reply, since, request)
            if found is not None:
                return found
        if status == 404 and entry.method == "DELETE":
            return Delivered("resent", status, rid)
    means = meaning(status)
    if means.outage or means.rate_limited or status == 401:
        # Intercom unwell, quota, or credentials being fixed: not the write's fault.
        return Deferred(f"Intercom answered {status}: {_errors(reply)}")
    return Dead(f"Intercom rejected it: {status} {_errors(reply)}", status, rid)


def _look_up(
    rule: WriteRule,
    entry: OutboxEntry,
    body: Mapping[str, Any],
    since: float,
    request: Callable[..., httpx.Request],
) -> Generator[httpx.Request, Reply, Outcome | None]:
    trace = trace_request(rule, entry.path, body)
    if trace is None:
        return None
    query = "&".join(f"{k}={v}" for k, v in trace.params)
    found = yield request("GET", trace.path + (f"?{query}" if query else ""))
    if isinstance(found, BaseException):
        return Deferred(f"the lookup failed: {type(found).__name__}: {found}")
    if found.status_code == 200:
        try:
            payload = found.json()
        except ValueError:
            payload = None
        if find_trace(rule, body, since, payload) is not None:
            return Delivered("lookup", 200, _request_id(found))
        return None
    if found.status_code == 404:
        return None  # no parent: the write did not happen; sending it gives its real answer
    return Deferred(f"the lookup answered {found.status_code}")


def _existing(
    rule: WriteRule,
    conflict: httpx.Response,
    since: float,
    request: Callable[..., httpx.Request],
) -> Generator[httpx.Request, Reply, Outcome | None]:
    try:
        errors = conflict.json().get("errors") or []
    except (ValueError, AttributeError):
        return None
    existing = next(
        (
            conflict_id(e["message"])
            for e in errors
            if isinstance(e, dict) and isinstance(e.get("message"), str)
        ),
        None,
    )
    if existing is None or rule.fetch is None:
        return None
    fetched = yield request("GET", rule.fetch.format(id=existing))
    if isinstance(fetched, BaseException):
        return Deferred(f"fetching the existing object failed: {fetched}")
    if fetched.status_code != 200:
        return None
    try:
        created = fetched.json().get("created_at")
    except (ValueError, AttributeError):
        created = None
    if isinstance(created, int | float) and created < int(since):
        return None  # it existed before the first send: the 409 is the real answer
    return Delivered("conflict", 200, _request_id(fetched))
