"""The scripted "day in the life" behind ``intercom-resilience demo``.

A :class:`ResilientIntercom` and a :class:`FakeIntercom` share one :class:`VirtualClock`, so a
working day of traffic, rate-limit windows, backoff and breaker cool-downs runs in a second or two
of wall time, offline, with no token. The day has five phases:

1. **normal traffic**: contacts created, read and searched; conversations opened and replied to.
2. **429 storm**: another app of the same workspace eats most of the shared quota while we run a
   background backfill; the limiter re-synchronises on ``X-RateLimit-Remaining`` and waits instead
   of collecting 429s. The same storm is replayed with the raw SDK on a twin fake, so the number
   of 429s the library *prevented* is measured, not guessed.
3. **outage**: a brown-out then a full outage; retries, then the breaker opens, reads are served
   from the stale cache and writes fail fast (a write whose response was lost is never re-sent).
4. **token revocation**: the token is regenerated at Intercom; the client's token callable drops
   its cached value on the 401, and the pipeline retries once with the new token.
5. **recovery**: the outbox of writes that were never sent is flushed; alerts resolve and the
   incidents close.

After the day, one more outage is played twice on a twin fake, to show what cache warming buys:
a client that only read its usual few contacts answers only those from the stale cache, while a
client that ran ``client.warm_cache(...)`` beforehand answers every one.

Everything that varies (ids, jitter, which contact is read) comes from ``seed``, and wall time is
never part of the result, so the same seed gives the same result. Nothing here imports click or
rich: the command line renders a :class:`DemoResult`, and tests drive :func:`run_demo` directly.
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import httpx
import intercom
from intercom.conversations import CreateConversationRequestFrom
from intercom.core.api_error import ApiError
from intercom.types import (
    AdminReplyConversationRequest,
    CreateContactRequestWithEmail,
    SingleFilterSearchRequest,
)

from ._client import ResilientIntercom
from ._clock import VirtualClock
from ._config import RateLimitPolicy, ResilienceConfig
from ._core.status import StaleReason
from ._errors import CircuitOpenError, OutcomeUnknownError
from ._health import AlertEvent, HealthStatus
from ._incidents import Incident, format_utc, render_postmortem
from .events import BreakerTransition, CallAttempt, CallRefused, Event, EventName
from .testing import DEFAULT_TOKEN, FakeIntercom

__all__ = [
    "APP_QUOTA",
    "PHASES",
    "WARMING_CONTACTS",
    "WORKSPACE_QUOTA",
    "DemoResult",
    "PhaseRow",
    "ProgressSink",
    "run_demo",
]

#: 2026-01-01T09:00:00Z: the working day starts at nine.
DEMO_START = 1_767_258_000.0
#: A scaled-down quota (Intercom: 10,000 and 25,000 a minute) so a 429 storm is reachable with a
#: few hundred requests: 100 per app and 150 per workspace in each 10-second window.
APP_QUOTA = 600
WORKSPACE_QUOTA = 900
_BASE_URL = "https://api.intercom.io"
_APP = "fake-app"
#: Contacts of the warming comparison, and how many of them everyday traffic reads anyway.
WARMING_CONTACTS = 50
_EVERYDAY_READS = 10
_NEIGHBOUR_TOKEN = "nightly-export-token"  # noqa: S105 - a fake credential of the fake backend
_ROTATED_TOKEN = "fake-token-rotated"  # noqa: S105 - ditto

#: (key, title) of each phase, in order.
PHASES: tuple[tuple[str, str], ...] = (
    ("normal", "normal traffic"),
    ("storm", "429 storm"),
    ("outage", "outage"),
    ("revocation", "token revocation"),
    ("recovery", "recovery"),
)

_STATUS_RANK = {"healthy": 0, "degraded": 1, "unhealthy": 2}


class ProgressSink(Protocol):
    """Where the demo reports progress (a rich display, plain lines, or nothing)."""

    def start_phase(self, index: int, title: str, total: int) -> None:
        """Phase *index* (1-based) begins with *total* planned steps."""

    def advance(self, description: str) -> None:
        """One step finished; *description* is a short live status line."""

    def end_phase(self, row: PhaseRow) -> None:
        """The phase is over; *row* is its line of the health timeline."""


class _NoProgress:
    def start_phase(self, index: int, title: str, total: int) -> None:
        return None

    def advance(self, description: str) -> None:
        return None

    def end_phase(self, row: PhaseRow) -> None:
        return None


@dataclasses.dataclass(slots=True)
class PhaseRow:
    """One line of the health timeline: what one phase of the day looked like.

    Attributes:
        key: the phase's short name (``normal``, ``storm``, …).
        title: the phase's title.
        started_at, ended_at: Unix times on the virtual clock.
        calls: calls the integration made in the phase.
        status: the worst health status seen during the phase.
        status_end: the health status at the end of the phase.
        breaker: the breaker states the phase went through, in order (``closed``, ``open``, …).
        alerts: alerts that fired during the phase (``P1 circuit open``).
        stale_served: reads answered from the stale cache.
        rate_limited: 429s Intercom sent us.
        p95_ms: the highest p95 latency the health window showed during the phase.
        errors: calls that ended in an exception in the caller's hands.
    """

    key: str
    title: str
    started_at: float
    ended_at: float = 0.0
    calls: int = 0
    status: str = "healthy"
    status_end: str = "healthy"
    breaker: list[str] = dataclasses.field(default_factory=list)
    alerts: list[str] = dataclasses.field(default_factory=list)
    stale_served: int = 0
    rate_limited: int = 0
    p95_ms: float | None = None
    errors: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (times as UTC ISO-8601)."""
        return {
            "phase": self.key,
            "title": self.title,
            "started_at": format_utc(self.started_at),
            "ended_at": format_utc(self.ended_at),
            "calls": self.calls,
            "status": self.status,
            "status_end": self.status_end,
            "breaker": list(self.breaker),
            "alerts": list(self.alerts),
            "stale_served": self.stale_served,
            "rate_limited": self.rate_limited,
            "p95_ms": self.p95_ms,
            "errors": self.errors,
        }


@dataclasses.dataclass(frozen=True, slots=True)
class DemoResult:
    """Everything the demo found out, ready to render or to dump as JSON.

    Attributes:
        seed: the seed of the run.
        phases: the health timeline, one row per phase.
        counts: what the library did (retries, 429s received and prevented, stale serves, …).
        health: the client's health at the end of the day.
        incidents: the incidents the client recorded, oldest first.
        main_incident: the most severe (then longest) incident, the one ``--save-incident`` saves.
    """

    seed: int
    phases: tuple[PhaseRow, ...]
    counts: Mapping[str, int]
    health: HealthStatus
    incidents: tuple[Incident, ...]
    main_incident: Incident | None

    def postmortems(self) -> list[str]:
        """The rendered postmortem of each incident, oldest first."""
        return [render_postmortem(incident) for incident in self.incidents]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict: timeline, counts, health, incidents and the postmortem text."""
        return {
            "seed": self.seed,
            "timeline": [row.to_dict() for row in self.phases],
            "counts": dict(self.counts),
            "health": self.health.to_dict(),
            "incidents": [incident.to_dict() for incident in self.incidents],
            "main_incident": None if self.main_incident is None else self.main_incident.id,
            "postmortem": "\n---\n\n".join(self.postmortems()),
        }


class _TokenSource:
    """The application's token callable: a secrets-store read, cached as real clients do.

    The cache is why a regenerated token is not picked up at once. Dropping it when Intercom
    answers 401 (see :meth:`_Observer.hook`) lets the pipeline's one retry after a 401 fetch the
    new token: rotation without a restart.
    """

    def __init__(self, vault: dict[str, str]) -> None:
        self._vault = vault
        self._cached: str | None = None
        self.fetches = 0

    def __call__(self) -> str:
        if self._cached is None:
            self.fetches += 1
            self._cached = self._vault["intercom"]
        return self._cached

    def invalidate(self) -> None:
        self._cached = None


class _Observer:
    """Counts what the pipeline tells us through its event hooks and alert callback."""

    def __init__(self, tokens: _TokenSource) -> None:
        self.events: Counter[EventName] = Counter()
        self.fail_fast = 0
        self.fired: list[str] = []
        self.breaker: list[str] = []
        self._tokens = tokens

    def hook(self, event: Event) -> None:
        self.events[event.name] += 1
        if isinstance(event, CallAttempt) and event.status == 401:
            # Intercom says the token is bad: the next fetch must go to the secrets store.
            self._tokens.invalidate()
        elif isinstance(event, CallRefused) and event.reason == StaleReason.CIRCUIT_OPEN.value:
            self.fail_fast += 1
        elif isinstance(event, BreakerTransition):
            self.breaker.append(event.state)

    def on_alert(self, event: AlertEvent) -> None:
        if event.kind == "fired":
            self.fired.append(f"{event.alert.severity.value} {event.alert.title}")


class _Neighbour:
    """Another app of the same workspace (a nightly export) that ignores rate limits.

    It sends ``rate`` requests per second of virtual time; :meth:`catch_up` sends whatever is
    due, so its load follows the clock however long our client waits.
    """

    def __init__(self, fake: FakeIntercom, rate: float, limit: int) -> None:
        fake.add_token(_NEIGHBOUR_TOKEN, app="nightly-export")
        self._fake = fake
        self._http = httpx.Client(
            transport=fake.transport(),
            base_url=_BASE_URL,
            headers={"Authorization": f"Bearer {_NEIGHBOUR_TOKEN}"},
        )
        self._rate = rate
        self._limit = limit
        self._start: float | None = None
        self.sent = 0

    def catch_up(self) -> None:
        now = self._fake.clock.time()
        if self._start is None:
            self._start = now
        due = min(int((now - self._start) * self._rate) + 1, self._limit) - self.sent
        for _ in range(max(due, 0)):
            self._http.get("/contacts", params={"per_page": 50})
            self.sent += 1

    def close(self) -> None:
        self._http.close()


#: One planned step: a label for the live display, the call, how many writes it makes (each must
#: be committed at most once), and how many virtual seconds pass after it.
_Step = tuple[str, Callable[[], object], int, float]


def _storm_steps(
    sdk: intercom.Intercom,
    ids: list[str],
    rng: random.Random,
    neighbour: _Neighbour,
    background: Callable[[], Any] | None,
) -> list[_Step]:
    """The storm's request sequence, shared by the resilient run and the raw-SDK replay."""
    steps: list[_Step] = []

    def backfill(contact_id: str) -> Callable[[], object]:
        def step() -> object:
            neighbour.catch_up()
            if background is None:
                return sdk.contacts.find(contact_id=contact_id)
            with background():
                return sdk.contacts.find(contact_id=contact_id)

        return step

    def interactive(contact_id: str) -> Callable[[], object]:
        def step() -> object:
            neighbour.catch_up()
            return sdk.contacts.find(contact_id=contact_id)

        return step

    for i in range(150):
        steps.append(("backfill: GET /contacts/{id}", backfill(rng.choice(ids)), 0, 0.05))
        if i % 10 == 9:
            steps.append(("agent: GET /contacts/{id}", interactive(rng.choice(ids)), 0, 0.2))
    return steps


def _count_storm_429s_without_library(seed: int, contacts: int) -> int:
    """Replay the storm with the raw SDK (no limiter, no retries) on a twin fake; count its 429s."""
    clock = VirtualClock(DEMO_START)
    fake = FakeIntercom(
        clock=clock, app_quota=APP_QUOTA, workspace_quota=WORKSPACE_QUOTA, seed=seed
    )
    http = httpx.Client(transport=fake.transport())
    raw = intercom.Intercom(token=DEFAULT_TOKEN, base_url=_BASE_URL, httpx_client=http)
    ids = [
        raw.contacts.create(request={"email": f"user{i}@example.com"}).id for i in range(contacts)
    ]
    clock.advance(3600.0)
    neighbour = _Neighbour(fake, rate=13.0, limit=100_000)
    for _label, step, _write, pause in _storm_steps(raw, ids, random.Random(seed), neighbour, None):
        # The raw SDK raises on a 429; the replay only counts them (in the fake's journal).
        with contextlib.suppress(intercom.core.api_error.ApiError):
            step()
        clock.advance(pause)
    neighbour.close()
    http.close()
    return fake.journal.count(status=429, app=_APP)


class _Day:
    """One run of the scripted day (see the module docstring)."""

    def __init__(self, seed: int, progress: ProgressSink) -> None:
        self.seed = seed
        self.progress = progress
        self.rng = random.Random(seed)
        self.clock = VirtualClock(DEMO_START)
        self.fake = FakeIntercom(
            clock=self.clock, app_quota=APP_QUOTA, workspace_quota=WORKSPACE_QUOTA, seed=seed
        )
        self.vault = {"intercom": DEFAULT_TOKEN}
        self.tokens = _TokenSource(self.vault)
        self.observer = _Observer(self.tokens)
        config = ResilienceConfig(
            rate_limit=RateLimitPolicy(
                app_per_minute=APP_QUOTA, workspace_per_minute=WORKSPACE_QUOTA
            )
        )
        self.client = ResilientIntercom(
            token=self.tokens,
            base_url=_BASE_URL,
            config=config,
            transport=self.fake.transport(),
            clock=self.clock,
            event_hooks=[self.observer.hook],
            on_alert=self.observer.on_alert,
            seed=seed,
        )
        self.rows: list[PhaseRow] = []
        self.row: PhaseRow | None = None
        self.contacts: list[str] = []
        self.conversations: list[str] = []
        self.admin_id = ""
        self.outbox: list[_Step] = []
        self.counts: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()

    # -- running steps ---------------------------------------------------------------------------

    def run_phase(self, index: int, steps: list[_Step]) -> None:
        key, title = PHASES[index - 1]
        row = PhaseRow(key=key, title=title, started_at=self.clock.time())
        row.breaker.append(self.client.breaker_state.value)
        self.row = row
        fired_before = len(self.observer.fired)
        stale_before = self.client.stale_served
        transitions_before = len(self.observer.breaker)
        self.progress.start_phase(index, title, len(steps))
        for label, step, writes, pause in steps:
            self.step(label, step, writes)
            self.clock.advance(pause)
        health = self.sample()
        row.ended_at = self.clock.time()
        row.status_end = health.status
        row.breaker.extend(self.observer.breaker[transitions_before:])
        row.alerts = self.observer.fired[fired_before:]
        row.stale_served = self.client.stale_served - stale_before
        row.rate_limited = self.fake.journal.count(status=429, app=_APP, since=row.started_at)
        self.rows.append(row)
        self.progress.end_phase(row)

    def step(self, label: str, step: Callable[[], object], writes: int) -> object:
        assert self.row is not None
        before = len(self.fake.journal)  # the journal keeps 100,000 entries: far more than a day
        result: object = None
        try:
            result = step()
        except CircuitOpenError:
            self.errors["circuit_open"] += 1
            self.row.errors += 1
            if writes:
                # Never sent: safe to send later. The outbox is flushed during recovery.
                self.outbox.append((label, step, writes, 1.0))
        except OutcomeUnknownError:
            self.errors["outcome_unknown"] += 1
            self.row.errors += 1
        except Exception as error:  # the demo reports every failure; none may stop the day
            self.errors[type(error).__name__] += 1
            self.row.errors += 1
        self.row.calls += 1
        if writes:
            self.counts["writes_issued"] += writes
            committed = sum(
                1
                for entry in self.fake.journal.entries()[before:]
                if entry.changed_state and entry.app == _APP
            )
            self.counts["writes_committed"] += committed
            self.counts["duplicate_writes"] += max(committed - writes, 0)
        health = self.sample()
        self.progress.advance(
            f"{label}  [{health.status}, breaker {health.breaker}, "
            f"stale {self.client.stale_served}]"
        )
        return result

    def sample(self) -> HealthStatus:
        assert self.row is not None
        health = self.client.health()
        if _STATUS_RANK[health.status] > _STATUS_RANK[self.row.status]:
            self.row.status = health.status
        p95 = health.latency_ms.p95
        if p95 is not None and (self.row.p95_ms is None or p95 > self.row.p95_ms):
            self.row.p95_ms = round(p95, 1)
        return health

    # -- the phases ------------------------------------------------------------------------------

    def normal(self) -> list[_Step]:
        client, rng = self.client, self.rng
        # Intercom is never instant: typical latencies, searches slower than finds.
        self.fake.faults.latency(0.06)
        self.fake.faults.latency(0.18, path="/contacts/search", method="POST")
        self.fake.faults.latency(0.09, method="POST")
        steps: list[_Step] = [("GET /me", client.admins.identify, 0, 1.0)]

        def remember_admin() -> object:
            admins = client.admins.list().admins or []
            self.admin_id = admins[0].id if admins and admins[0] is not None else ""
            return admins

        steps.append(("GET /admins", remember_admin, 0, 1.0))
        for i in range(12):

            def create(i: int = i) -> object:
                contact = client.contacts.create(
                    request=CreateContactRequestWithEmail(
                        email=f"user{i}@example.com", name=f"User {i}"
                    )
                )
                assert contact.id is not None  # the fake always answers with one
                self.contacts.append(contact.id)
                message = client.conversations.create(
                    from_=CreateConversationRequestFrom(type="user", id=contact.id),
                    body=f"Hello from user {i}",
                )
                assert message.conversation_id is not None
                self.conversations.append(message.conversation_id)
                return message

            steps.append(("POST /contacts + /conversations", create, 2, 30.0))
        for n in range(36):
            steps.append(("GET /contacts/{id}", self._find_random(), 0, 20.0))
            if n % 4 == 0:
                steps.append(("POST /contacts/search", self._search(), 0, 20.0))
            if n % 3 == 0:
                steps.append(("POST /conversations/{id}/reply", self._reply(rng), 1, 20.0))
        return steps

    def _find_random(self) -> Callable[[], object]:
        def find() -> object:
            return self.client.contacts.find(contact_id=self.rng.choice(self.contacts))

        return find

    def _search(self) -> Callable[[], object]:
        def search() -> object:
            query = SingleFilterSearchRequest(field="email", operator="~", value="example.com")
            return [c.id for c in self.client.contacts.search(query=query)]

        return search

    def _reply(self, rng: random.Random) -> Callable[[], object]:
        number = rng.randrange(1_000_000)

        def reply() -> object:
            return self.client.conversations.reply(
                self.rng.choice(self.conversations),
                request=AdminReplyConversationRequest(
                    message_type="comment",
                    type="admin",
                    admin_id=self.admin_id,
                    body=f"Reply #{number}",
                ),
            )

        return reply

    def storm(self) -> list[_Step]:
        # 13 requests a second from the neighbour is 130 of the workspace's 150 per window.
        self.neighbour = _Neighbour(self.fake, rate=13.0, limit=100_000)
        return _storm_steps(
            self.client, self.contacts, random.Random(self.seed), self.neighbour, self._background
        )

    def _background(self) -> Any:
        return self.client.background()

    def outage(self) -> list[_Step]:
        self.neighbour.close()
        steps: list[_Step] = []

        def warm_up() -> object:
            # Every contact read once recently, so the stale cache can answer for all of them.
            self._search()()
            return [self.client.contacts.find(contact_id=c) for c in self.contacts]

        steps.append(("warm: GET /contacts/{id} x12", warm_up, 0, 5.0))

        def lost_reply() -> object:
            # Intercom commits this reply, but the answer never arrives: the client must not
            # send it again (the journal proves it was written exactly once).
            self.fake.faults.lose_response(path="/conversations/*/reply")
            return self._reply(self.rng)()

        steps.append(("POST /conversations/{id}/reply (response lost)", lost_reply, 1, 5.0))

        def brown_out() -> object:
            self.fake.faults.latency(3.5, method="GET", times=12)
            return None

        steps.append(("Intercom slows down (3.5 s)", brown_out, 0, 0.0))
        for _ in range(6):
            steps.append(("GET /contacts/{id} (slow)", self._find_random(), 0, 2.0))

        def go_down() -> object:
            self.fake.faults.outage(240.0)
            return None

        steps.append(("Intercom goes down (503 for 4 min)", go_down, 0, 0.0))
        # Busy hour: about two calls a second, enough for the breaker's window to judge.
        for n in range(120):
            steps.append(("GET /contacts/{id}", self._find_random(), 0, 0.5))
            if n % 6 == 0:
                steps.append(("POST /contacts/search", self._search(), 0, 0.5))
            if n % 20 == 0:
                steps.append(("POST /conversations/{id}/reply", self._reply(self.rng), 1, 0.5))
        for _ in range(30):
            # Intercom is back; the breaker's cool-down and trial calls close the circuit.
            steps.append(("GET /contacts/{id}", self._find_random(), 0, 10.0))
        return steps

    def revocation(self) -> list[_Step]:
        def regenerate() -> object:
            # Someone regenerates the app's access token in the Developer Hub: Intercom accepts
            # the new one and revokes the old; the secrets store gets the new one. The running
            # process still has the old one cached.
            self.fake.add_token(_ROTATED_TOKEN, app=_APP)
            self.fake.revoke_token(DEFAULT_TOKEN)
            self.vault["intercom"] = _ROTATED_TOKEN
            return None

        steps: list[_Step] = [("token regenerated at Intercom", regenerate, 0, 1.0)]
        for n in range(12):
            steps.append(("GET /contacts/{id}", self._find_random(), 0, 15.0))
            if n % 4 == 0:
                steps.append(("POST /conversations/{id}/reply", self._reply(self.rng), 1, 15.0))
        return steps

    def recovery(self) -> list[_Step]:
        steps = list(self.outbox)
        self.outbox = []
        relabelled: list[_Step] = [
            (f"outbox: {label}", step, writes, pause) for label, step, writes, pause in steps
        ]
        for n in range(30):
            relabelled.append(("GET /contacts/{id}", self._find_random(), 0, 20.0))
            if n % 5 == 0:
                relabelled.append(("POST /contacts/search", self._search(), 0, 20.0))
        relabelled.append(("GET /me", self.client.admins.identify, 0, 60.0))
        return relabelled

    # -- the day ---------------------------------------------------------------------------------

    def run(self) -> DemoResult:
        self.run_phase(1, self.normal())
        self.clock.advance(3600.0)
        self.run_phase(2, self.storm())
        self.clock.advance(3600.0)
        self.run_phase(3, self.outage())
        self.clock.advance(1800.0)
        self.run_phase(4, self.revocation())
        self.clock.advance(600.0)
        self.run_phase(5, self.recovery())
        self.client.check_health()
        health = self.client.health()
        incidents = tuple(self.client.incidents)
        current = self.client.current_incident
        if current is not None:
            incidents = (*incidents, current)
        storm = self.rows[1]
        without = _count_storm_429s_without_library(self.seed, len(self.contacts))
        events = self.observer.events
        counts = {
            "calls": sum(row.calls for row in self.rows),
            "attempts": events[EventName.CALL_ATTEMPT],
            "retries": events[EventName.CALL_RETRY],
            "retry_budget_exhausted": events[EventName.RETRY_BUDGET_EXHAUSTED],
            "rate_limited_received": self.fake.journal.count(status=429, app=_APP),
            "storm_429s_received": storm.rate_limited,
            "storm_429s_without_library": without,
            "storm_429s_prevented": max(without - storm.rate_limited, 0),
            "neighbour_requests": self.neighbour.sent,
            "stale_served": self.client.stale_served,
            "fail_fast": self.observer.fail_fast,
            "caller_errors": sum(self.errors.values()),
            "outcome_unknown": self.errors["outcome_unknown"],
            "token_rotations": events[EventName.CALL_TOKEN_ROTATED],
            "breaker_transitions": events[EventName.BREAKER_TRANSITION],
            "alerts_fired": len(self.observer.fired),
            "incidents": len(incidents),
            "writes_issued": self.counts["writes_issued"],
            "writes_committed": self.counts["writes_committed"],
            "duplicate_writes": self.counts["duplicate_writes"],
        }
        cold, warm = _outage_with_and_without_warming(self.seed)
        counts["outage_reads_answered_cold"] = cold
        counts["outage_reads_answered_warmed"] = warm
        self.client.close()
        return DemoResult(
            seed=self.seed,
            phases=tuple(self.rows),
            counts=counts,
            health=health,
            incidents=incidents,
            main_incident=_main_incident(incidents),
        )


def _outage_with_and_without_warming(seed: int) -> tuple[int, int]:
    """Reads answered during an outage by a cold client and by a warmed one (of WARMING_CONTACTS).

    Both clients read the same few contacts beforehand, as everyday traffic would; the warmed one
    also ran ``warm_cache`` over all of them. Then Intercom goes down and each reads them all.
    """
    clock = VirtualClock(DEMO_START)
    fake = FakeIntercom(clock=clock, seed=seed)
    with fake.client(seed=seed) as seeder:
        ids = [
            str(
                seeder.contacts.create(
                    request=CreateContactRequestWithEmail(email=f"vip{i}@example.com")
                ).id
            )
            for i in range(WARMING_CONTACTS)
        ]
    answered: list[int] = []
    for warmed in (False, True):
        with fake.client(seed=seed) as client:
            for contact_id in ids[:_EVERYDAY_READS]:
                client.contacts.find(contact_id=contact_id)
            if warmed:
                client.warm_cache(contacts=ids)
            clock.advance(600.0)
            fake.faults.outage(seconds=3600.0)
            served = 0
            for contact_id in ids:
                try:
                    client.contacts.find(contact_id=contact_id)
                except (ApiError, CircuitOpenError):  # the 503, then fail-fast: nothing cached
                    pass
                else:
                    served += 1
            fake.faults.clear()
            answered.append(served)
    return answered[0], answered[1]


def _main_incident(incidents: tuple[Incident, ...]) -> Incident | None:
    """The most severe incident; the longest among equals; the earliest among those."""
    if not incidents:
        return None

    def key(incident: Incident) -> tuple[int, float]:
        severity = incident.severity
        rank = severity.rank if severity is not None else 99
        return (rank, -(incident.duration or 0.0))

    return min(incidents, key=key)


def run_demo(seed: int = 0, progress: ProgressSink | None = None) -> DemoResult:
    """Run the scripted day with *seed*, reporting to *progress*; returns what happened."""
    return _Day(seed, progress or _NoProgress()).run()
