"""The write-safety table: one row per write operation, each with a resolution and evidence."""

from __future__ import annotations

import json
import re

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from intercom_resilience import ResilienceConfig, VirtualClock
from intercom_resilience._backends.base import Grant
from intercom_resilience._core.requests import READ_ONLY_POSTS, classify
from intercom_resilience._core.writes import (
    OPERATIONS,
    WRITE_RULES,
    Lookup,
    Resolution,
    conflict_id,
    deleted_body,
    find_trace,
    rule_for,
)
from intercom_resilience._pipeline import Pipeline
from intercom_resilience._pipeline.driver import CallDriver, drive
from intercom_resilience._pipeline.effects import (
    Acquire,
    AskBreaker,
    Effect,
    Invalidate,
    ObserveRate,
    Send,
    Sent,
    Sleep,
    TellBreaker,
)


def every_effect(pipe: Pipeline, req: httpx.Request) -> CallDriver:
    """A driver of *req* that yields every effect, those on in-process backends included (a
    pipeline's own drivers perform those themselves: these tests script their replies)."""
    return CallDriver(drive(pipe, req))


def test_one_row_per_write_operation() -> None:
    assert len(OPERATIONS) == len(WRITE_RULES) == 117  # 123 writes of 2.16 less 6 read-only POSTs
    assert {(m, t) for m, t, _ in OPERATIONS} == set(WRITE_RULES)
    assert not any(m == "POST" and t in READ_ONLY_POSTS for m, t in WRITE_RULES)


@pytest.mark.parametrize(("method", "template", "operation"), OPERATIONS)
def test_each_row_matches_what_the_pipeline_classifies(
    method: str, template: str, operation: str
) -> None:
    path = template.replace("{id}", "x9")
    kind = classify(method, path)
    assert not kind.is_read
    rule = rule_for(method, kind.template)
    assert rule is not None
    assert rule.operation == operation
    assert len(rule.evidence) > 20  # every row says why
    if rule.resolution is Resolution.LOOKUP:
        assert rule.lookup is not None
    if rule.resolution is Resolution.CONFLICT:
        assert rule.fetch is not None
    if rule.resolution is Resolution.UNRESOLVABLE:
        assert rule.by_hand


def test_the_counts_by_resolution() -> None:
    counts: dict[str, int] = {}
    for rule in WRITE_RULES.values():
        counts[rule.resolution.value] = counts.get(rule.resolution.value, 0) + 1
    assert counts == {"idempotent": 69, "unresolvable": 44, "lookup": 3, "conflict": 1}


def test_keys_decide_whether_a_row_applies() -> None:
    contacts = rule_for("POST", "/contacts")
    assert contacts is not None
    assert contacts.resolution_for({"email": "a@x.io"}) is Resolution.CONFLICT
    assert contacts.resolution_for({"external_id": "u1"}) is Resolution.CONFLICT
    assert contacts.resolution_for({"role": "lead", "email": "a@x.io"}) is Resolution.UNRESOLVABLE
    assert contacts.resolution_for({"role": "user"}) is Resolution.UNRESOLVABLE
    assert contacts.resolution_for({"email": ""}) is Resolution.UNRESOLVABLE
    assert contacts.resolution_for(None) is Resolution.UNRESOLVABLE
    companies = rule_for("POST", "/companies")
    assert companies is not None
    assert companies.resolution_for({"name": "no key"}) is Resolution.UNRESOLVABLE
    reply = rule_for("POST", "/conversations/{id}/reply")
    assert reply is not None
    assert reply.resolution_for({"body": "x"}) is Resolution.LOOKUP


@given(st.from_regex(r"[A-Za-z0-9_-]{1,30}", fullmatch=True))
def test_conflict_id_reads_the_id_back(identifier: str) -> None:
    message = f"A contact matching those details already exists with id={identifier}"
    assert conflict_id(message) == identifier


def test_conflict_id_without_an_id() -> None:
    assert conflict_id("A contact matching those details already exists") is None


def test_deleted_body() -> None:
    assert deleted_body("/contacts/42") == {"type": "contact", "id": "42", "deleted": True}


def _conversation(parts: list[dict[str, object]]) -> dict[str, object]:
    return {"type": "conversation", "conversation_parts": {"conversation_parts": parts}}


def _part(body: str, created_at: int, author_id: str = "7", part_type: str = "comment") -> dict:
    return {
        "part_type": part_type,
        "body": body,
        "created_at": created_at,
        "author": {"type": "admin", "id": author_id},
    }


def test_a_reply_is_found_only_since_the_call_by_its_author_and_type() -> None:
    rule = rule_for("POST", "/conversations/{id}/reply")
    assert rule is not None and rule.lookup is Lookup.CONVERSATION_PART
    sent = {"type": "admin", "admin_id": "7", "message_type": "comment", "body": "on it &amp; done"}
    found = find_trace(rule, sent, 1000.5, _conversation([_part("<p>on it &amp; done</p>", 1000)]))
    assert found is not None and found[0] == 200
    for parts in (
        [_part("<p>on it &amp; done</p>", 999)],  # older: someone else's
        [_part("<p>on it &amp; done</p>", 1000, author_id="8")],  # another admin
        [_part("<p>on it &amp; done</p>", 1000, part_type="note")],  # a note, not a comment
        [_part("<p>other</p>", 1000)],
    ):
        assert find_trace(rule, sent, 1000.5, _conversation(parts)) is None
    assert find_trace(rule, sent, 1000.5, ["not", "a", "conversation"]) is None


def test_an_event_is_found_by_name_time_and_metadata() -> None:
    rule = rule_for("POST", "/events")
    assert rule is not None
    sent = {"event_name": "paid", "created_at": 5, "user_id": "u", "metadata": {"a": 1}}
    event = {"event_name": "paid", "created_at": 5, "metadata": {"a": 1}}
    assert find_trace(rule, sent, 0, {"events": [event]}) == (202, None)
    assert find_trace(rule, sent, 0, {"events": [{**event, "metadata": {"a": 2}}]}) is None


def test_every_reconciliation_request_passes_the_limiter() -> None:
    """Driven by hand: a lost reply, then a lookup that finds nothing, then the re-send."""
    clock = VirtualClock()
    pipe = Pipeline(
        config=ResilienceConfig(), clock=clock, token="tok", base_url="https://x", scope="s"
    )
    request = httpx.Request(
        "POST",
        "https://x/conversations/1/reply",
        headers={"Authorization": "Bearer tok"},
        content=json.dumps({"type": "admin", "admin_id": "7", "body": "hi"}).encode(),
    )
    sends: list[httpx.Request] = []
    grants = iter([Grant(True), Grant(False, wait=0.5), Grant(True), Grant(True)])
    seen: list[type] = []
    with every_effect(pipe, request) as call:
        for effect in call:
            seen.append(type(effect))
            if isinstance(effect, (AskBreaker, TellBreaker)):
                call.reply = effect.run(pipe)
            else:
                call.reply = _reply(effect, sends, grants)
    assert call.result.status_code == 200
    assert seen == [
        AskBreaker,
        Acquire, Send, TellBreaker, ObserveRate,  # the lost attempt
        # a pause, then the lookup waits a token
        Sleep, Acquire, Sleep, Acquire, Send, TellBreaker, ObserveRate,
        Acquire, Send, TellBreaker, ObserveRate,  # the re-send
        Invalidate,  # the write happened: the reads it made stale go
    ]  # fmt: skip
    assert [(r.method, r.url.path) for r in sends] == [
        ("POST", "/conversations/1/reply"),
        ("GET", "/conversations/1"),
        ("POST", "/conversations/1/reply"),
    ]
    assert sends[1].headers["authorization"] == "Bearer tok"
    assert "content-type" not in sends[1].headers


def _reply(effect: Effect, sends: list[httpx.Request], grants: object) -> object:
    if isinstance(effect, Acquire):
        return next(grants)  # type: ignore[call-overload]
    if isinstance(effect, Send):
        sends.append(effect.request)
        if len(sends) == 1:
            return Sent(error=httpx.ReadError("lost", request=effect.request))
        content = json.dumps(_conversation([])).encode()
        return Sent(httpx.Response(200, content=content, request=effect.request), content)
    return None


def test_the_generated_block_is_marked() -> None:
    from intercom_resilience._core import writes

    source = writes.__file__
    with open(source, encoding="utf-8") as handle:
        text = handle.read()
    assert re.search(r"# BEGIN GENERATED by scripts/gen_write_operations.py", text)
