"""The checks behind ``intercom-resilience triage`` and ``preflight``: plain httpx, no click.

Each check returns a :class:`Check` and never raises: a network failure is a finding
(``UNREACHABLE``), not a traceback. The token is only ever put in an ``Authorization`` header; no
check copies it into a summary, and every summary passes :func:`scrub` as a second lock.
"""

from __future__ import annotations

import dataclasses
import enum
import fnmatch
import json
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx

from ._incidents import scrub
from ._webhooks import webhook_signature

__all__ = [
    "ALLOW_MARKER",
    "DEFAULT_EXCLUDES",
    "Check",
    "ExitCode",
    "Finding",
    "Level",
    "check_api",
    "check_health_endpoint",
    "check_rate_limit",
    "check_status_page",
    "check_token_scan",
    "check_webhook",
    "exit_code",
    "mask",
    "resolve_token",
    "scan_file",
    "scan_for_tokens",
]

DEFAULT_BASE_URL = "https://api.intercom.io"
TOKEN_VARIABLES = ("INTERCOM_ACCESS_TOKEN", "INTERCOM_API_KEY")
_USER_AGENT = "intercom-resilience-cli"


class ExitCode(enum.IntEnum):
    """Every exit status of the command line (the table in ``docs/cli.md`` lists the same)."""

    #: Success: the command did what it was asked; every check passed (warnings allowed in
    #: ``preflight``).
    OK = 0
    #: ``triage``: a warning (degraded, rate limited, status page minor or unreachable);
    #: ``preflight``: a check failed; ``fleet status``: a process degraded, or none published.
    FINDING = 1
    #: Usage or configuration error: a bad option or argument, no token, nothing to check, an
    #: unreadable incident file, an unwritable ``--save-incident`` path, a missing extra.
    USAGE = 2
    #: ``triage``: something is failing (API unreachable or rejecting the token, Intercom major
    #: outage, our health endpoint down or unhealthy); ``fleet status``: a process is
    #: unhealthy, or Redis cannot be reached.
    FAILING = 3
    #: ``fake serve`` cannot listen on ``--host``/``--port`` (in use, or not allowed).
    CANNOT_SERVE = 4
    #: An unexpected error inside the command line (a bug: please report it).
    INTERNAL = 70
    #: Interrupted with Ctrl-C (128 + SIGINT, as shells report it).
    INTERRUPTED = 130
    #: The reader of stdout went away (``| head``): 128 + SIGPIPE, as shell tools end.
    BROKEN_PIPE = 141


class Level(enum.Enum):
    """How bad a finding is; the order is the order of badness."""

    OK = "ok"
    SKIPPED = "skipped"
    WARN = "warn"
    UNREACHABLE = "unreachable"
    FAIL = "fail"


@dataclasses.dataclass(frozen=True, slots=True)
class Check:
    """One finding.

    Attributes:
        name: the check's key (``api``, ``status_page``, ``rate_limit``, …).
        level: how bad it is.
        summary: one line for people (never contains a credential).
        data: machine-readable details for ``--json``.
        failing: an ``UNREACHABLE`` result counts as a failure (the API, our own endpoint) rather
            than a warning (the status page: not knowing Intercom's status is not an outage).
    """

    name: str
    level: Level
    summary: str
    data: dict[str, Any] = dataclasses.field(default_factory=dict)
    failing: bool = True

    @property
    def severity(self) -> ExitCode:
        """``OK`` fine, ``FINDING`` a warning, ``FAILING`` (the exit-code scale of ``triage``)."""
        if self.level is Level.FAIL or (self.level is Level.UNREACHABLE and self.failing):
            return ExitCode.FAILING
        if self.level in (Level.WARN, Level.UNREACHABLE):
            return ExitCode.FINDING
        return ExitCode.OK

    @property
    def label(self) -> str:
        """``OK``, ``WARN``, ``FAIL``, ``UNREACHABLE`` or ``SKIPPED``."""
        return self.level.value.upper()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return {
            "check": self.name,
            "result": self.level.value,
            "summary": scrub(self.summary),
            **self.data,
        }


def exit_code(checks: Iterable[Check]) -> ExitCode:
    """``triage``'s exit code: 0 all fine, 1 a warning or degraded, 3 something failing."""
    return max((check.severity for check in checks), default=ExitCode.OK)


def resolve_token(explicit: str | None) -> tuple[str | None, str | None]:
    """The token and where it came from: ``--token``, else the environment variables."""
    if explicit:
        return explicit, "--token"
    for name in TOKEN_VARIABLES:
        value = os.environ.get(name)
        if value:
            return value, name
    return None, None


def mask(secret: str) -> str:
    """A credential made safe to print: its first four characters and its length."""
    return f"{secret[:4]}…[masked, {len(secret)} chars]"


def _describe(error: Exception) -> str:
    text = str(error) or type(error).__name__
    return scrub(f"{type(error).__name__}: {text}")


def _client(timeout: float) -> httpx.Client:
    # No proxies or .netrc from the environment: triage must test the path the app uses, and a
    # .netrc must never add credentials to a request we did not mean to authenticate.
    return httpx.Client(timeout=timeout, trust_env=False, headers={"User-Agent": _USER_AGENT})


# --------------------------------------------------------------------------------- the API


@dataclasses.dataclass(frozen=True, slots=True)
class MeProbe:
    """The outcome of ``GET /me``: the check, and the response headers for the rate-limit check."""

    check: Check
    headers: httpx.Headers | None


def check_api(base_url: str, token: str, timeout: float) -> MeProbe:
    """``GET /me`` with the token: is Intercom reachable, and does it accept the token?"""
    url = f"{base_url.rstrip('/')}/me"
    try:
        with _client(timeout) as http:
            response = http.get(
                url,
                headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            )
    except (httpx.HTTPError, OSError, ValueError) as error:
        return MeProbe(
            Check("api", Level.UNREACHABLE, f"GET /me: {_describe(error)}", {"url": url}), None
        )
    status = response.status_code
    request_id, code, app = _parse_me(response)
    data: dict[str, Any] = {"url": url, "status_code": status, "request_id": request_id}
    if code:
        data["error_code"] = code
    where = f" (request id {request_id})" if request_id else ""
    if status == 200:
        if app:
            data["app"] = app
        named = f", app {app}" if app else ""
        return MeProbe(Check("api", Level.OK, f"GET /me → 200{named}", data), response.headers)
    if status == 429:
        summary = f"GET /me → 429 rate limited{where}"
        return MeProbe(Check("api", Level.WARN, summary, data), response.headers)
    reason = code or response.reason_phrase or "error"
    if status in (401, 403):
        summary = f"GET /me → {status} {reason}: the token is rejected{where}"
    else:
        summary = f"GET /me → {status} {reason}{where}"
    return MeProbe(Check("api", Level.FAIL, summary, data), response.headers)


def _parse_me(response: httpx.Response) -> tuple[str | None, str | None, str | None]:
    """Request id, first error code, and app name of a ``/me`` answer (never assume JSON)."""
    request_id = response.headers.get("x-request-id")
    try:
        body = response.json()
    except ValueError:
        return request_id, None, None
    if not isinstance(body, dict):
        return request_id, None, None
    if isinstance(body.get("request_id"), str):
        request_id = body["request_id"]
    code = None
    errors = body.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        code = str(errors[0].get("code") or "") or None
    app = None
    app_info = body.get("app")
    if isinstance(app_info, dict) and app_info.get("name"):
        app = str(app_info["name"])
    return request_id, code, app


def check_rate_limit(headers: httpx.Headers | None, *, warn_below: float = 0.2) -> Check:
    """Rate-limit headroom from ``/me``'s ``X-RateLimit-*`` headers."""
    if headers is None:
        return Check("rate_limit", Level.SKIPPED, "no answer from GET /me", failing=False)
    try:
        limit = int(headers["x-ratelimit-limit"])
        remaining = int(headers["x-ratelimit-remaining"])
    except (KeyError, ValueError):
        return Check(
            "rate_limit",
            Level.WARN,
            "no X-RateLimit headers in GET /me's answer (absent when the token is rejected)",
            failing=False,
        )
    data: dict[str, Any] = {"remaining": remaining, "limit": limit}
    reset = headers.get("x-ratelimit-reset")
    if reset is not None and reset.isdigit():
        data["reset"] = int(reset)
    share = remaining / limit if limit > 0 else 0.0
    summary = f"{remaining} of {limit} requests left in this window ({share:.0%})"
    if remaining <= 0:
        return Check("rate_limit", Level.WARN, f"{summary}: quota exhausted", data)
    if share < warn_below:
        return Check("rate_limit", Level.WARN, f"{summary}: little headroom", data)
    return Check("rate_limit", Level.OK, summary, data)


# --------------------------------------------------------------------------------- status page


def check_status_page(status_url: str, timeout: float) -> Check:
    """Intercom's Statuspage: the overall indicator and the number of unresolved incidents."""
    base = status_url.rstrip("/")
    data: dict[str, Any] = {"url": base}
    try:
        with _client(timeout) as http:
            status = http.get(f"{base}/api/v2/status.json")
            status.raise_for_status()
            body = status.json()
            indicator = str(body["status"]["indicator"])
            description = str(body["status"].get("description") or indicator)
            unresolved: int | None = None
            incidents = http.get(f"{base}/api/v2/incidents/unresolved.json")
            if incidents.status_code == 200:
                unresolved = len(incidents.json().get("incidents") or [])
    except (httpx.HTTPError, OSError, ValueError, KeyError, TypeError) as error:
        return Check(
            "status_page",
            Level.UNREACHABLE,
            f"status page: {_describe(error)}",
            data,
            failing=False,
        )
    data.update(indicator=indicator, unresolved_incidents=unresolved)
    count = "unknown" if unresolved is None else str(unresolved)
    summary = f"indicator {indicator} ({description}); unresolved incidents: {count}"
    if indicator in ("major", "critical"):
        return Check("status_page", Level.FAIL, summary, data)
    if indicator != "none" or unresolved:
        return Check("status_page", Level.WARN, summary, data)
    return Check("status_page", Level.OK, summary, data)


# --------------------------------------------------------------------------------- our endpoints


def check_health_endpoint(url: str | None, timeout: float) -> Check:
    """Our own health endpoint (``intercom_resilience.asgi``): 200 healthy, 503 otherwise."""
    if not url:
        return Check("health_endpoint", Level.SKIPPED, "no --health-url given", failing=False)
    data: dict[str, Any] = {"url": url}
    try:
        with _client(timeout) as http:
            response = http.get(url)
    except (httpx.HTTPError, OSError, ValueError) as error:
        return Check("health_endpoint", Level.UNREACHABLE, f"health: {_describe(error)}", data)
    data["status_code"] = response.status_code
    reported = None
    try:
        body = response.json()
        if isinstance(body, dict):
            reported = body.get("status")
            intercom = (body.get("services") or {}).get("intercom")
            if isinstance(intercom, dict) and isinstance(intercom.get("status"), str):
                reported = intercom["status"]
    except ValueError:
        pass
    data["status"] = reported
    summary = f"{response.status_code}, status {reported or 'unknown'}"
    # The endpoint answers 503 for "degraded" too (for load balancers); the body says how bad.
    if reported == "unhealthy" or (reported is None and response.status_code >= 500):
        return Check("health_endpoint", Level.FAIL, summary, data)
    if reported != "healthy" or response.status_code != 200:
        return Check("health_endpoint", Level.WARN, summary, data)
    return Check("health_endpoint", Level.OK, summary, data)


def check_webhook(url: str | None, timeout: float, secret: str | None = None) -> Check:
    """POST a ping notification to our webhook endpoint: any answer below 500 passes.

    With *secret*, the ping is signed (``X-Hub-Signature``) as Intercom signs it, so a 2xx
    also proves the endpoint verifies signatures with the right secret.
    """
    if not url:
        return Check("webhook", Level.SKIPPED, "no --webhook-url given", failing=False)
    body = json.dumps(
        {"type": "notification_event", "topic": "ping", "data": {"item": {"type": "ping"}}}
    ).encode()
    headers = {"Content-Type": "application/json"}
    if secret:
        headers["X-Hub-Signature"] = webhook_signature(body, secret)
    data: dict[str, Any] = {"url": url}
    try:
        with _client(timeout) as http:
            response = http.post(url, content=body, headers=headers)
    except (httpx.HTTPError, OSError, ValueError) as error:
        return Check("webhook", Level.UNREACHABLE, f"webhook: {_describe(error)}", data)
    data["status_code"] = response.status_code
    summary = f"POST ping → {response.status_code}"
    if response.status_code >= 500:
        return Check("webhook", Level.FAIL, summary, data)
    return Check("webhook", Level.OK, summary, data)


# --------------------------------------------------------------------------------- token scan

# Intercom access tokens are base64 of "tok:<uuid>:<...>", so they start "dG9rO"; ~60 chars.
_INTERCOM_TOKEN = re.compile(r"dG9rO[A-Za-z0-9+/_-]{20,}={0,2}")
# A quoted literal assigned to something named like a token or key.
_ASSIGNMENT = re.compile(
    r"""(?ix)
    (?P<name>[\w.\[\]'"-]*(?:token|api_key|apikey|access_key|secret)[\w'"\]]*)
    \s*(?::\s*[\w\[\], |]+?\s*)?(?:=|:|=>)\s*
    (?P<quote>["'])(?P<value>[^"'\s]{12,})(?P=quote)
    """
)
_PLACEHOLDER = re.compile(
    r"(?i)(fake|example|placeholder|your[-_]|xxx|changeme|dummy|redacted|<|\$\{|\{\{|\*\*\*|\.\.\.)"
)
#: Directory names never scanned (version control, virtualenvs, caches, build output), on top of
#: ``--exclude``.
DEFAULT_EXCLUDES = (
    ".git",
    ".hg",
    ".svn",
    ".venv",
    "venv",
    "node_modules",
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".tox",
    "dist",
    "build",
    ".eggs",
)
_SKIP_DIRS = frozenset(DEFAULT_EXCLUDES)
# Markers by which a line says its literal is a known non-secret (bandit's and detect-secrets').
_ALLOWED = re.compile(r"noqa: ?S10[567]|pragma: allowlist secret")
#: A line carrying this marker (in any comment syntax) holds a known test token: nothing on it is
#: reported, not even an Intercom-format token (which the markers above never excuse).
ALLOW_MARKER = "intercom-resilience: allow-token"
_MAX_FILE_BYTES = 2 * 1024 * 1024
_NEAR = 3  # lines either side in which "intercom" makes an assignment suspicious


@dataclasses.dataclass(frozen=True, slots=True)
class Finding:
    """A hard-coded credential: where, what kind, and the masked value."""

    path: str
    line: int
    kind: str
    masked: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return dataclasses.asdict(self)


def _excluded(relative: str, patterns: tuple[str, ...]) -> bool:
    """Does *relative* (a ``/``-separated path under a scan root) match an ``--exclude`` glob?

    A glob without ``/`` matches a file or directory name at any depth (``*.lock``, ``fixtures``);
    one with ``/`` matches the path from the scan root (``tests/fixtures``, ``docs/*.md``).
    """
    name = relative.rsplit("/", 1)[-1]
    for pattern in patterns:
        if "/" in pattern:
            if fnmatch.fnmatchcase(relative, pattern):
                return True
        elif fnmatch.fnmatchcase(name, pattern):
            return True
    return False


def _normalise(patterns: Iterable[str]) -> tuple[str, ...]:
    cleaned = (p.strip().removeprefix("./").rstrip("/") for p in patterns)
    return tuple(p for p in cleaned if p)


def _files(root: Path, patterns: tuple[str, ...] = ()) -> Iterator[Path]:
    if root.is_file():
        if not _excluded(root.as_posix(), patterns):
            yield root
        return
    for current, dirs, files in os.walk(root):
        base = Path(current).relative_to(root).as_posix()
        prefix = "" if base == "." else f"{base}/"
        # Pruning here keeps an excluded tree (a virtualenv, node_modules) from being walked at all.
        dirs[:] = sorted(
            d for d in dirs if d not in _SKIP_DIRS and not _excluded(prefix + d, patterns)
        )
        for name in sorted(files):
            if not _excluded(prefix + name, patterns):
                yield Path(current) / name


def _read_text(path: Path) -> str | None:
    try:
        if path.stat().st_size > _MAX_FILE_BYTES:
            return None
        raw = path.read_bytes()
    except OSError:
        return None
    if b"\0" in raw[:4096]:
        return None  # binary
    return raw.decode("utf-8", errors="replace")


@dataclasses.dataclass(frozen=True, slots=True)
class ScanResult:
    """What :func:`scan_for_tokens` found, and how much it looked at."""

    findings: list[Finding]
    files_scanned: int
    lines_allowed: int


def _scan_lines(lines: list[str], display: str) -> tuple[list[Finding], int]:
    lowered = [line.lower() for line in lines]
    found: list[Finding] = []
    allowed = 0
    for number, line in enumerate(lines, start=1):
        if ALLOW_MARKER in line:
            allowed += 1
            continue
        seen: set[str] = set()
        for match in _INTERCOM_TOKEN.finditer(line):
            value = match.group(0)
            seen.add(value)
            found.append(Finding(display, number, "intercom access token", mask(value)))
        if _ALLOWED.search(line):
            continue  # an Intercom-format token above is still reported: it is never a test value
        for match in _ASSIGNMENT.finditer(line):
            value = match.group("value")
            if value in seen or _PLACEHOLDER.search(value):
                continue
            name = match.group("name").lower()
            window = lowered[max(0, number - 1 - _NEAR) : number + _NEAR]
            if "intercom" in name or any("intercom" in near for near in window):
                found.append(Finding(display, number, "hard-coded token literal", mask(value)))
    return found, allowed


def scan_file(path: Path, display: str) -> list[Finding]:
    """Hard-coded Intercom credentials in one file (lines with :data:`ALLOW_MARKER` excepted)."""
    text = _read_text(path)
    return [] if text is None else _scan_lines(text.splitlines(), display)[0]


def scan_for_tokens(roots: Iterable[Path], exclude: Iterable[str] = ()) -> ScanResult:
    """Scan files under *roots*, skipping :data:`DEFAULT_EXCLUDES` and the *exclude* globs."""
    patterns = _normalise(exclude)
    findings: list[Finding] = []
    scanned = allowed = 0
    for root in roots:
        for path in _files(root, patterns):
            text = _read_text(path)
            scanned += 1
            if text is None:
                continue
            found, marked = _scan_lines(text.splitlines(), str(path))
            findings.extend(found)
            allowed += marked
    return ScanResult(findings, scanned, allowed)


def check_token_scan(roots: list[Path], exclude: Iterable[str] = ()) -> Check:
    """The ``preflight`` check around :func:`scan_for_tokens`.

    The summary is one short line; the findings, one per line, are in ``data["findings"]``.
    """
    if not roots:
        return Check("token_scan", Level.SKIPPED, "no --scan PATH given", failing=False)
    missing = [str(root) for root in roots if not root.exists()]
    if missing:
        return Check("token_scan", Level.FAIL, f"no such path: {', '.join(missing)}")
    result = scan_for_tokens(roots, exclude)
    data: dict[str, Any] = {
        "files_scanned": result.files_scanned,
        "lines_allowed": result.lines_allowed,
        "findings": [finding.to_dict() for finding in result.findings],
    }
    marked = f", {result.lines_allowed} line(s) marked allow-token" if result.lines_allowed else ""
    if result.findings:
        files = len({finding.path for finding in result.findings})
        return Check(
            "token_scan",
            Level.FAIL,
            f"{len(result.findings)} hard-coded credential(s) in {files} file(s) "
            f"({result.files_scanned} scanned{marked})",
            data,
        )
    return Check(
        "token_scan",
        Level.OK,
        f"{result.files_scanned} file(s) scanned, no hard-coded tokens{marked}",
        data,
    )
