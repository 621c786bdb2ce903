"""The status table: one place says what a result means, and it says it consistently."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intercom_resilience._core import status as status_module
from intercom_resilience._core.requests import classify
from intercom_resilience._core.status import (
    BreakerCount,
    Forget,
    Meaning,
    Network,
    RetryRule,
    StaleReason,
    meaning,
)

PACKAGE = Path(status_module.__file__).resolve().parents[1]

results = st.one_of(
    st.integers(min_value=100, max_value=599).map(lambda s: (s, None)),
    st.sampled_from(list(Network)).map(lambda n: (None, n)),
)


@given(results)
def test_the_columns_agree_with_each_other(result: tuple[int | None, Network | None]) -> None:
    status, network = result
    row = meaning(status, network)
    assert row.ok == (status is not None and 200 <= status < 300)
    if row.ok:
        assert row.stale is None
        assert row.retry is RetryRule.NO
        assert not row.incident_failure
    # An outage is always a breaker failure, and only outages are.
    assert row.outage == (row.breaker is BreakerCount.FAILURE)
    # Only a 429 is ignored by the breaker, and it is the only "rate limited" answer.
    assert (row.breaker is BreakerCount.IGNORED) == row.rate_limited == (status == 429)
    # Whatever may be served stale is a failure worth recording.
    if row.stale is not None:
        assert row.incident_failure
    # Safe for every method only when the request was certainly not processed.
    if row.retry is RetryRule.ALWAYS:
        assert status == 429 or network in (Network.CONNECT, Network.CONNECT_TIMEOUT)
    # Credentials are judged only by answers Intercom itself gave.
    if status is None or status >= 500:
        assert row.authenticated is None
    else:
        assert row.authenticated == (status != 401)


@given(results, st.booleans())
def test_a_write_that_may_have_been_processed_may_not_be_repeated(
    result: tuple[int | None, Network | None], idempotent: bool
) -> None:
    status, network = result
    row = meaning(status, network)
    may_have_been_processed = network in (Network.AMBIGUOUS, Network.TIMEOUT) or (
        status is not None and (status >= 500 or status == 408)
    )
    if may_have_been_processed and not idempotent:
        assert not row.may_repeat(idempotent)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 410, 422])
def test_answers_are_never_served_stale(status: int) -> None:
    assert meaning(status).stale is None


def _docstring_rows() -> list[list[str]]:
    doc = status_module.__doc__ or ""
    table = doc.split("=====", 1)[1]
    rows = []
    for line in table.splitlines():
        if not line or line.startswith(("=", "result")):
            continue
        cells = re.split(r"\s{2,}", line.strip())
        if len(cells) == 7:
            rows.append(cells)
    return rows


_EXAMPLES: dict[str, tuple[int | None, Network | None]] = {
    "2xx": (200, None),
    "connect error": (None, Network.CONNECT),
    "connect or pool timeout": (None, Network.CONNECT_TIMEOUT),
    "read timeout": (None, Network.TIMEOUT),
    "dropped connection, malformed": (None, Network.AMBIGUOUS),
    "429": (429, None),
    "401": (401, None),
    "403": (403, None),
    "404, 410": (404, None),
    "408": (408, None),
    "400, 409, 422": (409, None),
    "other 4xx": (418, None),
    "5xx": (503, None),
}

_RETRY = {
    "no": RetryRule.NO,
    "always": RetryRule.ALWAYS,
    "idempotent": RetryRule.IF_IDEMPOTENT,
    "rotate once": RetryRule.ROTATE_TOKEN,
}
_STALE = {
    "—": None,
    "never": None,
    "network": StaleReason.NETWORK_ERROR,
    "timeout": StaleReason.TIMEOUT,
    "rate-limit": StaleReason.RATE_LIMITED,
    "server": StaleReason.SERVER_ERROR,
}
_FORGET = {"—": Forget.NOTHING, "record": Forget.RECORD, "credentials": Forget.CREDENTIALS}
_BREAKER = {
    "success": BreakerCount.SUCCESS,
    "failure": BreakerCount.FAILURE,
    "not counted": BreakerCount.IGNORED,
}


def test_the_documented_table_is_the_code() -> None:
    rows = _docstring_rows()
    assert [row[0] for row in rows] == list(_EXAMPLES)
    for label, outage, breaker, retry, stale, incident, forget in rows:
        row: Meaning = meaning(*_EXAMPLES[label])
        assert row.outage == (outage == "yes"), label
        assert row.breaker is _BREAKER[breaker], label
        assert row.retry is _RETRY[retry], label
        assert row.stale is _STALE[stale], label
        assert row.incident_failure == (incident == "yes"), label
        assert row.forget is _FORGET[forget], label


@pytest.mark.parametrize("status", [0, 99, 600, 999])
def test_a_status_outside_http_is_an_outage(status: int) -> None:
    assert meaning(status).outage


def test_idempotency_comes_from_the_request_kind() -> None:
    server_error = meaning(503)
    assert server_error.may_repeat(classify("GET", "/contacts/1").is_idempotent)
    assert not server_error.may_repeat(classify("POST", "/contacts").is_idempotent)


# The modules that used to decide what a status means on their own (issue #12): they ask the
# table now. A literal decision about 5xx or 429 there is a second table growing back.
_ASKERS = [
    "_pipeline",
    "_health.py",
    "_incidents.py",
    "_core/retry.py",
    "_core/cache.py",
    "_core/outcome.py",
]
_DECISION = re.compile(r"(>=?\s*500\b|==\s*429\b|in\s*\(\s*40[0-9],|status\s*[<>]=?\s*\d{3})")


def test_no_other_module_decides_what_a_status_means() -> None:
    offenders = []
    for name in _ASKERS:
        target = PACKAGE / name
        for path in [target] if target.is_file() else sorted(target.rglob("*.py")):
            for number, line in enumerate(path.read_text().splitlines(), 1):
                code = line.split("#", 1)[0]
                if _DECISION.search(code):
                    offenders.append(f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}")
    assert offenders == []
