"""Merging reports into fleet incidents (``_fleet_incidents.group``): properties over any reports.

No Redis here: the reply of the read script is built by hand, damaged parts included.
"""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from intercom_resilience import Alert, Incident, Severity
from intercom_resilience._fleet_incidents import group

NOW_MS = 1_800_000_000_000
KEEP, TTL = 86_400.0, 30.0

_report = st.fixed_dictionaries(
    {
        "fleet": st.sampled_from(["finc-a", "finc-b", "finc-c"]),
        "process": st.sampled_from(["h:1:aa", "h:2:bb", "h:3:cc", "h:4:dd"]),
        "opened": st.floats(1_700_000_000, 1_700_100_000),
        "closed": st.none() | st.floats(0, 5_000),
        "failed": st.integers(0, 50),
        "ids": st.lists(st.text("abcdef0123456789", min_size=4, max_size=8), max_size=5),
        "age_s": st.floats(0, 100),  # since its last update
    }
)


def _payload(r: dict[str, object]) -> str:
    opened = float(r["opened"])  # type: ignore[arg-type]
    closed = None if r["closed"] is None else opened + float(r["closed"])  # type: ignore[arg-type]
    incident = Incident(
        id=f"inc-{r['process']}",
        opened_at=opened,
        closed_at=closed,
        alerts=(Alert("api_unreachable", Severity.P1, "API unreachable", "x", opened),),
        failed_attempts=int(r["failed"]),  # type: ignore[call-overload]
        request_ids=tuple(dict.fromkeys(r["ids"])),  # type: ignore[arg-type]
    )
    host, pid, _ = str(r["process"]).split(":")
    return json.dumps(
        {
            "v": 1,
            "host": host,
            "pid": int(pid),
            "credentials": "0123456789abcdef",
            "cause": "api_unreachable",
            "ttl_s": TTL,
            "keep_s": KEEP,
            "incident": incident.to_dict(),
        }
    )


@given(st.lists(_report, max_size=12), st.integers(0, 3))
def test_every_report_lands_in_its_fleet_incident_once(
    reports: list[dict[str, object]], damaged: int
) -> None:
    # One report per (fleet incident, process): the hash field is unique in Redis.
    unique = {(r["fleet"], r["process"]): r for r in reports}
    reply: list[object] = [NOW_MS]
    for (fleet, process), r in unique.items():
        expiry = NOW_MS - float(r["age_s"]) * 1000 + KEEP * 1000  # type: ignore[arg-type]
        reply += [f"{fleet}|{process}".encode(), _payload(r).encode(), str(expiry).encode()]
    for n in range(damaged):  # another version, no separator, not JSON
        reply += [[b"finc-x|p", b"nobar", b"finc-x|q"][n % 3], b'{"v": 99}', b"1"]

    grouped = group(reply)

    assert grouped is not None
    incidents, unreadable = grouped
    assert unreadable == damaged
    assert sorted(fi.id for fi in incidents) == sorted({str(f) for f, _ in unique})
    for fi in incidents:
        mine = {p: r for (f, p), r in unique.items() if f == fi.id}
        assert sorted(r.process_id for r in fi.reports) == sorted(mine)
        merged = fi.merged()
        assert merged.failed_attempts == sum(int(r["failed"]) for r in mine.values())  # type: ignore[call-overload]
        assert merged.opened_at == min(float(r["opened"]) for r in mine.values())  # type: ignore[arg-type]
        for report in fi.reports:
            assert report.reporting == (float(mine[report.process_id]["age_s"]) <= TTL)  # type: ignore[arg-type]
            assert report.incident.request_ids == tuple(
                dict.fromkeys(mine[report.process_id]["ids"])
            )  # type: ignore[arg-type]
        # Open while a process still reports an open incident; else closed at the latest end.
        assert fi.is_open == any(r.incident.is_open and r.reporting for r in fi.reports)
        assert (fi.closed_at is None) == fi.is_open
        text = fi.postmortem()
        assert all(f"`{rid}`" in text for r in fi.reports for rid in r.incident.request_ids)
    assert [fi.opened_at for fi in incidents] == sorted(
        (fi.opened_at for fi in incidents), reverse=True
    )


def test_a_reply_that_is_not_a_read_is_none() -> None:
    assert group(None) is None
    assert group([]) is None
    assert group([b"x"]) is None
