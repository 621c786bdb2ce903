"""Acquire throughput of the rate limiter: in memory, and with Redis (one round trip per call).

Every figure is printed next to a baseline measured in the same run, in **interleaved rounds**
(each round measures every side once, in a rotating order, so a noisy neighbour slows all sides
alike; an earlier version ran every baseline round before any subject round), as the median of
the rounds with its spread (min–max). Each target is printed on a ``target:`` line with its
measured ratio or figure and whether it holds.

* in memory, one thread: against a bare ``threading.Lock`` acquire/release loop and a dict
  increment (the floor of any thread-safe Python counter). Target: >= 200,000 acquires/s.
* in memory, 8 threads on one limiter: against the same core with the whole acquire under the
  lock (how it was before the lock was narrowed). Target: >= 400,000 acquires/s.
* with Redis (skipped when Redis is not reachable), against a ``PING`` loop on a connection of
  its own (the floor of any one-round-trip design), and against the single-quota peers
  ``pyrate-limiter`` (GCRA on a Redis hash) and ``limits`` (fixed window, moving window, sliding
  window counter), when installed (``pip install pyrate-limiter limits``: a bench-only extra,
  never a dependency). ``limits`` enforcing both quotas (two ``hit`` calls) is printed too. The
  Redis CPU per call is read from ``INFO commandstats`` (``cmdstat_evalsha`` deltas; Lua's inner
  commands are included in it). Commandstats are server-wide: when another client ran
  ``EVALSHA`` during a measurement, a note says so. Those figures are "cold": one call at a
  time, as the library runs, so they include what a loaded machine adds (the Redis process
  descheduled, caches cold between calls). The scripts' own cost is measured "warm" too: batches
  of ``EVALSHA`` in one pipeline, run back to back by Redis, for our script (one key, and two for
  a named workspace) and the peers' scripts. Targets: Redis CPU per acquire <= 12 µs while
  enforcing both quotas (cold and warm; judged on the least-disturbed round, since another
  process only ever adds to a CPU figure, with the median printed beside it), acquires/s >= 1.0x
  the best single-quota peer (the median of round-by-round ratios), one round trip per call
  (acquire, then a response's headers observed).

Last, what a facade call pays for the Redis limiter (``--only facade``, or with the Redis
section): ``contacts.find`` on the in-process fake through a facade with the in-memory limiter
and one with the Redis limiter, in interleaved rounds of process CPU time. Informational (no
target): inside whole calls a round trip costs several times its CPU in a loop of acquires,
because waiting for the answer leaves the caches cold for the SDK's work that follows.

The Redis limiter is measured twice: with quotas no loop can reach (every acquire checks and
spends both buckets: the full path) and at Intercom's quotas (10,000/min app, 25,000/min
workspace, in 10-s windows), where most acquires are refused once the burst is spent. The peers
get quotas no loop can reach too (each admits every call: the same work as the full path).

Run: ``python benchmarks/limiter.py [--seconds 0.3] [--rounds 5] [--redis-url URL]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from intercom_resilience._backends.base import Grant, Priority
from intercom_resilience._backends.memory_limiter import MemoryLimiter
from intercom_resilience._clock import SystemClock
from intercom_resilience._config import RateLimitPolicy
from intercom_resilience._core.limiter import DualLimiter
from intercom_resilience._core.responses import RateLimitInfo

# A quota no loop can reach measures the full path (checks, then spending both buckets); the
# default quota measures the refusal path once the window is spent.
UNTHROTTLED = RateLimitPolicy(app_per_minute=10**12, workspace_per_minute=10**12)
FG = Priority.INTERACTIVE
#: Redis CPU per acquire the limiter must stay within, in µs (``INFO commandstats``).
REDIS_CPU_TARGET = 12.0

Side = Callable[[], tuple[float, float | None]]


def rate(loop: Callable[[int], None], seconds: float) -> float:
    """Operations per second of ``loop(n)`` (which performs *n* operations), over ~*seconds*."""
    n = 200
    while True:  # grow the batch until one batch takes long enough to time reliably
        start = time.perf_counter()
        loop(n)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return n / elapsed
        n = int(n * max(2.0, seconds / max(elapsed, 1e-6) * 1.2))


def interleave(sides: dict[str, Side], rounds: int) -> dict[str, list[tuple[float, float | None]]]:
    """Every side once per round, the order rotating from round to round."""
    names = list(sides)
    results: dict[str, list[tuple[float, float | None]]] = {name: [] for name in names}
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            results[name].append(sides[name]())
    return results


def median(values: list[float]) -> float:
    return statistics.median(values)


def spread(values: list[float], unit: str = "/s", digits: int = 0) -> str:
    return (
        f"{median(values):>12,.{digits}f}{unit} median"
        f"   (min {min(values):,.{digits}f}, max {max(values):,.{digits}f}, "
        f"{len(values)} rounds)"
    )


def verdict(holds: bool) -> str:
    return "holds" if holds else "DOES NOT HOLD"


def target(name: str, measured: str, holds: bool) -> None:
    print(f"  target: {name}: {measured}: {verdict(holds)}")


# --------------------------------------------------------------------------- in memory


def lock_loop(n: int) -> None:
    lock = threading.Lock()
    for _ in range(n):
        with lock:
            pass


def dict_loop(n: int) -> None:
    counts: dict[str, int] = {}
    for _ in range(n):
        counts["k"] = counts.get("k", 0) + 1


def limiter_loop(policy: RateLimitPolicy) -> Callable[[int], None]:
    limiter = MemoryLimiter(policy, SystemClock())

    def loop(n: int) -> None:
        acquire = limiter.acquire
        for _ in range(n):
            acquire(FG)

    return loop


def rate_only(loop: Callable[[int], None], seconds: float) -> Side:
    return lambda: (rate(loop, seconds), None)


def memory(seconds: float, rounds: int) -> None:
    results = interleave(
        {
            "baseline: Lock acquire/release": rate_only(lock_loop, seconds),
            "baseline: dict increment": rate_only(dict_loop, seconds),
            "MemoryLimiter.acquire, granted": rate_only(limiter_loop(UNTHROTTLED), seconds),
            "MemoryLimiter.acquire, refused": rate_only(limiter_loop(RateLimitPolicy()), seconds),
        },
        rounds,
    )
    rates = {name: [value for value, _ in values] for name, values in results.items()}
    print(f"in memory (one thread, {rounds} interleaved rounds):")
    for name, values in rates.items():
        print(f"  {name:<36} {spread(values)}")
    lock = median(rates["baseline: Lock acquire/release"])
    for name in ("MemoryLimiter.acquire, granted", "MemoryLimiter.acquire, refused"):
        value = median(rates[name])
        target(
            f"{name} >= 200,000/s",
            f"{value:,.0f}/s ({value / lock:.2f}x a bare Lock)",
            value >= 200_000,
        )


class LockedWhole:
    """The limiter as it was before the lock was narrowed: clock, decision and answer all under
    the lock (the same core, so the two sides differ only in what the lock covers)."""

    def __init__(self, policy: RateLimitPolicy) -> None:
        self._core = DualLimiter.from_policy(policy)
        self._clock = SystemClock()
        self._lock = threading.Lock()

    def acquire(self, priority: Priority = FG) -> Grant:
        with self._lock:
            return self._core.acquire(self._clock.time(), priority)


def threaded_rate(acquire: Callable[[Priority], Grant], threads: int, seconds: float) -> float:
    """Acquires per second of *threads* threads calling *acquire* on one limiter for *seconds*."""
    stop = threading.Event()
    counts = [0] * threads

    def work(i: int) -> None:
        n = 0
        while not stop.is_set():
            for _ in range(200):
                acquire(FG)
            n += 200
        counts[i] = n

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    time.sleep(seconds)
    stop.set()
    for worker in workers:
        worker.join()
    return sum(counts) / (time.perf_counter() - start)


def threaded(seconds: float, rounds: int, threads: int = 8) -> None:
    results = interleave(
        {
            "whole acquire under the lock": lambda: (
                threaded_rate(LockedWhole(UNTHROTTLED).acquire, threads, seconds),
                None,
            ),
            "MemoryLimiter": lambda: (
                threaded_rate(MemoryLimiter(UNTHROTTLED, SystemClock()).acquire, threads, seconds),
                None,
            ),
        },
        rounds,
    )
    rates = {name: [value for value, _ in values] for name, values in results.items()}
    print(f"in memory ({threads} threads, one limiter, {rounds} interleaved rounds):")
    for name, values in rates.items():
        print(f"  {name:<36} {spread(values)}")
    value = median(rates["MemoryLimiter"])
    ratio = value / median(rates["whole acquire under the lock"])
    target(
        f"MemoryLimiter at {threads} threads >= 400,000/s",
        f"{value:,.0f}/s ({ratio:.2f}x whole-lock)",
        value >= 400_000,
    )


# --------------------------------------------------------------------------- with Redis


class EvalshaMeter:
    """Redis CPU per ``EVALSHA`` over a loop, from ``INFO commandstats`` deltas."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.shared = False  # another client ran EVALSHA during a measurement
        #: script calls per operation, per side and round
        self.calls: dict[str, list[float]] = {}

    def _read(self) -> tuple[int, int]:
        stats = self.client.info("commandstats").get("cmdstat_evalsha", {})
        return int(stats.get("calls", 0)), int(stats.get("usec", 0))

    def measure(
        self, name: str, loop: Callable[[int], None], seconds: float, scripts_per_op: int
    ) -> Side:
        """A side: the loop's rate and the Redis CPU (µs) of the scripts one operation runs
        (*scripts_per_op*: how many it should run; more means another client's were counted)."""

        def side() -> tuple[float, float | None]:
            counted: list[int] = []

            def counting(n: int) -> None:
                counted.append(n)
                loop(n)

            calls_before, usec_before = self._read()
            value = rate(counting, seconds)
            calls_after, usec_after = self._read()
            calls = calls_after - calls_before
            self.calls.setdefault(name, []).append(calls / max(1, sum(counted)))
            if calls > sum(counted) * scripts_per_op:
                self.shared = True
            return value, (usec_after - usec_before) / max(1, sum(counted))

        return side


@contextmanager
def peers(url: str, prefix: str) -> Iterator[dict[str, Callable[[int], None]]]:
    """The single-quota peers that are installed (and ``limits`` enforcing both quotas)."""
    loops: dict[str, Callable[[int], None]] = {}
    closers: list[Callable[[], None]] = []
    try:
        import redis
        from pyrate_limiter import GCRA, Duration, Limiter, Rate, RedisStateStore, StateBucket

        client = redis.Redis.from_url(url)
        closers.append(client.close)
        bucket = StateBucket(
            [Rate(10**9, Duration.MINUTE)],
            algorithm=GCRA(),
            store=RedisStateStore(client, f"{prefix}:pyrate"),
        )
        pyrate = Limiter(bucket)

        def pyrate_loop(n: int) -> None:
            acquire = pyrate.try_acquire
            for _ in range(n):
                acquire("bench", blocking=False)

        loops["pyrate-limiter GCRA"] = pyrate_loop
    except ImportError as error:
        print(f"  (pyrate-limiter not installed: {error})")
    try:
        from limits import RateLimitItemPerMinute, storage, strategies

        store = storage.RedisStorage(url)
        closers.append(store.storage.close)
        huge = RateLimitItemPerMinute(10**9)
        other = RateLimitItemPerMinute(10**9 + 1)  # another key: the workspace's
        for name, strategy in (
            ("limits fixed window", strategies.FixedWindowRateLimiter),
            ("limits moving window", strategies.MovingWindowRateLimiter),
            ("limits sliding window counter", strategies.SlidingWindowCounterRateLimiter),
        ):
            limiter = strategy(store)

            def loop(n: int, hit: Callable[..., bool] = limiter.hit, key: str = name) -> None:
                for _ in range(n):
                    hit(huge, prefix, key)  # a key per strategy: their layouts differ

            loops[name] = loop
        both = strategies.FixedWindowRateLimiter(store)

        def both_loop(n: int) -> None:
            hit = both.hit
            for _ in range(n):
                if hit(huge, prefix, "app"):
                    hit(other, prefix, "workspace")

        loops["limits fixed window, both quotas"] = both_loop
    except ImportError as error:
        print(f"  (limits not installed: {error})")
    try:
        yield loops
    finally:
        for close in closers:
            close()


def with_redis(url: str, seconds: float, rounds: int) -> None:
    try:
        import redis

        from intercom_resilience._backends.redis_limiter import RedisLimiter
    except ImportError as error:
        print(f"with Redis: skipped ({error})")
        return
    client = redis.Redis.from_url(url, socket_timeout=2)
    try:
        client.ping()
    except (redis.RedisError, OSError) as error:
        print(f"with Redis: skipped, {url} unreachable ({error})")
        return
    prefix = f"intercom-resilience-bench:{uuid.uuid4().hex[:8]}"
    print(f"with Redis at {url} (one process, {rounds} interleaved rounds):")
    meter = EvalshaMeter(client)
    with ExitStack() as stack:
        full, quota, call = (
            # No background flush: a batch's last observation rides on the next batch's first
            # acquire instead of landing, alone, in another side's measurement.
            RedisLimiter(
                policy,
                url,
                name,
                SystemClock(),
                key_prefix=prefix,
                socket_timeout=2.0,
                observe_flush_after=None,
            )
            for policy, name in (
                (UNTHROTTLED, "full"),
                (RateLimitPolicy(), "quota"),
                (UNTHROTTLED, "call"),
            )
        )
        for limiter in (full, quota, call):
            stack.callback(limiter.close)
        pinger = redis.Redis.from_url(url, socket_timeout=2)
        stack.callback(pinger.close)
        stack.callback(client.close)
        stack.callback(lambda: cleanup(client, prefix))

        def ping_loop(n: int) -> None:
            for _ in range(n):
                pinger.ping()

        def acquire_loop(limiter: RedisLimiter) -> Callable[[int], None]:
            def loop(n: int) -> None:
                acquire = limiter.acquire
                for _ in range(n):
                    acquire(FG)

            return loop

        headers = RateLimitInfo(10**9, 10**8, time.time() + 3600)

        def call_loop(n: int) -> None:
            # What a facade call does with the limiter: acquire, send, observe the headers.
            acquire, observe = call.acquire, call.observe
            for _ in range(n):
                acquire(FG)
                observe(200, headers)

        sides: dict[str, Side] = {
            "baseline: PING round trip": rate_only(ping_loop, seconds),
            BOTH: meter.measure(BOTH, acquire_loop(full), seconds, 1),
            AT_QUOTA: meter.measure(AT_QUOTA, acquire_loop(quota), seconds, 1),
            CALL: meter.measure(CALL, call_loop, seconds, 1),
        }
        peer_loops = stack.enter_context(peers(url, prefix))
        for name, loop in peer_loops.items():
            scripts = 2 if "both quotas" in name else 1
            sides[name] = meter.measure(name, loop, seconds, scripts)
        for limiter in (full, quota, call):
            limiter.acquire(FG)  # loads the script
        for loop in peer_loops.values():
            loop(1)  # loads theirs (a NOSCRIPT answer would count as a call)
        results = interleave(sides, rounds)
        report_redis(results, peer_loops, meter.calls)
        if meter.shared:
            print(
                "  note: another client ran EVALSHA on this server during some rounds: the CPU "
                "figures include its share (use a private server for clean ones)"
            )
        if not all(limiter.available for limiter in (full, quota, call)):
            print("  WARNING: a limiter fell back to its local share during the run")
        warm_scripts(client, url, prefix, rounds)


def warm_scripts(client: Any, url: str, prefix: str, rounds: int, batch: int = 500) -> None:
    """Redis CPU of each script alone: EVALSHA batches sent in one pipeline, so Redis runs them
    back to back (warm caches, no wait for the client in between): the scripts' own cost."""
    import time as clock

    from intercom_resilience._backends.redis_limiter import RedisLimiter

    scripts: dict[str, tuple[str, list[str], Callable[[], list[Any]]]] = {}
    for name, workspace in (("RedisLimiter, one key", None), ("RedisLimiter, two keys", "ws")):
        limiter = RedisLimiter(
            UNTHROTTLED, url, name[-8:], SystemClock(), key_prefix=prefix, workspace_scope=workspace
        )
        limiter.acquire(FG)  # loads it
        scripts[name] = (limiter._script.sha, list(limiter.keys), lambda: [b"-1", b"0", b"0"])
        limiter.close()
    try:
        from pyrate_limiter import GCRA, Duration, Rate

        gcra, rate = GCRA(), Rate(10**9, Duration.MINUTE)
        sha = client.script_load(gcra.redis_script())
        extra = gcra.redis_args([rate])
        scripts["pyrate-limiter GCRA"] = (
            sha,
            [f"{prefix}:warm-pyrate"],
            lambda: [int(clock.time() * 1000), 1, 60_000, 1, *extra],
        )
    except ImportError:
        pass
    try:
        from limits import storage

        store = storage.RedisStorage(url)
        scripts["limits fixed window"] = (
            store.lua_incr_expire.sha,
            [f"{prefix}:warm-fixed"],
            lambda: [60, 1],
        )
        scripts["limits sliding window counter"] = (
            store.lua_acquire_sliding_window.sha,
            [f"{prefix}:warm-prev", f"{prefix}:warm-cur"],
            lambda: [10**9, 60, 1],
        )
        for script in (store.lua_incr_expire, store.lua_acquire_sliding_window):
            client.script_load(script.script)
        store.storage.close()
    except ImportError:
        pass
    meter = EvalshaMeter(client)
    cpu: dict[str, list[float]] = {name: [] for name in scripts}
    for r in range(rounds):
        names = list(scripts)
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            sha, keys, args = scripts[name]
            pipe = client.pipeline(transaction=False)
            for _ in range(batch):
                pipe.evalsha(sha, len(keys), *keys, *args())
            calls, usec = meter._read()
            pipe.execute()
            calls_after, usec_after = meter._read()
            cpu[name].append((usec_after - usec) / max(1, calls_after - calls))
    print(
        f"  warm Redis CPU per script (pipelined batches of {batch}, {rounds} interleaved rounds):"
    )
    for name, values in cpu.items():
        print(f"    {name:<42} {spread(values, ' µs', 2)}")
    ours, two = cpu["RedisLimiter, one key"], cpu["RedisLimiter, two keys"]
    line = (
        f"{min(ours):.2f} µs in the least-disturbed round, median {median(ours):.2f}"
        f" (two keys: {min(two):.2f}, median {median(two):.2f})"
    )
    if "pyrate-limiter GCRA" in cpu:
        gcra = cpu["pyrate-limiter GCRA"]
        line += f"; pyrate-limiter's GCRA {min(gcra):.2f}, median {median(gcra):.2f}"
    target(
        f"warm Redis CPU per acquire, both quotas <= {REDIS_CPU_TARGET:g} µs",
        line,
        min(ours) <= REDIS_CPU_TARGET,
    )


BOTH = "RedisLimiter.acquire, both quotas"
AT_QUOTA = "RedisLimiter.acquire at Intercom's quotas"
CALL = "RedisLimiter acquire + observe (a call)"


def paired(ours: list[float], theirs: list[float]) -> list[float]:
    """Round-by-round ratios (the two sides of one round ran back to back)."""
    return [a / b for a, b in zip(ours, theirs, strict=True)]


def report_redis(
    results: dict[str, list[tuple[float, float | None]]],
    peer_loops: dict[str, Any],
    calls: dict[str, list[float]],
) -> None:
    rates = {name: [value for value, _ in values] for name, values in results.items()}
    cpus = {
        name: [cpu for _, cpu in values if cpu is not None]
        for name, values in results.items()
        if any(cpu is not None for _, cpu in values)
    }
    for name, values in rates.items():
        line = f"  {name:<44} {spread(values)}"
        if name in cpus:
            line += f"   Redis CPU {median(cpus[name]):6.2f} µs/op"
            line += f" (min {min(cpus[name]):.2f}, max {max(cpus[name]):.2f})"
            line += f", {median(calls[name]):.2f} scripts/op"
        print(line)
    ping = median(rates["baseline: PING round trip"])
    ours = median(rates[BOTH])
    cpu, least = median(cpus[BOTH]), min(cpus[BOTH])
    line = f"{cpu:.2f} µs/acquire median, {least:.2f} in the least-disturbed round"
    if "pyrate-limiter GCRA" in cpus:
        ratios = paired(cpus[BOTH], cpus["pyrate-limiter GCRA"])
        line += (
            f"; {median(ratios):.2f}x pyrate-limiter's GCRA (single quota) round by round"
            f" (min {min(ratios):.2f}, max {max(ratios):.2f})"
        )
    # Judged on the least-disturbed round: another process only ever adds to a CPU figure.
    target(
        f"cold Redis CPU per acquire, both quotas <= {REDIS_CPU_TARGET:g} µs",
        line,
        least <= REDIS_CPU_TARGET,
    )
    print(
        f"  (at Intercom's quotas, mostly refusals: {median(cpus[AT_QUOTA]):.2f} µs/acquire;"
        f" a call, acquire + observation: {median(cpus[CALL]):.2f} µs)"
    )
    single = {name: median(rates[name]) for name in peer_loops if "both quotas" not in name}
    if single:
        best_name = max(single, key=lambda name: single[name])
        ratios = paired(rates[BOTH], rates[best_name])
        ratio = median(ratios)
        target(
            "Redis acquires/s, both quotas >= 1.0x the best single-quota peer",
            f"{ours:,.0f}/s vs {best_name} {single[best_name]:,.0f}/s: {ratio:.3f}x round by"
            f" round (min {min(ratios):.2f}, max {max(ratios):.2f})",
            ratio >= 1.0,
        )
    else:
        print("  target: acquires/s vs the peers: not measured (no peer installed)")
    target(
        "Redis acquires/s >= 5,000 per process",
        f"{ours:,.0f}/s ({ours / ping:.2f}x PING)",
        ours >= 5_000,
    )
    trips = min(calls[CALL])  # the least polluted round: another client only ever adds
    target(
        "one Redis round trip per call (acquire + a response's headers observed)",
        f"{trips:.3f} script calls per call",
        trips <= 1.01,
    )


def cleanup(client: Any, prefix: str) -> None:
    keys = list(client.scan_iter(match=f"{prefix}:*"))
    keys += list(client.scan_iter(match=f"*{prefix}*"))  # the peers' keys embed it
    if keys:
        client.delete(*set(keys))


def _reachable(url: str) -> bool:
    try:
        import redis
    except ImportError:
        return False
    client = redis.Redis.from_url(url, socket_timeout=2)
    try:
        client.ping()
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()
    return True


def facade_cost(url: str, rounds: int, calls: int = 200) -> dict[str, list[float]]:
    """Per-call process CPU time of ``contacts.find`` through a facade with each limiter (and the
    raw SDK), in interleaved rounds: what a call pays for its limiter's backend."""
    import httpx
    import intercom

    from intercom_resilience import ResilienceConfig, ResilientIntercom
    from intercom_resilience.testing import FakeIntercom

    fake = FakeIntercom(app_quota=10**9, workspace_quota=10**9)
    sdk = intercom.Intercom(
        token="fake-token", httpx_client=httpx.Client(transport=fake.transport())
    )
    contact_id = sdk.contacts.create(request={"email": "limiter-bench@example.com"}).id
    quota = {"app_per_minute": 10**9, "workspace_per_minute": 10**9}
    clients: dict[str, Any] = {"raw SDK": sdk}
    for label, backend in (
        ("facade, memory limiter", "memory"),
        ("facade, Redis limiter", "redis"),
    ):
        config = ResilienceConfig(
            redis_url=url, rate_limit=RateLimitPolicy(backend=backend, **quota)
        )
        clients[label] = ResilientIntercom(
            token="fake-token", transport=fake.transport(), config=config
        )
    timings: dict[str, list[float]] = {name: [] for name in clients}
    try:
        for client in clients.values():
            for _ in range(max(3, calls // 10)):
                client.contacts.find(contact_id=contact_id)
        for _ in range(rounds):
            for name, client in clients.items():
                start = time.process_time()
                for _ in range(calls):
                    client.contacts.find(contact_id=contact_id)
                timings[name].append((time.process_time() - start) / calls)
    finally:
        for name, client in clients.items():
            if name != "raw SDK":
                client.close()
    return timings


def report_facade_cost(timings: dict[str, list[float]]) -> list[str]:
    """One line per client: median µs per find, and its ratio to the raw SDK's and to the
    memory-limiter facade's."""
    medians = {name: statistics.median(values) for name, values in timings.items()}
    raw, memory_facade = medians["raw SDK"], medians["facade, memory limiter"]
    rounds = len(timings["raw SDK"])
    lines = [
        f"what a facade call pays for the Redis limiter (contacts.find on the in-process fake, "
        f"process CPU time, {rounds} interleaved rounds; informational):"
    ]
    for name, median in medians.items():
        spread = f"(min {min(timings[name]) * 1e6:,.1f}, max {max(timings[name]) * 1e6:,.1f})"
        lines.append(
            f"  {name:<26} {median * 1e6:>8.1f} µs median {spread}   {median / raw:.3f}x raw, "
            f"{median / memory_facade:.3f}x the memory-limiter facade"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.3, help="length of one timed batch")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=8, help="threads sharing one limiter")
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("INTERCOM_RESILIENCE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15"),
    )
    parser.add_argument("--only", choices=["memory", "threads", "redis", "facade"], default=None)
    args = parser.parse_args()
    if args.only in (None, "memory"):
        memory(args.seconds, args.rounds)
    if args.only in (None, "threads"):
        threaded(args.seconds, args.rounds, args.threads)
    if args.only in (None, "redis"):
        with_redis(args.redis_url, args.seconds, args.rounds)
    if args.only in (None, "redis", "facade"):
        if _reachable(args.redis_url):
            timings = facade_cost(args.redis_url, max(args.rounds, 7))
            print("\n".join(report_facade_cost(timings)))
        else:  # the Redis limiter would run on its local share: not what this measures
            print(f"facade cost: skipped, {args.redis_url} unreachable")


if __name__ == "__main__":
    main()
