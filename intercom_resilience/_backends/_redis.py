"""The one seam between the library and Redis, shared by the rate limiter, the stale cache and
the webhook receiver's replay store.

Everything the Redis backends have in common lives here, once:

* **Clients.** One synchronous client (redis-py's connection pool is thread-safe, so every thread
  shares it; script calls hold a connection from it, see **Scripts**) and one ``redis.asyncio``
  client *per event loop*: an asyncio connection belongs to the loop that opened it, so a client
  reused by a second ``asyncio.run(...)`` would fail with ``RuntimeError: Event loop is closed``. A
  loop's client is closed when that loop shuts down
  (``asyncio.run`` and ``asyncio.Runner`` finalise async generators first, and a small guard
  generator per loop rides on that), or by :meth:`RedisLink.aclose` from inside the loop.
* **Timeouts and retries.** Short connect and command timeouts and no client-side retries: a
  budget check or a cache lookup is only worth making when Redis answers fast, and the backends
  have a safe answer of their own when it does not.
* **Failures.** One exception set (:data:`REDIS_ERRORS`) means "Redis is unavailable"; anything
  else is a bug and propagates.
* **The down/recovered latch** (:class:`Latch`): the first failure reports the transition once,
  Redis is then left alone for a pause that doubles on every failed probe (from
  :data:`FIRST_RETRY` up to the backend's ``retry_interval``), one caller at a time probes, and
  the first success reports the recovery.
* **Keys** (:class:`KeyScheme`): every key of the library starts with one configurable prefix
  (``intercom-resilience`` by default), followed by the family (``limiter``, ``cache``,
  ``cache-tag``, ``cache-meta``, ``webhook-seen``, ``fleet``).
* **Scripts.** Lua scripts run by ``EVALSHA``, loaded again on ``NOSCRIPT`` (a restarted or flushed
  server). A script call goes out on a connection its thread holds, or one of a few its event
  loop keeps (see :class:`_HeldConnection`): it is on every facade call's path (the limiter's
  acquire), where borrowing a connection from the pool and redis-py's command wrapper around the
  send cost about 11 of the client's 39 µs of CPU per round trip.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Final, Literal, TypeVar

try:
    import redis
    import redis.asyncio
    from redis.asyncio.retry import Retry as AsyncRetry
    from redis.backoff import NoBackoff
    from redis.exceptions import NoScriptError
    from redis.retry import Retry
except ImportError as _error:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "The Redis backends need redis-py: pip install 'intercom-resilience[redis]'"
    ) from _error

from .._clock import Clock
from .._core.cache import KEY_PREFIX as _CACHE_KEY_PREFIX
from .._events import EventLog
from .._redaction import redact_text
from ..events import RedisRecovered, RedisUnavailable

__all__ = [
    "DEFAULT_KEY_PREFIX",
    "redis",
    "DEFAULT_RETRY_INTERVAL",
    "DEFAULT_SOCKET_TIMEOUT",
    "FIRST_RETRY",
    "MISSED",
    "REDIS_ERRORS",
    "KeyScheme",
    "Latch",
    "RedisLink",
    "Script",
]

_T = TypeVar("_T")

#: The first part of every Redis key the library writes.
DEFAULT_KEY_PREFIX: Final = "intercom-resilience"
#: Seconds a connect or a command may take before the backend treats Redis as unavailable.
DEFAULT_SOCKET_TIMEOUT: Final = 0.25
#: The longest pause, in seconds, between two attempts to reach Redis again while it is down.
DEFAULT_RETRY_INTERVAL: Final = 5.0
#: The first pause, in seconds, after Redis failed; it doubles on every failed probe.
FIRST_RETRY: Final = 0.5

#: What "Redis is unavailable" means: down, refusing, timing out, out of memory, a script error.
#: (``TimeoutError`` and ``ConnectionError`` of the standard library are ``OSError`` subclasses.)
REDIS_ERRORS: Final[tuple[type[BaseException], ...]] = (redis.RedisError, OSError)


class _Missed:
    """The answer of a Redis call that did not happen (Redis unavailable)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSED"


#: Returned by :meth:`RedisLink.call` and :meth:`RedisLink.acall` when Redis was not reached.
MISSED: Final = _Missed()

Component = Literal["limiter", "cache", "webhooks", "fleet", "breaker"]


@dataclasses.dataclass(frozen=True, slots=True)
class KeyScheme:
    """Where the library's keys live: ``<prefix>:<family>:…``.

    ===============================  ========================================================
    ``P:limiter:{W}:app:F``          an app's bucket (``F``: credentials fingerprint), the
                                     server's window view and 429 block, and the workspace
                                     bucket too when ``W`` is the app's own (``W == F``)
    ``P:limiter:{W}:workspace``      the bucket of a named workspace (``W``: its fingerprint),
                                     shared by its apps
    ``P:cache:F:<sha256>``           a stale-cache entry
    ``P:cache-tag:<tag>``            the entries tagged with one resource
    ``P:cache-mark:<tag>``           when (Redis server time) the resource was last invalidated
    ``P:cache-meta:<name>``          the cache's LRU, sizes, byte total and LRU clock
    ``P:webhook-seen:<id>``          a webhook notification id already received (expires)
    ``P:fleet:{fleet}:members``      the processes publishing health, scored by when their
                                     snapshot expires (Redis server time, ms)
    ``P:fleet:{fleet}:snapshots``    each process's latest health snapshot (JSON by process id)
    ``P:fleet:{fleet}:incident-*``   fleet incidents: the open one per credentials and cause,
                                     and every process's incident reports (``fleet_incidents``)
    ``P:flight:F:<sha256>``          the fleet-coalescing lock of one read (short-lived)
    ``P:breaker:{F}:G``              the fleet breaker of one app and endpoint group (``G``):
                                     its state, and ``…:window`` / ``…:trials`` beside it
    ===============================  ========================================================

    ``{W}`` is a Redis Cluster hash tag: both keys of one limiter script share a slot.

    Args:
        prefix: the first part of every key (one Redis can then serve several deployments).
    """

    prefix: str = DEFAULT_KEY_PREFIX

    def __post_init__(self) -> None:
        if (
            not isinstance(self.prefix, str)
            or not self.prefix
            or self.prefix.strip() != self.prefix
        ):
            raise ValueError(f"key_prefix must be a non-empty string, got {self.prefix!r}")
        if any(char in self.prefix for char in "*?[]{}"):
            raise ValueError(
                f"key_prefix must not contain glob or hash-tag characters: {self.prefix!r}"
            )

    def limiter(self, scope: str, workspace: str) -> tuple[str, str]:
        """The app and workspace bucket keys of one app (*scope*) in one *workspace*."""
        base = f"{self.prefix}:limiter:{{{workspace}}}"
        return f"{base}:app:{scope}", f"{base}:workspace"

    def cache_entry(self, key: str) -> str:
        """The Redis key of the stale-cache entry *key* (``ir:cache:F:<sha256>``)."""
        return f"{self.prefix}:cache:{key.removeprefix(_CACHE_KEY_PREFIX)}"

    def cache_tag(self, tag: str) -> str:
        """The set of the entries tagged with resource *tag*."""
        return f"{self.prefix}:cache-tag:{tag}"

    def cache_mark(self, tag: str) -> str:
        """When resource *tag* was last invalidated (a put of an older read is refused)."""
        return f"{self.prefix}:cache-mark:{tag}"

    def cache_meta(self, name: str) -> str:
        """One of the cache's bookkeeping keys (``lru``, ``entries``, ``bytes``, ``clock``)."""
        return f"{self.prefix}:cache-meta:{name}"

    def webhook_seen(self, notification_id: str) -> str:
        """The marker of a webhook notification already received (the replay store's)."""
        return f"{self.prefix}:webhook-seen:{notification_id}"

    def fleet(self) -> tuple[str, str]:
        """The fleet-health member set and snapshot hash (one hash tag: one script's keys)."""
        base = f"{self.prefix}:fleet:{{fleet}}"
        return f"{base}:members", f"{base}:snapshots"

    def fleet_incidents(self) -> tuple[str, str, str, str]:
        """The open fleet incidents (hash, zset of expiries) and the incident reports (hash,
        zset of expiries): one hash tag with the fleet's health, one script's keys."""
        base = f"{self.prefix}:fleet:{{fleet}}"
        return (
            f"{base}:incident-open",
            f"{base}:incident-open-expiry",
            f"{base}:incident-reports",
            f"{base}:incident-report-expiry",
        )

    def flight(self, key: str) -> str:
        """The fleet-coalescing lock of the read cached under *key* (``docs/fleet.md``)."""
        return f"{self.prefix}:flight:{key.removeprefix(_CACHE_KEY_PREFIX)}"

    def breaker(self, scope: str, group: str) -> tuple[str, str, str]:
        """The fleet breaker's state hash, window hash and trial-lease set (one hash tag)."""
        base = f"{self.prefix}:breaker:{{{scope}}}:{group}"
        return base, f"{base}:window", f"{base}:trials"

    @property
    def pattern(self) -> str:
        """A ``SCAN MATCH`` pattern of every key the library writes under this prefix."""
        return f"{self.prefix}:*"


class Latch:
    """Whether Redis is up, with one report per transition and a growing pause between probes.

    Thread-safe. While up, :meth:`admit` costs one attribute read.

    Args:
        clock: measures the pauses (``clock.monotonic()``).
        retry_interval: the longest pause between two probes, in seconds.
        on_down: called once when Redis becomes unavailable: ``(error, first pause)``.
        on_up: called once when it answers again: ``(seconds it was down)``.
    """

    __slots__ = (
        "_clock",
        "_down_since",
        "_lock",
        "_on_down",
        "_on_up",
        "_pause",
        "_retry_at",
        "_retry_interval",
        "up",
    )

    def __init__(
        self,
        clock: Clock,
        retry_interval: float,
        on_down: Callable[[BaseException, float], None],
        on_up: Callable[[float], None],
    ) -> None:
        if retry_interval < 0:
            raise ValueError(f"retry_interval must be >= 0, got {retry_interval!r}")
        self._clock = clock
        self._retry_interval = retry_interval
        self._on_down = on_down
        self._on_up = on_up
        self._lock = threading.Lock()
        #: ``False`` from the first failure until the first success after it.
        self.up = True
        self._pause = 0.0
        self._retry_at = 0.0
        self._down_since = 0.0

    def admit(self) -> bool:
        """Whether to try Redis now: always while up; while down, once per pause (a probe)."""
        if self.up:
            return True
        with self._lock:
            now = self._clock.monotonic()
            if now < self._retry_at:
                return False
            # This caller probes; the others keep their fallback until the probe has answered
            # (a failed probe sets the next pause; a successful one opens the latch).
            self._retry_at = now + self._pause
            return True

    @property
    def probing(self) -> bool:
        """Whether a call admitted now is a probe of a Redis that was down."""
        return not self.up

    def failed(self, error: BaseException) -> None:
        """Record a failure: the first one reports the transition; later ones grow the pause."""
        with self._lock:
            now = self._clock.monotonic()
            first = self.up
            if first:
                self.up = False
                self._down_since = now
                self._pause = min(FIRST_RETRY, self._retry_interval)
            else:
                self._pause = min(self._pause * 2, self._retry_interval)
            self._retry_at = now + self._pause
            pause = self._pause
        if first:
            self._on_down(error, pause)

    def succeeded(self) -> None:
        """Record a success (reports the recovery after a failure)."""
        if self.up:
            return
        with self._lock:
            was_up, self.up = self.up, True
            downtime = self._clock.monotonic() - self._down_since
        if not was_up:  # another thread may have reported it first
            self._on_up(downtime)


#: Seconds a held connection may sit idle before it goes back to the pool to be checked (see
#: :class:`_HeldConnection`).
_IDLE = 1.0
#: Connections an event loop keeps for its script calls between two calls (more are borrowed
#: while more calls are in flight at once, and given back after).
_MAX_IDLE_PER_LOOP = 8
#: Threads of one link that may hold a connection at once; the others borrow one per call. A
#: process with a big thread pool must not open a connection per thread per backend (Redis's
#: ``maxclients`` is 10,000 by default, shared by the fleet), and under the GIL more threads
#: than this rarely have a script call in flight at the same time.
_MAX_HELD = 16
#: Bumped in a forked child: a connection a thread held before the fork is the parent's socket.
_fork_generation = 0


def _forked() -> None:
    global _fork_generation  # noqa: PLW0603 - one process-wide counter, bumped by the fork hook
    _fork_generation += 1


os.register_at_fork(after_in_child=_forked)


class _Holds:
    """How many of a link's threads hold a connection, against :data:`_MAX_HELD`."""

    __slots__ = ("cap", "count", "lock")

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.count = 0
        self.lock = threading.Lock()

    def take(self) -> bool:
        """Count one more holder, if there is room."""
        with self.lock:
            if self.count >= self.cap:
                return False
            self.count += 1
            return True

    def give(self) -> None:
        """A holder gave its connection back."""
        with self.lock:
            self.count -= 1


def _give_back(pool: redis.ConnectionPool, connection: Any, holds: _Holds) -> None:
    holds.give()
    pool.release(connection)


#: What a thread's slot holds once it found the link's holders full: it borrows per call.
_BORROWS: Final = object()


class _HeldConnection:
    """One thread's own connection for script calls, borrowed from the pool of the link's client.

    Script calls (the limiter's acquire on every facade call, the cache's and the fleet breaker's)
    keep a connection rather than borrow one per command: ``Redis.execute_command`` borrows and
    returns it (two lock round trips), wraps the send in its retry machinery (off here: the latch
    decides) and times it: ``client.evalsha`` cost 39 µs of client CPU against 28 µs for the same
    script sent on a held connection (measured side by side; the effect on acquires per second is in
    ``benchmarks/limiter.py``). An event loop keeps a few the same way (tasks interleave, so each
    call takes one of the loop's idle connections, or borrows another).

    What the pool does when it lends a connection (reconnect one the server closed, or one that
    holds an answer nobody read) still happens, because a connection goes back to the pool and
    is borrowed again whenever it might need it: after a failure or a cancellation, and after
    :data:`_IDLE` unused (an idle timeout, Redis's ``timeout`` or a proxy's, closes a connection
    only after seconds of silence; checked before anything is sent, since after a send a closed
    socket cannot tell a script that never ran from one that ran and lost its answer). A thread's
    connection goes back when the thread ends (the thread-local holding this object is dropped);
    a forked child never uses its parent's. At most :data:`_MAX_HELD` threads of a link hold one;
    the others borrow per call. Only the link's own client lends them: a client the caller passed
    in keeps its pool and its retries.
    """

    __slots__ = ("__weakref__", "connection", "generation", "give_back", "used_at")

    def __init__(self, pool: redis.ConnectionPool, holds: _Holds) -> None:
        """Borrow a connection from *pool*; *holds* must already count this holder."""
        try:
            # Any: redis-py's Connection methods (send_command, read_response, …) are untyped.
            self.connection: Any = pool.get_connection()
        except BaseException:
            holds.give()
            raise
        self.generation = _fork_generation
        #: When it last sent (``time.monotonic()``: the socket's time, not the injected clock).
        self.used_at = time.monotonic()
        #: Gives the connection back to the pool, once (now, or when this holder is dropped).
        self.give_back = weakref.finalize(self, _give_back, pool, self.connection, holds)
        self.give_back.atexit = False  # at exit the pool goes too; nothing to give back


def _evalsha(connection: Any, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
    """Run *script* on *connection*, loading it first if the server does not know it."""
    connection.send_command("EVALSHA", script.sha, len(keys), *keys, *args)
    try:
        return connection.read_response()
    except NoScriptError:  # a restarted or flushed server: load it, once
        connection.send_command("SCRIPT", "LOAD", script.source)
        connection.read_response()
        connection.send_command("EVALSHA", script.sha, len(keys), *keys, *args)
        return connection.read_response()


async def _aevalsha(
    connection: Any, script: Script, keys: Sequence[str], args: Sequence[Any]
) -> Any:
    """Async twin of :func:`_evalsha`."""
    await connection.send_command("EVALSHA", script.sha, len(keys), *keys, *args)
    try:
        return await connection.read_response()
    except NoScriptError:
        await connection.send_command("SCRIPT", "LOAD", script.source)
        await connection.read_response()
        await connection.send_command("EVALSHA", script.sha, len(keys), *keys, *args)
        return await connection.read_response()


#: A loop's idle script connections, each with when it last sent.
_Idle = list[tuple[Any, float]]


async def _acall_on_loop(
    pool: redis.asyncio.ConnectionPool,
    idle: _Idle,
    script: Script,
    keys: Sequence[str],
    args: Sequence[Any],
) -> Any:
    """Run *script* on one of the loop's *idle* connections, or on one borrowed from *pool*."""
    connection = None
    now = time.monotonic()
    while idle:
        candidate, used_at = idle.pop()  # the most recently used first
        if now - used_at <= _IDLE:
            connection = candidate
            break
        await pool.release(candidate)  # idle for long: the pool checks it before lending it
    if connection is None:
        connection = await pool.get_connection()  # type: ignore[no-untyped-call] # unannotated
    try:
        reply = await _aevalsha(connection, script, keys, args)
    except BaseException:  # a failure or a cancellation may leave an answer unread
        await pool.release(connection)
        raise
    if len(idle) < _MAX_IDLE_PER_LOOP:
        idle.append((connection, time.monotonic()))
    else:
        await pool.release(connection)
    return reply


@dataclasses.dataclass(frozen=True, slots=True)
class Script:
    """A Lua script and its SHA-1 (what ``EVALSHA`` names it by)."""

    source: str
    sha: str = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", hashlib.sha1(self.source.encode()).hexdigest())  # noqa: S324


class RedisLink:
    """One Redis server as a backend sees it: its clients, its scripts, its latch, its events.

    Args:
        component: ``"limiter"``, ``"cache"``, ``"webhooks"`` or ``"fleet"`` (names the events).
        redis_url: where Redis lives (``redis://…``, ``rediss://…``, ``unix://…``).
        clock: measures the pauses of the latch.
        events: where the transitions go (``None``: nowhere).
        socket_timeout: seconds a connect or a command may take.
        retry_interval: the longest pause between two probes while Redis is down.
        fallback_share: the share of the quota paced locally while Redis is down (the
            limiter's; reported in its ``redis_unavailable`` event).
        client, async_client: ready-made clients to use instead of connecting to *redis_url*
            (their timeouts and retries are then the caller's business; an *async_client* is
            used on whichever loop calls, so it must only ever be used from one).
    """

    def __init__(
        self,
        component: Component,
        redis_url: str,
        clock: Clock,
        events: EventLog | None,
        *,
        socket_timeout: float = DEFAULT_SOCKET_TIMEOUT,
        retry_interval: float = DEFAULT_RETRY_INTERVAL,
        fallback_share: float | None = None,
        client: redis.Redis | None = None,
        async_client: redis.asyncio.Redis | None = None,
    ) -> None:
        if not socket_timeout > 0:
            raise ValueError(f"socket_timeout must be > 0, got {socket_timeout!r}")
        self.component: Component = component
        self._url = redis_url
        self._events = events
        self._fallback_share = fallback_share
        self._timeout = socket_timeout
        self.latch = Latch(clock, retry_interval, self._announce_down, self._announce_up)
        self._lock = threading.Lock()
        # Connecting is lazy in redis-py: building the client here opens nothing, but it parses
        # the URL, so a malformed one fails at construction (naming the field, never the secret).
        try:
            self.client: redis.Redis = client or redis.Redis.from_url(
                redis_url,
                socket_timeout=socket_timeout,
                socket_connect_timeout=socket_timeout,
                retry=Retry(NoBackoff(), 0),
            )
        except ValueError as error:
            raise ValueError(
                f"ResilienceConfig.redis_url is not a usable Redis URL "
                f"({redact_text(redis_url)!r}): {redact_text(str(error))}"
            ) from None
        self._given_async = async_client
        # Per loop: its client, the guard that closes it, and its idle script connections.
        self._loops: dict[asyncio.AbstractEventLoop, tuple[redis.asyncio.Redis, Any, _Idle]] = {}
        #: Each thread's :class:`_HeldConnection` (when the client's pool lends them).
        self._held = threading.local()
        # Only a client of the link's own lends connections to hold (see _HeldConnection).
        self._may_hold = client is None
        self._holders = _Holds(_MAX_HELD)

    # ------------------------------------------------------------------ events (the one place)

    def _announce_down(self, error: BaseException, pause: float) -> None:
        component = self.component
        # The breaker's link reports nothing of its own: its fallback to the local breaker shows
        # as its ``BreakerTransition`` events, and the same Redis is reported by the others.
        if self._events is not None and component != "breaker":
            self._events.emit(
                RedisUnavailable(
                    component,
                    error=type(error).__name__,
                    detail=redact_text(str(error))[:200],
                    retry_in_s=pause,
                    fallback_share=self._fallback_share,
                )
            )

    def _announce_up(self, downtime: float) -> None:
        component = self.component
        if self._events is not None and component != "breaker":
            self._events.emit(RedisRecovered(component, downtime_s=downtime))

    # ------------------------------------------------------------------ calls

    def call(self, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run *script* (one round trip); :data:`MISSED` when Redis is unavailable or paused."""
        if not self.latch.admit():
            return MISSED
        if not self._may_hold:
            return self._call_through_pool(script, keys, args)
        held: Any = getattr(self._held, "connection", None)  # a holder, _BORROWS or None
        if held is _BORROWS:
            return self._call_through_pool(script, keys, args)
        try:
            now = time.monotonic()
            if held is None or held.generation != _fork_generation or now - held.used_at > _IDLE:
                if held is not None:
                    self._held.connection = None
                    if held.generation == _fork_generation:
                        held.give_back()  # idle for long: the pool checks it as it lends it
                    else:  # the parent's socket: not this pool's to take back
                        held.give_back.detach()
                        self._holders.give()
                if not self._holders.take():
                    self._held.connection = _BORROWS
                    return self._call_through_pool(script, keys, args)
                held = self._held.connection = _HeldConnection(
                    self.client.connection_pool, self._holders
                )
            held.used_at = now
            reply = _evalsha(held.connection, script, keys, args)
        except REDIS_ERRORS as error:
            if held is not None and self._held.connection is held:
                # It may hold an answer nobody read, or a closed socket: back to the pool,
                # which checks (and reconnects) a connection before it lends it again.
                self._held.connection = None
                held.give_back()
            self.latch.failed(error)
            return MISSED
        self.latch.succeeded()
        return reply

    def _call_through_pool(self, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """:meth:`call` by redis-py's own command path: for a client the caller passed in, and
        for a thread that found the link's holders full."""
        client = self.client
        try:
            try:
                reply = client.evalsha(script.sha, len(keys), *keys, *args)
            except NoScriptError:  # a restarted or flushed server: load it, once
                client.script_load(script.source)
                reply = client.evalsha(script.sha, len(keys), *keys, *args)
        except REDIS_ERRORS as error:
            self.latch.failed(error)
            return MISSED
        self.latch.succeeded()
        return reply

    async def acall(self, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Async twin of :meth:`call`, on the running loop's own client (and its connections)."""
        if not self.latch.admit():
            return MISSED
        try:
            given = self._given_async
            if given is None:
                client, idle = await self._loop_client_and_idle()
                reply = await _acall_on_loop(client.connection_pool, idle, script, keys, args)
            else:
                try:
                    reply = await given.evalsha(script.sha, len(keys), *keys, *args)
                except NoScriptError:
                    await given.script_load(script.source)
                    reply = await given.evalsha(script.sha, len(keys), *keys, *args)
        except REDIS_ERRORS as error:
            self.latch.failed(error)
            return MISSED
        self.latch.succeeded()
        return reply

    def run(self, operation: Callable[[redis.Redis], _T]) -> _T | _Missed:
        """``operation(client)`` on the sync client, through the latch (:data:`MISSED` if not)."""
        if not self.latch.admit():
            return MISSED
        try:
            reply = operation(self.client)
        except REDIS_ERRORS as error:
            self.latch.failed(error)
            return MISSED
        self.latch.succeeded()
        return reply

    # ------------------------------------------------------------------ one client per loop

    async def _loop_client_and_idle(self) -> tuple[redis.asyncio.Redis, _Idle]:
        """The running loop's own client and idle script connections (made on first use)."""
        loop = asyncio.get_running_loop()
        entry = self._loops.get(loop)
        if entry is not None:
            return entry[0], entry[2]
        with self._lock:
            # Loops closed without finalising their async generators: nothing can close their
            # connections any more (their loop is gone); let them be collected.
            for old in [old for old in self._loops if old.is_closed()]:
                del self._loops[old]
            client = redis.asyncio.Redis.from_url(
                self._url,
                socket_timeout=self._timeout,
                socket_connect_timeout=self._timeout,
                retry=AsyncRetry(NoBackoff(), 0),
            )
            guard = self._close_with(loop, client)
            idle: _Idle = []
            self._loops[loop] = (client, guard, idle)
        await anext(guard)  # registers the guard with this loop's async-generator finaliser
        return client, idle

    async def _close_with(
        self, loop: asyncio.AbstractEventLoop, client: redis.asyncio.Redis
    ) -> AsyncIterator[None]:
        # Parked until the loop shuts down (``loop.shutdown_asyncgens()``, run by asyncio.run,
        # asyncio.Runner and pytest-asyncio) or the link closes it: the loop still runs then, so
        # the client's connections close cleanly instead of leaking into a dead loop.
        try:
            yield
        finally:
            with self._lock:
                if self._loops.get(loop, (None, None, None))[0] is client:
                    del self._loops[loop]
            await client.aclose()

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Close the sync client's connections (async ones: :meth:`aclose`, or their loop's end)."""
        self.client.close()

    async def aclose(self) -> None:
        """Close the running loop's async client, and the sync client."""
        if self._given_async is not None:
            await self._given_async.aclose()
        else:
            entry = self._loops.get(asyncio.get_running_loop())
            if entry is not None:
                await entry[1].aclose()  # its ``finally`` closes the client
        self.close()

    @property
    def available(self) -> bool:
        """Whether the last exchange with Redis succeeded."""
        return self.latch.up

    @property
    def timeout(self) -> float:
        """Seconds a connect or a command may take (the socket timeout)."""
        return self._timeout

    def __repr__(self) -> str:
        state = "available" if self.latch.up else "unavailable"
        return f"RedisLink({self.component}, {redact_text(self._url)!r}, {state})"
