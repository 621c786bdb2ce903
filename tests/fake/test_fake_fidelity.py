"""Fidelity, measured: the official SDK drives every method of every resource client against the fake.

Over real HTTP (the fake served by uvicorn on localhost), sync and async: every public method of
the 31 resource clients of ``intercom.Intercom`` / ``intercom.AsyncIntercom`` (sub-clients and
``unstable`` included) is called with arguments built from its type hints and ids of seeded
records. Every response body is validated against the 2.16 schema of the operation and status
that answered it (the vendored test copy in ``tests/schemas``), and the SDK must parse every
success. The SDK does not reach every operation of the description, so the remaining ones are then
driven with requests built from the description itself. The test prints
``operations served N/231, schema-valid M/N`` and fails below 231/231 and 100%.

"Served" means answered with the operation's documented success status (or, for the one operation
that documents none, with one of its documented statuses).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import inspect
import typing
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import intercom
import pytest
from fake_schemas import validator
from intercom.core.api_error import ApiError
from sdk_driver import arguments, sdk_methods
from test_fake_operations import build_request

from intercom_resilience.testing import FakeIntercom, VirtualClock
from intercom_resilience.testing._openapi import Operation, generate, operations

OPERATIONS = {op.key: op for op in operations()}
# Verbs whose methods run last, so that reads and updates still find the seeded records, in this
# order: links are undone before the contact is archived, unarchived, merged, and deleted last.
_DESTRUCTIVE = (
    ("detach", 1),
    ("untag", 1),
    ("redact", 1),
    ("cancel", 1),
    ("block", 1),
    ("unarchive", 3),
    ("archive", 2),
    ("merge", 4),
    ("delete", 5),
)
# Virtual seconds between two SDK calls: enough for a data export to complete (Intercom allows
# one active export per workspace), as calls spread over real time would let it.
_PAUSE_S = 11


# A record of each description-driven family, created through the API, by path parameter name.
SEEDED = {
    "article_id": "POST /articles",
    "internal_article_id": "POST /internal_articles",
    "collection_id": "POST /help_center/collections",
    "news_item_id": "POST /news/news_items",
    "ticket_type_id": "POST /ticket_types",
    "data_attribute_id": "POST /data_attributes",
    "id": "POST /content_snippets",
    "ticket_id": "POST /tickets",
    "source_id": "POST /ai/content_import_sources",
    "page_id": "POST /ai/external_pages",
}


def seed(fake: FakeIntercom) -> dict[str, Any]:
    """Records for the stateful operations to find, and the argument table pointing at them."""
    ws = fake.workspace()
    contact = ws.create_contact({"email": "ada@example.com", "external_id": "ext-1"}, 0)
    lead = ws.create_contact({"role": "lead", "name": "Lead"}, 0)
    keeper = ws.create_contact({"email": "keeper@example.com"}, 0)
    company = ws.create_or_update_company({"company_id": "acme", "name": "Acme"}, 0)
    conversation, _ = ws.create_conversation(
        {"from": {"type": "user", "id": contact.id}, "body": "Hello"}, 0
    )
    tag, _ = ws.create_or_update_tag({"name": "vip"})
    admin = next(iter(ws.admins))
    note = ws.create_note(contact.id, {"body": "Called about billing"}, 0)
    created: dict[str, str] = {}
    with httpx.Client(
        transport=fake.transport(),
        base_url="https://api.intercom.io",
        headers={"Authorization": "Bearer fake-token"},
    ) as http:
        for name, key in SEEDED.items():
            response = http.request(**build_request(OPERATIONS[key]))
            assert response.status_code in {200, 201}, (key, response.text)
            created[name] = str(response.json()["id"])
        export = http.post(
            "/export/content/data", json={"created_at_after": 0, "created_at_before": 1}
        )
        assert export.status_code == 200, export.text
        job = http.post(
            "/tickets/enqueue",
            json={"ticket_type_id": created["ticket_type_id"], "contacts": [{"id": contact.id}]},
        )
        assert job.status_code == 200, job.text
    clock = fake.clock
    assert isinstance(clock, VirtualClock)
    clock.advance(_PAUSE_S)  # the export completes, so it can be downloaded
    close = {"message_type": "close", "type": "admin", "admin_id": admin}
    return {
        **created,
        "contact_id": contact.id,
        "intercom_user_id": contact.id,
        "company_id": company.id,
        "conversation_id": conversation.id,
        "tag_id": tag.id,
        "admin_id": admin,
        "team_id": next(iter(ws.teams)),
        "note_id": note.id,
        "segment_id": next(iter(ws.segments)),
        "subscription_id": next(iter(ws.subscription_types)),
        "consent_type": "opt_in",
        "job_identifier": export.json()["job_identifier"],
        "job_id": job.json()["id"],
        "conversations.manage:request": close,
        "unstable.conversations.manage_conversation:id": conversation.id,
        "unstable.conversations.manage_conversation:request": close,
        # Path parameters of the requests built from the description, per operation.
        # (a contact no SDK method deletes, as these requests are sent after all of them)
        "GET /contacts/{id}/merge_history": {"id": keeper.id},
        "external_id": "ext-1",
        "email": "someone@example.com",
        "type": "user",
        "query": {"field": "created_at", "operator": ">", "value": "0"},
        "contacts.merge_lead_in_user:lead_id": lead.id,
        "contacts.merge_lead_in_user:contact_id": contact.id,
        "conversations.create:from_": {"type": "user", "id": contact.id},
        "events.create:request": {"id": contact.id, "event_name": "signed-up", "created_at": 1},
        "companies.create_or_update:request": {"company_id": "acme", "name": "Acme"},
        "events.list:intercom_user_id": contact.id,
        "unstable.data_events.lis_data_events:intercom_user_id": contact.id,
    }


class Recorder:
    """An httpx response hook: attributes each answer to its operation and validates its body."""

    def __init__(self, fake: FakeIntercom) -> None:
        self.fake = fake
        self.answers: dict[str, list[tuple[int, str | None]]] = collections.defaultdict(list)
        self.outside: list[str] = []
        self.by_sdk = 0
        self.methods = 0

    def record(self, response: httpx.Response) -> None:
        request_id = response.headers.get("x-request-id")
        entry = next(
            (e for e in reversed(self.fake.journal.entries()) if e.request_id == request_id), None
        )
        assert entry is not None, f"an answer without a journalled request id: {response}"
        key = f"{entry.method} {entry.template}"
        if key not in OPERATIONS:
            self.outside.append(f"{entry.method} {entry.path} -> {response.status_code}")
            return
        self.answers[key].append((response.status_code, _problem(OPERATIONS[key], response)))

    def __call__(self, response: httpx.Response) -> None:
        response.read()
        self.record(response)

    async def arecord(self, response: httpx.Response) -> None:
        await response.aread()
        self.record(response)

    def served(self, key: str) -> bool:
        operation = OPERATIONS[key]
        wanted = (
            {operation.success}
            if operation.success in operation.responses
            else set(operation.responses) | {"404"}
        )
        return any(str(status) in wanted for status, _ in self.answers.get(key, ()))

    def valid(self, key: str) -> bool:
        return all(problem is None for _, problem in self.answers.get(key, ()))

    def figure(self) -> tuple[int, int]:
        served = [key for key in OPERATIONS if self.served(key)]
        return len(served), sum(self.valid(key) for key in served)


def _problem(operation: Operation, response: httpx.Response) -> str | None:
    status = str(response.status_code)
    if status not in operation.responses and status not in {"400", "404"}:
        return f"undocumented status {status}"
    if operation.content_type(status) != "application/json" and status[0] in "23":
        return None
    try:
        body = response.json()
        validator(operation.key, status).validate(body)
    except Exception as error:
        return f"{status}: {str(error)[:300]}"
    return None


def _rank(name: str) -> int:
    verb = name.rsplit(".", 1)[-1]
    return next((rank for word, rank in _DESTRUCTIVE if word in verb), 0)


def _ordered(client: Any) -> list[tuple[str, Callable[..., Any]]]:
    return sorted(sdk_methods(client), key=lambda m: _rank(m[0]))


def _takes_any_body(method: Callable[..., Any]) -> bool:
    param = inspect.signature(method).parameters.get("request")
    return param is not None and param.annotation in {typing.Any, "typing.Any"}


def _last_operation(fake: FakeIntercom) -> Operation | None:
    entry = fake.journal.last()
    return None if entry is None else OPERATIONS.get(f"{entry.method} {entry.template}")


def _body_from_description(fake: FakeIntercom) -> Any:
    # ``unstable`` methods type their body as Any: the probe call told us which operation it
    # is, so the body is built from that operation's request schema.
    operation = _last_operation(fake)
    if operation is None or operation.body_schema is None:
        return {}
    return generate(operation.body_schema)


@pytest.fixture
def served_fake() -> Iterator[tuple[FakeIntercom, str]]:
    fake = FakeIntercom(clock=VirtualClock(), rate_limits=False)
    with fake.serve_in_thread() as url:
        yield fake, url


def _report(recorder: Recorder, failures: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    served, valid = recorder.figure()
    missing = [key for key in OPERATIONS if not recorder.served(key)]
    invalid = {
        key: [p for _, p in recorder.answers[key] if p]
        for key in OPERATIONS
        if not recorder.valid(key)
    }
    with capsys.disabled():
        print(f"\noperations served {served}/{len(OPERATIONS)}, schema-valid {valid}/{served}")
        print(
            f"  {recorder.methods} SDK methods served {recorder.by_sdk} operations; the other "
            f"{served - recorder.by_sdk} by requests built from the description"
        )
        if recorder.outside:
            print(f"  SDK calls outside the 2.16 description: {sorted(set(recorder.outside))}")
    assert not failures, failures
    assert not invalid, invalid
    assert not missing, missing
    assert (served, valid) == (231, 231)


def test_sync_sdk_fidelity(
    served_fake: tuple[FakeIntercom, str], capsys: pytest.CaptureFixture[str]
) -> None:
    fake, url = served_fake
    ids = seed(fake)
    recorder = Recorder(fake)
    failures: list[str] = []
    with httpx.Client(event_hooks={"response": [recorder]}, timeout=10) as http:
        sdk = intercom.Intercom(token="fake-token", base_url=url, httpx_client=http)
        for name, method in _ordered(sdk):
            args = arguments(method, ids, name)
            try:
                if _takes_any_body(method):
                    with contextlib.suppress(ApiError):
                        method(**{**args, "request": {}})
                    args["request"] = _body_from_description(fake)
                method(**args)
            except ApiError as error:
                if error.status_code is not None and error.status_code < 300:
                    failures.append(f"{name}: {error}")
            except Exception as error:  # the SDK could not parse an answer
                failures.append(f"{name}: {type(error).__name__}: {str(error)[:300]}")
            recorder.methods += 1
            _pause(fake)
        recorder.by_sdk = recorder.figure()[0]
        for key, operation in OPERATIONS.items():
            if not recorder.served(key):
                http.request(**_raw(operation, ids, url))
    _report(recorder, failures, capsys)


def test_async_sdk_fidelity(
    served_fake: tuple[FakeIntercom, str], capsys: pytest.CaptureFixture[str]
) -> None:
    fake, url = served_fake
    ids = seed(fake)
    recorder = Recorder(fake)
    failures: list[str] = []

    async def drive() -> None:
        hooks = {"response": [recorder.arecord]}
        async with httpx.AsyncClient(event_hooks=hooks, timeout=10) as http:
            sdk = intercom.AsyncIntercom(token="fake-token", base_url=url, httpx_client=http)
            for name, method in _ordered(sdk):
                args = arguments(method, ids, name)
                try:
                    if _takes_any_body(method):
                        with contextlib.suppress(ApiError):
                            await method(**{**args, "request": {}})
                        args["request"] = _body_from_description(fake)
                    await method(**args)
                except ApiError as error:
                    if error.status_code is not None and error.status_code < 300:
                        failures.append(f"{name}: {error}")
                except Exception as error:
                    failures.append(f"{name}: {type(error).__name__}: {str(error)[:300]}")
                recorder.methods += 1
                _pause(fake)
            recorder.by_sdk = recorder.figure()[0]
            for key, operation in OPERATIONS.items():
                if not recorder.served(key):
                    await http.request(**_raw(operation, ids, url))

    asyncio.run(drive())
    _report(recorder, failures, capsys)


def _pause(fake: FakeIntercom) -> None:
    clock = fake.clock
    assert isinstance(clock, VirtualClock)
    clock.advance(_PAUSE_S)


def _raw(operation: Operation, ids: dict[str, Any], url: str) -> dict[str, Any]:
    request = build_request(operation, {**ids, **ids.get(operation.key, {})})
    headers = {**request.get("headers", {}), "Authorization": "Bearer fake-token"}
    return {**request, "url": url + request["url"], "headers": headers}
