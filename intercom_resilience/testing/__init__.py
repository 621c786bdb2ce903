"""A fake Intercom for tests: ``from intercom_resilience.testing import FakeIntercom``.

It serves the Intercom REST API (2.16 response shapes) from memory, enforces Intercom's auth and
rate limits, injects scripted faults and records a journal of every request. Run it in process
(``fake.transport()``/``fake.async_transport()``), as an ASGI app, or over real HTTP
(``python -m intercom_resilience.testing serve``). The pytest fixtures ``intercom_fake``,
``intercom_client`` and ``intercom_async_client`` are registered automatically. See
``docs/testing.md``.
"""

from __future__ import annotations

from .._clock import VirtualClock
from ._auth import TokenInfo, fingerprint
from ._fake import DEFAULT_TOKEN, FakeIntercom
from ._faults import FaultKind, Faults
from ._journal import Journal, JournalEntry
from ._paths import PathPattern
from ._quotas import QuotaDecision
from ._responses import Disruption, FakeResponse, Outcome
from ._server import run_server
from ._state import Workspace
from ._transport import AsyncFakeTransport, FakeTransport
from ._webhooks import WEBHOOK_TOPICS, Delivery, DeliveryReport, WebhookSender

__all__ = [
    "DEFAULT_TOKEN",
    "WEBHOOK_TOPICS",
    "AsyncFakeTransport",
    "Delivery",
    "DeliveryReport",
    "Disruption",
    "FakeIntercom",
    "FakeResponse",
    "FakeTransport",
    "FaultKind",
    "Faults",
    "Journal",
    "JournalEntry",
    "Outcome",
    "PathPattern",
    "QuotaDecision",
    "TokenInfo",
    "VirtualClock",
    "WebhookSender",
    "Workspace",
    "fingerprint",
    "run_server",
]
