"""What the pipeline adds to ``contacts.find``, in CPU instructions: a figure noise cannot move.

``overhead.py`` times whole calls, and on a busy machine a 2-5% target sits well inside the spread
of its rounds (an IQR of 20-50% of the raw SDK's median has been seen here). This benchmark counts
instructions instead, with valgrind's callgrind, which gives the same count for the same code
whatever else the machine is doing. Each subject runs in a child process under callgrind with
collection switched on only inside ``functools.reduce``, which drives the measured loop: imports,
set-up and warm-up are not counted, and the requests are built before the loop.

Subjects, in the same run:

* ``raw SDK find``: ``intercom.Intercom.contacts.find`` on the fake in process (the baseline of
  ``overhead.py``'s in-process find);
* ``inner``: a transport that answers every request with one recorded find answer;
* ``pass-through`` and ``full pipeline``: the facade's transport (configured as in
  ``overhead.py``) around that canned transport.

What a facade adds is its transport's count minus the inner one's; the ratio it implies is
``(raw + added) / raw``, printed against issue #19's targets (pass-through <= 1.02, full pipeline
<= 1.05 on find). ``--against DIR`` measures another checkout's package too (before/after).

Run: ``python benchmarks/instructions.py [--calls 300] [--against DIR]`` (valgrind required; a
minute or two).
"""

from __future__ import annotations

import argparse
import functools
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from overhead import PASS_THROUGH_TARGET, TARGETS, TOKEN, _Canned, _configs, _load_baseline, _seed

_COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")
_KINDS = ("pass-through", "full pipeline")


def _child(subject: str, calls: int, against: str | None) -> None:
    """Run *calls* of *subject* inside ``functools.reduce`` (what callgrind counts)."""
    from intercom_resilience.testing import FakeIntercom

    fake = FakeIntercom(app_quota=10**9, workspace_quota=10**9)
    contact_id = _seed(fake)
    if subject == "raw SDK find":
        import intercom

        http = httpx.Client(transport=fake.transport())
        sdk = intercom.Intercom(token=TOKEN, httpx_client=http)
        for _ in range(50):
            sdk.contacts.find(contact_id=contact_id)
        functools.reduce(lambda _, __: sdk.contacts.find(contact_id=contact_id), range(calls), None)
        return
    with httpx.Client(transport=fake.transport(), base_url="https://api.intercom.io") as http:
        recorded = http.get(f"/contacts/{contact_id}", headers={"Authorization": f"Bearer {TOKEN}"})
    canned = (recorded.status_code, list(recorded.headers.items()), recorded.content)
    transport: Any
    if subject == "inner":
        transport = _Canned(*canned)
    else:
        label, _, kind = subject.rpartition(", ")
        if label:
            assert against is not None
            package: Any = _load_baseline(Path(against))
        else:
            package = sys.modules["intercom_resilience"]
        client = package.ResilientIntercom(
            token=TOKEN, transport=_Canned(*canned), config=_configs(package)[kind]
        )
        transport = client._client_wrapper.httpx_client.httpx_client._transport
    url = f"https://api.intercom.io/contacts/{contact_id}"
    headers = {"authorization": f"Bearer {TOKEN}", "accept": "application/json"}
    for _ in range(200):
        transport.handle_request(httpx.Request("GET", url, headers=headers))
    batch = [httpx.Request("GET", url, headers=headers) for _ in range(calls)]
    functools.reduce(lambda _, request: transport.handle_request(request), batch, None)


def count(subject: str, calls: int, against: Path | None) -> float:
    """Instructions per call of *subject*, counted by callgrind in a child process."""
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        "--collect-atstart=no",
        "--toggle-collect=functools_reduce",
        sys.executable,
        __file__,
        "--child",
        subject,
        "--calls",
        str(calls),
    ]
    if against is not None:
        command += ["--against", str(against)]
    # valgrind and this very file, with our own arguments
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    found = _COLLECTED.findall(done.stderr)
    if done.returncode != 0 or not found:
        raise SystemExit(f"callgrind run of {subject!r} failed:\n{done.stderr[-2000:]}")
    return int(found[-1]) / calls


def report(counts: dict[str, float]) -> list[str]:
    """Each subject's instructions per call; what each facade adds and the ratio it implies."""
    raw, inner = counts["raw SDK find"], counts["inner"]
    lines = [
        "instructions per call (callgrind, the measured loop only)",
        f"  {'raw SDK find':<30} {raw:>12,.0f}",
        f"  {'inner (canned answer)':<30} {inner:>12,.0f}",
        f"  {'facade':<30} {'added':>12}   implied ratio to the raw find",
    ]
    for subject, value in counts.items():
        if subject in ("raw SDK find", "inner"):
            continue
        added = value - inner
        target = PASS_THROUGH_TARGET if subject.endswith("pass-through") else TARGETS["find"]
        implied = (raw + added) / raw
        verdict = "holds" if implied <= target else "MISSES"
        lines.append(
            f"  {subject:<30} {added:>12,.0f}   {implied:.3f} (<= {target:.2f}: {verdict})"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--against", type=Path, default=None)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        _child(args.child, args.calls, None if args.against is None else str(args.against))
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is needed (Debian: apt-get install valgrind)")
    subjects = ["raw SDK find", "inner", *_KINDS]
    if args.against is not None:
        subjects += [f"baseline, {kind}" for kind in _KINDS]
    counts = {subject: count(subject, args.calls, args.against) for subject in subjects}
    print("\n".join(report(counts)))


if __name__ == "__main__":
    main()
