"""Per-call overhead of the facade against the raw SDK, on the same fake, in the same run.

Three operations (``contacts.find``; one page of ``contacts.list`` and of ``contacts.search``, 50
contacts a page), sync and async, in process (the fake's transport) and over real HTTP (the fake
served on 127.0.0.1 by uvicorn in a thread). For each, three clients on the same fake:

* ``raw SDK``: ``intercom.Intercom`` / ``AsyncIntercom`` untouched, the baseline;
* ``pass-through``: the facade with the limiter and the stale cache off (the cost of the
  transport, the decisions and the telemetry);
* ``full pipeline``: the default configuration, with the quota raised so that the limiter never
  makes the loop wait (only overhead is measured).

Rounds interleave the clients (raw, pass-through, full, raw, …), so that machine noise hits each
alike; each client's median per-call time over the rounds is compared with the raw SDK's of the
same scenario, and the spread (IQR of the rounds, as a share of the raw median) is printed beside
it. The targets of issue #19 are printed with the measured ratio and whether each holds:

* full pipeline ≤ 1.05× on ``find``, ≤ 1.03× on list and search pages;
* pass-through ≤ 1.02× everywhere.

Whole calls carry the SDK's and the fake's cost, which a busy machine's noise swamps: a 3% target
is well inside the spread of such rounds there. So the run ends with what the pipeline itself
adds per call, measured where it is added: the facade's transport on a canned ``find`` answer
against that canned transport alone, in interleaved rounds (microseconds, best round and median),
and the ratio to the raw ``find`` that this implies (raw median plus the added time, over the raw
median).

Last, where a whole ``find``'s added time goes (sync, in process): the same clients with a timer
around the facade's transport and around the fake's, so that each call splits into the
pipeline's own time (inside the facade's transport, outside the fake's), the fake's, and the
SDK's and httpx's time outside the transport, each against the raw SDK's. It shows what the
canned figure cannot: inside whole calls the pipeline's own code runs slower than on a canned
answer (the SDK's work between two calls evicts it from the CPU's caches and predictors), and
the SDK's own work slows down beside it.

Rounds are timed by the process's CPU time by default (``--clock wall`` for wall-clock time): on
a shared machine the time other processes hold the cores is then not charged to whichever client
was running, and the fake (in process, or served in a thread) is part of the process. A verdict
within the spread is noise, not a result: run it twice.

Run: ``python benchmarks/overhead.py [--rounds 15] [--scale 1.0] [--only find,list]
[--no-http] [--no-async] [--clock cpu|wall] [--against DIR]``. ``--scale`` multiplies the calls
per round.

``--against DIR`` also measures another checkout's package (``DIR/intercom_resilience``, loaded
under another name in the same process) in the same interleaved rounds, so that a change's
before/after ratios come from one run on one machine state.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import importlib.util
import math
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import intercom

from intercom_resilience import ResilientIntercom
from intercom_resilience._sdk import DefaultHttpxClient  # benchmark only: the facade's client
from intercom_resilience.testing import FakeIntercom

TOKEN = "fake-token"  # the fake's own default token
#: Calls per round of each operation (the SDK takes ~50x a find to model a page of 50).
CALLS = {"find": 100, "list": 4, "search": 4}
#: The issue's targets: (operation, client) -> the highest ratio to the raw SDK that holds.
TARGETS = {"find": 1.05, "list": 1.03, "search": 1.03}
PASS_THROUGH_TARGET = 1.02
PAGE = 50
SEARCH_QUERY = {"field": "email", "operator": "~", "value": "example.com"}


def _operations(contact_id: str) -> dict[str, Callable[[Any], Any]]:
    """Each measured operation, as a call on a client (the SDK's or a facade, sync or async)."""
    return {
        "find": lambda c: c.contacts.find(contact_id=contact_id),
        "list": lambda c: c.contacts.list(per_page=PAGE),
        "search": lambda c: c.contacts.search(query=SEARCH_QUERY, pagination={"per_page": PAGE}),
    }


#: What a round is timed with: the process's CPU time (the default: on a shared machine the time
#: other processes take the cores from this one is not counted, and the fake, in process or
#: served in a thread, is part of the process), or wall-clock time.
CLOCKS: dict[str, Callable[[], float]] = {"cpu": time.process_time, "wall": time.perf_counter}


def _per_call(call: Callable[[], object], calls: int, clock: Callable[[], float]) -> float:
    start = clock()
    for _ in range(calls):
        call()
    return (clock() - start) / calls


async def _aper_call(
    call: Callable[[], Awaitable[object]], calls: int, clock: Callable[[], float]
) -> float:
    start = clock()
    for _ in range(calls):
        await call()
    return (clock() - start) / calls


def _load_baseline(checkout: Path) -> ModuleType:
    """Another checkout's ``intercom_resilience`` as ``intercom_resilience_baseline``."""
    name = "intercom_resilience_baseline"
    package = checkout / "intercom_resilience"
    spec = importlib.util.spec_from_file_location(
        name, package / "__init__.py", submodule_search_locations=[str(package)]
    )
    if spec is None or spec.loader is None:
        raise SystemExit(f"no intercom_resilience package under {checkout}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@dataclasses.dataclass(frozen=True)
class Wiring:
    """How the clients of one scenario reach the fake: in process or over HTTP, sync or async."""

    asynchronous: bool
    fake: FakeIntercom
    base_url: str | None  # None: the fake's in-process transport

    def raw(self) -> Any:
        if self.base_url is not None:
            sdk = intercom.AsyncIntercom if self.asynchronous else intercom.Intercom
            return sdk(token=TOKEN, base_url=self.base_url)
        if self.asynchronous:
            http = httpx.AsyncClient(transport=self.fake.async_transport())
            return intercom.AsyncIntercom(token=TOKEN, httpx_client=http)
        http_client = httpx.Client(transport=self.fake.transport())
        return intercom.Intercom(token=TOKEN, httpx_client=http_client)

    def facade(self, package: Any, config: Any) -> Any:
        cls = package.AsyncResilientIntercom if self.asynchronous else package.ResilientIntercom
        if self.base_url is not None:
            return cls(token=TOKEN, base_url=self.base_url, config=config)
        transport = self.fake.async_transport() if self.asynchronous else self.fake.transport()
        return cls(token=TOKEN, transport=transport, config=config)


def _configs(package: Any) -> dict[str, Any]:
    """The pass-through and the full-pipeline configuration of *package*."""
    config = package.ResilienceConfig
    # The default quota (10,000/min) would pace these loops; raise it so only overhead counts.
    unthrottled = package.RateLimitPolicy(app_per_minute=10**9, workspace_per_minute=10**9)
    return {
        "pass-through": config(
            rate_limit=package.RateLimitPolicy(enabled=False),
            cache=package.CachePolicy(enabled=False),
        ),
        "full pipeline": config(rate_limit=unthrottled),
    }


@dataclasses.dataclass
class Scenario:
    """One operation on one wiring, and the per-round timings of each client."""

    name: str
    operation: str
    wiring: Wiring
    clients: dict[str, Any]
    timings: dict[str, list[float]] = dataclasses.field(default_factory=dict)

    def target(self, client: str) -> float | None:
        if client.endswith("pass-through"):
            return PASS_THROUGH_TARGET
        if client.endswith("full pipeline"):
            return TARGETS[self.operation]
        return None


def _seed(fake: FakeIntercom) -> str:
    """Contacts enough for full pages; the id of one to find."""
    sdk = intercom.Intercom(token=TOKEN, httpx_client=httpx.Client(transport=fake.transport()))
    ids = [
        sdk.contacts.create(request={"email": f"bench{i}@example.com", "name": f"Bench {i}"}).id
        for i in range(PAGE + 10)
    ]
    return ids[0]


@contextlib.contextmanager
def _served(fake: FakeIntercom, http: bool) -> Iterator[str | None]:
    if not http:
        yield None
        return
    with fake.serve_in_thread() as url:
        yield url


def run(
    *,
    rounds: int,
    scale: float = 1.0,
    only: tuple[str, ...] = ("find", "list", "search"),
    http: bool = True,
    asynchronous: bool = True,
    against: Path | None = None,
    clock: str = "cpu",
) -> list[Scenario]:
    """Measure every scenario in interleaved rounds; the scenarios with their timings."""
    timer = CLOCKS[clock]
    # Huge quotas: the fake never refuses and its headers never tell the limiter to wait.
    fake = FakeIntercom(app_quota=10**9, workspace_quota=10**9)
    contact_id = _seed(fake)
    operations = _operations(contact_id)
    this = sys.modules[ResilientIntercom.__module__.split(".")[0]]
    packages: dict[str, Any] = {"": this}
    if against is not None:
        packages["baseline, "] = _load_baseline(against)
    loop = asyncio.new_event_loop()
    with _served(fake, http) as url:
        wirings = [("in process", None)] + ([("HTTP", url)] if url is not None else [])
        scenarios: list[Scenario] = []
        for where, base_url in wirings:
            for is_async in (False, True) if asynchronous else (False,):
                wiring = Wiring(is_async, fake, base_url)
                for operation in only:
                    clients: dict[str, Any] = {"raw SDK": wiring.raw()}
                    for label, package in packages.items():
                        for kind, config in _configs(package).items():
                            clients[f"{label}{kind}"] = wiring.facade(package, config)
                    flavour = "async" if is_async else "sync"
                    name = f"{operation}, {flavour}, {where}"
                    scenarios.append(Scenario(name, operation, wiring, clients))

        def measure(scenario: Scenario, client: Any, calls: int) -> float:
            call = operations[scenario.operation]
            if scenario.wiring.asynchronous:
                return loop.run_until_complete(_aper_call(lambda: call(client), calls, timer))
            return _per_call(lambda: call(client), calls, timer)

        for scenario in scenarios:  # warm up imports, pools, caches and the SDK's type hints
            for name, client in scenario.clients.items():
                scenario.timings[name] = []
                measure(scenario, client, max(3, CALLS[scenario.operation] // 10))
        for _ in range(rounds):
            for scenario in scenarios:
                calls = max(1, round(CALLS[scenario.operation] * scale))
                for name, client in scenario.clients.items():
                    scenario.timings[name].append(measure(scenario, client, calls))
    loop.close()
    return scenarios


def report(scenarios: list[Scenario], rounds: int, clock: str = "cpu") -> list[str]:
    """The table (one line per client and scenario) and the verdict lines.

    Two ratios per client: of the medians over the rounds, and of the best rounds (noise only
    ever slows a round down, so on a busy machine the best round is the steadier estimate of
    what a call costs). Each target is judged on both.
    """
    timed = "process CPU time" if clock == "cpu" else "wall-clock time"
    lines = [
        f"per-call {timed} vs the raw SDK on the same fake, {rounds} interleaved rounds",
        f"  {'scenario':<26} {'client':<24} {'median us':>10} {'ratio':>6} {'IQR':>6} "
        f"{'best us':>9} {'ratio':>6}  target: median, best",
    ]
    verdicts: list[tuple[str, float, float, float, float]] = []
    for scenario in scenarios:
        raw = statistics.median(scenario.timings["raw SDK"])
        raw_best = min(scenario.timings["raw SDK"])
        for name, values in scenario.timings.items():
            median, best = statistics.median(values), min(values)
            low, _, high = statistics.quantiles(values, n=4) if len(values) > 1 else (0, 0, 0)
            ratio, best_ratio, spread = median / raw, best / raw_best, (high - low) / raw
            target = scenario.target(name)
            verdict = ""
            if target is not None:
                verdict = (
                    f"<= {target:.2f}: {'holds' if ratio <= target else 'MISSES'}, "
                    f"{'holds' if best_ratio <= target else 'MISSES'}"
                )
                if not name.startswith("baseline"):
                    what = f"{scenario.name}, {name}"
                    verdicts.append((what, ratio, best_ratio, target, spread))
            lines.append(
                f"  {scenario.name:<26} {name:<24} {median * 1e6:>10.1f} {ratio:>6.3f} "
                f"{spread:>6.3f} {best * 1e6:>9.1f} {best_ratio:>6.3f}  {verdict}"
            )
    held = sum(ratio <= target for _, ratio, _, target, _ in verdicts)
    best_held = sum(best <= target for _, _, best, target, _ in verdicts)
    lines.append(
        f"targets: {held} of {len(verdicts)} hold on the medians, {best_held} of "
        f"{len(verdicts)} on the best rounds"
    )
    for what, ratio, best, target, spread in verdicts:
        if ratio > target or best > target:
            noise = " (within the spread)" if ratio - target <= spread else ""
            lines.append(
                f"  MISSES {what}: median {ratio:.3f}, best {best:.3f} > {target:.2f}{noise}"
            )
    return lines


class _Canned(httpx.BaseTransport):
    """An inner transport that answers every request with one recorded response."""

    def __init__(self, status: int, headers: list[tuple[str, str]], content: bytes) -> None:
        self._answer = (status, headers, content)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        status, headers, content = self._answer
        return httpx.Response(status, headers=headers, content=content)


def pipeline_cost(
    rounds: int, calls: int = 200, against: Path | None = None, clock: str = "cpu"
) -> dict[str, list[float]]:
    """Per-call time of each facade's transport on a canned ``find`` answer, and of the canned
    transport alone (``inner``), in interleaved rounds.

    What the facade adds to a call is exactly its transport's work (the SDK above it is the raw
    SDK's), so this measures the pipeline without the SDK's and the fake's cost around it: a
    figure in microseconds that a busy machine disturbs far less than the ratios of whole calls.
    """
    timer = CLOCKS[clock]
    fake = FakeIntercom(app_quota=10**9, workspace_quota=10**9)
    contact_id = _seed(fake)
    with httpx.Client(transport=fake.transport(), base_url="https://api.intercom.io") as http:
        recorded = http.get(f"/contacts/{contact_id}", headers={"Authorization": f"Bearer {TOKEN}"})
    canned = (recorded.status_code, list(recorded.headers.items()), recorded.content)
    packages: dict[str, Any] = {"": sys.modules[ResilientIntercom.__module__.split(".")[0]]}
    if against is not None:
        packages["baseline, "] = sys.modules.get("intercom_resilience_baseline") or (
            _load_baseline(against)
        )
    transports: dict[str, Any] = {"inner": _Canned(*canned)}
    for label, package in packages.items():
        for kind, config in _configs(package).items():
            client = package.ResilientIntercom(
                token=TOKEN, transport=_Canned(*canned), config=config
            )
            # The resilient transport the facade wrapped around the inner one (benchmark only).
            transports[f"{label}{kind}"] = (
                client._client_wrapper.httpx_client.httpx_client._transport
            )
    url = f"https://api.intercom.io/contacts/{contact_id}"
    headers = {"authorization": f"Bearer {TOKEN}", "accept": "application/json"}

    def requests(n: int) -> list[httpx.Request]:
        return [httpx.Request("GET", url, headers=headers) for _ in range(n)]

    timings: dict[str, list[float]] = {name: [] for name in transports}
    for transport in transports.values():
        for request in requests(calls):
            transport.handle_request(request)
    for _ in range(rounds):
        for name, transport in transports.items():
            batch = requests(calls)  # built outside the timed loop: the SDK's work, not ours
            start = timer()
            for request in batch:
                transport.handle_request(request)
            timings[name].append((timer() - start) / calls)
    return timings


def report_pipeline_cost(
    timings: dict[str, list[float]], scenarios: list[Scenario], clock: str = "cpu"
) -> list[str]:
    """What each facade adds per call (best round and median, in µs), and the ratio to the raw
    SDK's ``find`` in process that it implies (raw median + added, over raw median)."""
    raw = {
        s.wiring.asynchronous: statistics.median(s.timings["raw SDK"])
        for s in scenarios
        if s.operation == "find" and s.wiring.base_url is None
    }
    inner_best, inner_median = min(timings["inner"]), statistics.median(timings["inner"])
    timed = "process CPU time" if clock == "cpu" else "wall-clock time"
    lines = [
        f"what the pipeline adds per call (its transport on a canned find answer, {timed}, "
        f"{len(timings['inner'])} interleaved rounds; the inner transport alone: "
        f"{inner_best * 1e6:.1f} us)",
        f"  {'client':<24} {'added, best':>12} {'median':>8}   implied ratio to the raw find "
        f"(sync raw median {raw.get(False, math.nan) * 1e6:.0f} us)",
    ]
    for name, values in timings.items():
        if name == "inner":
            continue
        added = min(values) - inner_best
        added_median = statistics.median(values) - inner_median
        target = PASS_THROUGH_TARGET if name.endswith("pass-through") else TARGETS["find"]
        implied = (raw[False] + added) / raw[False] if False in raw else math.nan
        verdict = "holds" if implied <= target else "MISSES"
        lines.append(
            f"  {name:<24} {added * 1e6:>9.1f} us {added_median * 1e6:>5.1f} us   "
            f"{implied:.3f} (<= {target:.2f}: {verdict})"
        )
    return lines


class _Timed(httpx.BaseTransport):
    """A transport that adds the wall-clock time spent inside *inner* to :attr:`spent`."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.spent = 0.0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        start = time.perf_counter()
        try:
            return self.inner.handle_request(request)
        finally:
            self.spent += time.perf_counter() - start


#: One client's split of a whole call, in seconds: (whole call, the pipeline's own, the fake's,
#: outside the transport).
Split = tuple[float, float, float, float]


def gap_split(rounds: int, calls: int = 200) -> dict[str, list[Split]]:
    """Each client's sync in-process ``find``, split per call (see the module docstring), in
    interleaved rounds. Timed by ``time.perf_counter`` (a process-CPU clock read costs a
    system call, four per call here): run it on a quiet machine."""
    fake = FakeIntercom(app_quota=10**9, workspace_quota=10**9)
    contact_id = _seed(fake)
    package = sys.modules[ResilientIntercom.__module__.split(".")[0]]
    sides: dict[str, tuple[Any, _Timed, _Timed | None]] = {}
    raw_inner = _Timed(fake.transport())
    sides["raw SDK"] = (
        intercom.Intercom(token=TOKEN, httpx_client=httpx.Client(transport=raw_inner)),
        raw_inner,
        None,
    )
    for kind, config in _configs(package).items():
        inner = _Timed(fake.transport())
        client = package.ResilientIntercom(token=TOKEN, transport=inner, config=config)
        http = client._client_wrapper.httpx_client.httpx_client  # benchmark only
        outer = _Timed(http._transport)
        http._transport = outer
        sides[kind] = (client, inner, outer)

    def one_round(client: Any, inner: _Timed, outer: _Timed | None, n: int) -> Split:
        inner.spent = 0.0
        if outer is not None:
            outer.spent = 0.0
        start = time.perf_counter()
        for _ in range(n):
            client.contacts.find(contact_id=contact_id)
        whole = time.perf_counter() - start
        transport = outer.spent if outer is not None else inner.spent
        return (whole / n, (transport - inner.spent) / n, inner.spent / n, (whole - transport) / n)

    splits: dict[str, list[Split]] = {name: [] for name in sides}
    for side in sides.values():
        one_round(*side, max(3, calls // 10))
    for _ in range(rounds):
        for name, side in sides.items():
            splits[name].append(one_round(*side, calls))
    return splits


def cookie_pass(rounds: int, calls: int = 2_000) -> dict[str, list[float]]:
    """Seconds per call of httpx's cookie pass on a find's response (which sets no cookie): in
    the plain httpx client the raw SDK uses, and in the one a facade builds; interleaved."""
    fake = FakeIntercom(app_quota=10**9, workspace_quota=10**9)
    contact_id = _seed(fake)
    response = httpx.Client(transport=fake.transport()).get(
        f"https://api.intercom.io/contacts/{contact_id}",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    jars = {"raw SDK": httpx.Client().cookies, "facade": DefaultHttpxClient().cookies}
    timings: dict[str, list[float]] = {name: [] for name in jars}
    for _ in range(rounds):
        for name, jar in jars.items():
            start = time.perf_counter()
            for _ in range(calls):
                jar.extract_cookies(response)
            timings[name].append((time.perf_counter() - start) / calls)
    return timings


def report_gap_split(
    splits: dict[str, list[Split]],
    canned: dict[str, list[float]] | None = None,
    cookies: dict[str, list[float]] | None = None,
) -> list[str]:
    """One line per client: the medians of each part of a whole ``find``, each against the raw
    SDK's; and the pipeline's own time beside its time on a canned answer (*canned*: the
    timings of :func:`pipeline_cost`)."""
    medians = {
        name: [statistics.median(split[part] for split in values) for part in range(4)]
        for name, values in splits.items()
    }
    raw = medians["raw SDK"]
    rounds = len(splits["raw SDK"])
    lines = [
        f"where a whole find's added time goes (sync, in process; wall-clock time around the "
        f"transports, medians of {rounds} interleaved rounds, us per call)",
        f"  {'client':<16} {'whole call':>10} {'added':>7}   {'pipeline own':>12} "
        f"{'canned':>7}   {'the fake':>8}   {'SDK + httpx, outside':>20}",
    ]
    for name, (whole, own, inner, outside) in medians.items():
        if name == "raw SDK":
            lines.append(
                f"  {name:<16} {whole * 1e6:>10.1f} {'':>7}   {'':>12} {'':>7}   "
                f"{inner * 1e6:>8.1f}   {outside * 1e6:>12.1f}"
            )
            continue
        warm = ""
        if canned is not None and name in canned:
            added = statistics.median(canned[name]) - statistics.median(canned["inner"])
            warm = f"{added * 1e6:.1f}"
        lines.append(
            f"  {name:<16} {whole * 1e6:>10.1f} {(whole - raw[0]) * 1e6:>+7.1f}   "
            f"{own * 1e6:>12.1f} {warm:>7}   {inner * 1e6:>8.1f}   {outside * 1e6:>12.1f} "
            f"({(outside - raw[3]) * 1e6:+.1f})"
        )
    if cookies is not None:
        plain, skipped = (statistics.median(cookies[name]) * 1e6 for name in ("raw SDK", "facade"))
        lines.append(
            f"  outside, the facade's own httpx client skips httpx's cookie pass on a response "
            f"that sets no cookie: {plain:.1f} us a call in the raw SDK's client, {skipped:.1f} us "
            f"in the facade's (medians of {len(cookies['facade'])} interleaved rounds); the "
            f"pipeline's own cost is the canned column"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the calls per round")
    parser.add_argument("--only", default="find,list,search", help="operations to measure")
    parser.add_argument("--no-http", action="store_true", help="in process only")
    parser.add_argument("--no-async", action="store_true", help="sync clients only")
    parser.add_argument("--against", type=Path, help="another checkout to measure alongside")
    parser.add_argument(
        "--clock", choices=sorted(CLOCKS), default="cpu", help="time rounds by CPU or wall clock"
    )
    args = parser.parse_args()
    scenarios = run(
        rounds=args.rounds,
        scale=args.scale,
        only=tuple(args.only.split(",")),
        http=not args.no_http,
        asynchronous=not args.no_async,
        against=args.against,
        clock=args.clock,
    )
    print("\n".join(report(scenarios, args.rounds, args.clock)))
    costs = pipeline_cost(max(args.rounds, 15), against=args.against, clock=args.clock)
    print("\n".join(report_pipeline_cost(costs, scenarios, args.clock)))
    if "find" in args.only.split(","):
        rounds = max(args.rounds, 9)
        print("\n".join(report_gap_split(gap_split(rounds), costs, cookie_pass(rounds))))


if __name__ == "__main__":
    main()
