"""Many callers on one client: no deadlock, no over-admission, consistent counters, no lost writes.

64 threads share one ``ResilientIntercom`` and 1,000 tasks share one ``AsyncResilientIntercom``,
against the in-process fake with a scaled-down quota and seeded chaos. The fake's journal is the
witness: per fixed 10-second window of its clock no more requests arrived than the quota, no 429
came from the real quota, and every create is accounted for exactly once.
"""

from __future__ import annotations

import asyncio
import json
import threading

from intercom_resilience import (
    AsyncResilientIntercom,
    ResilientIntercom,
    VirtualClock,
    capture_calls,
)
from intercom_resilience.testing import FakeIntercom

from ._workload import (
    APP_PER_MINUTE,
    CHAOS_KINDS,
    CONFIG,
    ArrivalTransport,
    GatedLimiter,
    Tally,
    ThreadedVirtualClock,
    async_op,
    check_no_over_admission,
    check_writes,
    email_for,
    note_error,
    plan,
    seed_contacts,
    sync_op,
)

THREADS = 64
OPS_PER_THREAD = 20
TASKS = 1_000
OPS_PER_TASK = 2
JOIN_TIMEOUT = 300.0  # a deadlock shows as a thread still alive, not as a hung test run


def _fake(clock: VirtualClock, seed: int) -> FakeIntercom:
    fake = FakeIntercom(clock=clock, app_quota=APP_PER_MINUTE, seed=seed, journal_size=None)
    fake.faults.chaos(0.05, seed=seed, kinds=CHAOS_KINDS)
    return fake


def _check_client(client: ResilientIntercom | AsyncResilientIntercom, tally: Tally) -> None:
    assert tally.escaped == [], tally.escaped[:3]
    stale = [info for info in tally.calls if info.stale]
    assert client.stale_served == len(stale)
    json.dumps(client.health().to_dict())
    assert client.breaker_state.value in ("closed", "open", "half_open")
    for failure in client.recent_failures:
        assert failure.attempt >= 1


def test_64_threads_share_one_sync_client() -> None:
    clock = ThreadedVirtualClock()
    fake = _fake(clock, seed=21)
    ids = seed_contacts(fake)
    tallies = [Tally() for _ in range(THREADS)]
    client = ResilientIntercom(
        token="fake-token",
        transport=ArrivalTransport(fake.transport(), clock),
        clock=clock,
        config=CONFIG,
        seed=2,
    )
    # Test instrumentation (see ThreadedVirtualClock): the pipeline's limiter, wrapped.
    client._pipeline.limiter = GatedLimiter(client._pipeline.limiter, clock)

    def worker(index: int) -> None:
        tally = tallies[index]
        with capture_calls() as calls:
            for step, (kind, n) in enumerate(plan(index, OPS_PER_THREAD, seed=21)):
                email = email_for(index, step)
                try:
                    created = sync_op(client, kind, n, ids, email)
                except Exception as error:  # what may escape is the invariant under test
                    note_error(tally, kind, email if kind == "create" else None, error)
                else:
                    if created is not None:
                        tally.creates_confirmed[email] = created
        tally.calls = list(calls)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT)
    alive = [thread.name for thread in threads if thread.is_alive()]
    assert alive == [], f"deadlock: {len(alive)} threads still running"
    client.close()

    total = Tally()
    for tally in tallies:
        total.merge(tally)
    _check_client(client, total)
    check_no_over_admission(fake)
    check_writes(fake, total)
    assert len(fake.journal.filter(fault=True)) > 0  # the faults really happened


def test_1000_tasks_share_one_async_client() -> None:
    clock = VirtualClock()
    fake = _fake(clock, seed=22)
    ids = seed_contacts(fake)
    tallies = [Tally() for _ in range(TASKS)]

    async def main() -> AsyncResilientIntercom:
        client = AsyncResilientIntercom(
            token="fake-token",
            transport=fake.async_transport(),
            clock=clock,
            config=CONFIG,
            seed=2,
        )

        async def task(index: int) -> None:
            tally = tallies[index]
            with capture_calls() as calls:
                for step, (kind, n) in enumerate(plan(index, OPS_PER_TASK, seed=22)):
                    email = email_for(index, step)
                    try:
                        created = await async_op(client, kind, n, ids, email)
                    except Exception as error:
                        note_error(tally, kind, email if kind == "create" else None, error)
                    else:
                        if created is not None:
                            tally.creates_confirmed[email] = created
            tally.calls = list(calls)

        async with client:
            await asyncio.wait_for(
                asyncio.gather(*(task(i) for i in range(TASKS))), timeout=JOIN_TIMEOUT
            )
        return client

    client = asyncio.run(main())
    total = Tally()
    for tally in tallies:
        total.merge(tally)
    _check_client(client, total)
    check_no_over_admission(fake)
    check_writes(fake, total)
    assert len(fake.journal.filter(fault=True)) > 0
