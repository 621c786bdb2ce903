"""Worker processes for the multi-process benchmarks (``fleet.py``, ``fleet_outage.py``,
``coalescing.py``): the one way they start a fleet, release it at one moment and collect it.

A benchmark runs itself as ``python <benchmark>.py worker '<json options>'`` in each process.
The worker builds its client, calls :func:`ready` (which prints ``ready`` and blocks until the
parent writes the start time), works, and ends with :func:`report` (its figures as the last line
of JSON on stdout). The parent holds the processes in :func:`fleet`, which waits until every
worker is ready before anything starts, so that start-up time (imports, connections) never lands
inside a measurement, and kills any worker still running when it leaves.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

__all__ = ["Fleet", "fleet", "ready", "report"]


class Fleet:
    """Worker processes that have all said they are ready."""

    def __init__(self, workers: list[subprocess.Popen[str]], what: str) -> None:
        self._workers = workers
        self._what = what

    def release(self, start: float) -> None:
        """Tell every worker to start at *start* (``time.time()``, the same for all)."""
        for worker in self._workers:
            assert worker.stdin is not None
            worker.stdin.write(f"{start!r}\n")
            worker.stdin.flush()

    def results(self, timeout: float) -> list[dict[str, Any]]:
        """Each worker's report, once it has exited (a worker that failed fails the run)."""
        outputs = []
        for worker in self._workers:
            out, _ = worker.communicate(timeout=timeout)
            if worker.returncode != 0:
                raise RuntimeError(f"{self._what} exited with {worker.returncode}")
            outputs.append(json.loads(out.strip().splitlines()[-1]))
        return outputs


@contextlib.contextmanager
def fleet(
    script: str, options: dict[str, Any], processes: int, what: str = "a worker"
) -> Iterator[Fleet]:
    """*processes* copies of *script* in worker mode with *options*, each one ready to start.

    *what* names a worker in errors (``"a fleet worker"``).
    """
    workers = [
        subprocess.Popen(  # noqa: S603 - a benchmark of ours, with our own arguments
            [sys.executable, os.path.abspath(script), "worker", json.dumps(options)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None
            line = worker.stdout.readline()
            if line.strip() != "ready":
                raise RuntimeError(f"{what} failed to start: {line!r}")
        yield Fleet(workers, what)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()


def ready() -> float:
    """In a worker: say it is ready, and wait for the start time the parent sends."""
    print("ready", flush=True)
    return float(sys.stdin.readline())


def report(figures: dict[str, Any]) -> None:
    """In a worker: hand *figures* to the parent (the last line it reads)."""
    print(json.dumps(figures), flush=True)
