"""Intercom's rate limits: fixed windows per app and per workspace.

Intercom states its limits per minute (10,000 per app, 25,000 per workspace) but enforces them
evenly over 10-second windows aligned on the clock, so an app gets ``per_minute // 6`` requests in
each window and a burst of a whole minute's quota is refused. Every app of a workspace also draws
on the workspace's shared quota. A refused request does not count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["UNLIMITED", "QuotaDecision", "Quotas", "window_limit"]

#: The limit and remaining figures a fake with rate limiting off states in every window.
UNLIMITED = 1_000_000_000


def window_limit(per_minute: int, window_seconds: float) -> int:
    """How many requests one window admits for a per-minute figure (at least one)."""
    return max(1, math.floor(per_minute * window_seconds / 60))


@dataclass(frozen=True, slots=True)
class QuotaDecision:
    """The verdict and the ``X-RateLimit-*`` figures for one request."""

    allowed: bool
    limit: int
    remaining: int
    reset: int

    def headers(self) -> tuple[tuple[str, str], ...]:
        """The rate-limit headers Intercom sends on authenticated responses."""
        return (
            ("X-RateLimit-Limit", str(self.limit)),
            ("X-RateLimit-Remaining", str(self.remaining)),
            ("X-RateLimit-Reset", str(self.reset)),
        )


class Quotas:
    """Fixed-window counters for apps and workspaces.

    Args:
        app_per_minute: default per-app quota per minute.
        workspace_per_minute: default per-workspace quota per minute.
        window_seconds: the window length (Intercom: 10 seconds).
    """

    __slots__ = (
        "_app_limits",
        "_counts",
        "_ws_limits",
        "app_per_minute",
        "window_seconds",
        "workspace_per_minute",
    )

    def __init__(
        self, app_per_minute: int, workspace_per_minute: int, window_seconds: float = 10.0
    ) -> None:
        for name, value in (
            ("app_quota", app_per_minute),
            ("workspace_quota", workspace_per_minute),
        ):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int per minute, got {value!r}")
        if not window_seconds > 0:
            raise ValueError(f"window_seconds must be > 0, got {window_seconds!r}")
        self.app_per_minute = app_per_minute
        self.workspace_per_minute = workspace_per_minute
        self.window_seconds = float(window_seconds)
        self._app_limits: dict[str, int] = {}
        self._ws_limits: dict[str, int] = {}
        # (kind, name) -> (window index, requests counted in it)
        self._counts: dict[tuple[str, str], tuple[int, int]] = {}

    def set_app_quota(self, app: str, per_minute: int) -> None:
        """Give one app its own per-minute quota."""
        self._app_limits[app] = per_minute

    def set_workspace_quota(self, workspace: str, per_minute: int) -> None:
        """Give one workspace its own per-minute quota."""
        self._ws_limits[workspace] = per_minute

    def limits(self, app: str, workspace: str) -> tuple[int, int]:
        """The per-window limits of *app* and *workspace*."""
        return (
            window_limit(self._app_limits.get(app, self.app_per_minute), self.window_seconds),
            window_limit(
                self._ws_limits.get(workspace, self.workspace_per_minute), self.window_seconds
            ),
        )

    def _window(self, now: float) -> tuple[int, int]:
        index = math.floor(now / self.window_seconds)
        return index, math.ceil((index + 1) * self.window_seconds)

    def _used(self, key: tuple[str, str], index: int) -> int:
        window, count = self._counts.get(key, (index, 0))
        return count if window == index else 0

    def peek(self, app: str, workspace: str, now: float) -> QuotaDecision:
        """The figures for the current window without spending anything."""
        return self._decide(app, workspace, now, spend=False)

    def acquire(self, app: str, workspace: str, now: float) -> QuotaDecision:
        """Spend one request of both quotas if both have room; refuse (spending nothing) if not."""
        return self._decide(app, workspace, now, spend=True)

    def unlimited(self, app: str, workspace: str, now: float) -> QuotaDecision:
        """The figures of a fake with rate limiting off: always allowed, never spent.

        The headers keep their shape (and the current window's reset) but state a window no
        client can spend (:data:`UNLIMITED`): a client that paces itself by them, counting its own
        requests against the remaining figure as the resilient client does, must never be told
        to wait by a fake that never refuses. (Reporting the configured quota as always left
        would not do: such a client still counts down to zero within the window.)
        """
        _, reset = self._window(now)
        return QuotaDecision(True, UNLIMITED, UNLIMITED, reset)

    def _decide(self, app: str, workspace: str, now: float, *, spend: bool) -> QuotaDecision:
        index, reset = self._window(now)
        app_limit, ws_limit = self.limits(app, workspace)
        app_key, ws_key = ("app", app), ("workspace", workspace)
        app_used, ws_used = self._used(app_key, index), self._used(ws_key, index)
        allowed = app_used < app_limit and ws_used < ws_limit
        if spend and allowed:
            app_used += 1
            ws_used += 1
            self._counts[app_key] = (index, app_used)
            self._counts[ws_key] = (index, ws_used)
        app_left, ws_left = max(0, app_limit - app_used), max(0, ws_limit - ws_used)
        # Report whichever quota is tighter, as a client must respect both.
        if ws_left < app_left:
            return QuotaDecision(allowed, ws_limit, ws_left, reset)
        return QuotaDecision(allowed, app_limit, app_left, reset)

    def reset(self) -> None:
        """Forget every count (a fresh minute for everybody)."""
        self._counts.clear()
