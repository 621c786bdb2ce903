"""``client.outbox``: queue writes durably, and drain them exactly once when Intercom is back.

The outbox is opt-in. ``client.outbox.enqueue(...)`` queues a write explicitly; with
``OutboxPolicy(queue_when_unavailable=True)`` a write refused before anything was sent (breaker
open, kill switch, no rate-limit token in time, a deadline, a refused connection) is queued by
the transport and the call raises :class:`WriteQueuedError`. ``client.outbox.drain()`` (a worker,
a cron job, ``intercom-resilience outbox drain``) replays the queue: oldest first, in order per
resource (a write that cannot go out yet holds back the later writes of its resource), each
through the whole pipeline and its reconciliation, so each lands exactly once.

The store is opened on first use: a client that never queues never touches the file, and a
corrupt or locked file fails only the outbox's own calls (reads keep working).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json as jsonlib
import os
import threading
import uuid
from collections.abc import Callable, Generator, Mapping
from contextlib import AbstractContextManager
from typing import Any

import httpx

from .. import _callinfo
from .._backends.base import Priority
from .._config import OutboxPolicy, ResilienceConfig
from .._core.requests import classify, path_template
from .._errors import (
    CircuitOpenError,
    DeadlineExceededError,
    IntercomConnectError,
    IntercomDisabledError,
    RateLimitedError,
)
from .._pipeline import Pipeline
from .._pipeline.call import priority
from .._pipeline.deadline import deadline_scope
from .._sdk import request_headers, wrap_transports
from ..events import OutboxDeadLettered, OutboxFallback, OutboxQueued
from ._model import (
    DrainReport,
    NewEntry,
    OutboxEntry,
    OutboxError,
    OutboxStatus,
    OutboxStore,
    OutboxUnavailableError,
    State,
    WriteQueuedError,
)
from ._replay import REPLAY, Dead, Deferred, Delivered, Outcome, Replay, replay

__all__ = ["AsyncOutbox", "Outbox", "attach_async_outbox", "attach_outbox", "open_store"]

#: Errors raised before anything was sent: the write may wait in the outbox.
_UNAVAILABLE = (
    CircuitOpenError,
    IntercomDisabledError,
    RateLimitedError,
    DeadlineExceededError,
    IntercomConnectError,
)


def open_store(policy: OutboxPolicy, config: ResilienceConfig) -> OutboxStore:
    """The store *policy* names (opened now: errors name the file or the Redis URL)."""
    if policy.backend == "redis":
        from ._redis import RedisStore

        assert config.redis_url is not None  # the config checked it
        return RedisStore(config.redis_url, policy.redis_key)
    from ._sqlite import SQLiteStore

    return SQLiteStore(policy.path)


@dataclasses.dataclass(frozen=True, slots=True)
class _StoreOp:
    """A drain step: one store operation (blocking I/O), performed by the shell."""

    run: Callable[[], Any]


@dataclasses.dataclass(frozen=True, slots=True)
class _ReplayEntry:
    """A drain step: replay *entry* through the client; the shell sends back its outcome."""

    entry: OutboxEntry


#: What a drain yields to its shell.
DrainStep = _StoreOp | _ReplayEntry


def _next_step(
    steps: Generator[DrainStep, Any, DrainReport], value: Any, error: BaseException | None
) -> DrainStep | DrainReport:
    """Hand the last step's result (or its error) to the drain: its next step, or its report."""
    try:
        return steps.send(value) if error is None else steps.throw(error)
    except StopIteration as stop:
        report: DrainReport = stop.value
        return report


class _Core:
    """What the sync and async outboxes share: the stores, enqueueing, the drain's bookkeeping."""

    def __init__(
        self,
        pipeline: Pipeline,
        headers: Callable[[], Mapping[str, str]],
        store: OutboxStore | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.policy = pipeline.config.outbox
        self._headers = headers
        self._store = store
        self._fallback: OutboxStore | None = None
        self._lock = threading.Lock()
        self.owner = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self._counted = False  # health's outbox depth has been read from the store once

    # ------------------------------------------------------------------------------ stores

    @property
    def store(self) -> OutboxStore:
        """The primary store, opened on first use."""
        with self._lock:
            if self._store is None:
                self._store = open_store(self.policy, self.pipeline.config)
            return self._store

    def fallback(self, *, create: bool) -> OutboxStore | None:
        """The local fallback file of a Redis outbox (``None`` when not configured)."""
        path = self.policy.fallback_path
        if path is None or self.policy.backend != "redis":
            return None
        with self._lock:
            if self._fallback is None and (create or os.path.exists(path)):
                from ._sqlite import SQLiteStore

                self._fallback = SQLiteStore(path)
            return self._fallback

    def stores(self) -> list[OutboxStore]:
        """Stores to drain: the fallback first (its writes waited while Redis was down)."""
        fallback = self.fallback(create=False)
        return [*([fallback] if fallback is not None else []), self.store]

    # ----------------------------------------------------------------------------- enqueue

    def new_entry(
        self, method: str, path: str, content: bytes, content_type: str | None
    ) -> NewEntry:
        method = method.upper()
        if not path.startswith("/"):
            raise ValueError(f"path must start with '/', got {path!r}")
        kind = classify(method, path)
        if kind.is_read:
            raise ValueError(f"{method} {kind.template} is a read: only writes are queued")
        return NewEntry(
            method=method,
            path=path,
            body=content,
            content_type=content_type,
            resource=kind.resource or kind.template,
            created_at=self.pipeline.clock.time(),
        )

    def add(self, entry: NewEntry) -> str:
        try:
            entry_id = self.store.add(entry)
        except OutboxUnavailableError as error:
            fallback = self.fallback(create=True)
            if fallback is None:
                raise
            entry_id = "local-" + fallback.add(entry)
            self.pipeline.events.emit(OutboxFallback(error=str(error), location=fallback.location))
        self.pipeline.events.emit(
            OutboxQueued(method=entry.method, path=path_template(entry.path), entry_id=entry_id)
        )
        if not self._counted:
            # The store may hold writes from before this process (or from other processes):
            # the first count health gets is the store's own, then it is kept by deltas.
            try:
                self.status()
                return entry_id
            except OutboxError:
                pass  # the write is queued (maybe in the fallback file): count it, as before
        self._record(delta=1)
        return entry_id

    def enqueue(
        self, method: str, path: str, json: Any = None, content: bytes | None = None
    ) -> str:
        if json is not None and content is not None:
            raise ValueError("pass json or content, not both")
        body = jsonlib.dumps(json).encode() if json is not None else (content or b"")
        return self.add(self.new_entry(method, path, body, "application/json"))

    def enqueue_request(self, request: httpx.Request) -> str:
        """Queue a request as the SDK built it (its credentials are left out)."""
        query = request.url.query.decode()
        path = request.url.path + (f"?{query}" if query else "")
        entry = self.new_entry(
            request.method, path, request.content, request.headers.get("content-type")
        )
        return self.add(entry)

    # ------------------------------------------------------------------------------- drain

    def replay(self, entry: OutboxEntry) -> Replay:
        return replay(entry, self.pipeline.base_url, self._headers, self.pipeline.clock.time)

    def replay_scope(self) -> AbstractContextManager[float]:
        """The deadline of one entry's replay: half the lease, so it ends well inside it.

        The drain renews its lease between entries. A replay that outlived the lease (the
        background lane alone allows minutes) would let another worker take over an entry still
        in flight, and re-send a write the first worker's request may be landing.
        """
        pipeline = self.pipeline
        seconds = max(pipeline.config.deadlines.minimum, self.policy.lease / 2)
        return deadline_scope(pipeline.clock, seconds)

    def settle(
        self, store: OutboxStore, entry: OutboxEntry, outcome: Outcome, report: DrainReport
    ) -> bool:
        """Record *outcome* of *entry*; ``True`` when the entry left the queue."""
        if isinstance(outcome, Delivered):
            store.done(entry.id)
            report.delivered += 1
            if outcome.how != "sent":
                report.reconciled[outcome.how] = report.reconciled.get(outcome.how, 0) + 1
            return True
        if isinstance(outcome, Dead):
            store.dead(entry, outcome.error, outcome.status, outcome.request_id)
            report.dead += 1
            self.pipeline.events.emit(
                OutboxDeadLettered(
                    method=entry.method,
                    path=path_template(entry.path),
                    entry_id=entry.id,
                    status=outcome.status,
                    error=outcome.error,
                    request_id=outcome.request_id,
                )
            )
            return True
        assert isinstance(outcome, Deferred)
        store.defer(entry.id, outcome.error)
        report.deferred += 1
        return False

    def status(self) -> OutboxStatus:
        store = self.store
        depth, oldest, dead = store.stats()
        self._counted = True
        fallback = self.fallback(create=False)
        fallback_depth = fallback.stats()[0] if fallback is not None else 0
        now = self.pipeline.clock.time()
        age = None if oldest is None else max(0.0, now - oldest)
        self.pipeline.monitor.record_outbox(
            depth + fallback_depth, age, self.policy.alert_depth, self.policy.alert_age
        )
        return OutboxStatus(store.backend, store.location, depth, age, dead, fallback_depth)

    def _record(self, delta: int) -> None:
        self.pipeline.monitor.record_outbox_delta(
            delta, self.pipeline.clock.time(), self.policy.alert_depth, self.policy.alert_age
        )

    def entries(self, state: State, limit: int) -> list[OutboxEntry]:
        if state not in ("pending", "dead"):
            raise ValueError(f"state must be 'pending' or 'dead', got {state!r}")
        return self.store.entries(state, limit)

    def close(self) -> None:
        for store in (self._store, self._fallback):
            if store is not None:
                store.close()

    # ------------------------------------------------------------------------------- drain

    def drain_steps(self, limit: int | None) -> Generator[DrainStep, Any, DrainReport]:
        """The order of a drain, sans I/O: the shells perform the steps it yields.

        Store operations (SQLite or Redis: blocking I/O) are :class:`_StoreOp` steps, so the
        async shell runs them off its event loop; replaying an entry is a :class:`_ReplayEntry`.
        """
        report = DrainReport()
        stores: list[OutboxStore] = yield _StoreOp(self.stores)
        for store in stores:
            if not (yield from self._store_steps(store, report, limit)):
                break
        yield _StoreOp(self.status)
        report.remaining = yield _StoreOp(lambda: sum(store.stats()[0] for store in self.stores()))
        return report

    def _store_steps(
        self, store: OutboxStore, report: DrainReport, limit: int | None
    ) -> Generator[DrainStep, Any, bool]:
        """One store's entries, oldest first; ``False`` when the drain must stop."""
        clock, policy = self.pipeline.clock, self.policy

        def acquire() -> bool:
            return store.acquire(self.owner, clock.time(), policy.lease)

        if not (yield _StoreOp(acquire)):
            report.busy = True
            return False
        try:
            blocked: set[str] = set()
            after: str | None = None
            while True:
                batch = yield _StoreOp(
                    functools.partial(store.head, self.owner, after, policy.batch)
                )
                if not batch:
                    return True
                for entry in batch:
                    after = entry.id
                    if entry.resource in blocked:
                        continue
                    if limit is not None and report.delivered >= limit:
                        return False
                    if not (yield _StoreOp(acquire)):  # renew the lease, or lose it
                        report.busy = True
                        return False
                    yield _StoreOp(functools.partial(store.mark_sent, entry.id, clock.time()))
                    outcome = yield _ReplayEntry(entry)
                    settled = functools.partial(self.settle, store, entry, outcome, report)
                    if not (yield _StoreOp(settled)):
                        blocked.add(entry.resource)  # keep the resource's order
        finally:
            # Even when a step failed: the shells throw its error in here, so this still runs.
            yield _StoreOp(functools.partial(store.release_lease, self.owner))


class Outbox:
    """``client.outbox`` of a :class:`~intercom_resilience.ResilientIntercom` (see the module)."""

    def __init__(self, core: _Core, http: httpx.Client) -> None:
        self._core = core
        self._http = http

    def enqueue(
        self, method: str, path: str, *, json: Any = None, content: bytes | None = None
    ) -> str:
        """Queue a write (``POST``, ``PUT``, ``PATCH``, ``DELETE``) durably; its entry id.

        Example::

            client.outbox.enqueue("POST", "/contacts", json={"external_id": "u-42"})

        Raises:
            ValueError: a read, or a path that does not start with ``/``.
            OutboxError: the SQLite file is unusable (the message names it).
            OutboxUnavailableError: Redis is unreachable and no ``fallback_path`` is set.
        """
        return self._core.enqueue(method, path, json, content)

    def drain(self, *, limit: int | None = None) -> DrainReport:
        """Replay queued writes, oldest first, each exactly once; what happened.

        Runs at background priority (quota interactive calls leave). Stops after *limit*
        deliveries, or when every remaining write is held back (Intercom unavailable). Another
        worker draining the same outbox makes this one return ``busy`` at once.
        """
        with priority(Priority.BACKGROUND):
            steps = self._core.drain_steps(limit)
            value: Any = None
            error: BaseException | None = None
            while not isinstance(step := _next_step(steps, value, error), DrainReport):
                try:
                    value, error = self._perform(step), None
                except BaseException as failure:  # thrown into the steps: the lease is released
                    value, error = None, failure
            return step

    def _perform(self, step: DrainStep) -> Any:
        if isinstance(step, _StoreOp):
            return step.run()
        core = self._core
        with core.replay_scope():
            return self._run(core.replay(step.entry))

    def _run(self, steps: Replay) -> Outcome:
        reply: Any = None
        how: str | None = None
        while True:
            try:
                request = steps.send(reply)
            except StopIteration as done:
                return _reconciled(done.value, how)
            with _callinfo.capture_calls() as calls:
                try:
                    reply = self._http.send(request)
                    reply.read()
                except Exception as error:  # handed to the replay, which decides
                    reply = error
            how = _how(calls) or how

    def status(self) -> OutboxStatus:
        """Depth, oldest age and dead letters (also fed to ``client.health()``)."""
        return self._core.status()

    def list(self, state: State = "pending", *, limit: int = 50) -> list[OutboxEntry]:
        """Queued (``pending``) or rejected (``dead``) entries, oldest first."""
        return self._core.entries(state, limit)

    def close(self) -> None:
        """Close the store (the client's ``close()`` does it)."""
        self._core.close()


class AsyncOutbox:
    """``client.outbox`` of an :class:`~intercom_resilience.AsyncResilientIntercom`.

    The store's operations (SQLite or Redis round trips, a locked file's wait) run in a worker
    thread, so they never block the event loop; the replayed requests are awaited.
    """

    def __init__(self, core: _Core, http: httpx.AsyncClient) -> None:
        self._core = core
        self._http = http

    async def enqueue(
        self, method: str, path: str, *, json: Any = None, content: bytes | None = None
    ) -> str:
        """Async twin of :meth:`Outbox.enqueue`."""
        return await asyncio.to_thread(self._core.enqueue, method, path, json, content)

    async def drain(self, *, limit: int | None = None) -> DrainReport:
        """Async twin of :meth:`Outbox.drain`."""
        with priority(Priority.BACKGROUND):
            steps = self._core.drain_steps(limit)
            value: Any = None
            error: BaseException | None = None
            while not isinstance(step := _next_step(steps, value, error), DrainReport):
                try:
                    value, error = await self._perform(step), None
                except BaseException as failure:  # thrown into the steps: the lease is released
                    value, error = None, failure
            return step

    async def _perform(self, step: DrainStep) -> Any:
        if isinstance(step, _StoreOp):
            return await asyncio.to_thread(step.run)  # SQLite or Redis: off the event loop
        core = self._core
        with core.replay_scope():
            return await self._run(core.replay(step.entry))

    async def _run(self, steps: Replay) -> Outcome:
        reply: Any = None
        how: str | None = None
        while True:
            try:
                request = steps.send(reply)
            except StopIteration as done:
                return _reconciled(done.value, how)
            with _callinfo.capture_calls() as calls:
                try:
                    reply = await self._http.send(request)
                    await reply.aread()
                except Exception as error:
                    reply = error
            how = _how(calls) or how

    async def status(self) -> OutboxStatus:
        """Async twin of :meth:`Outbox.status`."""
        return await asyncio.to_thread(self._core.status)

    async def list(self, state: State = "pending", *, limit: int = 50) -> list[OutboxEntry]:
        """Async twin of :meth:`Outbox.list`."""
        return await asyncio.to_thread(self._core.entries, state, limit)

    async def aclose(self) -> None:
        """Close the store."""
        await asyncio.to_thread(self._core.close)


def _how(calls: _callinfo.CapturedCalls) -> str | None:
    """How the pipeline reconciled the call just made, if it did."""
    last = calls.last
    return None if last is None else last.reconciled_by


def _reconciled(outcome: Outcome, how: str | None) -> Outcome:
    """A delivery the pipeline's reconciliation resolved is counted as such."""
    if isinstance(outcome, Delivered) and outcome.how == "sent" and how is not None:
        return Delivered(how, outcome.status, outcome.request_id)
    return outcome


class _Queueing(httpx.BaseTransport):
    """Queues a write refused before it was sent, when the policy says so."""

    def __init__(self, inner: httpx.BaseTransport, core: _Core) -> None:
        self.inner = inner
        self.core = core

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return self.inner.handle_request(request)
        except _UNAVAILABLE as error:
            raise _queued(self.core, request, error) from error

    def close(self) -> None:
        self.inner.close()


class _AsyncQueueing(httpx.AsyncBaseTransport):
    """The async twin of :class:`_Queueing`."""

    def __init__(self, inner: httpx.AsyncBaseTransport, core: _Core) -> None:
        self.inner = inner
        self.core = core

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await self.inner.handle_async_request(request)
        except _UNAVAILABLE as error:
            # Queueing writes to SQLite or Redis: off the event loop.
            raise await asyncio.to_thread(_queued, self.core, request, error) from error

    async def aclose(self) -> None:
        await self.inner.aclose()


def _queued(core: _Core, request: httpx.Request, error: Exception) -> Exception:
    """The error a refused call raises: queued, or the original one (a read, a replay)."""
    kind = classify(request.method, request.url.path)
    if kind.is_read or request.extensions.get(REPLAY):
        return error
    try:
        entry_id = core.enqueue_request(request)
    except OutboxError as failure:
        failure.__context__ = error
        return failure
    return WriteQueuedError(entry_id, kind.method, kind.template, type(error).__name__)


def _core_for(client: Any, pipeline: Pipeline) -> _Core:
    return _Core(pipeline, request_headers(client))


def attach_outbox(client: Any, http: httpx.Client, pipeline: Pipeline) -> Outbox:
    """``client.outbox`` of a sync facade (and the queueing transport if the policy asks)."""
    core = _core_for(client, pipeline)
    if pipeline.config.outbox.queue_when_unavailable:
        wrap_transports(http, None, lambda inner: _Queueing(inner, core))
    return Outbox(core, http)


def attach_async_outbox(client: Any, http: httpx.AsyncClient, pipeline: Pipeline) -> AsyncOutbox:
    """``client.outbox`` of an async facade."""
    core = _core_for(client, pipeline)
    if pipeline.config.outbox.queue_when_unavailable:
        wrap_transports(http, None, lambda inner: _AsyncQueueing(inner, core))
    return AsyncOutbox(core, http)
