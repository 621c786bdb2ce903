"""``ResilientIntercom`` and ``AsyncResilientIntercom``: the SDK's clients over the pipeline.

They *are* ``intercom.Intercom`` / ``intercom.AsyncIntercom`` (subclasses), built exactly as the
SDK builds itself, with two differences: the httpx client's transport is wrapped in the resilient
transport, and the SDK's own retry loop is switched off (it miscounts and re-sends writes; the
pipeline owns retrying). Every namespace, method, argument, return type and exception is the SDK's.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import random
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, Any, Literal

import httpx
from intercom import AsyncIntercom, Intercom
from intercom.core.api_error import ApiError
from intercom.environment import IntercomEnvironment

from ._backends.base import Priority
from ._clock import Clock, SystemClock
from ._config import ResilienceConfig
from ._core.breaker import BreakerState
from ._core.requests import credentials_fingerprint
from ._events import EventHook, EventLog
from ._fleet import FleetHealth, FleetPublishingOff
from ._fleet_incidents import FleetIncident

if TYPE_CHECKING:  # needs redis-py: imported when a client publishes (see _build_pipeline)
    from ._fleet_publisher import FleetPublisher
from ._health import AlertEvent, HealthMonitor, HealthStatus
from ._incidents import FailureRecord, Incident
from ._outbox import AsyncOutbox, Outbox, attach_async_outbox, attach_outbox
from ._pagination import fix_search_pagers
from ._pipeline import Pipeline, priority
from ._pipeline.deadline import deadline_scope
from ._resources import TypedAsyncIntercom, TypedIntercom
from ._sdk import (
    DefaultAsyncHttpxClient,
    DefaultHttpxClient,
    disable_sdk_retries,
    wrap_transports,
)
from ._transport import AsyncResilientTransport, ResilientTransport
from ._warming import Warming, WarmPlan, WarmProgress, WarmReport, awarm, cache_warmth, warm
from ._webhooks import verify_webhook_signature
from .events import HealthProbeFailed
from .webhooks import (
    DEFAULT_MAX_AGE,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_QUEUE_SIZE,
    Handler,
    ReplayStore,
    WebhookReceiver,
    _wired_receiver,
)

__all__ = ["AsyncResilientIntercom", "ResilientIntercom"]

TokenArg = str | Callable[[], str] | None


def _call_deadline(pipeline: Pipeline, request_options: Any) -> AbstractContextManager[object]:
    """The scope of the SDK's per-call ``timeout_in_seconds``: the call's whole deadline.

    The SDK hands that value to httpx as a per-socket-operation timeout only; here it bounds
    the whole call, waits and retries included. Checked before anything is sent.
    """
    seconds = None if request_options is None else request_options.get("timeout_in_seconds")
    if seconds is None:
        return nullcontext()
    seconds = pipeline.config.deadlines.check(seconds, "request_options['timeout_in_seconds']")
    return deadline_scope(pipeline.clock, seconds)


def _resolve_token(token: TokenArg) -> str | Callable[[], str]:
    # The SDK reads INTERCOM_API_KEY when the module is imported; reading it per construction
    # lets a process set it later (tests, secrets loaded at start-up).
    resolved = token if token is not None else os.getenv("INTERCOM_API_KEY")
    if resolved is None:
        raise ApiError(
            body="The client must be instantiated by either passing in token or setting "
            "INTERCOM_API_KEY"
        )
    return resolved


def _base_url(base_url: str | None, environment: IntercomEnvironment) -> str:
    return (base_url if base_url is not None else environment.value).rstrip("/")


def _scope(token: str | Callable[[], str], base_url: str) -> str:
    current = token() if callable(token) else token
    return credentials_fingerprint(f"Bearer {current}", base_url)


def _build_pipeline(
    token: str | Callable[[], str],
    base_url: str,
    config: ResilienceConfig | None,
    clock: Clock | None,
    event_hooks: list[EventHook] | None,
    on_alert: Callable[[AlertEvent], None] | None,
    seed: int | None,
) -> Pipeline:
    """The pipeline both facades put under the SDK, with backends chosen by *config*."""
    from ._backends.factory import make_breaker, make_cache, make_limiter

    config = config if config is not None else ResilienceConfig.from_env()
    clock = clock or SystemClock()
    scope = _scope(token, base_url)
    events = EventLog(event_hooks, {"client": scope})
    pipeline = Pipeline(
        config=config,
        clock=clock,
        token=token,
        base_url=base_url,
        scope=scope,
        events=events,
        limiter=make_limiter(config, clock, scope, events),
        cache=make_cache(config, clock, events),
        breaker=make_breaker(config, clock, scope),
        monitor=HealthMonitor(config.alerts, clock, on_alert=on_alert, events=events),
        rng=random.Random(seed),
    )
    if config.cache.fleet_coalesce:
        from ._backends.redis_cache import RedisCache

        assert isinstance(pipeline.cache, RedisCache)  # enforced by CachePolicy
        pipeline.flights = pipeline.cache.flights()
    if config.publishes_fleet_health:
        from ._fleet_publisher import FleetPublisher

        assert config.redis_url is not None  # enforced by ResilienceConfig
        pipeline.fleet = FleetPublisher(
            config.fleet,
            config.redis_url,
            clock,
            scope,
            lambda: pipeline.monitor.health(pipeline.breaker_state.value),
            lambda: (
                pipeline.breaker_state,
                pipeline.disabled,
                tuple(alert.rule for alert in pipeline.monitor.active_alerts),
            ),
            incidents=lambda: (pipeline.monitor.current_incident, pipeline.monitor.incidents),
            events=events,
        )
    return pipeline


def _fleet_publisher(pipeline: Pipeline) -> FleetPublisher:
    if pipeline.fleet is None:
        raise FleetPublishingOff(
            "fleet_health() needs fleet publishing: set ResilienceConfig.redis_url "
            "(FleetPolicy.publish is not False)"
        )
    return pipeline.fleet


def _seen(incidents: tuple[FleetIncident, ...] | None) -> tuple[FleetIncident, ...]:
    if incidents is None:
        raise ConnectionError("the fleet's Redis is unreachable: its incidents cannot be read")
    return incidents


class _ResilientMixin:
    """What both facades add to the SDK: health, the kill switch, priorities, introspection."""

    _pipeline: Pipeline
    _scope: str

    @property
    def config(self) -> ResilienceConfig:
        """The client's :class:`ResilienceConfig`."""
        return self._pipeline.config

    @property
    def disabled(self) -> bool:
        """Whether the kill switch is on."""
        return self._pipeline.disabled

    def disable(self) -> None:
        """Turn the kill switch on: no request leaves the process.

        Reads are answered from the stale cache where possible; everything else raises
        :class:`IntercomDisabledError` at once.
        """
        self._pipeline.set_disabled(True)

    def enable(self) -> None:
        """Turn the kill switch off again."""
        self._pipeline.set_disabled(False)

    def health(self) -> HealthStatus:
        """The client's health from its recent traffic (passive: sends nothing).

        ``unhealthy`` while a P1 alert is active or the circuit is open; ``degraded`` while a
        P2/P3 alert is active or the kill switch is on; else ``healthy`` (see ``docs/runbook.md``).
        ``cache`` says how warm the stale cache is (entries, the oldest one's age).
        """
        pipeline = self._pipeline
        status = pipeline.monitor.health(pipeline.breaker_state.value)
        warmth = cache_warmth(pipeline.cache, pipeline.config.cache.max_entries, status.checked_at)
        if pipeline.fleet is not None and isinstance(self, ResilientIntercom):
            # At most every FleetPolicy.interval; may probe a Redis that was down (the async
            # client publishes from its calls and fleet_health(), never blocking its loop).
            pipeline.fleet.publish(pipeline.stale_served)
        return dataclasses.replace(status, cache=warmth)

    @property
    def incidents(self) -> tuple[Incident, ...]:
        """Closed incidents (the newest kept), oldest first."""
        return self._pipeline.monitor.incidents

    @property
    def current_incident(self) -> Incident | None:
        """A snapshot of the open incident, if any."""
        return self._pipeline.monitor.current_incident

    @property
    def recent_failures(self) -> tuple[FailureRecord, ...]:
        """The most recent failed attempts: request id, status, method, path, time, attempt."""
        return self._pipeline.monitor.recent_failures

    def verify_webhook(self, body: bytes, header: str | None, secret: str) -> bool:
        """:func:`verify_webhook_signature`, counting failures toward the P3 alert."""
        valid = verify_webhook_signature(body, header, secret)
        if not valid:
            self._pipeline.monitor.record_webhook_failure()
        return valid

    def webhook_receiver(
        self,
        *,
        secret: str | bytes,
        handler: Handler,
        store: ReplayStore | Literal["memory", "redis"] = "memory",
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_age: float = DEFAULT_MAX_AGE,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        workers: int = 1,
    ) -> WebhookReceiver:
        """A :class:`~intercom_resilience.webhooks.WebhookReceiver` wired to this client.

        Its events reach this client's hooks, log and health (the P3 webhook alerts), and while
        the kill switch is on (:meth:`disable`) it answers deliveries 503 so that Intercom
        redelivers them later.

        Args:
            secret: the app's client secret, which signs every notification.
            handler: called once per notification, off the request path (sync or async).
            store: ``"memory"`` (this process), ``"redis"`` (shared by the fleet, at
                ``ResilienceConfig.redis_url``) or a ready
                :class:`~intercom_resilience.webhooks.ReplayStore`.
            max_body_bytes: larger bodies are answered 413.
            max_age: seconds notification ids are remembered; older notifications are stale.
            queue_size: notifications that may wait for the handler; more are answered 429.
            workers: handler calls that may run at once.
        """
        return _wired_receiver(
            self._pipeline,
            secret,
            handler,
            store=store,
            max_body_bytes=max_body_bytes,
            max_age=max_age,
            queue_size=queue_size,
            workers=workers,
        )

    @property
    def breaker_state(self) -> BreakerState:
        """The circuit breaker's state."""
        return self._pipeline.breaker_state

    @property
    def stale_served(self) -> int:
        """How many answers this client served from the stale cache."""
        return self._pipeline.stale_served

    @contextmanager
    def deadline(self, seconds: float) -> Iterator[None]:
        """Give the calls made in this block *seconds* in all (waits and retries included).

        An enclosing ``deadline`` block still bounds them: an inner block can shorten the time
        left, never extend it. Around a pager's iteration the deadline holds for all its pages.
        The mark follows the current thread or asyncio task. A value below
        ``DeadlinePolicy.minimum`` (or not a finite number) raises ``ValueError`` at once.
        """
        pipeline = self._pipeline
        checked = pipeline.config.deadlines.check(seconds, "deadline(seconds)")
        with deadline_scope(pipeline.clock, checked):
            yield

    @staticmethod
    @contextmanager
    def background() -> Iterator[None]:
        """Mark the calls made in this block as background work (bulk syncs, backfills).

        Background calls only use quota that interactive traffic leaves, and pause while the
        remaining quota is low. The mark follows the current thread or asyncio task.
        """
        with priority(Priority.BACKGROUND):
            yield

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(base_url={self._pipeline.base_url!r}, "
            f"credentials={self._scope!r})"  # the fingerprint, never the token
        )


def _default_httpx_client(
    cls: type[httpx.Client] | type[httpx.AsyncClient],
    timeout: float | None,
    follow_redirects: bool | None,
) -> Any:
    """The httpx client the SDK would have built for itself (same defaults).

    One of the seam's default clients: httpx's own class, except that a response setting no
    cookie is not wrapped for `http.cookiejar` (which would keep nothing from it).
    """
    defaulted = timeout if timeout is not None else 60
    if follow_redirects is None:
        return cls(timeout=defaulted)
    return cls(timeout=defaulted, follow_redirects=follow_redirects)


def _set_up(
    facade: ResilientIntercom | AsyncResilientIntercom,
    sdk_init: Callable[..., None],
    *,
    base_url: str | None,
    environment: IntercomEnvironment,
    token: TokenArg,
    headers: dict[str, str] | None,
    timeout: float | None,
    follow_redirects: bool | None,
    httpx_client: httpx.Client | httpx.AsyncClient | None,
    config: ResilienceConfig | None,
    transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None,
    clock: Clock | None,
    event_hooks: list[EventHook] | None,
    on_alert: Callable[[AlertEvent], None] | None,
    seed: int | None,
) -> None:
    """Build either facade: the pipeline, the wrapped httpx client, then the SDK on top of it."""
    is_async = isinstance(facade, AsyncIntercom)
    resolved = _resolve_token(token)
    pipeline = _build_pipeline(
        resolved, _base_url(base_url, environment), config, clock, event_hooks, on_alert, seed
    )
    facade._pipeline = pipeline
    facade._scope = pipeline.scope
    if httpx_client is None:
        http_cls = DefaultAsyncHttpxClient if is_async else DefaultHttpxClient
        httpx_client = _default_httpx_client(http_cls, timeout, follow_redirects)
    shell = AsyncResilientTransport if is_async else ResilientTransport
    wrap_transports(httpx_client, transport, lambda inner: shell(inner, pipeline))
    sdk_init(
        facade,
        base_url=base_url,
        environment=environment,
        token=resolved,
        headers=headers,
        timeout=timeout,
        follow_redirects=follow_redirects,
        httpx_client=httpx_client,
    )
    disable_sdk_retries(facade, functools.partial(_call_deadline, pipeline))
    facade._httpx_client = httpx_client
    # The durable write outbox (``docs/writes.md``): ``enqueue``, ``drain``, ``status``.
    if isinstance(facade, AsyncResilientIntercom):
        assert isinstance(httpx_client, httpx.AsyncClient)
        facade.outbox = attach_async_outbox(facade, httpx_client, pipeline)
    else:
        assert isinstance(httpx_client, httpx.Client)
        facade.outbox = attach_outbox(facade, httpx_client, pipeline)
    fix_search_pagers(facade)


class ResilientIntercom(_ResilientMixin, TypedIntercom):
    """A drop-in replacement for ``intercom.Intercom`` with the resilience pipeline under it.

    Takes every argument ``intercom.Intercom`` takes, with the same meaning (a callable ``token``
    is also called once here, to fingerprint the credentials for limiter and cache keys), plus:

    Args:
        config: the policies (default: :meth:`ResilienceConfig.from_env`, i.e. the defaults
            overridden by ``INTERCOM_RESILIENCE_*`` variables).
        transport: an ``httpx.BaseTransport`` that replaces the network (the fake backend's).
        clock: the source of time and sleeping (a ``VirtualClock`` in tests).
        event_hooks: callables receiving every pipeline event (metrics, tests).
        on_alert: called when an alert fires or resolves (page someone, post to chat).
        seed: seeds backoff jitter, for reproducible runs.

    Every resource property is typed with the SDK's own client class (``contacts`` is a
    ``ContactsClient``), so ``mypy --strict`` checks calls and results that the SDK alone leaves
    as ``Any``.

    Example::

        from intercom_resilience import ResilientIntercom

        client = ResilientIntercom(token=os.environ["INTERCOM_ACCESS_TOKEN"])
        contact = client.contacts.find(contact_id="6a1b...")
    """

    _httpx_client: httpx.Client

    #: The durable write outbox (``docs/writes.md``): ``enqueue``, ``drain``, ``status``.
    outbox: Outbox

    def __init__(
        self,
        *,
        base_url: str | None = None,
        environment: IntercomEnvironment = IntercomEnvironment.US_PRODUCTION,
        token: TokenArg = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
        follow_redirects: bool | None = True,
        httpx_client: httpx.Client | None = None,
        config: ResilienceConfig | None = None,
        transport: httpx.BaseTransport | None = None,
        clock: Clock | None = None,
        event_hooks: list[EventHook] | None = None,
        on_alert: Callable[[AlertEvent], None] | None = None,
        seed: int | None = None,
    ) -> None:
        _set_up(
            self,
            Intercom.__init__,
            base_url=base_url,
            environment=environment,
            token=token,
            headers=headers,
            timeout=timeout,
            follow_redirects=follow_redirects,
            httpx_client=httpx_client,
            config=config,
            transport=transport,
            clock=clock,
            event_hooks=event_hooks,
            on_alert=on_alert,
            seed=seed,
        )

    def check_health(self) -> HealthStatus:
        """Probe Intercom with ``GET /me`` through the pipeline, then report :meth:`health`.

        The probe's outcome (a 401, an outage, a 429) is recorded like any call's; it never
        raises.
        """
        try:
            self.admins.identify()
        except Exception:
            self._pipeline.events.emit(HealthProbeFailed())
        return self.health()

    def fleet_health(self) -> FleetHealth:
        """The health of every process publishing to this client's Redis (``docs/fleet.md``).

        Publishes this process's snapshot first, so it is in the picture. Never raises because
        of Redis: an unreachable one gives ``status="unknown"``, ``reachable=False``. Without
        fleet publishing (``FleetPolicy.publish``, no ``redis_url``) raises ``RuntimeError``.
        """
        return _fleet_publisher(self._pipeline).read_after(self._pipeline.stale_served)

    def fleet_incidents(self) -> tuple[FleetIncident, ...]:
        """The fleet's incidents, newest first: each process's incidents for one cause, merged
        (``docs/fleet.md#fleet-incidents``); ``incident.postmortem()`` renders one.

        Publishes this process's health and incident reports first. Raises ``RuntimeError``
        without fleet publishing, ``ConnectionError`` when Redis cannot be reached (this
        client's own :attr:`incidents` are unaffected).
        """
        publisher = _fleet_publisher(self._pipeline)
        publisher.publish(self._pipeline.stale_served, force=True)
        return _seen(publisher.incidents.read())

    def warm_cache(
        self,
        *,
        contacts: list[str] | tuple[str, ...] | None = None,
        contact_search: dict[str, Any] | None = None,
        companies: list[str] | tuple[str, ...] | None = None,
        conversations: list[str] | tuple[str, ...] | None = None,
        tickets: list[str] | tuple[str, ...] | None = None,
        checkpoint: str | os.PathLike[str] | None = None,
        on_progress: Callable[[WarmProgress], None] | None = None,
    ) -> WarmReport:
        """Read these resources now, on the background lane, so the stale cache holds them.

        Args:
            contacts: contact ids to read.
            contact_search: a contact search query; every match is read by id too.
            companies: company ids to read.
            conversations: conversation ids to read.
            tickets: ticket ids to read.
            checkpoint: a file remembering what was read: a run stopped part-way (Ctrl-C, an
                outage) resumes from it with the same arguments; removed when a run finishes.
            on_progress: called after each read with a ``WarmProgress``.

        Never takes interactive quota (``client.background()``). Ids Intercom does not know are
        counted as missing; an outage or a revoked token ends the run early, with the error's
        type in the report and the checkpoint kept. Bad arguments raise ``ValueError``.
        """
        plan = WarmPlan.build(
            contacts=contacts,
            contact_search=contact_search,
            companies=companies,
            conversations=conversations,
            tickets=tickets,
        )
        return warm(self, Warming(plan, checkpoint, on_progress))

    def close(self) -> None:
        """Close the underlying HTTP connections and the backends' (Redis) connections."""
        self._httpx_client.close()
        self._pipeline.close()
        self.outbox.close()

    def __enter__(self) -> ResilientIntercom:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncResilientIntercom(_ResilientMixin, TypedAsyncIntercom):
    """A drop-in replacement for ``intercom.AsyncIntercom`` with the resilience pipeline under it.

    Same arguments as :class:`ResilientIntercom`, with ``httpx_client: httpx.AsyncClient`` and
    ``transport: httpx.AsyncBaseTransport``; resource properties typed with the SDK's async
    clients (``contacts`` is an ``AsyncContactsClient``).
    """

    _httpx_client: httpx.AsyncClient

    #: The durable write outbox (``docs/writes.md``): ``enqueue``, ``drain``, ``status``.
    outbox: AsyncOutbox

    def __init__(
        self,
        *,
        base_url: str | None = None,
        environment: IntercomEnvironment = IntercomEnvironment.US_PRODUCTION,
        token: TokenArg = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
        follow_redirects: bool | None = True,
        httpx_client: httpx.AsyncClient | None = None,
        config: ResilienceConfig | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock | None = None,
        event_hooks: list[EventHook] | None = None,
        on_alert: Callable[[AlertEvent], None] | None = None,
        seed: int | None = None,
    ) -> None:
        _set_up(
            self,
            AsyncIntercom.__init__,
            base_url=base_url,
            environment=environment,
            token=token,
            headers=headers,
            timeout=timeout,
            follow_redirects=follow_redirects,
            httpx_client=httpx_client,
            config=config,
            transport=transport,
            clock=clock,
            event_hooks=event_hooks,
            on_alert=on_alert,
            seed=seed,
        )

    async def check_health(self) -> HealthStatus:
        """Probe Intercom with ``GET /me`` through the pipeline, then report :meth:`health`."""
        try:
            await self.admins.identify()
        except Exception:
            self._pipeline.events.emit(HealthProbeFailed())
        return self.health()

    async def fleet_health(self) -> FleetHealth:
        """Async twin of :meth:`ResilientIntercom.fleet_health`."""
        return await _fleet_publisher(self._pipeline).aread_after(self._pipeline.stale_served)

    async def fleet_incidents(self) -> tuple[FleetIncident, ...]:
        """Async twin of :meth:`ResilientIntercom.fleet_incidents`."""
        publisher = _fleet_publisher(self._pipeline)
        await publisher.apublish(self._pipeline.stale_served, force=True)
        return _seen(await publisher.incidents.aread())

    async def warm_cache(
        self,
        *,
        contacts: list[str] | tuple[str, ...] | None = None,
        contact_search: dict[str, Any] | None = None,
        companies: list[str] | tuple[str, ...] | None = None,
        conversations: list[str] | tuple[str, ...] | None = None,
        tickets: list[str] | tuple[str, ...] | None = None,
        checkpoint: str | os.PathLike[str] | None = None,
        on_progress: Callable[[WarmProgress], None] | None = None,
    ) -> WarmReport:
        """Async twin of :meth:`ResilientIntercom.warm_cache`."""
        plan = WarmPlan.build(
            contacts=contacts,
            contact_search=contact_search,
            companies=companies,
            conversations=conversations,
            tickets=tickets,
        )
        return await awarm(self, Warming(plan, checkpoint, on_progress))

    async def aclose(self) -> None:
        """Close the underlying HTTP connections and the backends' (Redis) connections."""
        await self._httpx_client.aclose()
        await self._pipeline.aclose()
        await self.outbox.aclose()

    async def __aenter__(self) -> AsyncResilientIntercom:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
