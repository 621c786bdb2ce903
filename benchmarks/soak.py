"""A chaos soak: hours of simulated traffic against the fake Intercom, with invariants checked live.

One ``ResilientIntercom`` and one ``FakeIntercom`` share a ``VirtualClock``, so an hour of traffic
(backoffs, rate-limit windows, outages, cool-downs) runs in seconds. The fake injects seeded chaos
(5xx, HTML gateway pages, 429s, lost responses, connection resets and refusals), a constant
latency, a full outage every 15 minutes and a token revocation every 10 minutes (the client's token
callable hands out the new token once the old one is refused). Checked as the run goes:

* zero duplicate writes: every create has a unique email, and the fake holds one contact per
  email; a 409 (the fake refuses a second contact with the same email) is only ever the answer
  to the library re-sending a create whose answer was lost, to reconcile it;
* every create is confirmed (first time, or reconciled after a lost answer) or reported as
  ``OutcomeUnknownError`` (or failed before the fake processed it), and the journal agrees on
  which of them changed state;
* zero 429s caused by our own over-admission (only injected ones), and per fixed 10-second window
  no more requests than the quota;
* every failure's request id is in the client's incident record right after the failure;
* the token never appears in events, logs, health, incidents, postmortems or exceptions;
* memory: the per-component sizes (cache, write generations, incident record, health window) at
  intervals, each against its configured bound, and what the library holds in all (the deep size
  of the client's object graph and the library modules' globals, the fake and the virtual clock
  not followed). The cache may fill up to its budget (token rotations add scopes); what the
  library holds beyond it must not grow. With tracemalloc (``--no-memory`` skips it), the
  process's peaks, fake and journal included, are reported as well.

Run: ``python benchmarks/soak.py --minutes 60 --seed 1`` (``--json`` for machine-readable output).
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import logging
import math
import random
import sys
import time
import tracemalloc
import types
from collections import Counter
from typing import Any

from intercom.core.api_error import ApiError

from intercom_resilience import (
    IntercomResilienceError,
    OutcomeUnknownError,
    RateLimitPolicy,
    ResilienceConfig,
    ResilientIntercom,
    VirtualClock,
    capture_calls,
    render_postmortem,
    render_status_update,
)
from intercom_resilience.events import CallRetry, Event
from intercom_resilience.testing import FakeIntercom

APP_PER_MINUTE = 600  # a scaled-down quota: 100 requests per 10-second window
WINDOW = 10.0
WINDOW_QUOTA = int(APP_PER_MINUTE * WINDOW / 60)
CHAOS_KINDS = ("500", "503", "502-html", "504-html", "429", "lose", "reset", "refused")
SEEDED_CONTACTS = 50
CALLS_PER_SECOND = 2.0
OUTAGE_EVERY, OUTAGE_FOR = 15 * 60.0, 90.0
ROTATE_EVERY = 10 * 60.0
BURST_EVERY, BURST_SIZE = 5 * 60.0, 150
REPORT_EVERY = 2.5 * 60.0
ALLOWED = (ApiError, IntercomResilienceError)
_LOGGER = logging.getLogger("intercom_resilience")


class RotatingToken:
    """The client's token callable: a secret store that learns of a rotation one call late.

    After :meth:`rotate`, the next call still returns the old token (the request it builds is
    refused with 401 ``token_revoked``); the client then calls again and gets the new one.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.generation = 0
        self.current = self._make(0)
        self.pending: str | None = None
        self.issued: list[str] = [self.current]

    def _make(self, generation: int) -> str:
        return f"soak-secret-{self.seed}-{generation}-{random.Random(generation).getrandbits(64):x}"

    def rotate(self) -> tuple[str, str]:
        self.generation += 1
        new = self._make(self.generation)
        self.issued.append(new)
        self.pending = new
        return self.current, new

    def __call__(self) -> str:
        token = self.current
        if self.pending is not None:  # hand out the old one once more, then the new one
            self.current, self.pending = self.pending, None
        return token


@dataclasses.dataclass
class Sample:
    """Component sizes and library memory at one moment of simulated time."""

    minute: float
    traced_kib: float
    cache_entries: int
    cache_kib: float
    cache_deep_kib: float
    coherence_tags: int
    incident_request_ids: int
    incident_timeline: int
    incidents_kept: int
    recent_failures: int
    health_samples: int

    @property
    def beyond_cache_kib(self) -> float:
        """Library memory not held by the cache (which may grow to its budget)."""
        return max(0.0, self.traced_kib - self.cache_deep_kib)


@dataclasses.dataclass
class SoakResult:
    """Everything the soak counted, and every invariant violation it saw."""

    seed: int
    minutes: float
    calls: int = 0
    requests: int = 0
    faults: Counter[str] = dataclasses.field(default_factory=Counter)
    retries: int = 0
    stale_serves: int = 0
    stale_call_infos: int = 0
    duplicates: int = 0
    status_429_total: int = 0
    status_429_injected: int = 0
    status_429_quota: int = 0
    worst_window: int = 0
    creates: int = 0
    creates_confirmed: int = 0
    creates_unknown: int = 0
    creates_unknown_applied: int = 0
    creates_reconciled: int = 0
    conflicts_409: int = 0
    creates_failed: int = 0
    errors: Counter[str] = dataclasses.field(default_factory=Counter)
    failures_with_request_id: int = 0
    failures_without_request_id: int = 0
    rotations: int = 0
    outages: int = 0
    incidents: int = 0
    events_checked: int = 0
    log_records_checked: int = 0
    samples: list[Sample] = dataclasses.field(default_factory=list)
    peak_first_half_kib: float = 0.0
    peak_second_half_kib: float = 0.0
    process_peak_first_half_kib: float = 0.0
    process_peak_second_half_kib: float = 0.0
    wall_seconds: float = 0.0
    violations: list[str] = dataclasses.field(default_factory=list)

    def violate(self, message: str) -> None:
        if len(self.violations) < 50:
            self.violations.append(message)

    def table(self) -> str:
        """The summary table, as Markdown."""
        faults = ", ".join(f"{k} {v}" for k, v in sorted(self.faults.items())) or "none"
        rows = [
            ("seed", str(self.seed)),
            ("simulated minutes", f"{self.minutes:g}"),
            ("calls", str(self.calls)),
            ("requests (fake journal)", str(self.requests)),
            ("faults injected", f"{sum(self.faults.values())} ({faults})"),
            ("outages / token rotations", f"{self.outages} / {self.rotations}"),
            ("retries", str(self.retries)),
            ("stale serves (client / CallInfo)", f"{self.stale_serves} / {self.stale_call_infos}"),
            ("duplicate writes", str(self.duplicates)),
            (
                "429s (total / injected / own over-admission)",
                f"{self.status_429_total} / {self.status_429_injected} / {self.status_429_quota}",
            ),
            ("busiest 10 s window", f"{self.worst_window} (quota {WINDOW_QUOTA})"),
            (
                "creates (confirmed / unknown, of which applied / failed unsent)",
                f"{self.creates} ({self.creates_confirmed} / {self.creates_unknown}, "
                f"{self.creates_unknown_applied} / {self.creates_failed})",
            ),
            (
                "creates reconciled after a lost answer (409s seen)",
                f"{self.creates_reconciled} ({self.conflicts_409})",
            ),
            (
                "failures with / without request id",
                f"{self.failures_with_request_id} / {self.failures_without_request_id}",
            ),
            ("incidents", str(self.incidents)),
            ("errors raised", ", ".join(f"{k} {v}" for k, v in self.errors.most_common())),
            (
                "library memory beyond the cache, peak 1st / 2nd half",
                f"{self.peak_first_half_kib:.0f} KiB / {self.peak_second_half_kib:.0f} KiB",
            ),
            (
                "process peak incl. fake + journal, 1st / 2nd half",
                f"{self.process_peak_first_half_kib:.0f} KiB / "
                f"{self.process_peak_second_half_kib:.0f} KiB",
            ),
            ("violations", str(len(self.violations))),
            ("wall time", f"{self.wall_seconds:.1f} s"),
        ]
        width = max(len(name) for name, _ in rows)
        lines = [f"| {'metric':<{width}} | value |", f"|{'-' * (width + 2)}|-------|"]
        lines += [f"| {name:<{width}} | {value} |" for name, value in rows]
        return "\n".join(lines)

    def memory_table(self) -> str:
        """Per-component sizes at each report interval, as Markdown."""
        lines = [
            "| minute | library KiB | beyond cache KiB | cache entries | cache KiB (bodies / deep) "
            "| write generations | incident ids | timeline | incidents kept | recent failures "
            "| health samples |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for s in self.samples:
            lines.append(
                f"| {s.minute:.0f} | {s.traced_kib:.0f} | {s.beyond_cache_kib:.0f} "
                f"| {s.cache_entries} | {s.cache_kib:.0f} / {s.cache_deep_kib:.0f} "
                f"| {s.coherence_tags} | {s.incident_request_ids} | {s.incident_timeline} "
                f"| {s.incidents_kept} "
                f"| {s.recent_failures} | {s.health_samples} |"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["faults"] = dict(self.faults)
        data["errors"] = dict(self.errors)
        return data


class _TokenScan(logging.Handler):
    """A logging handler that checks every record the library logs for a leaked token."""

    def __init__(self, tokens: list[str], result: SoakResult) -> None:
        super().__init__(logging.DEBUG)
        self.tokens = tokens
        self.result = result

    def emit(self, record: logging.LogRecord) -> None:
        self.result.log_records_checked += 1
        text = record.getMessage() + repr(getattr(record, "__dict__", {}))
        if any(token in text for token in self.tokens):
            self.result.violate(f"token in a log record: {record.getMessage()[:80]}")


_OPAQUE = (type, types.ModuleType, types.FunctionType, types.MethodType, types.BuiltinFunctionType)
_TEST_EQUIPMENT = ("intercom_resilience.testing", "intercom_resilience._clock")


def _deep_kib(*roots: object) -> float:
    """What *roots* hold: the size of every object reachable from them.

    Not followed: classes, modules, functions and methods (shared code, not data), and the test
    equipment (the fake backend with its journal, the virtual clock), which the client reaches
    through its transport but which is not the library's memory.
    """
    seen: set[int] = set()
    stack = list(roots)
    total = 0
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, _OPAQUE):
            continue
        seen.add(id(obj))
        if type(obj).__module__.startswith(_TEST_EQUIPMENT):
            continue
        total += sys.getsizeof(obj)
        stack.extend(gc.get_referents(obj))
    return total / 1024


def _library_kib(client: ResilientIntercom) -> float:
    """What the library holds: the client's object graph and the library modules' globals."""
    modules = [
        vars(module)
        for name, module in list(sys.modules.items())
        if name.startswith("intercom_resilience") and not name.startswith(_TEST_EQUIPMENT)
    ]
    return _deep_kib(client, *modules)


def _sample(client: ResilientIntercom, minute: float) -> Sample:
    pipeline = client._pipeline  # introspection for the report only
    cache = pipeline.cache
    stats: dict[str, Any] = cache.stats() if hasattr(cache, "stats") else {}
    incident = client.current_incident
    monitor = pipeline.monitor
    return Sample(
        minute=minute,
        traced_kib=_library_kib(client),
        cache_entries=len(cache) if hasattr(cache, "__len__") else 0,
        cache_kib=float(stats.get("bytes", 0)) / 1024,
        cache_deep_kib=(
            _deep_kib(cache._table, cache._index, cache._shapes)
            if hasattr(cache, "_table")
            else 0.0
        ),
        coherence_tags=len(pipeline.coherence),
        incident_request_ids=0 if incident is None else len(incident.request_ids),
        incident_timeline=0 if incident is None else len(incident.timeline),
        incidents_kept=len(client.incidents),
        recent_failures=len(client.recent_failures),
        health_samples=len(monitor._samples),
    )


def _recorded_ids(client: ResilientIntercom) -> set[str]:
    ids = {f.request_id for f in client.recent_failures if f.request_id}
    incident = client.current_incident
    if incident is not None:
        ids.update(incident.request_ids)
    past = client.incidents
    if past:
        ids.update(past[-1].request_ids)
    return ids


def run_soak(  # noqa: PLR0915 - one loop, read top to bottom, is clearer than ten helpers
    minutes: float = 60.0,
    seed: int = 1,
    *,
    chaos_rate: float = 0.05,
    trace_memory: bool = True,
    progress: bool = False,
    propagate_logs: bool = True,
) -> SoakResult:
    """Run the soak for *minutes* of simulated time; the result holds counts and violations.

    Every record of the ``intercom_resilience`` logger is scanned for tokens by the soak's own
    handler. ``propagate_logs=False`` keeps them from reaching the root logger's handlers
    meanwhile (pytest's log capture keeps every record, which would show up as memory growth).
    """
    started = time.perf_counter()
    result = SoakResult(seed=seed, minutes=minutes)
    rng = random.Random(seed)
    clock = VirtualClock()
    token = RotatingToken(seed)
    fake = FakeIntercom(
        clock=clock, token=token.current, app_quota=APP_PER_MINUTE, seed=seed, journal_size=None
    )
    state = fake.workspace()
    t0 = clock.time()
    ids = [
        state.create_contact({"email": f"seed{n}@example.com"}, int(t0)).id
        for n in range(SEEDED_CONTACTS)
    ]
    fake.faults.chaos(chaos_rate, seed=seed, kinds=CHAOS_KINDS)
    fake.faults.latency(0.08)

    def on_event(event: Event) -> None:
        result.events_checked += 1
        if isinstance(event, CallRetry):
            result.retries += 1
        text = f"{event.name} {event!r}"
        if any(secret in text for secret in token.issued):
            result.violate(f"token in event {event.name}")

    config = ResilienceConfig(
        rate_limit=RateLimitPolicy(
            app_per_minute=APP_PER_MINUTE,
            workspace_per_minute=10 * APP_PER_MINUTE,
            max_wait=60.0,
        )
    )
    scan = _TokenScan(token.issued, result)
    previous_level, previous_propagate = _LOGGER.level, _LOGGER.propagate
    _LOGGER.addHandler(scan)
    _LOGGER.propagate = propagate_logs
    _LOGGER.setLevel(logging.DEBUG)
    if trace_memory:
        tracemalloc.start()
    confirmed: dict[str, str] = {}
    unknown: list[str] = []
    failed: list[str] = []
    stale_infos = 0
    half = t0 + minutes * 30.0
    second_half = False
    try:
        client = ResilientIntercom(
            token=token,
            transport=fake.transport(),
            clock=clock,
            config=config,
            seed=seed,
            event_hooks=[on_event],
        )
        next_outage = t0 + OUTAGE_EVERY
        next_rotation = t0 + ROTATE_EVERY
        next_burst = t0 + BURST_EVERY
        next_report = t0
        end = t0 + minutes * 60.0
        while clock.time() < end:
            now = clock.time()
            if now >= next_report:
                result.samples.append(_sample(client, (now - t0) / 60))
                if progress:
                    print(f"  minute {(now - t0) / 60:5.1f}: {result.calls} calls", flush=True)
                next_report += REPORT_EVERY
            if trace_memory and not second_half and now >= half:
                result.process_peak_first_half_kib = tracemalloc.get_traced_memory()[1] / 1024
                tracemalloc.reset_peak()
                second_half = True
            if now >= next_outage:
                fake.faults.outage(OUTAGE_FOR)
                result.outages += 1
                next_outage += OUTAGE_EVERY
            if now >= next_rotation:
                old, new = token.rotate()
                fake.add_token(new)
                fake.revoke_token(old)
                result.rotations += 1
                next_rotation += ROTATE_EVERY
            burst = now >= next_burst
            if burst:
                next_burst += BURST_EVERY
            for _ in range(BURST_SIZE if burst else 1):
                kind = "list" if burst else _choose(rng)
                email = f"soak-{seed}-{result.calls}@example.com"
                result.calls += 1
                with capture_calls() as calls:
                    try:
                        if burst:
                            with client.background():
                                _operate(client, kind, rng, ids, email)
                        else:
                            created = _operate(client, kind, rng, ids, email)
                            if created is not None:
                                confirmed[email] = created
                    except Exception as error:  # the invariant: only library/SDK errors
                        _on_error(client, result, error, kind, email, unknown, failed, token)
                stale_infos += sum(1 for info in calls if info.stale)
                result.creates_reconciled += sum(
                    1 for info in calls if info.reconciled_by == "conflict"
                )
                for info in calls:
                    failure_id = info.failure_request_id
                    if info.stale and failure_id and failure_id not in _recorded_ids(client):
                        result.violate(f"stale serve's failure id {failure_id} unrecorded")
            clock.advance(rng.expovariate(CALLS_PER_SECOND))
        if trace_memory:
            result.process_peak_second_half_kib = tracemalloc.get_traced_memory()[1] / 1024
        result.samples.append(_sample(client, (clock.time() - t0) / 60))
        first = [x.beyond_cache_kib for x in result.samples if x.minute <= minutes / 2]
        second = [x.beyond_cache_kib for x in result.samples if x.minute > minutes / 2]
        result.peak_first_half_kib = max(first, default=0.0)
        result.peak_second_half_kib = max(second, default=0.0)
        _check_outputs(client, result, token.issued)
        result.stale_serves = client.stale_served
        result.stale_call_infos = stale_infos
        result.incidents = len(client.incidents)
        client.close()
    finally:
        if trace_memory:
            tracemalloc.stop()
        _LOGGER.removeHandler(scan)
        _LOGGER.setLevel(previous_level)
        _LOGGER.propagate = previous_propagate
    if result.stale_serves != result.stale_call_infos:
        result.violate(f"stale_served {result.stale_serves} != stale CallInfos {stale_infos}")
    _check_journal(fake, result, confirmed, unknown, failed)
    result.wall_seconds = time.perf_counter() - started
    return result


def _choose(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.55:
        return "find"
    if roll < 0.70:
        return "create"
    if roll < 0.82:
        return "update"
    if roll < 0.92:
        return "search"
    return "me"


def _operate(
    client: ResilientIntercom, kind: str, rng: random.Random, ids: list[str], email: str
) -> str | None:
    contact_id = ids[rng.randrange(len(ids))]
    if kind == "find":
        client.contacts.find(contact_id=contact_id)
    elif kind == "create":
        return str(client.contacts.create(request={"email": email}).id)
    elif kind == "update":
        client.contacts.update(contact_id=contact_id, name=f"name {rng.randrange(1000)}")
    elif kind == "search":
        query = {"field": "email", "operator": "=", "value": f"seed{rng.randrange(50)}@example.com"}
        next(iter(client.contacts.search(query=query)), None)
    elif kind == "list":
        next(iter(client.contacts.list(per_page=5)), None)
    else:
        client.admins.identify()
    return None


def _on_error(
    client: ResilientIntercom,
    result: SoakResult,
    error: Exception,
    kind: str,
    email: str,
    unknown: list[str],
    failed: list[str],
    token: RotatingToken,
) -> None:
    if not isinstance(error, ALLOWED):
        result.violate(f"{type(error).__module__}.{type(error).__name__} escaped: {error!r}")
        return
    result.errors[type(error).__name__] += 1
    text = f"{error!s} {error!r}"
    if any(secret in text for secret in token.issued):
        result.violate(f"token in a {type(error).__name__}")
    if kind == "create":
        (unknown if isinstance(error, OutcomeUnknownError) else failed).append(email)
    request_id = getattr(error, "request_id", None)
    if request_id is None:
        result.failures_without_request_id += 1
    elif request_id in _recorded_ids(client):
        result.failures_with_request_id += 1
    else:
        result.violate(f"request id {request_id} of a {type(error).__name__} not recorded")


def _check_outputs(client: ResilientIntercom, result: SoakResult, tokens: list[str]) -> None:
    outputs = [json.dumps(client.health().to_dict()), repr(client)]
    for incident in client.incidents:
        outputs += [
            incident.to_json(),
            render_postmortem(incident),
            render_status_update(incident, now=client._pipeline.clock.time()),
        ]
    outputs += [json.dumps(f.to_dict()) for f in client.recent_failures]
    for text in outputs:
        if any(secret in text for secret in tokens):
            result.violate("token in a report")


def _check_journal(
    fake: FakeIntercom,
    result: SoakResult,
    confirmed: dict[str, str],
    unknown: list[str],
    failed: list[str],
) -> None:
    entries = fake.journal.entries()
    result.requests = len(entries)
    result.faults = Counter(
        entry.fault.split(":")[0] + ":" + entry.fault.split(":")[1]
        if entry.fault and entry.fault.startswith("chaos")
        else (entry.fault or "").split(":")[0]
        for entry in entries
        if entry.fault and entry.fault != "latency" and not entry.fault.startswith("latency")
    )
    windows = Counter(math.floor(entry.time / WINDOW) for entry in entries)
    result.worst_window = max(windows.values(), default=0)
    if result.worst_window > WINDOW_QUOTA:
        result.violate(f"{result.worst_window} requests in one window (quota {WINDOW_QUOTA})")
    with_429 = [e for e in entries if e.status == 429]
    result.status_429_total = len(with_429)
    result.status_429_quota = sum(
        1
        for e in with_429
        if e.fault is None or e.fault == "latency" or e.fault.startswith("latency")
    )
    result.status_429_injected = result.status_429_total - result.status_429_quota
    if result.status_429_quota:
        result.violate(f"{result.status_429_quota} 429s from the real quota (over-admission)")

    state = fake.workspace()
    by_email = Counter((c.email or "") for c in state.contacts.values())
    result.duplicates = sum(count - 1 for email, count in by_email.items() if email and count > 1)
    result.conflicts_409 = sum(
        1 for e in entries if e.method == "POST" and e.path == "/contacts" and e.status == 409
    )
    if result.duplicates:
        result.violate(f"{result.duplicates} duplicate writes")
    result.creates_confirmed = len(confirmed)
    result.creates_unknown = len(unknown)
    result.creates_failed = len(failed)
    result.creates = len(confirmed) + len(unknown) + len(failed)
    for email, contact_id in confirmed.items():
        contact = state.contacts.get(contact_id)
        if contact is None or contact.email != email:
            result.violate(f"confirmed create {email} not in the fake's state")
    for email in failed:
        if by_email[email]:
            result.violate(f"create {email} reported failed but the fake applied it")
    applied = [e for e in unknown if by_email[e]]
    result.creates_unknown_applied = len(applied)
    processed = [
        e for e in entries if e.method == "POST" and e.path == "/contacts" and e.changed_state
    ]
    if len(processed) != len(confirmed) + len(applied):
        result.violate(
            f"journal: {len(processed)} creates changed state, client saw "
            f"{len(confirmed)} confirmed + {len(applied)} unknown-but-applied"
        )
    unanswered = [e for e in processed if e.outcome != "response"]
    if len(unanswered) != len(applied) + result.creates_reconciled:
        result.violate(
            f"{len(unanswered)} lost create responses vs {len(applied)} applied-but-unknown "
            f"+ {result.creates_reconciled} reconciled"
        )
    # Each 409 answers one re-send of a create whose answer was lost (there are at most
    # max_attempts of them per call), and each reconciliation by conflict saw one.
    resends = len(unanswered) * ResilienceConfig().retry.max_attempts
    if not result.creates_reconciled <= result.conflicts_409 <= resends:
        result.violate(f"{result.conflicts_409} 409s for {len(unanswered)} lost creates")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=60.0, help="simulated minutes")
    parser.add_argument("--seed", type=int, default=1, help="seeds traffic, chaos and jitter")
    parser.add_argument("--chaos", type=float, default=0.05, help="share of requests faulted")
    parser.add_argument("--no-memory", action="store_true", help="skip tracemalloc (faster)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    result = run_soak(
        args.minutes,
        args.seed,
        chaos_rate=args.chaos,
        trace_memory=not args.no_memory,
        progress=not args.json,
    )
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, default=str))
    else:
        print(result.table())
        print()
        print(result.memory_table())
        for violation in result.violations:
            print(f"VIOLATION: {violation}")
    return 1 if result.violations else 0


if __name__ == "__main__":
    sys.exit(main())
