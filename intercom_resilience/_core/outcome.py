"""The outcome of one attempt, as the pure decisions see it: no httpx objects, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .record import record
from .responses import RateLimitInfo, parse_json_body, parse_rate_limit, request_id_from
from .status import Meaning, Network, meaning

__all__ = ["Outcome"]


@record
class Outcome:
    """What one attempt produced (built by :meth:`from_response` or :meth:`from_error`).

    Attributes:
        status: the HTTP status, or ``None`` when no response arrived.
        headers: the response headers the decisions read (``responses.READ_HEADERS``), with
            lower-case names (empty when no response arrived).
        body: the parsed JSON body, or ``None`` (empty, HTML, or not JSON).
        network: how a network failure happened (``None`` when a response arrived).
        error_name: the exception's class name for a network failure (for logs).
        duration: seconds the attempt took.
        means: what the result means to every stage (the status table's row, :mod:`.status`).
        request_id: Intercom's request id (body first, then ``X-Request-Id``), if any.
        rate_limit: the response's rate-limit headers, if any.
    """

    status: int | None
    headers: Mapping[str, str]
    body: Any | None
    network: Network | None
    error_name: str | None
    duration: float
    # A field rather than a property: every stage reads it, several times per attempt.
    means: Meaning
    request_id: str | None = None
    rate_limit: RateLimitInfo | None = None

    @classmethod
    def from_response(
        cls, status: int, headers: Mapping[str, str], content: bytes, duration: float
    ) -> Outcome:
        """Describe a response. The body is parsed only when it can matter (not for 2xx).

        *headers* should be a plain dict with lower-case names (``responses.read_headers``):
        several decisions read them, and ``httpx.Headers`` lookups scan the whole header list.
        """
        table = meaning(status)
        body = None if table.ok else parse_json_body(content)
        return cls(
            status,
            headers,
            body,
            None,
            None,
            duration,
            table,
            request_id_from(headers, body),
            parse_rate_limit(headers),
        )

    @classmethod
    def from_error(
        cls,
        error: BaseException,
        *,
        connect: bool,
        duration: float,
        network: Network | None = None,
    ) -> Outcome:
        """Describe a network failure; *connect* is true when nothing can have been sent.

        *network* refines it (a timeout, a connect timeout); by default *connect* decides.
        """
        if network is None:
            network = Network.CONNECT if connect else Network.AMBIGUOUS
        return cls(None, {}, None, network, type(error).__name__, duration, meaning(None, network))
