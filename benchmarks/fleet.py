"""A fleet against one quota: 4 processes, one fake Intercom over real HTTP, real time.

Intercom's quota belongs to the app and the workspace, not to a process. This runs the same
workload three ways, one after the other, each against a fresh fake served on 127.0.0.1 with a
small quota (1,200 a minute: 200 per 10-second window), each process running 4 threads that call
``GET /me`` as fast as they are allowed:

* ``redis``: ``ResilientIntercom`` with ``RateLimitPolicy(backend="redis")``, one budget in Redis
  shared by the fleet;
* ``memory``: ``ResilientIntercom`` with the in-memory limiter: each process paces itself to the
  whole quota, so the fleet offers four times too much;
* ``raw``: the official SDK untouched (no limiter): the 429s a fleet gets on its own.

The fake never serves more than the quota, so goodput (requests served, as a share of the quota
over the run) is 1.00 for every side that keeps it busy, the raw SDK's included: it cannot tell the
sides apart. What does is what each success cost, and how long a job took:

* **a fixed job** (the default): the fleet must complete ``--job`` successful calls (3 windows'
  quota, split over every thread; a caller whose call fails calls again; the facade's stale cache
  is off, so that every success is a fresh answer). Printed: the time to
  complete it (and its ratio to the fastest the quota allows: the job's last window opens
  ``ceil(job / quota) - 1`` windows after the start), requests per success and 429s per success
  (every request the fake saw, from the start until the job was done);
* ``--seconds S``: as fast as allowed for S seconds: goodput and 429s as shares of the quota,
  and the same requests and 429s per success.

Runs start on a window boundary of the fake, so a run covers whole windows.

Run: ``python benchmarks/fleet.py [--job 600 | --seconds 60] [--redis-url URL]
[--sides redis,memory,raw]`` (needs the ``redis`` and ``server`` extras and a Redis for the
``redis`` side). The tests in ``tests/ratelimit/test_fleet.py`` import :func:`run_side` for shorter
runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import threading
import time
import uuid
from typing import Any

import _workers  # benchmarks/_workers.py: the fleet's processes

WINDOW = 10.0
PER_MINUTE = 1_200  # 200 per 10-second window
PROCESSES = 4
THREADS = 4
SIDES = ("redis", "memory", "raw")


@dataclasses.dataclass(frozen=True)
class SideResult:
    """What the fake saw of one side's run, and what the processes saw."""

    side: str
    seconds: float
    quota: int  # per window
    served: int
    refused_429: int
    other_statuses: dict[int, int]
    raised: dict[str, int]  # exceptions that reached the callers, by type, summed over processes
    job: int | None = None  # the successes the fleet had to complete (None: as many as it could)
    done: int = 0  # successes the callers saw
    job_seconds: float | None = None  # from the start until the last caller was done

    @property
    def requests(self) -> int:
        """Every request the fake answered in the run (served, refused and otherwise)."""
        return self.served + self.refused_429 + sum(self.other_statuses.values())

    @property
    def requests_per_success(self) -> float:
        """Requests the fake answered per call that succeeded for its caller."""
        return self.requests / self.done if self.done else math.inf

    @property
    def refused_per_success(self) -> float:
        """429s per call that succeeded for its caller."""
        return self.refused_429 / self.done if self.done else math.inf

    @property
    def fastest_job_seconds(self) -> float:
        """The least time the quota allows for the job: its last window's opening."""
        assert self.job is not None
        return (math.ceil(self.job / self.quota) - 1) * WINDOW

    @property
    def windows(self) -> float:
        return self.seconds / WINDOW

    @property
    def goodput(self) -> float:
        """Served requests as a share of the quota over the run."""
        return self.served / (self.quota * self.windows)

    @property
    def ratio_429(self) -> float:
        """Refused requests as a share of the quota over the run."""
        return self.refused_429 / (self.quota * self.windows)


# ---------------------------------------------------------------------------------- worker side


def _worker(options: dict[str, Any]) -> None:
    """One process of the fleet: build the client, say ready, wait for the start, call, report."""
    import intercom
    from intercom.core.api_error import ApiError

    from intercom_resilience import (
        CachePolicy,
        RateLimitPolicy,
        ResilienceConfig,
        ResilientIntercom,
    )

    side = options["side"]
    client: Any
    if side == "raw":
        client = intercom.Intercom(token=options["token"], base_url=options["base_url"])
    else:
        config = ResilienceConfig(
            rate_limit=RateLimitPolicy(
                app_per_minute=options["per_minute"],
                workspace_per_minute=2 * options["per_minute"],
                window=WINDOW,
                backend=side,
            ),
            redis_url=options["redis_url"] if side == "redis" else None,
            # A job's successes must be fresh answers: a read refused a token is otherwise
            # answered from the stale cache (stale-while-rate-limited), which costs no request.
            cache=CachePolicy(enabled=options.get("calls_per_thread") is None),
        )
        client = ResilientIntercom(
            token=options["token"], base_url=options["base_url"], config=config
        )
    start = _workers.ready()
    end = start + options["seconds"]
    quota: int | None = options.get("calls_per_thread")  # a fixed job: successes per thread
    raised: dict[str, int] = {}
    done = [0]
    finished = [start]
    lock = threading.Lock()

    def loop() -> None:
        time.sleep(max(0.0, start - time.time()))
        mine = 0
        while time.time() < end and (quota is None or mine < quota):
            try:
                client.admins.identify()
                mine += 1
            except ApiError as error:  # the raw SDK's 429s (and anything else) land here
                name = f"ApiError {error.status_code}"
                with lock:
                    raised[name] = raised.get(name, 0) + 1
            except Exception as error:
                with lock:
                    raised[type(error).__name__] = raised.get(type(error).__name__, 0) + 1
        with lock:
            done[0] += mine
            finished[0] = max(finished[0], time.time())

    threads = [threading.Thread(target=loop) for _ in range(options["threads"])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if side != "raw":
        client.close()
    _workers.report({"raised": raised, "done": done[0], "finished": finished[0]})


# ---------------------------------------------------------------------------------- parent side


def run_side(
    side: str,
    *,
    seconds: float,
    redis_url: str | None = None,
    processes: int = PROCESSES,
    threads: int = THREADS,
    per_minute: int = PER_MINUTE,
    job: int | None = None,
) -> SideResult:
    """Run one side of the benchmark against a fresh fake served on 127.0.0.1.

    With *job*, the fleet completes that many successful calls (split over every thread) and
    *seconds* only caps the run; without, it calls as fast as allowed for *seconds*.
    """
    from intercom_resilience.testing import FakeIntercom

    callers = processes * threads
    if job is not None:  # every thread completes the same share: the job rounds down to it
        job = max(1, job // callers) * callers

    token = f"fleet-{uuid.uuid4().hex[:12]}"  # a fresh token: fresh Redis keys for every run
    fake = FakeIntercom(
        token=token,
        app_quota=per_minute,
        workspace_quota=2 * per_minute,
        window_seconds=WINDOW,
        journal_size=None,  # the raw side's storm must not push its own 429s out of the count
    )
    quota = math.floor(per_minute * WINDOW / 60)
    with fake.serve_in_thread() as base_url:
        options = {
            "side": side,
            "token": token,
            "base_url": base_url,
            "redis_url": redis_url,
            "per_minute": per_minute,
            "seconds": seconds,
            "threads": threads,
            "calls_per_thread": None if job is None else job // callers,
        }
        with _workers.fleet(__file__, options, processes, f"a {side} worker") as workers:
            # Start on a window boundary of the fake, at least a second from now.
            start = math.ceil((time.time() + 1.0) / WINDOW) * WINDOW
            workers.release(start)
            outputs = workers.results(timeout=seconds + 120)
    finished = max(output["finished"] for output in outputs)
    end = start + seconds if job is None else finished + 1.0  # the last answers' stragglers
    span = [entry for entry in fake.journal.entries() if start <= entry.time < end]
    statuses: dict[int, int] = {}
    for entry in span:
        if entry.status is not None:
            statuses[entry.status] = statuses.get(entry.status, 0) + 1
    raised: dict[str, int] = {}
    for output in outputs:
        for name, count in output["raised"].items():
            raised[name] = raised.get(name, 0) + count
    return SideResult(
        side=side,
        seconds=seconds,
        quota=quota,
        served=statuses.pop(200, 0),
        refused_429=statuses.pop(429, 0),
        other_statuses=statuses,
        raised=raised,
        job=job,
        done=sum(output["done"] for output in outputs),
        job_seconds=None if job is None else finished - start,
    )


def _redis_reachable(url: str) -> str | None:
    try:
        import redis
    except ImportError as error:
        return str(error)
    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    except (redis.RedisError, OSError) as error:
        return f"{url} unreachable ({error})"
    finally:
        client.close()
    return None


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "worker":
        _worker(json.loads(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seconds", type=float, help="call as fast as allowed for this long (no fixed job)"
    )
    parser.add_argument("--job", type=int, help="successful calls to complete (3 windows' quota)")
    parser.add_argument("--sides", default=",".join(SIDES))
    parser.add_argument("--processes", type=int, default=PROCESSES)
    parser.add_argument("--threads", type=int, default=THREADS, help="threads per process")
    parser.add_argument("--per-minute", type=int, default=PER_MINUTE, help="the app's quota")
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("INTERCOM_RESILIENCE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15"),
    )
    args = parser.parse_args()
    quota = math.floor(args.per_minute * WINDOW / 60)
    job = None if args.seconds is not None and args.job is None else (args.job or 3 * quota)
    # A job's run is capped (a side that cannot finish must still end): ten times the fastest.
    seconds = args.seconds if job is None else 10 * math.ceil(job / quota) * WINDOW
    callers = args.processes * args.threads
    if job:
        job = max(1, job // callers) * callers  # as run_side rounds it
    task = f"a job of {job:,} successful calls" if job else f"{seconds:g} s as fast as allowed"
    print(
        f"fleet: {args.processes} processes x {args.threads} threads, GET /me, {task} per side; "
        f"quota {args.per_minute:,}/min = {quota} per {WINDOW:g} s window"
    )
    results = []
    for side in args.sides.split(","):
        if side == "redis" and (problem := _redis_reachable(args.redis_url)):
            print(f"  {side}: skipped ({problem})")
            continue
        results.append(
            run_side(
                side,
                seconds=seconds,
                redis_url=args.redis_url,
                processes=args.processes,
                threads=args.threads,
                per_minute=args.per_minute,
                job=job,
            )
        )
    labels = {
        "redis": "ResilientIntercom, Redis limiter",
        "memory": "ResilientIntercom, memory limiter",
        "raw": "official SDK, no limiter",
    }
    first = "job time (x fastest)" if job else "goodput"
    print(
        f"  {'side':<34} {first:>20} {'requests/success':>17} {'429s/success':>13} "
        f"{'429s':>7} {'served':>7}  raised"
    )
    for result in results:
        raised = ", ".join(f"{k}: {v}" for k, v in sorted(result.raised.items())) or "-"
        other = f"; other statuses {result.other_statuses}" if result.other_statuses else ""
        if result.job_seconds is not None:
            unfinished = "" if result.done >= (job or 0) else f" ({result.done} done)"
            fastest = result.fastest_job_seconds
            # A job within one window's quota can be done at once: no ratio to print.
            ratio = f"{result.job_seconds / fastest:4.2f}x" if fastest else "one window"
            figure = f"{result.job_seconds:7.1f} s ({ratio}){unfinished}"
        else:
            figure = f"{result.goodput:.3f}"
        print(
            f"  {labels[result.side]:<34} {figure:>20} {result.requests_per_success:>17.3f} "
            f"{result.refused_per_success:>13.3f} {result.refused_429:>7} {result.served:>7}  "
            f"{raised}{other}"
        )
    if job:
        print(
            f"  (fastest the quota allows: {results[0].fastest_job_seconds:g} s, the job's last "
            "window opening; 1.000 request per success is none wasted)"
            if results
            else ""
        )


if __name__ == "__main__":
    main()
