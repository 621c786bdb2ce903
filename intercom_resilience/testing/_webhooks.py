"""The fake Intercom's webhook deliveries: signed notifications POSTed to a receiver's URL.

:class:`WebhookSender` builds notifications the way Intercom does (``notification_event`` with an
``id``, a ``topic`` from :data:`WEBHOOK_TOPICS`, ``data.item``, ``created_at``,
``delivery_attempts``), signs them with the app's client secret (``X-Hub-Signature: sha1=…``) and
POSTs them to any URL: your own service, or a
:class:`~intercom_resilience.webhooks.WebhookReceiver` under uvicorn. Faults are scripted and
seeded, so a run is reproducible::

    sender = fake.webhooks("http://127.0.0.1:8000/hooks/intercom", secret="s3cret")
    report = sender.run(1000, duplicates=0.05, bad_signatures=0.02, delayed=0.01, delay_s=600)
    assert report.statuses[200] == ...
    print(f"p99 ack {report.ack_ms(99):.1f} ms")

* **duplicates** are redeliveries of a notification already delivered: same ``id``,
  ``delivery_attempts`` one higher, signed again (as Intercom retries);
* **bad signatures** are new notifications signed with another secret (a forger, or a rotated
  secret): a receiver must never handle them;
* **delayed** notifications were created ``delay_s`` seconds before they are delivered.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, Literal

import httpx

from .._clock import Clock, SystemClock
from .._webhooks import SIGNATURE_HEADER, webhook_signature

__all__ = ["WEBHOOK_TOPICS", "Delivery", "DeliveryReport", "WebhookSender"]

#: Webhook topics of Intercom's API reference (2.x), with the type of the item each carries.
WEBHOOK_TOPICS: Mapping[str, str] = MappingProxyType(
    {
        "admin.added_to_workspace": "admin",
        "admin.away_mode_updated": "admin",
        "admin.removed_from_workspace": "admin",
        "company.created": "company",
        "company.updated": "company",
        "contact.archived": "contact",
        "contact.deleted": "contact",
        "contact.email.updated": "contact",
        "contact.lead.created": "contact",
        "contact.lead.signed_up": "contact",
        "contact.lead.tag.created": "contact_tag",
        "contact.lead.updated": "contact",
        "contact.user.created": "contact",
        "contact.user.tag.created": "contact_tag",
        "contact.user.updated": "contact",
        "conversation.admin.assigned": "conversation",
        "conversation.admin.closed": "conversation",
        "conversation.admin.noted": "conversation",
        "conversation.admin.opened": "conversation",
        "conversation.admin.replied": "conversation",
        "conversation.admin.single.created": "conversation",
        "conversation.admin.snoozed": "conversation",
        "conversation.deleted": "conversation",
        "conversation.rating.added": "conversation",
        "conversation.user.created": "conversation",
        "conversation.user.replied": "conversation",
        "conversation_part.tag.created": "conversation",
        "event.created": "event",
        "ticket.admin.assigned": "ticket",
        "ticket.created": "ticket",
        "ticket.note.created": "ticket",
        "ticket.state.updated": "ticket",
        "visitor.signed_up": "visitor",
        "ping": "ping",
    }
)

Signature = Literal["valid", "bad", "missing"]


@dataclasses.dataclass(frozen=True, slots=True)
class Delivery:
    """One POST of a notification, and what the receiver answered.

    Attributes:
        notification_id: the notification's ``id``.
        topic: its topic.
        signature: ``valid``, ``bad`` (another secret) or ``missing``.
        attempt: its ``delivery_attempts`` (2 and more: a redelivery).
        status: the HTTP status answered (``None`` when the connection failed).
        ack_ms: milliseconds from sending the request to the full answer (wall clock).
    """

    notification_id: str
    topic: str
    signature: Signature
    attempt: int
    status: int | None
    ack_ms: float

    @property
    def duplicate(self) -> bool:
        """A redelivery of a notification delivered before."""
        return self.attempt > 1


@dataclasses.dataclass(frozen=True, slots=True)
class DeliveryReport:
    """What a :meth:`WebhookSender.run` sent and what came back, in sending order."""

    deliveries: tuple[Delivery, ...]

    @property
    def statuses(self) -> Counter[int | None]:
        """Answers by HTTP status (``None``: the connection failed)."""
        return Counter(d.status for d in self.deliveries)

    @property
    def valid_ids(self) -> frozenset[str]:
        """Ids of the correctly signed notifications sent (the ones a receiver must handle)."""
        return frozenset(
            d.notification_id
            for d in self.deliveries
            if d.signature == "valid" and d.topic != "ping"
        )

    @property
    def duplicates(self) -> int:
        """Redeliveries sent."""
        return sum(d.duplicate for d in self.deliveries)

    @property
    def bad_signatures(self) -> int:
        """Deliveries sent with a wrong or missing signature."""
        return sum(d.signature != "valid" for d in self.deliveries)

    def ack_ms(self, percentile: float) -> float:
        """The nearest-rank *percentile* of the acknowledgement times, in milliseconds."""
        if not 0 < percentile <= 100:
            raise ValueError(f"percentile must be in (0, 100], got {percentile!r}")
        times = sorted(d.ack_ms for d in self.deliveries)
        if not times:
            raise ValueError("no deliveries")
        rank = max(1, math.ceil(percentile * len(times) / 100))
        return times[rank - 1]

    def __add__(self, other: DeliveryReport) -> DeliveryReport:
        return DeliveryReport(self.deliveries + other.deliveries)


class WebhookSender:
    """Delivers signed webhook notifications to *url*, as Intercom would.

    Args:
        url: where to POST (a receiver's endpoint URL).
        secret: the app's client secret the receiver verifies with.
        clock: the source of ``created_at`` (the fake's clock, so a receiver on the same
            ``VirtualClock`` sees the delays you script).
        app_id: the ``app_id`` of every notification.
        seed: seeds ids and the choice of faults, for reproducible runs.
        timeout: seconds to wait for each answer.
        transport: a synchronous ``httpx`` transport to deliver through instead of the network
            (``httpx.WSGITransport`` for a WSGI app); ASGI receivers are served by uvicorn.
    """

    def __init__(
        self,
        url: str,
        secret: str,
        *,
        clock: Clock | None = None,
        app_id: str = "fake-app",
        seed: int = 0,
        timeout: float = 5.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not secret:
            raise ValueError("WebhookSender.secret must be a non-empty string")
        self.url = url
        self._secret = secret
        self.clock: Clock = clock or SystemClock()
        self.app_id = app_id
        self._random = random.Random(seed)
        self._sequence = 0
        self._http = httpx.Client(timeout=timeout, transport=transport)
        self._delivered: list[dict[str, Any]] = []

    # ------------------------------------------------------------------------- building

    def notification(
        self,
        topic: str = "contact.user.created",
        item: Mapping[str, Any] | None = None,
        *,
        created_at: float | None = None,
        notification_id: str | None = None,
    ) -> dict[str, Any]:
        """A notification as Intercom sends it (``delivery_attempts`` 1).

        Args:
            topic: one of :data:`WEBHOOK_TOPICS` (others are sent as given).
            item: the Intercom object it is about (default: a minimal one of the topic's type).
            created_at: Unix time it was created (default: now on :attr:`clock`).
            notification_id: its id (default: ``notif_<seeded hex>``).
        """
        self._sequence += 1
        created = int(self.clock.time() if created_at is None else created_at)
        kind = WEBHOOK_TOPICS.get(topic, "object")
        if item is None:
            item = (
                {"type": "ping", "message": "something is pinging"}
                if kind == "ping"
                else {"type": kind, "id": f"{self._sequence}", "created_at": created}
            )
        return {
            "type": "notification_event",
            "app_id": self.app_id,
            "data": {"type": "notification_event_data", "item": dict(item)},
            "links": {},
            "id": notification_id or f"notif_{self._random.getrandbits(64):016x}",
            "topic": topic,
            "delivery_status": "pending",
            "delivery_attempts": 1,
            "delivered_at": 0,
            "first_sent_at": created,
            "created_at": created,
            "self": None,
        }

    # ------------------------------------------------------------------------- delivering

    def deliver(
        self, notification: Mapping[str, Any], *, signature: Signature = "valid"
    ) -> Delivery:
        """POST *notification*, signed as asked; never raises for a failed connection."""
        body = json.dumps(notification, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "intercom-parrot-service"}
        if signature == "valid":
            headers[SIGNATURE_HEADER] = webhook_signature(body, self._secret)
        elif signature == "bad":
            headers[SIGNATURE_HEADER] = webhook_signature(body, self._secret + "-wrong")
        started = time.perf_counter()
        try:
            response = self._http.post(self.url, content=body, headers=headers)
            response.read()
            status: int | None = response.status_code
        except httpx.HTTPError:
            status = None
        ack_ms = (time.perf_counter() - started) * 1000.0
        accepted = status is not None and 200 <= status < 300
        if signature == "valid" and accepted and notification.get("topic") != "ping":
            self._delivered.append(dict(notification))  # what a scripted duplicate redelivers
        return Delivery(
            str(notification.get("id")),
            str(notification.get("topic")),
            signature,
            int(notification.get("delivery_attempts", 1)),
            status,
            ack_ms,
        )

    def redeliver(self, notification: Mapping[str, Any]) -> Delivery:
        """Deliver *notification* again, as Intercom retries: ``delivery_attempts`` + 1."""
        again = dict(notification)
        again["delivery_attempts"] = int(again.get("delivery_attempts", 1)) + 1
        return self.deliver(again)

    def ping(self) -> Delivery:
        """Deliver a ``ping`` (what *Send test request* in the Developer Hub does)."""
        return self.deliver(self.notification("ping"))

    def run(
        self,
        count: int,
        *,
        topics: Sequence[str] | None = None,
        duplicates: float = 0.0,
        bad_signatures: float = 0.0,
        delayed: float = 0.0,
        delay_s: float = 600.0,
    ) -> DeliveryReport:
        """Deliver *count* notifications, with seeded faults among them.

        Args:
            count: deliveries to make, faults included.
            topics: topics to pick from (default: every topic but ``ping``).
            duplicates: share of deliveries that redeliver an earlier accepted notification.
            bad_signatures: share of deliveries signed with the wrong secret.
            delayed: share of new notifications created ``delay_s`` seconds ago.
            delay_s: how late a delayed notification is.
        """
        for name, share in (
            ("duplicates", duplicates),
            ("bad_signatures", bad_signatures),
            ("delayed", delayed),
        ):
            if not 0.0 <= share <= 1.0:
                raise ValueError(f"WebhookSender.run {name} must be in [0, 1], got {share!r}")
        if duplicates + bad_signatures > 1.0:
            raise ValueError("WebhookSender.run duplicates + bad_signatures must be <= 1")
        pool = list(topics) if topics else [t for t in WEBHOOK_TOPICS if t != "ping"]
        # Exactly the asked-for number of each fault, at seeded positions.
        kinds = ["duplicate"] * round(count * duplicates) + ["bad"] * round(count * bad_signatures)
        kinds += ["new"] * (count - len(kinds))
        self._random.shuffle(kinds)
        deliveries: list[Delivery] = []
        for kind in kinds:
            if kind == "duplicate" and self._delivered:
                deliveries.append(self.redeliver(self._random.choice(self._delivered)))
                continue
            created = None
            if self._random.random() < delayed:
                created = self.clock.time() - delay_s
            note = self.notification(self._random.choice(pool), created_at=created)
            deliveries.append(self.deliver(note, signature="bad" if kind == "bad" else "valid"))
        return DeliveryReport(tuple(deliveries))

    def close(self) -> None:
        """Close the HTTP connections."""
        self._http.close()

    def __enter__(self) -> WebhookSender:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"WebhookSender({self.url!r}, delivered={len(self._delivered)})"
