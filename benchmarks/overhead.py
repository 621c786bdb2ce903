"""Per-call overhead of the facade against the raw SDK, on the same in-process fake.

Rounds alternate between the raw ``intercom.Intercom`` and ``ResilientIntercom`` (interleaved, so
machine noise hits both alike) and the median per-call time of each is compared. Two facade
configurations are measured: the pass-through pipeline (limiter and stale cache off: the cost of
the transport, the decisions and the events), and the full default pipeline with the quota
raised so that the limiter never makes the loop wait.

Run: ``python benchmarks/overhead.py [--calls 300] [--rounds 15]``. The target for the
pass-through ratio is at most 1.05.

``--against DIR`` also measures another checkout's package (``DIR/intercom_resilience``, loaded
under another name in the same process) in the same interleaved rounds, so that a change's
before/after ratios come from one run on one machine state.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import intercom

from intercom_resilience import ResilientIntercom
from intercom_resilience.testing import FakeIntercom


def _per_call(fn: Callable[[], object], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


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


def _facades(package: Any, fake: FakeIntercom, label: str) -> dict[str, Any]:
    """The pass-through and the full-pipeline facade of *package* over *fake*."""
    config = package.ResilienceConfig
    passthrough = package.ResilientIntercom(
        token="fake-token",
        transport=fake.transport(),
        config=config(
            rate_limit=package.RateLimitPolicy(enabled=False),
            cache=package.CachePolicy(enabled=False),
        ),
    )
    # The default quota (10,000/min) would pace this loop; raise it so only overhead is measured.
    unthrottled = package.RateLimitPolicy(app_per_minute=10**9, workspace_per_minute=10**9)
    full = package.ResilientIntercom(
        token="fake-token", transport=fake.transport(), config=config(rate_limit=unthrottled)
    )
    return {f"{label}pass-through": passthrough, f"{label}full pipeline": full}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--against", type=Path, help="another checkout to measure alongside")
    args = parser.parse_args()

    # Huge quotas, not rate_limits=False: the fake would still send headers saying the window
    # is spent, and the limiter rightly believes them.
    fake = FakeIntercom(app_quota=10**9, workspace_quota=10**9)
    contact_id = (
        intercom.Intercom(token="fake-token", httpx_client=httpx.Client(transport=fake.transport()))
        .contacts.create(request={"email": "bench@example.com"})
        .id
    )

    raw = intercom.Intercom(
        token="fake-token", httpx_client=httpx.Client(transport=fake.transport())
    )
    this = sys.modules[ResilientIntercom.__module__.split(".")[0]]
    clients: dict[str, Any] = {"raw SDK": raw, **_facades(this, fake, "facade, ")}
    if args.against is not None:
        clients.update(_facades(_load_baseline(args.against), fake, "baseline, "))
    timings: dict[str, list[float]] = {name: [] for name in clients}

    for client in clients.values():  # warm up imports, pools and caches
        _per_call(lambda c=client: c.contacts.find(contact_id=contact_id), 50)
    for _ in range(args.rounds):
        for name, client in clients.items():
            timings[name].append(
                _per_call(lambda c=client: c.contacts.find(contact_id=contact_id), args.calls)
            )

    baseline = statistics.median(timings["raw SDK"])
    print(f"contacts.find on the in-process fake, {args.rounds} interleaved rounds of {args.calls}")
    print(f"{'client':<26} {'median us/call':>15} {'ratio vs raw':>13} {'spread (IQR)':>13}")
    for name, values in timings.items():
        median = statistics.median(values)
        low, _, high = statistics.quantiles(values, n=4) if len(values) > 1 else (0, 0, 0)
        print(
            f"{name:<26} {median * 1e6:>15.1f} {median / baseline:>13.3f} "
            f"{(high - low) / baseline:>13.3f}"
        )


if __name__ == "__main__":
    main()
