"""What an attempt's result *means*: the one table every stage asks.

An attempt ends in one of three ways: Intercom answered with a status, the network failed (before
anything was sent, or after it may have been), or a 2xx arrived whose body the SDK cannot read.
For each, this table says, once for the whole library:

=============================  ======  ===========  ===========  ==========  ========  ===========
result                         outage  breaker      retry        stale       incident  forget
=============================  ======  ===========  ===========  ==========  ========  ===========
2xx                            no      success      no           —           no        —
connect error                  yes     failure      always       network     yes       —
connect or pool timeout        yes     failure      always       timeout     yes       —
read timeout                   yes     failure      idempotent   timeout     yes       —
dropped connection, malformed  yes     failure      idempotent   network     yes       —
429                            no      not counted  always       rate-limit  yes       —
401                            no      success      rotate once  never       yes       credentials
403                            no      success      no           never       yes       credentials
404, 410                       no      success      no           never       no        record
408                            yes     failure      idempotent   timeout     yes       —
400, 409, 422                  no      success      no           never       no        —
other 4xx                      no      success      no           never       no        —
5xx                            yes     failure      idempotent   server      yes       —
=============================  ======  ===========  ===========  ==========  ========  ===========

* **outage**: Intercom, or the way to it, is unwell (health counts it as an error).
* **breaker**: how the circuit breaker counts it: a failure, a success (Intercom answered: our
  request was wrong, not Intercom), or not at all (429 is the limiter's business).
* **retry**: *always* when the request was certainly not processed (nothing was sent, or a 429);
  *idempotent* when it may have been processed, so only requests that repeating cannot change
  (GET, HEAD, PUT, DELETE, read-only POST) are re-sent; *rotate once* when the token is a callable.
* **stale**: why a read may be answered from the stale cache, or *never* when the status is
  Intercom's answer about the request (stale data would hide a real error).
* **forget**: what the stale cache drops after the answer: a 404/410 read's own entry (the
  record is gone, and the next outage must not bring it back), or after a 401/403 everything
  those credentials cached.
* **incident**: the attempt is a failure for the incident record and the failure log (Intercom
  could not or would not serve us); other 4xx are answers, normal traffic.

Pure and precomputed: one dictionary lookup per attempt.
"""

from __future__ import annotations

import dataclasses
import enum

__all__ = ["BreakerCount", "Forget", "Meaning", "Network", "RetryRule", "StaleReason", "meaning"]


class StaleReason(enum.Enum):
    """Why a read's failure may be answered from the stale cache.

    These are outages, not answers: Intercom (or the way to it, or our own protections) could not
    give a fresh response. A 4xx other than 408/429 is Intercom's answer about the request and is
    never masked.
    """

    RATE_LIMITED = "rate_limited"  #: 429 from Intercom
    SERVER_ERROR = "server_error"  #: 5xx (including gateway HTML pages)
    TIMEOUT = "timeout"  #: a read timeout, or 408 ``request_timeout``
    NETWORK_ERROR = "network_error"  #: connect error, dropped connection
    CIRCUIT_OPEN = "circuit_open"  #: the breaker refused the call
    DISABLED = "disabled"  #: the kill switch is on
    LIMITER_WAIT = "limiter_wait"  #: the rate-limit wait would pass the caller's deadline
    SLOW = "slow"  #: the read's latency budget was spent (``DeadlinePolicy.stale_if_slow``)


class Network(enum.Enum):
    """How an attempt failed to bring back a readable answer."""

    #: No connection was made: the request certainly did not reach Intercom.
    CONNECT = "connect"
    #: No connection (or pool slot) was had in time: nothing was sent either.
    CONNECT_TIMEOUT = "connect_timeout"
    #: The request may have been sent; the response did not come back in time.
    TIMEOUT = "timeout"
    #: The request may have been sent; the connection dropped or the answer was unreadable.
    AMBIGUOUS = "ambiguous"


class RetryRule(enum.Enum):
    """When an attempt with this result may be repeated."""

    NO = "no"  #: done (success) or an answer: never repeated
    ALWAYS = "always"  #: certainly not processed: safe for every method
    IF_IDEMPOTENT = "if_idempotent"  #: may have been processed: only if repeating is harmless
    ROTATE_TOKEN = "rotate_token"  # noqa: S105 - a rule's name, not a credential


class Forget(enum.Enum):
    """What the stale cache must forget after an answer (the record, or the credentials')."""

    NOTHING = "nothing"
    RECORD = "record"  #: 404/410: the record is gone; its cached copy must not come back
    CREDENTIALS = "credentials"  #: 401/403: nothing these credentials cached may be served


class BreakerCount(enum.Enum):
    """How the circuit breaker counts an attempt."""

    SUCCESS = "success"
    FAILURE = "failure"
    IGNORED = "ignored"

    __hash__ = object.__hash__  # looked up every attempt (see Priority.__hash__)


@dataclasses.dataclass(frozen=True, slots=True)
class Meaning:
    """What one attempt's result means to every stage (see the module's table).

    Attributes:
        ok: a 2xx answer.
        outage: Intercom, or the way to it, is unwell.
        breaker: how the circuit breaker counts it.
        retry: when it may be repeated.
        stale: why a read may be answered stale instead (``None``: it may not).
        incident_failure: a failure for incidents and the failure record.
        rate_limited: Intercom refused it for quota (429).
        authenticated: what it says about the credentials: ``False`` for a 401, ``True`` for any
            other answer that Intercom itself gave, ``None`` when it says nothing (network
            failures and 5xx, which gateways send without looking at credentials).
        forget: what the stale cache must forget after it.
    """

    ok: bool
    outage: bool
    breaker: BreakerCount
    retry: RetryRule
    stale: StaleReason | None
    incident_failure: bool
    rate_limited: bool = False
    authenticated: bool | None = None
    forget: Forget = Forget.NOTHING

    def may_repeat(self, idempotent: bool) -> bool:
        """Whether an attempt with this result may be sent again (token rotation aside)."""
        return self.retry is RetryRule.ALWAYS or (
            self.retry is RetryRule.IF_IDEMPOTENT and idempotent
        )


def _for_status(status: int) -> Meaning:
    if 200 <= status < 300:
        return Meaning(True, False, BreakerCount.SUCCESS, RetryRule.NO, None, False, False, True)
    if status == 429:
        return Meaning(
            False,
            False,
            BreakerCount.IGNORED,
            RetryRule.ALWAYS,
            StaleReason.RATE_LIMITED,
            True,
            True,
            True,
        )
    if status >= 500:
        return Meaning(
            False,
            True,
            BreakerCount.FAILURE,
            RetryRule.IF_IDEMPOTENT,
            StaleReason.SERVER_ERROR,
            True,
        )
    if status == 408:
        return Meaning(
            False,
            True,
            BreakerCount.FAILURE,
            RetryRule.IF_IDEMPOTENT,
            StaleReason.TIMEOUT,
            True,
            False,
            True,
        )
    if status == 401:
        return Meaning(
            False,
            False,
            BreakerCount.SUCCESS,
            RetryRule.ROTATE_TOKEN,
            None,
            True,
            False,
            False,
            Forget.CREDENTIALS,
        )
    # 403 (forbidden, plan restricted) is Intercom refusing to serve us: an incident failure.
    # Other 4xx, and 1xx/3xx that reach here (an unfollowed redirect), are answers.
    incident = status == 403
    forget = {403: Forget.CREDENTIALS, 404: Forget.RECORD, 410: Forget.RECORD}.get(
        status, Forget.NOTHING
    )
    return Meaning(
        False, False, BreakerCount.SUCCESS, RetryRule.NO, None, incident, False, True, forget
    )


_BY_STATUS: dict[int, Meaning] = {status: _for_status(status) for status in range(100, 600)}

_BY_NETWORK: dict[Network, Meaning] = {
    Network.CONNECT: Meaning(
        False, True, BreakerCount.FAILURE, RetryRule.ALWAYS, StaleReason.NETWORK_ERROR, True
    ),
    Network.CONNECT_TIMEOUT: Meaning(
        False, True, BreakerCount.FAILURE, RetryRule.ALWAYS, StaleReason.TIMEOUT, True
    ),
    Network.TIMEOUT: Meaning(
        False, True, BreakerCount.FAILURE, RetryRule.IF_IDEMPOTENT, StaleReason.TIMEOUT, True
    ),
    Network.AMBIGUOUS: Meaning(
        False,
        True,
        BreakerCount.FAILURE,
        RetryRule.IF_IDEMPOTENT,
        StaleReason.NETWORK_ERROR,
        True,
    ),
}


def meaning(status: int | None, network: Network | None = None) -> Meaning:
    """The meaning of an attempt that ended with *status*, or with the *network* failure.

    A status outside 100–599 (a broken server) is treated like a 5xx: Intercom is unwell.
    """
    if status is None:
        return _BY_NETWORK[network if network is not None else Network.AMBIGUOUS]
    found = _BY_STATUS.get(status)
    return found if found is not None else _BY_STATUS[500]
