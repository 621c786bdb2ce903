"""Receive Intercom webhooks: verified, deduplicated, acknowledged at once, handled off the request.

A :class:`WebhookReceiver` is an ASGI application (route it in Starlette or FastAPI, or serve it
alone with uvicorn) and, for other frameworks, two plain methods (:meth:`WebhookReceiver.receive`
and its async twin). Build it from a client, so that what it sees reaches the client's health and
alerts and its kill switch defers deliveries::

    from intercom_resilience.webhooks import Notification

    def on_notification(notification: Notification) -> None:
        print(notification.topic, notification.item)

    receiver = client.webhook_receiver(secret=CLIENT_SECRET, handler=on_notification)
    app.add_route("/hooks/intercom", receiver)      # Starlette / FastAPI

Each delivery is answered in this order, and the handler only ever sees what passed every step:

====================================================  ======  ================================
the delivery                                          answer  counted as
====================================================  ======  ================================
not a ``POST``                                        405     ``rejected`` (``method``)
body larger than ``max_body_bytes``                   413     ``rejected`` (``too_large``)
empty body                                            400     ``rejected`` (``empty``)
``X-Hub-Signature`` missing, or not the HMAC-SHA1    401     ``rejected`` (``signature_*``):
of this body with the secret; malformed               400     the P3 ``webhook_signature``
not JSON, not an object, no ``id`` or ``topic``       400     ``rejected`` (``not_json``,
                                                              ``invalid``)
a ``ping``                                            200     ``received`` (never queued)
``created_at`` older than ``max_age``                 200     ``rejected`` (``stale``): never
                                                              handled, and not redelivered
the kill switch is on (``client.disable()``)          503     ``deferred`` (``disabled``)
the handler queue is full                             429     ``deferred`` (``queue_full``)
a notification ``id`` seen before                     200     ``duplicate``
anything else                                         200     ``received``: queued for the
                                                              handler
====================================================  ======  ================================

A 503 or 429 makes Intercom hold the notification and deliver it again later (429s throttle the
subscription, from one minute up to two hours), so nothing is lost while the integration is off or
the handler is behind. Intercom pauses a subscription after 1,000 consecutive error answers in
15 minutes and suspends it after seven days of errors (private apps): the P3
``webhook_refused`` alert fires well before either (``AlertPolicy.webhook_error_streak``,
``AlertPolicy.webhook_error_streak_s``). See ``docs/webhooks.md``.

The answer is sent before the handler runs: Intercom prioritises endpoints that answer within
500 ms, and a handler that calls Intercom back (or anything slow) must not hold the
acknowledgement. The queue is in memory and bounded (``queue_size``): a notification that was
acknowledged and not yet handled when the process dies is lost, so a handler that must never lose
one should hand it to durable storage first.

Replays: notification ids are remembered for ``max_age`` seconds (a bounded
:class:`MemoryReplayStore` by default; a :class:`RedisReplayStore` shares them across a fleet), and
a notification created longer ago than that is never handled, so an old signed body sent again is
acknowledged and dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import json
import logging
import math
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any, Final, Protocol, runtime_checkable

from ._clock import Clock, SystemClock
from ._events import LOGGER_NAME, EventHook, EventLog
from ._webhooks import (
    SIGNATURE_HEADER,
    SignatureCheck,
    check_webhook_signature,
    verify_webhook_signature,
    webhook_signature,
)
from .events import (
    Event,
    WebhookDeferred,
    WebhookDuplicate,
    WebhookHandled,
    WebhookHandlerFailed,
    WebhookReceived,
    WebhookRejected,
)

if TYPE_CHECKING:
    from ._backends._redis import RedisLink
    from ._pipeline import Pipeline

__all__ = [
    "DEFAULT_MAX_AGE",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_QUEUE_SIZE",
    "Handler",
    "MemoryReplayStore",
    "Notification",
    "RedisReplayStore",
    "ReplayStore",
    "SIGNATURE_HEADER",
    "SignatureCheck",
    "WebhookAnswer",
    "WebhookReceiver",
    "check_webhook_signature",
    "verify_webhook_signature",
    "webhook_signature",
]

#: The largest body read, in bytes; a larger one is answered 413 without being read further.
DEFAULT_MAX_BODY_BYTES: Final = 1024 * 1024
#: Seconds a notification id is remembered, and the age past which a notification is stale.
DEFAULT_MAX_AGE: Final = 24 * 3600.0
#: Notifications that may wait for the handler; one more is answered 429.
DEFAULT_QUEUE_SIZE: Final = 1000

_MAX_FIELD = 256  # ids and topics are short; a long one is not Intercom's
_SIGNATURE_KEY = SIGNATURE_HEADER.lower().encode("ascii")
_REDELIVER_AFTER = b"60"  # Intercom's first retry is a minute away anyway

_logger = logging.getLogger(f"{LOGGER_NAME}.webhooks")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@dataclasses.dataclass(frozen=True, slots=True)
class Notification:
    """One webhook notification, as the handler receives it.

    Attributes:
        id: Intercom's notification id (``notif_…``): the same on every redelivery.
        topic: what happened (``conversation.user.created``, ``contact.user.created``, …).
        app_id: the workspace the notification is about, when given.
        created_at: Unix time Intercom created it (``None`` when absent).
        received_at: Unix time this process received it.
        delivery_attempts: Intercom's count of attempts, this one included, when given.
        data: the notification's ``data`` object (its ``item`` is the Intercom object).
        payload: the whole notification, as parsed from the signed body.
    """

    id: str
    topic: str
    app_id: str | None
    created_at: float | None
    received_at: float
    delivery_attempts: int | None
    data: Mapping[str, Any]
    payload: Mapping[str, Any] = dataclasses.field(repr=False)

    @property
    def item(self) -> Any:
        """The Intercom object the notification is about (``data["item"]``), or ``None``."""
        return self.data.get("item")

    @property
    def delay(self) -> float | None:
        """Seconds from ``created_at`` to receipt (``None`` without ``created_at``; never < 0)."""
        if self.created_at is None:
            return None
        return max(0.0, self.received_at - self.created_at)


#: What the receiver calls with each notification: a function or a coroutine function.
Handler = Callable[[Notification], Any]


@dataclasses.dataclass(frozen=True, slots=True)
class WebhookAnswer:
    """The receiver's answer to one delivery, for frameworks that are not ASGI.

    Attributes:
        status: the HTTP status to answer with.
        outcome: ``received``, ``duplicate``, ``rejected`` or ``deferred``.
        reason: why (``accepted``, ``ping``, ``stale``, ``signature_mismatch``, ``disabled``, …).
        headers: the headers to send (``content-type``; ``retry-after`` on 503 and 429).
        body: the JSON body to send (``{"status": outcome, "reason": reason}``).
    """

    status: int
    outcome: str
    reason: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    @property
    def accepted(self) -> bool:
        """Whether Intercom is done with the delivery (a 2xx answer)."""
        return 200 <= self.status < 300


def _answer(status: int, outcome: str, reason: str) -> WebhookAnswer:
    headers: tuple[tuple[str, str], ...] = (("content-type", "application/json"),)
    if status in (429, 503):
        headers += (("retry-after", _REDELIVER_AFTER.decode()),)
    body = json.dumps({"status": outcome, "reason": reason}, separators=(",", ":")).encode()
    return WebhookAnswer(status, outcome, reason, headers, body)


# ----------------------------------------------------------------------------- replay stores


@runtime_checkable
class ReplayStore(Protocol):
    """Where the receiver remembers the notification ids it has taken in.

    ``claim`` is atomic: of two deliveries of one id racing (two pods, two threads), one wins.
    """

    def claim(self, notification_id: str, ttl: float) -> bool:
        """Remember *notification_id* for *ttl* seconds; ``False`` if it was already there."""
        ...

    async def aclaim(self, notification_id: str, ttl: float) -> bool:
        """Async twin of :meth:`claim`."""
        ...

    def release(self, notification_id: str) -> None:
        """Forget *notification_id* (it was claimed but could not be queued)."""
        ...

    async def arelease(self, notification_id: str) -> None:
        """Async twin of :meth:`release`."""
        ...


class MemoryReplayStore:
    """Notification ids in this process: the newest ``max_entries``, each for its ``ttl``.

    Memory stays bounded at any traffic; an id evicted early (more than ``max_entries`` newer
    ones) could be handled again if redelivered, so size it above the notifications of
    ``max_age``, or share a :class:`RedisReplayStore`. Thread-safe.

    Args:
        max_entries: ids kept at most (the oldest go first).
        clock: measures the ttl (``clock.monotonic()``).
    """

    __slots__ = ("_clock", "_lock", "_seen", "max_entries")

    def __init__(self, max_entries: int = 100_000, *, clock: Clock | None = None) -> None:
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise ValueError(f"MemoryReplayStore.max_entries must be >= 1, got {max_entries!r}")
        self.max_entries = max_entries
        self._clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._seen: OrderedDict[str, float] = OrderedDict()

    def claim(self, notification_id: str, ttl: float) -> bool:
        """See :meth:`ReplayStore.claim`."""
        with self._lock:
            now = self._clock.monotonic()
            seen = self._seen
            expires = seen.get(notification_id)
            if expires is not None and expires > now:
                return False
            seen[notification_id] = now + ttl
            seen.move_to_end(notification_id)
            # Oldest first: drop the expired, then whatever exceeds the bound.
            while seen:
                oldest, until = next(iter(seen.items()))
                if until > now and len(seen) <= self.max_entries:
                    break
                del seen[oldest]
            return True

    async def aclaim(self, notification_id: str, ttl: float) -> bool:
        """See :meth:`ReplayStore.aclaim` (no I/O: the same as :meth:`claim`)."""
        return self.claim(notification_id, ttl)

    def release(self, notification_id: str) -> None:
        """See :meth:`ReplayStore.release`."""
        with self._lock:
            self._seen.pop(notification_id, None)

    async def arelease(self, notification_id: str) -> None:
        """See :meth:`ReplayStore.arelease`."""
        self.release(notification_id)

    def __len__(self) -> int:
        return len(self._seen)

    def __repr__(self) -> str:
        return f"MemoryReplayStore({len(self._seen)}/{self.max_entries})"


_CLAIM_SOURCE = (
    "if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then return 1 else return 0 end"
)
_RELEASE_SOURCE = "return redis.call('DEL', KEYS[1])"


class RedisReplayStore:
    """Notification ids in Redis, shared by every process of a fleet (``SET NX`` with expiry).

    Keys are ``<prefix>:webhook-seen:<id>`` (the library's key scheme). While Redis is
    unavailable the store remembers ids in this process only (a :class:`MemoryReplayStore`) and
    reports ``webhook.redis_unavailable`` once; deliveries keep being answered.

    Args:
        redis_url: where Redis lives (``redis://…``); needs the ``redis`` extra.
        key_prefix: the first part of every key.
        clock: measures the pauses between probes while Redis is down.
        fallback_entries: ids the in-process fallback keeps.
    """

    def __init__(
        self,
        redis_url: str,
        *,
        key_prefix: str | None = None,
        clock: Clock | None = None,
        fallback_entries: int = 100_000,
    ) -> None:
        from ._backends._redis import DEFAULT_KEY_PREFIX, KeyScheme, RedisLink, Script

        self._keys = KeyScheme(key_prefix if key_prefix is not None else DEFAULT_KEY_PREFIX)
        self._clock = clock or SystemClock()
        self._events = EventLog()
        self._link: RedisLink = RedisLink("webhooks", redis_url, self._clock, self._events)
        self._claim = Script(_CLAIM_SOURCE)
        self._release = Script(_RELEASE_SOURCE)
        self._fallback = MemoryReplayStore(fallback_entries, clock=self._clock)

    def _attach(self, sink: Callable[[Event], None]) -> None:
        """Send the store's Redis events where the receiver's go (called by the receiver)."""
        self._events.hooks.append(sink)

    @staticmethod
    def _ttl_ms(ttl: float) -> int:
        return max(1, math.ceil(ttl * 1000))

    def claim(self, notification_id: str, ttl: float) -> bool:
        """See :meth:`ReplayStore.claim`."""
        from ._backends._redis import MISSED

        reply = self._link.call(
            self._claim, [self._keys.webhook_seen(notification_id)], [self._ttl_ms(ttl)]
        )
        if reply is MISSED:
            return self._fallback.claim(notification_id, ttl)
        return bool(reply)

    async def aclaim(self, notification_id: str, ttl: float) -> bool:
        """See :meth:`ReplayStore.aclaim`."""
        from ._backends._redis import MISSED

        reply = await self._link.acall(
            self._claim, [self._keys.webhook_seen(notification_id)], [self._ttl_ms(ttl)]
        )
        if reply is MISSED:
            return self._fallback.claim(notification_id, ttl)
        return bool(reply)

    def release(self, notification_id: str) -> None:
        """See :meth:`ReplayStore.release`."""
        self._fallback.release(notification_id)
        self._link.call(self._release, [self._keys.webhook_seen(notification_id)], [])

    async def arelease(self, notification_id: str) -> None:
        """See :meth:`ReplayStore.arelease`."""
        self._fallback.release(notification_id)
        await self._link.acall(self._release, [self._keys.webhook_seen(notification_id)], [])

    def close(self) -> None:
        """Close the sync Redis connections."""
        self._link.close()

    async def aclose(self) -> None:
        """Close the running loop's Redis connections, and the sync ones."""
        await self._link.aclose()

    def __repr__(self) -> str:
        return f"RedisReplayStore({self._link!r})"


# ----------------------------------------------------------------------------- the receiver


@dataclasses.dataclass(frozen=True, slots=True)
class _Admit:
    """A delivery that passed every check of the body: admit it (dedupe, then queue)."""

    notification: Notification


def _text(value: object) -> str | None:
    if isinstance(value, str) and value and len(value) <= _MAX_FIELD:
        return value
    return None


def _parse(body: bytes, received_at: float) -> Notification | str:
    """The notification in a signed *body*, or the reason it is not one."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return "not_json"
    if not isinstance(payload, dict):
        return "not_json"
    notification_id = _text(payload.get("id"))
    topic = _text(payload.get("topic"))
    data = payload.get("data", {})
    created = payload.get("created_at")
    attempts = payload.get("delivery_attempts")
    app_id = payload.get("app_id")
    if notification_id is None or topic is None or not isinstance(data, dict):
        return "invalid"
    if created is not None and (
        isinstance(created, bool)
        or not isinstance(created, (int, float))
        or not math.isfinite(created)
    ):
        return "invalid"
    return Notification(
        id=notification_id,
        topic=topic,
        app_id=app_id if isinstance(app_id, str) else None,
        created_at=None if created is None else float(created),
        received_at=received_at,
        delivery_attempts=(
            attempts if isinstance(attempts, int) and not isinstance(attempts, bool) else None
        ),
        data=data,
        payload=payload,
    )


# No credentials or wrong ones: 401; a header that is not a signature at all: 400.
_SIGNATURE_STATUS = {
    SignatureCheck.MISSING: 401,
    SignatureCheck.MALFORMED: 400,
    SignatureCheck.MISMATCH: 401,
    SignatureCheck.UNUSABLE: 401,
}


class _ThreadLane:
    """The handler queue of the sync API: worker threads draining a bounded ``queue.Queue``."""

    def __init__(self, receiver: WebhookReceiver) -> None:
        self._receiver = receiver
        self.queue: queue.Queue[Notification | None] = queue.Queue(receiver.queue_size)
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if self._threads:
                return
            for index in range(self._receiver.workers):
                thread = threading.Thread(
                    target=self._work, name=f"intercom-webhooks-{index}", daemon=True
                )
                thread.start()
                self._threads.append(thread)

    def _work(self) -> None:
        while True:
            notification = self.queue.get()
            try:
                if notification is None:
                    return
                self._receiver._run_sync(notification)
            finally:
                self.queue.task_done()

    def depth(self) -> int:
        return self.queue.qsize()

    def stop(self, timeout: float | None) -> None:
        with self._lock:
            threads, self._threads = self._threads, []
        for _ in threads:
            self.queue.put(None)
        for thread in threads:
            thread.join(timeout)


class _AsyncLane:
    """The handler queue of the ASGI/async API: worker tasks on one event loop."""

    def __init__(self, receiver: WebhookReceiver, loop: asyncio.AbstractEventLoop) -> None:
        self._receiver = receiver
        self.loop = loop
        self.queue: asyncio.Queue[Notification] = asyncio.Queue(receiver.queue_size)
        self._tasks = [
            loop.create_task(self._work(), name=f"intercom-webhooks-{index}")
            for index in range(receiver.workers)
        ]

    async def _work(self) -> None:
        while True:
            notification = await self.queue.get()
            try:
                await self._receiver._run_async(notification)
            finally:
                self.queue.task_done()

    def depth(self) -> int:
        return self.queue.qsize()

    async def stop(self, timeout: float | None) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.queue.join(), timeout)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


class WebhookReceiver:
    """Receives Intercom webhook notifications for *handler* (see the module docstring).

    An ASGI application (``await receiver(scope, receive, send)``), with
    :meth:`receive` / :meth:`areceive` for other frameworks. Build it with
    ``client.webhook_receiver(...)`` to feed the client's health and honour its kill switch.

    Args:
        secret: the app's client secret (Developer Hub → Basic information); signs every
            notification. Never logged or shown in a repr.
        handler: called once per notification, off the request path; a function (run in a
            worker thread) or a coroutine function. What it raises is counted
            (``webhook.handler_failed``), logged, and never reaches Intercom.
        store: where notification ids are remembered (default: a :class:`MemoryReplayStore`).
        max_body_bytes: larger bodies are answered 413 unread.
        max_age: seconds ids are remembered; older notifications are stale (never handled).
        queue_size: notifications that may wait for the handler; more are answered 429.
        workers: handler calls that may run at once (1 keeps notifications in arrival order).
        disabled: answers whether to defer deliveries (503) right now: the client's kill switch
            when built by ``client.webhook_receiver``.
        clock: the source of time (``created_at`` is compared with ``clock.time()``).
        event_hooks: callables receiving every webhook event (when not built by a client,
            whose hooks already do).
    """

    def __init__(
        self,
        secret: str | bytes,
        handler: Handler,
        *,
        store: ReplayStore | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_age: float = DEFAULT_MAX_AGE,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        workers: int = 1,
        disabled: Callable[[], bool] | None = None,
        clock: Clock | None = None,
        event_hooks: list[EventHook] | None = None,
    ) -> None:
        if not isinstance(secret, (str, bytes)) or not secret:
            raise ValueError(
                "WebhookReceiver.secret must be a non-empty string (the client secret)"
            )
        if not callable(handler):
            raise ValueError(f"WebhookReceiver.handler must be callable, got {handler!r}")
        for name, value, minimum in (
            ("max_body_bytes", max_body_bytes, 1),
            ("queue_size", queue_size, 1),
            ("workers", workers, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(
                    f"WebhookReceiver.{name} must be an integer >= {minimum}, got {value!r}"
                )
        if (
            isinstance(max_age, bool)
            or not isinstance(max_age, (int, float))
            or not math.isfinite(max_age)
            or max_age <= 0
        ):
            raise ValueError(f"WebhookReceiver.max_age must be a number > 0, got {max_age!r}")
        if store is not None and not isinstance(store, ReplayStore):
            raise ValueError(f"WebhookReceiver.store must be a ReplayStore, got {store!r}")
        self._secret = secret
        self.handler = handler
        self._async_handler = inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
            getattr(handler, "__call__", None)  # noqa: B004 - an async __call__ counts too
        )
        self.clock: Clock = clock or SystemClock()
        self.store: ReplayStore = (
            store if store is not None else MemoryReplayStore(clock=self.clock)
        )
        self.max_body_bytes = max_body_bytes
        self.max_age = float(max_age)
        self.queue_size = queue_size
        self.workers = workers
        self._disabled = disabled
        self._sink: Callable[[Event], None] = EventLog(event_hooks).emit
        attach = getattr(self.store, "_attach", None)
        if attach is not None:
            attach(self._emit)
        self._threads = _ThreadLane(self)
        self._lane: _AsyncLane | None = None
        self._lane_lock = threading.Lock()

    # ------------------------------------------------------------------------- wiring

    def _wire(self, sink: Callable[[Event], None]) -> None:
        """Send events to *sink* instead (a client's telemetry: log, hooks and health)."""
        self._sink = sink

    def _emit(self, event: Event) -> None:
        self._sink(event)

    @property
    def disabled(self) -> bool:
        """Whether deliveries are deferred (answered 503) right now."""
        return self._disabled is not None and bool(self._disabled())

    @property
    def queue_depth(self) -> int:
        """Notifications waiting for the handler."""
        lane = self._lane
        return self._threads.depth() + (0 if lane is None else lane.depth())

    # ------------------------------------------------------------------------- judging

    def _judge(self, body: bytes, signature: str | bytes | None) -> WebhookAnswer | _Admit:
        """Every check that needs no store and no queue, in the documented order."""
        if len(body) > self.max_body_bytes:
            return self._reject("too_large", 413)
        if not body:
            return self._reject("empty", 400)
        check = check_webhook_signature(body, signature, self._secret)
        if check is not SignatureCheck.VALID:
            return self._reject(f"signature_{check.value}", _SIGNATURE_STATUS[check])
        parsed = _parse(body, self.clock.time())
        if isinstance(parsed, str):
            return self._reject(parsed, 400)
        if parsed.topic == "ping":
            self._emit(
                WebhookReceived(
                    parsed.id, parsed.topic, parsed.delay, self.queue_depth, self.queue_size
                )
            )
            return _answer(200, "received", "ping")
        delay = parsed.delay
        if delay is not None and delay > self.max_age:
            return self._reject("stale", 200)
        if self.disabled:
            return self._defer("disabled", 503)
        return _Admit(parsed)

    def _reject(self, reason: str, status: int) -> WebhookAnswer:
        answer = _answer(status, "rejected", reason)
        self._emit(WebhookRejected(reason, status, acknowledged=answer.accepted))
        return answer

    def _defer(self, reason: str, status: int) -> WebhookAnswer:
        self._emit(WebhookDeferred(reason, status, self.queue_depth, self.queue_size))
        return _answer(status, "deferred", reason)

    def _accepted(self, notification: Notification) -> WebhookAnswer:
        self._emit(
            WebhookReceived(
                notification.id,
                notification.topic,
                notification.delay,
                self.queue_depth,
                self.queue_size,
            )
        )
        return _answer(200, "received", "accepted")

    def _duplicate(self, notification: Notification) -> WebhookAnswer:
        self._emit(WebhookDuplicate(notification.id, notification.topic))
        return _answer(200, "duplicate", "seen")

    # ------------------------------------------------------------------------- sync API

    def receive(self, body: bytes, signature: str | None) -> WebhookAnswer:
        """Answer one delivery (Flask, Django, any WSGI framework); never raises for bad input.

        Args:
            body: the raw request body, exactly as received.
            signature: the ``X-Hub-Signature`` header's value (``None`` when absent).

        Send the answer's ``status``, ``headers`` and ``body`` back as they are. Accepted
        notifications are handled by worker threads of this receiver.
        """
        verdict = self._judge(bytes(body), signature)
        if isinstance(verdict, WebhookAnswer):
            return verdict
        notification = verdict.notification
        lane = self._threads
        if lane.queue.full():
            return self._defer("queue_full", 429)
        if not self.store.claim(notification.id, self.max_age):
            return self._duplicate(notification)
        lane.start()
        try:
            lane.queue.put_nowait(notification)
        except queue.Full:  # another thread filled the last place
            self.store.release(notification.id)
            return self._defer("queue_full", 429)
        return self._accepted(notification)

    def join(self) -> None:
        """Block until every notification queued by :meth:`receive` has been handled."""
        self._threads.queue.join()

    def close(self, timeout: float | None = 10.0) -> None:
        """Stop the worker threads after the queued notifications (waits up to *timeout* each)."""
        self._threads.stop(timeout)
        close = getattr(self.store, "close", None)
        if close is not None:
            close()

    # ------------------------------------------------------------------------- async API

    def _async_lane(self) -> _AsyncLane:
        loop = asyncio.get_running_loop()
        lane = self._lane
        if lane is not None and lane.loop is loop:
            return lane
        with self._lane_lock:
            if self._lane is None or self._lane.loop is not loop:
                # A new loop (tests, a restarted server): the old one's tasks died with it.
                self._lane = _AsyncLane(self, loop)
            return self._lane

    async def areceive(self, body: bytes, signature: str | bytes | None) -> WebhookAnswer:
        """Async twin of :meth:`receive`; notifications are handled by tasks on this loop."""
        verdict = self._judge(bytes(body), signature)
        if isinstance(verdict, WebhookAnswer):
            return verdict
        notification = verdict.notification
        lane = self._async_lane()
        if lane.queue.full():
            return self._defer("queue_full", 429)
        if not await self.store.aclaim(notification.id, self.max_age):
            return self._duplicate(notification)
        try:
            lane.queue.put_nowait(notification)
        except asyncio.QueueFull:  # filled while the claim awaited Redis
            await self.store.arelease(notification.id)
            return self._defer("queue_full", 429)
        return self._accepted(notification)

    async def ajoin(self) -> None:
        """Wait until every notification queued on this loop has been handled."""
        lane = self._lane
        if lane is not None and lane.loop is asyncio.get_running_loop():
            await lane.queue.join()

    async def aclose(self, timeout: float | None = 10.0) -> None:
        """Handle what is queued on this loop (up to *timeout* seconds), then stop its tasks."""
        lane, self._lane = self._lane, None
        if lane is not None and lane.loop is asyncio.get_running_loop():
            await lane.stop(timeout)
        aclose = getattr(self.store, "aclose", None)
        if aclose is not None:
            await aclose()

    # ------------------------------------------------------------------------- handlers

    def _finished(
        self, notification: Notification, started: float, error: BaseException | None
    ) -> None:
        duration_ms = (time.perf_counter() - started) * 1000.0
        depth = self.queue_depth
        if error is None:
            self._emit(
                WebhookHandled(
                    notification.id, notification.topic, duration_ms, depth, self.queue_size
                )
            )
            return
        _logger.error(
            "webhook handler failed for %s (%s)",
            notification.id,
            notification.topic,
            exc_info=(type(error), error, error.__traceback__),
        )
        self._emit(
            WebhookHandlerFailed(
                notification.id,
                notification.topic,
                type(error).__name__,
                duration_ms,
                depth,
                self.queue_size,
            )
        )

    def _run_sync(self, notification: Notification) -> None:
        """Run the handler in a worker thread (a coroutine handler on a loop of its own)."""
        started = time.perf_counter()
        try:
            result = self.handler(notification)
            if inspect.isawaitable(result):
                asyncio.run(_awaited(result))
        except Exception as error:
            self._finished(notification, started, error)
        else:
            self._finished(notification, started, None)

    async def _run_async(self, notification: Notification) -> None:
        """Run the handler from a worker task (a plain function in a thread, off the loop)."""
        started = time.perf_counter()
        try:
            if self._async_handler:
                await self.handler(notification)
            else:
                result = await asyncio.to_thread(self.handler, notification)
                if inspect.isawaitable(result):
                    await result
        except Exception as error:
            self._finished(notification, started, error)
        else:
            self._finished(notification, started, None)

    # ------------------------------------------------------------------------- ASGI

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one ASGI connection (see the module docstring)."""
        kind = scope.get("type")
        if kind == "lifespan":
            await self._lifespan(receive, send)
            return
        if kind != "http":
            raise RuntimeError(f"WebhookReceiver does not handle {kind!r} connections")
        if str(scope.get("method", "")).upper() != "POST":
            answer = self._reject("method", 405)
            await _send(send, answer, extra=((b"allow", b"POST"),))
            return
        signature: bytes | None = None
        declared: int | None = None
        for name, value in scope.get("headers", ()):
            key = bytes(name).lower()
            if key == _SIGNATURE_KEY:
                signature = bytes(value)
            elif key == b"content-length":
                with contextlib.suppress(ValueError):
                    declared = int(value)
        if declared is not None and declared > self.max_body_bytes:
            await _send(send, self._reject("too_large", 413))
            return
        body = await _read_body(receive, self.max_body_bytes)
        if body is None:
            await _send(send, self._reject("too_large", 413))
            return
        await _send(send, await self.areceive(body, signature))

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        """Serve the lifespan protocol when the receiver is the top-level app."""
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._async_lane()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def __repr__(self) -> str:
        return (
            f"WebhookReceiver(handler={getattr(self.handler, '__qualname__', self.handler)!r}, "
            f"store={self.store!r}, queue={self.queue_depth}/{self.queue_size})"
        )


def _wired_receiver(
    pipeline: Pipeline,
    secret: str | bytes,
    handler: Handler,
    *,
    store: ReplayStore | str = "memory",
    **options: Any,
) -> WebhookReceiver:
    """A receiver wired to a client's *pipeline* (``client.webhook_receiver`` builds it): its
    events reach the client's telemetry (hooks, log, health) and its kill switch defers."""
    if store == "redis":
        if pipeline.config.redis_url is None:
            raise ValueError('webhook_receiver(store="redis") needs ResilienceConfig.redis_url')
        chosen: ReplayStore | None = RedisReplayStore(
            pipeline.config.redis_url, clock=pipeline.clock
        )
    elif store == "memory":
        chosen = None
    elif isinstance(store, str):
        raise ValueError(
            f'webhook_receiver store must be "memory", "redis" or a ReplayStore, got {store!r}'
        )
    else:
        chosen = store
    receiver = WebhookReceiver(
        secret,
        handler,
        store=chosen,
        disabled=lambda: pipeline.disabled,
        clock=pipeline.clock,
        **options,
    )
    receiver._wire(pipeline.telemetry.emit)
    return receiver


async def _awaited(result: Awaitable[Any]) -> Any:
    return await result


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The request body, or ``None`` as soon as it grows past *limit* bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _send(
    send: Send, answer: WebhookAnswer, extra: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    headers = [(name.encode(), value.encode()) for name, value in answer.headers]
    headers.append((b"content-length", str(len(answer.body)).encode()))
    headers.extend(extra)
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})
