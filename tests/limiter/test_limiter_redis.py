"""The Redis limiter against a real Redis: the same answers as the core, one round trip per acquire,
shared budgets, keys, and what happens when Redis dies, hangs or comes back."""

from __future__ import annotations

import asyncio
import importlib
import multiprocessing
import random
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intercom_resilience._backends.base import Grant, Priority
from intercom_resilience._backends.redis_limiter import MAX_CARRIED, RedisLimiter, decode_bucket
from intercom_resilience._clock import SystemClock, VirtualClock
from intercom_resilience._config import RateLimitPolicy
from intercom_resilience._core.limiter import MICROS, DualLimiter
from intercom_resilience._core.requests import credentials_fingerprint
from intercom_resilience._core.responses import RateLimitInfo
from intercom_resilience._events import EventLog
from intercom_resilience.events import Event
from tests.redis_support import RedisServer, free_port

FG, BG = Priority.INTERACTIVE, Priority.BACKGROUND
TRANSITIONS = ("limiter.redis_unavailable", "limiter.redis_recovered")


class Recorder:
    """An event hook keeping the limiter's transitions."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, event: Event) -> None:
        if event.name in TRANSITIONS:
            self.events.append((event.name, event.fields()))

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.events]


def mode(lim: RedisLimiter) -> str:
    """Which budget the limiter is using (a function, so mypy does not narrow the property)."""
    return "redis" if lim.available else "local"


def max_in_any_window(times: Sequence[float], window: float) -> int:
    ordered = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(ordered):
        while ordered[lo] < t - window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


# --------------------------------------------------------------------------- no Redis needed


def test_a_missing_redis_py_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    name = "intercom_resilience._backends.redis_limiter"
    monkeypatch.delitem(sys.modules, name)
    monkeypatch.delitem(sys.modules, "intercom_resilience._backends._redis")
    monkeypatch.setitem(sys.modules, "redis", None)  # makes "import redis" raise ImportError
    with pytest.raises(ImportError, match=r"intercom-resilience\[redis\]"):
        importlib.import_module(name)


def test_an_unreachable_redis_falls_back_and_never_raises() -> None:
    recorder = Recorder()
    clock = VirtualClock()
    policy = RateLimitPolicy(app_per_minute=240, burst=1.0)  # 40 per window, 10 locally
    lim = RedisLimiter(
        policy, f"redis://127.0.0.1:{free_port()}/0", "s", clock, EventLog([recorder])
    )
    grants = [lim.acquire(FG) for _ in range(12)]
    lim.observe(200, RateLimitInfo(40, 30, clock.time() + 5))
    assert [g.granted for g in grants] == [True] * 10 + [False] * 2
    assert mode(lim) == "local"
    assert recorder.names == ["limiter.redis_unavailable"]  # once, not once per call
    assert recorder.events[0][1]["error"] == "ConnectionError"
    lim.close()


async def test_an_unreachable_redis_falls_back_in_async_code_too() -> None:
    recorder = Recorder()
    lim = RedisLimiter(
        RateLimitPolicy(app_per_minute=240, burst=1.0),
        f"redis://127.0.0.1:{free_port()}/0",
        "s",
        VirtualClock(),
        EventLog([recorder]),
    )
    grants = [await lim.aacquire(FG) for _ in range(11)]
    await lim.aobserve(429, None)
    assert sum(g.granted for g in grants) == 10
    assert not (await lim.aacquire(FG)).granted
    assert recorder.names == ["limiter.redis_unavailable"]
    await lim.aclose()


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never answers: Redis hung, not down."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock.getsockname()[1]


def test_a_slow_redis_is_treated_as_down(silent_server: int) -> None:
    recorder = Recorder()
    lim = RedisLimiter(
        RateLimitPolicy(app_per_minute=240, burst=1.0),
        f"redis://127.0.0.1:{silent_server}/0",
        "s",
        VirtualClock(),
        EventLog([recorder]),
        socket_timeout=0.05,
    )
    assert all(lim.acquire(FG).granted for _ in range(5))
    assert recorder.names == ["limiter.redis_unavailable"]
    assert recorder.events[0][1]["error"] == "TimeoutError"
    lim.close()


# --------------------------------------------------------------------------- the shared Redis


_made: list[RedisLimiter] = []


@pytest.fixture(autouse=True)
def _close_limiters() -> Iterator[None]:
    yield
    while _made:
        _made.pop().close()


def make(
    redis_url: str,
    key_prefix: str,
    policy: RateLimitPolicy,
    clock: VirtualClock | SystemClock,
    scope: str = "app",
    **kwargs: Any,
) -> RedisLimiter:
    """A limiter on the shared Redis, closed after the test. A generous timeout: these tests are
    about the shared budget, and a loaded CI machine must not push them into the fallback."""
    kwargs.setdefault("socket_timeout", 2.0)
    # No background flush: a flush racing an acquire would reorder them (a test of its own).
    kwargs.setdefault("observe_flush_after", None)
    lim = RedisLimiter(policy, redis_url, scope, clock, key_prefix=key_prefix, **kwargs)
    _made.append(lim)
    return lim


@st.composite
def scripts(draw: st.DrawFn) -> tuple[RateLimitPolicy, list[tuple[Any, ...]], bool]:
    window = draw(st.sampled_from([1.0, 10.0]))
    policy = RateLimitPolicy(
        app_per_minute=round(draw(st.integers(1, 30)) * 60 / window),
        workspace_per_minute=round(draw(st.integers(1, 30)) * 60 / window),
        window=window,
        burst=draw(st.floats(0.01, 1.0)),
        background_reserve=draw(st.floats(0.0, 0.9)),
    )
    w_us = round(window * MICROS)
    op = st.one_of(
        st.tuples(st.just("wait"), st.integers(0, 2 * w_us) | st.integers(0, 5_000)),
        st.tuples(st.just("acquire"), st.booleans(), st.integers(1, 12)),
        st.tuples(
            st.just("observe"),
            st.sampled_from([200, 429, None]),
            st.none() | st.integers(0, 35),
            # "aligned": the next window boundary, the same value for a whole window (as Intercom).
            st.none() | st.just("aligned") | st.integers(-w_us, 3 * w_us),
            st.none() | st.integers(1, 35),
        ),
        st.tuples(st.just("flush")),  # buffered observations sent on their own
    )
    return policy, draw(st.lists(op, min_size=1, max_size=40)), draw(st.booleans())


@pytest.mark.redis
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(scripts())
def test_redis_answers_exactly_like_the_core(
    redis_url: str,
    redis_client: redis.Redis,
    key_prefix: str,
    script: tuple[RateLimitPolicy, list[tuple[Any, ...]], bool],
) -> None:
    """The Lua transcription makes the same decision as the Python core on every operation, with
    both buckets in one key (the app's own workspace) and in two (a named, shared workspace);
    observations are carried by the next acquire."""
    policy, ops, named_workspace = script
    clock = VirtualClock()
    core = DualLimiter.from_policy(policy)
    lim = make(
        redis_url,
        key_prefix,
        policy,
        clock,
        scope=uuid.uuid4().hex,
        workspace_scope=uuid.uuid4().hex if named_workspace else None,
        use_server_time=False,
        client=redis_client,
    )
    assert len(lim.keys) == (2 if named_workspace else 1)
    for op in ops:
        if op[0] == "wait":
            clock.advance(op[1] / MICROS)
        elif op[0] == "acquire":
            priority = BG if op[1] else FG
            for _ in range(op[2]):
                assert lim.acquire(priority) == core.acquire(clock.time(), priority)
        elif op[0] == "flush":
            lim.flush()
        else:
            status, remaining, offset, limit = op[1:]
            reset: float | None
            if offset == "aligned":
                reset = float(int(clock.time() // policy.window + 1) * policy.window)
            else:
                reset = None if offset is None else clock.time() + offset / MICROS
            info = (
                None
                if remaining is None and reset is None
                else RateLimitInfo(limit, remaining, reset)
            )
            lim.observe(status, info)
            core.observe(clock.time(), status, info)
    assert lim.acquire(BG) == core.acquire(clock.time(), BG)  # carries any last observations
    assert mode(lim) == "redis"


@pytest.mark.redis
@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.tuples(st.integers(0, 60), st.integers(0, 30), st.booleans()), max_size=20))
def test_redis_headers_within_one_window_match_the_core(
    redis_url: str,
    redis_client: redis.Redis,
    key_prefix: str,
    reports: list[tuple[int, int, bool]],
) -> None:
    """Header-heavy scripts in one server window, where "only ever lower" matters most."""
    policy = RateLimitPolicy(app_per_minute=360, burst=0.5)  # 60 per window, burst of 30
    clock = VirtualClock()
    core = DualLimiter.from_policy(policy)
    lim = make(
        redis_url,
        key_prefix,
        policy,
        clock,
        scope=uuid.uuid4().hex,
        use_server_time=False,
        client=redis_client,
    )
    reset = clock.time() + 10.0
    for remaining, attempts, background in reports:
        info = RateLimitInfo(60, remaining, reset)
        lim.observe(200, info)
        core.observe(clock.time(), 200, info)
        priority = BG if background else FG
        for _ in range(attempts):
            assert lim.acquire(priority) == core.acquire(clock.time(), priority)
        clock.advance(0.01)


class CountingRedis(redis.Redis):
    """Records the name of every command the client sends."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent: list[str] = []

    def execute_command(self, *args: Any, **options: Any) -> Any:
        self.sent.append(str(args[0]).upper())
        return super().execute_command(*args, **options)  # type: ignore[no-untyped-call]


@pytest.mark.redis
def test_one_round_trip_per_acquire_observations_included(
    redis_url: str, redis_client: redis.Redis, key_prefix: str
) -> None:
    """Routine headers ride on the next acquire (it used to be two EVALSHA per call); a 429 and
    an empty window go out at once; close sends what is left."""
    client = CountingRedis(connection_pool=redis.ConnectionPool.from_url(redis_url))
    lim = make(redis_url, key_prefix, RateLimitPolicy(), SystemClock(), client=client)
    lim.acquire(FG)  # may load the script first (NOSCRIPT)
    client.sent.clear()
    reset = time.time() + 5
    for remaining in range(1600, 1580, -1):
        assert lim.acquire(FG).granted
        lim.observe(200, RateLimitInfo(1666, remaining, reset))
        lim.observe(None, None)  # a network failure: nothing to tell Redis
    assert client.sent == ["EVALSHA"] * 20
    assert lim.acquire(FG).granted  # carries the last observation
    assert decode_bucket(redis_client.get(lim.keys[0]))["allow"] == 1581 - 1
    lim.observe(200, RateLimitInfo(1666, 0, reset))  # the window is empty: the fleet must know
    assert client.sent == ["EVALSHA"] * 22
    assert decode_bucket(redis_client.get(lim.keys[0]))["allow"] == 0
    lim.observe(429, None)
    assert client.sent == ["EVALSHA"] * 23
    lim.observe(200, RateLimitInfo(1666, 5, reset + 10))
    lim.close()  # flushes the buffered one
    assert client.sent == ["EVALSHA"] * 24
    assert decode_bucket(redis_client.get(lim.keys[0]))["allow"] == 5
    client.close()


@pytest.mark.redis
def test_a_routine_observation_no_acquire_carries_is_sent_on_its_own(
    redis_url: str, redis_client: redis.Redis, key_prefix: str
) -> None:
    lim = make(redis_url, key_prefix, RateLimitPolicy(), SystemClock(), observe_flush_after=0.02)
    assert lim.acquire(FG).granted
    lim.observe(200, RateLimitInfo(1666, 1234, time.time() + 5))
    deadline = time.monotonic() + 10
    while decode_bucket(redis_client.get(lim.keys[0]))["allow"] != 1234:
        assert time.monotonic() < deadline, "the buffered observation was never sent"
        time.sleep(0.01)


@pytest.mark.redis
def test_observations_beyond_what_one_call_carries_are_sent(
    redis_url: str, redis_client: redis.Redis, key_prefix: str
) -> None:
    client = CountingRedis(connection_pool=redis.ConnectionPool.from_url(redis_url))
    lim = make(redis_url, key_prefix, RateLimitPolicy(), SystemClock(), client=client)
    lim.acquire(FG)
    client.sent.clear()
    reset = time.time() + 5
    for remaining in range(100, 100 - MAX_CARRIED - 1, -1):  # one more than a call carries
        lim.observe(200, RateLimitInfo(1666, remaining, reset))
    assert client.sent == ["EVALSHA"]
    assert decode_bucket(redis_client.get(lim.keys[0]))["allow"] == 100 - MAX_CARRIED
    client.close()


@pytest.mark.redis
def test_observations_from_many_threads_all_reach_redis(
    redis_url: str, redis_client: redis.Redis, key_prefix: str
) -> None:
    """Threads buffer and send observations concurrently (a burst beyond what one call carries is
    sent at once): the window's lowest count, wherever it arrives, is what Redis ends with."""
    lim = make(redis_url, key_prefix, RateLimitPolicy(), SystemClock())
    assert lim.acquire(FG).granted
    reset = time.time() + 30
    counts = list(range(1200, 1600))
    random.Random(7).shuffle(counts)
    chunks = [counts[i::8] for i in range(8)]

    def work(chunk: list[int]) -> None:
        for remaining in chunk:
            lim.observe(200, RateLimitInfo(1666, remaining, reset))

    threads = [threading.Thread(target=work, args=(chunk,)) for chunk in chunks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    lim.flush()
    assert decode_bucket(redis_client.get(lim.keys[0]))["allow"] == 1200
    assert mode(lim) == "redis"


@pytest.mark.redis
def test_keys_are_fingerprinted_prefixed_and_expire(
    redis_url: str, redis_client: redis.Redis, key_prefix: str
) -> None:
    token = "dG9rOnNlY3JldC10b2tlbg=="
    scope = credentials_fingerprint(token)
    lim = make(redis_url, key_prefix, RateLimitPolicy(), SystemClock(), scope=scope)
    lim.acquire(FG)
    named = make(
        redis_url, key_prefix, RateLimitPolicy(), SystemClock(), scope=scope, workspace_scope="ws"
    )
    named.acquire(FG)
    keys = sorted(k.decode() for k in redis_client.scan_iter(match=f"{key_prefix}:*"))
    own, shared = f"{key_prefix}:limiter:{{{scope}}}", f"{key_prefix}:limiter:{{ws}}"
    # A workspace of its own lives in the app's key; a named one is a key of its own.
    assert keys == sorted([f"{own}:app:{scope}", f"{shared}:app:{scope}", f"{shared}:workspace"])
    assert lim.keys == (f"{own}:app:{scope}",)
    assert all(token not in key for key in keys)
    for key in keys:
        # Idle state vanishes: one window, one slot and the GCRA lag, plus at most 1.5 s.
        assert 0 < redis_client.pttl(key) <= 12_000


@pytest.mark.redis
def test_a_key_of_the_earlier_hash_layout_means_the_local_share(
    redis_url: str, redis_client: redis.Redis, key_prefix: str
) -> None:
    """A process of the release before meets a string; this one meets its hash: WRONGTYPE is an
    unavailable Redis (the local share), never an error raised to the caller."""
    lim = make(redis_url, key_prefix, RateLimitPolicy(), SystemClock())
    redis_client.hset(lim.keys[0], mapping={"tat": 0, "total": 3})
    redis_client.pexpire(lim.keys[0], 10_000)
    assert lim.acquire(FG).granted
    assert mode(lim) == "local"


@pytest.mark.redis
def test_apps_of_one_workspace_share_its_budget(redis_url: str, key_prefix: str) -> None:
    policy = RateLimitPolicy(app_per_minute=600, workspace_per_minute=900, burst=1.0)  # 100 / 150
    clock = VirtualClock()
    one, two = (
        make(
            redis_url,
            key_prefix,
            policy,
            clock,
            scope=s,
            workspace_scope="ws",
            use_server_time=False,
        )
        for s in ("app-one", "app-two")
    )
    assert sum(one.acquire(FG).granted for _ in range(120)) == 100  # the app's own quota
    assert sum(two.acquire(FG).granted for _ in range(120)) == 50  # what the workspace has left


@pytest.mark.redis
def test_a_429_seen_by_one_process_pauses_the_whole_fleet(redis_url: str, key_prefix: str) -> None:
    first, second = (
        make(redis_url, key_prefix, RateLimitPolicy(), SystemClock()) for _ in range(2)
    )
    assert second.acquire(FG).granted
    first.observe(429, RateLimitInfo(1666, 0, time.time() + 30))
    refused = second.acquire(FG)
    assert not refused.granted
    assert 25 < refused.wait <= 30


@pytest.mark.redis
async def test_async_twins_share_the_budget_with_sync_callers(
    redis_url: str, key_prefix: str
) -> None:
    policy = RateLimitPolicy(app_per_minute=60, burst=1.0)  # 10 per window
    lim = make(redis_url, key_prefix, policy, SystemClock())
    assert sum(lim.acquire(FG).granted for _ in range(4)) == 4
    grants = [await lim.aacquire(FG) for _ in range(8)]
    assert [g.granted for g in grants] == [True] * 6 + [False] * 2
    await lim.aobserve(429, RateLimitInfo(10, 0, time.time() + 20))
    assert (await lim.aacquire(FG)).wait > 15
    assert mode(lim) == "redis"
    await lim.aclose()
    lim.close()


@pytest.mark.redis
def test_one_limiter_serves_several_event_loops_and_threads(
    redis_url: str, key_prefix: str
) -> None:
    """The second ``asyncio.run`` used to raise ``RuntimeError: Event loop is closed``: the async
    client was bound to the first loop. Now each loop has its own, closed with the loop."""
    recorder = Recorder()
    lim = make(redis_url, key_prefix, RateLimitPolicy(), SystemClock(), events=EventLog([recorder]))

    async def two() -> list[bool]:
        first = await lim.aacquire(FG)
        await lim.aobserve(200, RateLimitInfo(1666, 1600, time.time() + 5))
        return [first.granted, (await lim.aacquire(FG)).granted]

    assert [asyncio.run(two()) for _ in range(3)] == [[True, True]] * 3
    results: list[list[bool]] = []
    threads = [
        threading.Thread(target=lambda: results.extend(asyncio.run(two()) for _ in range(2)))
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert results == [[True, True]] * 6
    assert mode(lim) == "redis"
    assert recorder.events == []  # Redis answered every call: no fallback
    assert decode_bucket(redis.Redis.from_url(redis_url).get(lim.keys[0]))["total"] == 18


# --------------------------------------------------------------------------- private servers


@pytest.mark.redis
def test_a_flushed_script_cache_is_reloaded(redis_server: RedisServer) -> None:
    lim = RedisLimiter(RateLimitPolicy(), redis_server.url, "s", SystemClock(), socket_timeout=2.0)
    assert lim.acquire(FG).granted
    redis.Redis.from_url(redis_server.url).script_flush()
    assert lim.acquire(FG).granted
    assert mode(lim) == "redis"
    lim.close()


@pytest.mark.redis
def test_redis_dying_and_returning(redis_server: RedisServer) -> None:
    """Calls keep flowing at the local share while Redis is dead; one event each way."""
    recorder = Recorder()
    clock = VirtualClock()
    # 40 per window in Redis; the local share is 25% of it: 10 per window.
    policy = RateLimitPolicy(app_per_minute=240, burst=1.0, redis_fallback_share=0.25)
    lim = RedisLimiter(
        policy,
        redis_server.url,
        "s",
        clock,
        EventLog([recorder]),
        retry_interval=5.0,
        socket_timeout=2.0,
    )
    assert all(lim.acquire(FG).granted for _ in range(4))
    assert recorder.names == []

    redis_server.stop()
    admitted = [clock.time()] * 4
    while len(admitted) < 4 + 36:  # three and a half windows of the local share
        grant = lim.acquire(FG)
        if grant.granted:
            admitted.append(clock.time())
        else:
            clock.advance(grant.wait)
    assert mode(lim) == "local"
    assert recorder.names == ["limiter.redis_unavailable"]  # probes every 5 s failed silently
    assert max_in_any_window(admitted, 10.0) <= 10  # the local share, Redis's grants included
    assert admitted[-1] - admitted[0] < 31.0  # the calls kept flowing at that share

    redis_server.start()  # an empty Redis on the same port
    clock.advance(5.0)  # the next probe is due
    assert lim.acquire(FG).granted
    assert mode(lim) == "redis"
    assert recorder.names == list(TRANSITIONS)
    # The 10 calls admitted alone within the last window were added to the shared budget.
    state = decode_bucket(redis.Redis.from_url(redis_server.url).get(lim.keys[0]))
    assert state["total"] == 10 + 1
    assert sum(lim.acquire(FG).granted for _ in range(60)) == 40 - 11
    assert recorder.names == list(TRANSITIONS)
    lim.close()


# --------------------------------------------------------------------------- a fleet


class RecordingLimiter(RedisLimiter):
    """Keeps the Redis server time of every admission (the script's full answers carry it)."""

    admitted: list[int]
    _modes = (b"0t", b"1t")

    def _grant(self, reply: Any) -> Grant:
        grant = super()._grant(reply)
        if grant.granted:
            self.admitted.append(int(reply[3]))
        return grant


def fleet_worker(
    url: str, prefix: str, seconds: float, barrier: Any, results: Any
) -> None:  # pragma: no cover - runs in a child process
    recorder = Recorder()
    policy = RateLimitPolicy(app_per_minute=3000, workspace_per_minute=6000, window=1.0, burst=0.2)
    lim = RecordingLimiter(
        policy,
        url,
        "fleet",
        SystemClock(),
        EventLog([recorder]),
        key_prefix=prefix,
        socket_timeout=5.0,
    )
    lim.admitted = []
    refused = 0
    barrier.wait()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        grant = lim.acquire(FG)
        if not grant.granted:
            refused += 1
            time.sleep(grant.wait)
    results.put((lim.admitted, refused, recorder.names))
    lim.close()


@pytest.mark.redis
def test_four_processes_share_one_budget(redis_url: str, key_prefix: str) -> None:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(4)
    results = context.Queue()
    workers = [
        context.Process(target=fleet_worker, args=(redis_url, key_prefix, 2.0, barrier, results))
        for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
        assert worker.exitcode == 0
    admitted = [t for times, _, _ in outcomes for t in times]
    for times, refused, events in outcomes:
        assert events == []  # Redis answered throughout: this is the shared budget at work
        assert times
        assert refused > 0  # every process wanted more than it got
    # 50 per 1-second window, for the four processes together, in any window.
    assert max_in_any_window(admitted, 1_000_000) <= 50
    assert len(admitted) > 50
