"""The rate limiter, sans I/O: GCRA pacing under an exact sliding-window cap, re-synchronised by
the server's ``X-RateLimit-*`` headers.

Intercom enforces its quotas in fixed windows (10 s): at most ``Q = per_minute / 6`` requests per
window per app, and per workspace. The invariant this module holds, for each quota, is stronger:
in **any** interval of one window's length, at most ``Q`` requests leave. Two mechanisms, one per
job:

**The cap (safety): a sliding window counted in slots.** Each window is cut into
:data:`SLOTS_PER_WINDOW` slots of ``s`` microseconds; a bucket counts its admissions per slot and
admits one more only while the slots ``k - m … k`` (``k`` the current slot, ``m = ceil(W / s)``)
hold fewer than ``Q``. Those slots cover ``[now - W, now]``, because
``floor((now - W) / s) >= floor(now / s) - ceil(W / s)``. So when the last of ``n`` admissions of a
closed interval ``[t, t + W]`` was admitted, the other ``n - 1`` were all counted, hence
``n - 1 <= Q - 1`` and ``n <= Q``: exact, in integer microseconds, whatever the pacing above it
does, whatever order acquires, headers and 429s arrive in. The price of counting whole slots is
that a saturated bucket admits ``Q`` per ``W + s`` rather than per ``W``: 99% goodput with 100
slots, for 101 small integers of state.

**The pacing (smoothness and bursts): GCRA.** Emission interval ``T = ceil(W / Q)`` (the full
rate, so pacing costs no goodput) and tolerance ``tau = (B - 1) * T`` where
``B = burst * Q`` tokens: an idle bucket lets ``B`` interactive calls leave at once, then spaces
them ``T`` apart. A plain GCRA (or token bucket) with that burst would admit ``B + Q - 1`` in some
window; the cap above is what makes the burst safe, so neither mechanism has to give up the other's
goal (the classic alternative, refilling at ``Q - B`` per window, would cap goodput at
``1 - burst`` = 90% with the default policy).

**Priorities.** Background calls get no burst (``tau = 0``, so they never eat the interactive
burst), and a lower cap: they are admitted only while the last window holds fewer than
``Q - ceil(background_reserve * Q)`` admissions, so every window keeps its reserve for interactive
calls; they also pause while the server reports a remaining quota at or below the reserve.

**Server truth.** A response's ``X-RateLimit-Remaining``/``-Reset`` cap how many more calls may
leave before that server window resets (other apps of the workspace spend its quota too). A header
only ever lowers that cap within a window; a newer window starts from the server's figure, and the
local cap and pacing above still apply, so no header can raise tokens above what the buckets allow.
A 429 blocks every call until its reset (one window when the reset is missing or already past);
reset times are clamped to :data:`MAX_RESET_WINDOWS` windows so a broken header cannot stall a
client for hours.

Time is Unix time in seconds on the way in (so that ``X-RateLimit-Reset`` compares directly) and
integer microseconds inside, which is exact (the Redis Lua twin of this module does the same
arithmetic on the same integers) and monotonic: a clock stepping back is treated as standing still,
so it can never un-count an admission.
"""

from __future__ import annotations

import enum
import math

from .._config import RateLimitPolicy
from .record import record
from .responses import RateLimitInfo


class Priority(enum.Enum):
    """Who is asking for quota.

    Interactive calls (a user is waiting) go first; background calls (bulk syncs, backfills) only
    use the quota interactive traffic leaves, and pause when the remaining quota runs low.
    """

    INTERACTIVE = "interactive"
    BACKGROUND = "background"

    # Members are singletons compared by identity: hashing by identity (in C) agrees with that,
    # where Enum's own __hash__ is a Python call, and the driver looks a priority up every attempt.
    __hash__ = object.__hash__


@record
class Grant:
    """A limiter's answer to one acquire (a :func:`~.record.record`: built on every acquire).

    Attributes:
        granted: a token was taken; the request may leave now.
        wait: when not granted, seconds until a token is expected (``0.0`` when granted).
        remaining: tokens left in the tighter bucket after this acquire, when known.
    """

    granted: bool
    wait: float = 0.0
    remaining: float | None = None


__all__ = [
    "MAX_RESET_WINDOWS",
    "MICROS",
    "SLOTS_PER_WINDOW",
    "Bucket",
    "BucketSpec",
    "DualLimiter",
    "Grant",
    "Priority",
    "ServerWindow",
    "to_micros",
]

#: Microseconds per second: the limiter's unit of time.
MICROS = 1_000_000
#: Slots per window of the sliding cap: goodput under saturation is ``S / (S + 1)`` of the quota.
SLOTS_PER_WINDOW = 100
#: A reset time further ahead than this many windows is clamped (a broken header must not stall).
MAX_RESET_WINDOWS = 6
# Float noise guard for shares: 0.1 * 30 is 3.0000000000000004, which must not round up to 4.
_EPSILON = 1e-9

# Enum members read on every call, bound to module names (see _core/__init__.py).
_BACKGROUND = Priority.BACKGROUND


def to_micros(seconds: float) -> int:
    """*seconds* as integer microseconds (rounded to nearest, so ``µs / 1e6`` converts back)."""
    return round(seconds * MICROS)


class BucketSpec:
    """The integer parameters of one quota, derived once from the policy.

    Args:
        quota: requests per window (``Q``), at least one.
        window: the window length in seconds.
        burst: share of ``Q`` that may leave at once from idle (``B = max(1, floor(burst * Q))``).
        reserve: share of ``Q`` that background calls leave to interactive ones.

    Attributes:
        quota: ``Q``.
        window_us: ``W`` in microseconds.
        interval_us: GCRA emission interval ``T = ceil(W / Q)``.
        tolerance_us: GCRA tolerance ``tau = (B - 1) * T`` for interactive calls.
        burst: ``B``.
        slot_us: the length ``s`` of one slot of the sliding cap.
        span: ``m = ceil(W / s)``: slots ``k - m … k`` are counted.
        background_cap: background calls are admitted only below this count (at least one).
    """

    __slots__ = (
        "background_cap",
        "burst",
        "interval_us",
        "quota",
        "slot_us",
        "span",
        "tolerance_us",
        "window_us",
    )

    def __init__(self, quota: int, window: float, burst: float, reserve: float) -> None:
        if quota < 1:
            raise ValueError(f"BucketSpec.quota must be >= 1, got {quota!r}")
        if not window > 0:
            raise ValueError(f"BucketSpec.window must be > 0, got {window!r}")
        self.quota = quota
        self.window_us = max(1, to_micros(window))
        self.interval_us = -(-self.window_us // quota)
        self.burst = min(quota, max(1, math.floor(burst * quota + _EPSILON)))
        self.tolerance_us = (self.burst - 1) * self.interval_us
        self.slot_us = max(1, -(-self.window_us // SLOTS_PER_WINDOW))
        self.span = -(-self.window_us // self.slot_us)
        reserved = min(quota - 1, max(0, math.ceil(reserve * quota - _EPSILON)))
        self.background_cap = quota - reserved

    @classmethod
    def from_policy(
        cls, policy: RateLimitPolicy, per_minute: int, share: float = 1.0
    ) -> BucketSpec:
        """The spec of a *per_minute* quota under *policy*, scaled by *share* (Redis fallback)."""
        quota = policy.window_quota(per_minute)
        if share < 1.0:
            quota = max(1, math.floor(quota * share + _EPSILON))
        return cls(quota, policy.window, policy.burst, policy.background_reserve)

    def __repr__(self) -> str:
        return (
            f"BucketSpec(quota={self.quota}, window_us={self.window_us}, burst={self.burst}, "
            f"background_cap={self.background_cap})"
        )


class Bucket:
    """One quota's state: a GCRA arrival time and the slot counts of the sliding cap.

    Not thread-safe; the backends serialise access. Times are integer microseconds and must not
    decrease between calls (:class:`DualLimiter` guarantees it).
    """

    __slots__ = ("_head", "_ring", "counts", "index", "slot_end", "spec", "tat", "total")

    def __init__(self, spec: BucketSpec) -> None:
        self.spec = spec
        #: GCRA theoretical arrival time (µs).
        self.tat = 0
        #: admissions counted in slots ``head - span … head``.
        self.total = 0
        self._ring = spec.span + 1
        #: admissions per slot, a ring indexed by ``slot % ring``.
        self.counts = [0] * self._ring
        self._head = -1
        #: ``counts`` index of the current slot (``head % ring``).
        self.index = self._ring - 1
        #: first µs past the current slot: times before it need no :meth:`_advance`.
        self.slot_end = 0

    def _advance(self, now: int) -> None:
        """Move the ring to the slot of *now*, forgetting slots that left the counted range."""
        slot = now // self.spec.slot_us
        head = self._head
        if slot <= head:
            return
        ring, counts = self._ring, self.counts
        if slot - head >= ring:
            counts[:] = [0] * ring
            self.total = 0
        else:
            for i in range(head + 1, slot + 1):
                index = i % ring
                self.total -= counts[index]
                counts[index] = 0
        self._head = slot
        self.index = slot % ring
        self.slot_end = (slot + 1) * self.spec.slot_us

    def wait_us(self, now: int, background: bool) -> int:
        """Microseconds until this bucket admits one call (``0``: now). Advances the ring."""
        spec = self.spec
        if now >= self.slot_end:  # the hot path stays in its slot: skip the call
            self._advance(now)
        lag = self.tat - now
        tolerance = 0 if background else spec.tolerance_us
        wait = lag - tolerance if lag > tolerance else 0
        cap = spec.background_cap if background else spec.quota
        if self.total >= cap:
            cap_wait = self._cap_wait(now, cap)
            wait = max(wait, cap_wait)
        return wait

    def _cap_wait(self, now: int, cap: int) -> int:
        # Slot j stops being counted when now reaches slot j + span + 1; walk from the oldest
        # counted slot until enough admissions have dropped out to leave room for one more.
        spec, ring, counts = self.spec, self._ring, self.counts
        need = self.total + 1 - cap
        dropped = 0
        first = self._head - spec.span
        for j in range(first, self._head + 1):
            dropped += counts[j % ring]
            if dropped >= need:
                return (j + spec.span + 1) * spec.slot_us - now
        # Unreachable while cap >= 1 (dropping every slot leaves room), kept total for safety.
        return (self._head + 1) * spec.slot_us + spec.window_us - now

    def take(self, now: int, count: int = 1) -> None:
        """Record *count* admissions at *now* (:meth:`wait_us` checks; this does not)."""
        if now >= self.slot_end:
            self._advance(now)
        self.counts[self.index] += count
        self.total += count
        tat = self.tat
        self.tat = (tat if tat > now else now) + count * self.spec.interval_us

    def left(self) -> int:
        """Admissions the cap still allows in the current window (as of the last call)."""
        return max(0, self.spec.quota - self.total)

    def __repr__(self) -> str:
        return f"Bucket({self.spec!r}, total={self.total}, tat={self.tat})"


class ServerWindow:
    """What the server said about its current window: a cap until reset, and 429 blocks.

    Attributes:
        blocked_until: no call leaves before this time (µs), set by a 429.
        reset_us: end of the server window that ``allow`` describes (µs); ``allow`` is void after.
        allow: calls that may still leave before ``reset_us``.
        limit: the server's per-window limit, when it sent one (sizes the background reserve).
    """

    __slots__ = ("allow", "blocked_until", "limit", "reset_us")

    def __init__(self) -> None:
        self.blocked_until = 0
        self.reset_us = 0
        self.allow = 0
        self.limit: int | None = None


class DualLimiter:
    """The app and workspace buckets of one client, plus the server's view: the whole decision.

    Each admitted call spends one token of both buckets. ``acquire`` never blocks: it answers with
    a :class:`Grant` saying whether the call may leave now, and otherwise how long to wait.

    Args:
        app: the app quota's spec.
        workspace: the workspace quota's spec, or an existing :class:`Bucket` to share one
            workspace budget between the limiters of several apps in one process.
        reserve: the policy's ``background_reserve`` (applied to the server's remaining count).
    """

    __slots__ = ("app", "last", "reserve", "server", "workspace")

    def __init__(self, app: BucketSpec, workspace: BucketSpec | Bucket, reserve: float) -> None:
        self.app = Bucket(app)
        self.workspace = workspace if isinstance(workspace, Bucket) else Bucket(workspace)
        self.reserve = reserve
        self.server = ServerWindow()
        #: the latest time seen (µs): time never goes back below it.
        self.last = 0

    @classmethod
    def from_policy(cls, policy: RateLimitPolicy, share: float = 1.0) -> DualLimiter:
        """A limiter sized by *policy*; *share* < 1 shrinks both quotas (the Redis fallback)."""
        return cls(
            BucketSpec.from_policy(policy, policy.app_per_minute, share),
            BucketSpec.from_policy(policy, policy.workspace_per_minute, share),
            policy.background_reserve,
        )

    def _now(self, now: float) -> int:
        t = round(now * MICROS)
        if t < self.last:
            return self.last  # the clock stepped back: stand still rather than un-count
        self.last = t
        return t

    def _server_reserve(self) -> int:
        limit = self.server.limit or self.app.spec.quota
        return min(limit - 1, max(0, math.ceil(self.reserve * limit - _EPSILON)))

    def acquire(self, now: float, priority: Priority = Priority.INTERACTIVE) -> Grant:
        """Take one token from both buckets at Unix time *now*, or say how long to wait."""
        wait, left = self.decide(round(now * MICROS), priority is _BACKGROUND)
        if wait:
            return Grant(False, wait / MICROS, float(left))
        return Grant(True, 0.0, float(left))

    def decide(self, t: int, background: bool) -> tuple[int, int]:
        """:meth:`acquire` in integers: ``(wait_us, remaining)`` at *t* µs (Unix time).

        ``wait_us`` is ``0`` when a token was taken from both buckets. No :class:`Grant` is built
        here, so a backend can hold its lock for this call only and build the answer outside
        (:class:`~.._backends.memory_limiter.MemoryLimiter` also decides the common case in-line).
        """
        if t < self.last:
            t = self.last  # the clock stepped back: stand still rather than un-count
        else:
            self.last = t
        server = self.server
        app, workspace = self.app, self.workspace
        wait = server.blocked_until - t if server.blocked_until > t else 0
        windowed = t < server.reset_us
        if windowed:
            floor = self._server_reserve() if background else 0
            if server.allow <= floor:
                wait = max(wait, server.reset_us - t)
        wait = max(wait, app.wait_us(t, background), workspace.wait_us(t, background))
        if wait:
            return wait, self._remaining(t, windowed)
        app.take(t)
        workspace.take(t)
        if windowed:
            server.allow -= 1
        return 0, self._remaining(t, windowed)

    def _remaining(self, t: int, windowed: bool) -> int:
        server = self.server
        if server.blocked_until > t:
            return 0
        app, workspace = self.app, self.workspace
        left = app.spec.quota - app.total
        other = workspace.spec.quota - workspace.total
        left = min(left, other)
        if windowed and server.allow < left:
            left = server.allow
        return left if left > 0 else 0

    def consume(self, now: float, count: int = 1) -> None:
        """Record *count* calls that left without asking this limiter (they were admitted by
        another one, e.g. Redis, and must still count against this one's windows)."""
        if count <= 0:
            return
        t = self._now(now)
        for bucket in (self.app, self.workspace):
            bucket.take(t, count)
            # They count in the sliding cap (which holds the invariant), but must not run up
            # pacing debt: admitted at another limiter's full rate, each one pushed this
            # (smaller) bucket's GCRA time ahead by its own longer interval, so after an hour on
            # Redis the fallback refused every call for hours. One window of debt at most.
            bucket.tat = min(bucket.tat, t + bucket.spec.window_us)
        if t < self.server.reset_us:
            self.server.allow = max(0, self.server.allow - count)

    def recent(self, now: float) -> int:
        """Calls counted in the last window (and up to one slot more), per the app bucket."""
        t = self._now(now)
        self.app.wait_us(t, background=False)  # advances the ring to now
        return self.app.total

    def observe(self, now: float, status: int | None, info: RateLimitInfo | None) -> None:
        """Re-synchronise with a response: its status (``None`` for a network failure) and
        rate-limit headers (``None`` when absent)."""
        t = self._now(now)
        server = self.server
        horizon = t + MAX_RESET_WINDOWS * self.app.spec.window_us
        reset = None
        if info is not None and info.reset_at is not None:
            reset = min(to_micros(info.reset_at), horizon)
        if status == 429:
            # The server window is spent: nothing leaves until it resets. A missing reset means one
            # window from now. A reset already past on our clock means our clock runs ahead of
            # Intercom's (or the response is late): its next window is about to start, so wait
            # one slot, not a whole window (which halved goodput with a 30 ms skew).
            if reset is None:
                until = t + self.app.spec.window_us
            elif reset > t:
                until = reset
            else:
                until = t + self.app.spec.slot_us
            server.blocked_until = max(server.blocked_until, until)
            return
        if info is None or info.remaining is None:
            return
        remaining = info.remaining
        if reset is None:
            reset = server.reset_us if t < server.reset_us else t + self.app.spec.window_us
        if reset <= t:
            return  # describes a window that is already over
        if t >= server.reset_us or reset > server.reset_us:
            # A new server window: the server's figure starts it (the buckets still bound it).
            server.reset_us = reset
            server.allow = remaining
            if info.limit:
                server.limit = info.limit
        elif reset == server.reset_us:
            # The same window: remaining can only go down (other apps spend the workspace too).
            server.allow = min(server.allow, remaining)
        # else: a late response from an older window; the newer figure stands.

    def __repr__(self) -> str:
        return f"DualLimiter(app={self.app!r}, workspace={self.workspace!r})"
