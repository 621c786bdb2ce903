"""The resilient httpx transports: the only place in the library that does I/O and sleeps.

httpx's extension point is the transport, so the pipeline lives under one, wrapped around the
real transport (or the fake backend's). The two shells below hold no decision and no step order:
each asks the pipeline for a call driver (:mod:`._pipeline.driver`) and performs the effects it
yields — send, sleep, or an effect on a Redis backend — until it answers. (Effects on the
in-memory backends never reach a shell: they do no I/O, so the driver performs them itself.)
"""

from __future__ import annotations

from typing import Any

import httpx

from ._pipeline import Pipeline
from ._pipeline.effects import BackendEffect, Effect, Send, Sent, Sleep, bounded_body, sending

__all__ = ["AsyncResilientTransport", "ResilientTransport"]


class ResilientTransport(httpx.BaseTransport):
    """An :class:`httpx.BaseTransport` that sends every request through the pipeline.

    Args:
        inner: the transport that really sends (``httpx.HTTPTransport``, the fake's, …).
        pipeline: the client's pipeline.
    """

    def __init__(self, inner: httpx.BaseTransport, pipeline: Pipeline) -> None:
        self.inner = inner
        self.pipeline = pipeline

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send *request* through kill switch, breaker, retry, limiter and timeout."""
        # A 307/308 redirect re-sends the original body stream unread; the cache key of a
        # read-only POST needs request.content (else httpx.RequestNotRead). A no-op when read.
        request.read()
        fleet = self.pipeline.fleet
        if fleet is None:
            return self._handle(request)
        try:
            response = self._handle(request)
        except BaseException:
            fleet.count(failed=True)
            fleet.after_call(self.pipeline.stale_served)
            raise
        fleet.count(failed=response.status_code >= 500)
        fleet.after_call(self.pipeline.stale_served)
        return response

    def _handle(self, request: httpx.Request) -> httpx.Response:
        with self.pipeline.drive(request) as call:
            for effect in call:
                call.reply = self._perform(effect)
        return call.result

    def _perform(self, effect: Effect) -> Any:
        if isinstance(effect, Send):
            return self._send(effect)
        if isinstance(effect, Sleep):
            return self.pipeline.clock.sleep(effect.seconds)
        assert isinstance(effect, BackendEffect)
        return effect.run(self.pipeline)

    def _send(self, send: Send) -> Sent:
        with sending() as sent:
            sent.response = response = self.inner.handle_request(send.request)
            try:  # not contextlib.closing: three calls more, on every attempt
                sent.content = bounded_body(response, self.pipeline.clock, send).read()
            finally:
                response.close()
        return sent

    def close(self) -> None:
        """Close the inner transport."""
        self.inner.close()


class AsyncResilientTransport(httpx.AsyncBaseTransport):
    """The async twin of :class:`ResilientTransport` (same driver, awaiting instead of blocking).

    Args:
        inner: the transport that really sends.
        pipeline: the client's pipeline.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport, pipeline: Pipeline) -> None:
        self.inner = inner
        self.pipeline = pipeline

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send *request* through kill switch, breaker, retry, limiter and timeout."""
        await request.aread()  # see ResilientTransport.handle_request: redirected bodies
        fleet = self.pipeline.fleet
        if fleet is None:
            return await self._handle(request)
        try:
            response = await self._handle(request)
        except Exception:
            fleet.count(failed=True)
            await fleet.aafter_call(self.pipeline.stale_served)
            raise
        except BaseException:  # cancelled: count it, but do not hold the cancellation up
            fleet.count(failed=True)
            raise
        fleet.count(failed=response.status_code >= 500)
        await fleet.aafter_call(self.pipeline.stale_served)
        return response

    async def _handle(self, request: httpx.Request) -> httpx.Response:
        with self.pipeline.drive(request) as call:
            for effect in call:
                call.reply = await self._perform(effect)
        return call.result

    async def _perform(self, effect: Effect) -> Any:
        if isinstance(effect, Send):
            return await self._send(effect)
        if isinstance(effect, Sleep):
            return await self.pipeline.clock.asleep(effect.seconds)
        assert isinstance(effect, BackendEffect)
        return await effect.arun(self.pipeline)

    async def _send(self, send: Send) -> Sent:
        with sending() as sent:
            sent.response = response = await self.inner.handle_async_request(send.request)
            try:
                body = bounded_body(response, self.pipeline.clock, send)
                sent.content = await body.aread()
            finally:
                await response.aclose()
        return sent

    async def aclose(self) -> None:
        """Close the inner transport."""
        await self.inner.aclose()
