"""Faults after the commit, for the reconciliation tests: the fake's own ``lose_response``.

The fake processes and commits the write, then the answer is lost: a read timeout, a JSON 500
(Intercom crashing after the commit) or a connection dropped once the request was sent
(``FakeIntercom.faults.lose_response(how=...)``). :class:`Once` names which requests lose their
answer, and how; :func:`transport` installs it on the fake and returns the fake's transport.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from intercom_resilience.testing import FakeIntercom


@dataclasses.dataclass(frozen=True)
class Once:
    """Lose the answer of the next *times* requests matching *method* and the path *template*."""

    method: str
    template: str
    how: str = "500"  # "timeout", "500" or "drop"
    times: int = 1

    def install(self, fake: FakeIntercom) -> None:
        """Add the fault to *fake*'s script."""
        fake.faults.lose_response(
            path=self.template, method=self.method, how=self.how, times=self.times
        )


def transport(mode: str, fake: FakeIntercom, plan: Once | Sequence[Once] = ()) -> Any:
    """The fake's transport of *mode* (``sync`` or ``async``), with *plan* installed."""
    for once in [plan] if isinstance(plan, Once) else plan:
        once.install(fake)
    return fake.transport() if mode == "sync" else fake.async_transport()
