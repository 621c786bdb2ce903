"""What the fake answers: response values, Intercom error bodies and gateway pages.

Everything here is plain data so that the in-process transports, the ASGI app and the tests all
see the same bytes.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ApiFailure",
    "Disruption",
    "FakeResponse",
    "Outcome",
    "error_body",
    "gateway_page",
    "json_bytes",
]

#: The error code Intercom uses for each status when a fault script does not name one.
DEFAULT_CODES: dict[int, str] = {
    400: "parameter_invalid",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    410: "contact_merged",
    422: "validation_error",
    429: "rate_limit_exceeded",
    500: "server_error",
    502: "server_error",
    503: "service_unavailable",
    504: "request_timeout",
}

DEFAULT_MESSAGES: dict[str, str] = {
    "parameter_invalid": "Invalid parameters",
    "unauthorized": "Access Token Invalid",
    "token_revoked": "Token revoked",
    "forbidden": "Forbidden",
    "not_found": "Resource Not Found",
    "conflict": "Conflict",
    "rate_limit_exceeded": "Exceeded rate limit",
    "server_error": "Server Error",
    "service_unavailable": "Sorry, the API service is temporarily unavailable",
    "request_timeout": "Request timed out",
}


class Disruption(enum.Enum):
    """A transport-level outcome: the client gets an exception instead of a response."""

    #: nothing is listening: ``httpx.ConnectError``; the request never reached Intercom.
    CONNECT_ERROR = "connect_error"
    #: the connection dropped before a response: ``httpx.RemoteProtocolError``.
    CONNECTION_RESET = "connection_reset"
    #: the request was processed but the answer never came: ``httpx.ReadTimeout``.
    READ_TIMEOUT = "read_timeout"


@dataclass(frozen=True, slots=True)
class FakeResponse:
    """An HTTP response of the fake, independent of any HTTP library."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON (raises ``ValueError`` for the HTML gateway pages)."""
        return json.loads(self.body)


@dataclass(frozen=True, slots=True)
class Outcome:
    """The fake's complete answer to one request, before any I/O.

    The shells (transports, ASGI app) wait ``delay`` seconds on the fake's clock, then either raise
    the exception for ``disruption`` or send ``response``.
    """

    request_id: str
    response: FakeResponse | None = None
    disruption: Disruption | None = None
    delay: float = 0.0


@dataclass(slots=True)
class ApiFailure(Exception):
    """Raised by route handlers; becomes an Intercom ``error.list`` body."""

    status: int
    code: str
    message: str | None = None
    field: str | None = None
    #: response headers the error carries (``Link`` on a merged contact's 410)
    headers: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"


def json_bytes(value: Any) -> bytes:
    """Compact JSON, the way Intercom sends it."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def error_body(
    request_id: str, code: str, message: str | None = None, field: str | None = None
) -> dict[str, Any]:
    """An Intercom ``error.list`` body."""
    error: dict[str, Any] = {"code": code, "message": message or DEFAULT_MESSAGES.get(code, code)}
    if field is not None:
        error["field"] = field
    return {"type": "error.list", "request_id": request_id, "errors": [error]}


def gateway_page(status: int) -> bytes:
    """The HTML page a load balancer answers with when Intercom's API is unreachable.

    Deliberately no JSON and no request id: clients must cope with both being absent.
    """
    reason = {502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}.get(
        status, "Error"
    )
    return (
        f"<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
        f"<center><h1>{status} {reason}</h1></center>\r\n</body>\r\n</html>\r\n"
    ).encode()
