"""A mixed workload of reads and writes for the concurrency tests, and its bookkeeping."""

from __future__ import annotations

import dataclasses
import itertools
import math
import random
import threading
from collections import Counter
from typing import Any

import httpx
from intercom.core.api_error import ApiError

from intercom_resilience import (
    CallInfo,
    DeadlinePolicy,
    IntercomResilienceError,
    OutcomeUnknownError,
    RateLimitPolicy,
    ResilienceConfig,
    VirtualClock,
)
from intercom_resilience.testing import FakeIntercom

#: A scaled-down quota: 100 requests per 10-second window for the app.
APP_PER_MINUTE = 600
WINDOW = 10.0
WINDOW_QUOTA = APP_PER_MINUTE * WINDOW / 60
CHAOS_KINDS = ("503", "502-html", "429", "reset", "refused", "lose")

CONFIG = ResilienceConfig(
    rate_limit=RateLimitPolicy(
        app_per_minute=APP_PER_MINUTE, workspace_per_minute=10 * APP_PER_MINUTE, max_wait=120.0
    ),
    deadlines=DeadlinePolicy(interactive=600.0),
)
ALLOWED = (ApiError, IntercomResilienceError)


def seed_contacts(fake: FakeIntercom, count: int = 20, workspace: str | None = None) -> list[str]:
    """Create *count* contacts directly in the fake's state; their ids."""
    state = fake.workspace(workspace)
    now = int(fake.clock.time())
    return [
        state.create_contact({"email": f"seed{n}@example.com", "name": f"Seed {n}"}, now).id
        for n in range(count)
    ]


@dataclasses.dataclass
class Tally:
    """What one worker saw."""

    creates_confirmed: dict[str, str] = dataclasses.field(default_factory=dict)  # email -> id
    creates_unknown: list[str] = dataclasses.field(default_factory=list)  # emails
    creates_failed: list[str] = dataclasses.field(default_factory=list)  # definitely not created
    calls: list[CallInfo] = dataclasses.field(default_factory=list)
    escaped: list[BaseException] = dataclasses.field(default_factory=list)
    errors: Counter[str] = dataclasses.field(default_factory=Counter)

    def merge(self, other: Tally) -> None:
        self.creates_confirmed.update(other.creates_confirmed)
        self.creates_unknown += other.creates_unknown
        self.creates_failed += other.creates_failed
        self.calls += other.calls
        self.escaped += other.escaped
        self.errors.update(other.errors)


def plan(worker: int, ops: int, seed: int) -> list[tuple[str, int]]:
    """A worker's operations: (kind, n), reproducible from *seed*."""
    rng = random.Random(seed * 10_007 + worker)
    kinds = ["find"] * 10 + ["create"] * 3 + ["update"] * 3 + ["list"] * 2 + ["search"] * 2
    return [(rng.choice(kinds), rng.randrange(1_000_000)) for _ in range(ops)]


def email_for(worker: int, step: int) -> str:
    return f"w{worker}-s{step}@example.com"


def note_error(tally: Tally, kind: str, email: str | None, error: BaseException) -> None:
    if not isinstance(error, ALLOWED):
        tally.escaped.append(error)
        return
    tally.errors[type(error).__name__] += 1
    if email is not None:
        if isinstance(error, OutcomeUnknownError):
            tally.creates_unknown.append(email)
        else:
            tally.creates_failed.append(email)


def sync_op(client: Any, kind: str, n: int, ids: list[str], email: str) -> str | None:
    """Run one operation on a sync client; the created contact's id for creates."""
    contact_id = ids[n % len(ids)]
    if kind == "find":
        client.contacts.find(contact_id=contact_id)
    elif kind == "create":
        return str(client.contacts.create(request={"email": email}).id)
    elif kind == "update":
        client.contacts.update(contact_id=contact_id, name=f"name {n}")
    elif kind == "list":
        list(itertools.islice(client.contacts.list(per_page=5), 5))
    else:
        query = {"field": "email", "operator": "=", "value": f"seed{n % len(ids)}@example.com"}
        list(itertools.islice(client.contacts.search(query=query), 5))
    return None


async def async_op(client: Any, kind: str, n: int, ids: list[str], email: str) -> str | None:
    """Run one operation on an async client; the created contact's id for creates."""
    contact_id = ids[n % len(ids)]
    if kind == "find":
        await client.contacts.find(contact_id=contact_id)
    elif kind == "create":
        return str((await client.contacts.create(request={"email": email})).id)
    elif kind == "update":
        await client.contacts.update(contact_id=contact_id, name=f"name {n}")
    elif kind == "list":
        pager = await client.contacts.list(per_page=5)
        async for _ in pager:
            break
    else:
        query = {"field": "email", "operator": "=", "value": f"seed{n % len(ids)}@example.com"}
        pager = await client.contacts.search(query=query)
        async for _ in pager:
            break
    return None


def requests_per_window(fake: FakeIntercom, window: float = WINDOW) -> Counter[int]:
    """Requests the fake received in each fixed window of its clock (faulted ones included)."""
    return Counter(math.floor(entry.time / window) for entry in fake.journal)


def check_no_over_admission(fake: FakeIntercom) -> None:
    """The limiter never sent more than a window's quota, and the fake never refused on quota."""
    counts = requests_per_window(fake)
    worst = max(counts.values(), default=0)
    assert worst <= WINDOW_QUOTA, f"{worst} requests in one window (quota {WINDOW_QUOTA:g})"
    quota_429s = fake.journal.filter(status=429, fault=False)
    assert quota_429s == [], f"{len(quota_429s)} 429s from the real quota (over-admission)"


def check_writes(fake: FakeIntercom, tally: Tally, workspace: str | None = None) -> None:
    """Zero duplicate writes; confirmed, unknown and failed creates agree with the fake."""
    state = fake.workspace(workspace)
    by_email = Counter((c.email or "") for c in state.contacts.values())
    assert all(count == 1 for email, count in by_email.items() if email), "duplicate contact"
    for email, contact_id in tally.creates_confirmed.items():
        assert state.contacts[contact_id].email == email
    for email in tally.creates_failed:
        assert by_email[email] == 0, f"{email} reported failed but was created"
    processed = fake.journal.filter(method="POST", path="/contacts", changed_state=True)
    lost = [e for e in processed if e.outcome != "response"]
    unknown_created = [e for e in tally.creates_unknown if by_email[e] == 1]
    assert len(processed) == len(tally.creates_confirmed) + len(unknown_created)
    # A create whose answer was lost after the fake committed it is either reported unknown or
    # reconciled through the email's 409 (fetched, and confirmed): nothing else.
    by_conflict = [
        info
        for info in tally.calls
        if info.method == "POST" and info.path == "/contacts" and info.reconciled_by == "conflict"
    ]
    assert len(lost) == len(unknown_created) + len(by_conflict)
    # A 409 is only ever the answer to re-sending such a create (one per re-send at most).
    conflicts = fake.journal.filter(method="POST", path="/contacts", status=409)
    assert len(conflicts) >= len(by_conflict)
    assert len(conflicts) <= len(lost) * CONFIG.retry.max_attempts


class ThreadedVirtualClock(VirtualClock):
    """A ``VirtualClock`` for many threads: time never jumps while a request is in flight.

    On a plain virtual clock, a sleep in one thread moves time for all of them at once. A thread
    that was granted a rate-limit token at ``t`` can then reach the fake seconds (of virtual
    time) later, because other threads slept in between: an artifact no real clock has (time
    passes continuously, and in-flight time is tiny). This clock makes the window from "token
    granted" to "the fake has stamped the request" atomic with respect to sleeps, so the
    journal measures the limiter and not the simulation. Sleeping threads wait (really) until no
    other thread is in flight, then advance the clock.
    """

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Condition()
        self._flying: set[int] = set()

    def depart(self) -> None:
        """The calling thread holds a token and is on its way to the fake (gate held)."""
        self._flying.add(threading.get_ident())

    def arrive(self) -> None:
        """The calling thread's request has been stamped by the fake."""
        with self.gate:
            self._flying.discard(threading.get_ident())
            self.gate.notify_all()

    def sleep(self, seconds: float) -> None:
        with self.gate:
            self._flying.discard(threading.get_ident())
            while self._flying:
                self.gate.wait()
            super().sleep(seconds)
            self.gate.notify_all()


class GatedLimiter:
    """Wraps a limiter backend: a granted token marks the thread in flight, atomically."""

    def __init__(self, inner: Any, clock: ThreadedVirtualClock) -> None:
        self.inner = inner
        self.clock = clock

    def acquire(self, priority: Any) -> Any:
        with self.clock.gate:  # no sleep can move time between the grant and depart()
            grant = self.inner.acquire(priority)
            if grant.granted:
                self.clock.depart()
            return grant

    def observe(self, status: int | None, info: Any) -> None:
        self.inner.observe(status, info)


class ArrivalTransport(httpx.BaseTransport):
    """Wraps the fake's transport: the request is stamped once the fake has handled it."""

    def __init__(self, inner: httpx.BaseTransport, clock: ThreadedVirtualClock) -> None:
        self.inner = inner
        self.clock = clock

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return self.inner.handle_request(request)
        finally:
            self.clock.arrive()
