"""The resilient httpx transports: the only place in the library that does I/O and sleeps.

httpx's extension point is the transport, so the whole pipeline lives here, wrapped around the
real one (or the fake backend's). Both shells are deliberately thin and line-for-line parallel:
every decision is a :class:`~._pipeline.Pipeline` method, and the shells only perform what it asks
for (send, sleep, read and write the cache, acquire rate-limit tokens). tenacity drives the retry
loop, with the pipeline's decisions as its ``retry`` and ``wait`` strategies and the injected
clock as its sleep; the first attempt goes out before the loop is built, because most calls
never need one.
"""

from __future__ import annotations

from typing import Any

import httpx
import tenacity

from ._errors import RateLimitedError
from ._pipeline import Call, Conclusion, Pipeline

__all__ = ["AsyncResilientTransport", "ResilientTransport"]


def _retrying_kwargs(pipeline: Pipeline, call: Call) -> dict[str, Any]:
    """tenacity's strategies for one call: all decisions delegate to the pipeline."""

    def retry(state: tenacity.RetryCallState) -> bool:
        # An exception out of an attempt (a refused rate-limit token) is final.
        return not state.outcome.failed and pipeline.should_retry(call)  # type: ignore[union-attr]

    return {
        "retry": retry,
        "wait": lambda _state: call.next_wait,
        "stop": tenacity.stop_never,  # attempts, deadline and budget are judged in should_retry
        "reraise": True,
    }


def _as_transport_error(
    error: httpx.TransportError | httpx.DecodingError, request: httpx.Request
) -> httpx.TransportError:
    """*error* as a transport error: an undecodable body becomes a protocol error.

    A body that does not match its ``Content-Encoding`` (gzip that is not gzip) raises
    ``httpx.DecodingError``, which is not a transport error and used to escape the pipeline raw.
    The response never arrived intact, as with a dropped connection, so it is treated like one:
    reads are retried, and a write's outcome is reported as unknown (never re-sent).
    """
    if isinstance(error, httpx.TransportError):
        return error
    return httpx.RemoteProtocolError(
        f"response body could not be decoded: {error}", request=request
    )


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
        pipeline = self.pipeline
        # A 307/308 redirect re-sends the original body stream unread; the cache key of a
        # read-only POST needs request.content (else httpx.RequestNotRead). A no-op when read.
        request.read()
        call = pipeline.start(request)
        conclusion = pipeline.preflight(call)
        if conclusion is None:
            try:
                self._attempt(call)
                if pipeline.should_retry(call):  # most calls succeed first time: no loop needed
                    pipeline.clock.sleep(call.next_wait)
                    tenacity.Retrying(
                        sleep=pipeline.clock.sleep, **_retrying_kwargs(pipeline, call)
                    )(self._attempt, call)
                conclusion = pipeline.conclude(call)
            except RateLimitedError as refused:
                conclusion = pipeline.refused(call, refused)
            except BaseException:
                pipeline.abandoned(call)
                raise
        return self._finish(call, conclusion)

    def _attempt(self, call: Call) -> None:
        pipeline, clock = self.pipeline, self.pipeline.clock
        while not (grant := pipeline.limiter.acquire(call.priority)).granted:
            clock.sleep(pipeline.on_limited(call, grant))
        call.tokens_left = grant.remaining
        request = pipeline.prepare(call)
        started = clock.monotonic()
        try:
            response = self.inner.handle_request(request)
            try:
                content = response.read()
            finally:
                response.close()
        except (httpx.TransportError, httpx.DecodingError) as error:
            failure = _as_transport_error(error, request)
            pipeline.observe_error(call, failure, clock.monotonic() - started)
            pipeline.limiter.observe(None, None)
            return
        pipeline.observe_response(call, response, content, clock.monotonic() - started)
        assert call.outcome is not None
        pipeline.limiter.observe(response.status_code, call.outcome.rate_limit)

    def _finish(self, call: Call, conclusion: Conclusion) -> httpx.Response:
        cache = self.pipeline.cache
        if conclusion.store is not None and call.cache_key is not None:
            cache.put(call.cache_key, conclusion.store, conclusion.store_tags)
        if conclusion.invalidate:
            cache.invalidate(conclusion.invalidate)
        key = call.cache_key if conclusion.stale_reason is not None else None
        entry = cache.get(key) if key is not None else None
        return self.pipeline.answer(call, conclusion, entry)

    def close(self) -> None:
        """Close the inner transport."""
        self.inner.close()


class AsyncResilientTransport(httpx.AsyncBaseTransport):
    """The async twin of :class:`ResilientTransport` (same pipeline, awaiting instead of blocking).

    Args:
        inner: the transport that really sends.
        pipeline: the client's pipeline.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport, pipeline: Pipeline) -> None:
        self.inner = inner
        self.pipeline = pipeline

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send *request* through kill switch, breaker, retry, limiter and timeout."""
        pipeline = self.pipeline
        await request.aread()  # see ResilientTransport.handle_request: redirected bodies
        call = pipeline.start(request)
        conclusion = pipeline.preflight(call)
        if conclusion is None:
            try:
                await self._attempt(call)
                if pipeline.should_retry(call):  # most calls succeed first time: no loop needed
                    await pipeline.clock.asleep(call.next_wait)
                    await tenacity.AsyncRetrying(
                        sleep=pipeline.clock.asleep, **_retrying_kwargs(pipeline, call)
                    )(self._attempt, call)
                conclusion = pipeline.conclude(call)
            except RateLimitedError as refused:
                conclusion = pipeline.refused(call, refused)
            except BaseException:  # cancelled, interrupted: the attempt will never report
                pipeline.abandoned(call)
                raise
        return await self._finish(call, conclusion)

    async def _attempt(self, call: Call) -> None:
        pipeline, clock = self.pipeline, self.pipeline.clock
        while not (grant := await pipeline.limiter.aacquire(call.priority)).granted:
            await clock.asleep(pipeline.on_limited(call, grant))
        call.tokens_left = grant.remaining
        request = pipeline.prepare(call)
        started = clock.monotonic()
        try:
            response = await self.inner.handle_async_request(request)
            try:
                content = await response.aread()
            finally:
                await response.aclose()
        except (httpx.TransportError, httpx.DecodingError) as error:
            failure = _as_transport_error(error, request)
            pipeline.observe_error(call, failure, clock.monotonic() - started)
            await pipeline.limiter.aobserve(None, None)
            return
        pipeline.observe_response(call, response, content, clock.monotonic() - started)
        assert call.outcome is not None
        await pipeline.limiter.aobserve(response.status_code, call.outcome.rate_limit)

    async def _finish(self, call: Call, conclusion: Conclusion) -> httpx.Response:
        cache = self.pipeline.cache
        if conclusion.store is not None and call.cache_key is not None:
            await cache.aput(call.cache_key, conclusion.store, conclusion.store_tags)
        if conclusion.invalidate:
            await cache.ainvalidate(conclusion.invalidate)
        key = call.cache_key if conclusion.stale_reason is not None else None
        entry = await cache.aget(key) if key is not None else None
        return self.pipeline.answer(call, conclusion, entry)

    async def aclose(self) -> None:
        """Close the inner transport."""
        await self.inner.aclose()
