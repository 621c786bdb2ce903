"""Every operation of the 2.16 description answers, with a body valid against its schema.

Requests are built from the description itself (path placeholders filled, required query
parameters given, a JSON body generated from the request schema), sent to the fake over its
in-process transport, and each answer is checked: a documented status, and a body that validates
against that status's schema in the vendored test copy (``tests/schemas``).
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fake_schemas import validator

from intercom_resilience.testing import FakeIntercom
from intercom_resilience.testing._links import LINKS
from intercom_resilience.testing._openapi import Operation, generate, operations
from intercom_resilience.testing._resources import STATEFUL
from intercom_resilience.testing._routes import ROUTES

OPERATIONS = operations()
STATEFUL_KEYS = {f"{r.method} {r.template}" for r in ROUTES} | set(STATEFUL) | set(LINKS)


def build_request(operation: Operation, ids: dict[str, str] | None = None) -> dict[str, Any]:
    """httpx ``request()`` arguments for *operation*, valid against the description."""
    ids = ids or {}
    path = operation.path
    for segment in operation.path.split("/"):
        if segment.startswith("{"):
            path = path.replace(segment, ids.get(segment[1:-1], "123"))
    params: dict[str, Any] = {}
    headers: dict[str, str] = {}
    for param in operation.params:
        if not param.required:
            continue
        value = generate(param.schema) or "1"
        if param.location == "query":
            params[param.name] = json.dumps(value) if isinstance(value, dict | list) else value
        elif param.location == "header":
            headers[param.name] = str(value)
    request: dict[str, Any] = {"method": operation.method, "url": path, "params": params}
    if headers:
        request["headers"] = headers
    if operation.body_schema is not None:
        request["json"] = generate(operation.body_schema)
    return request


def check_answer(operation: Operation, response: httpx.Response) -> None:
    """A documented status, and a body valid against that status's schema."""
    status = str(response.status_code)
    documented = set(operation.responses) | {"400", "404"}
    assert status in documented, (operation.key, status, response.text[:300])
    assert response.headers["x-request-id"]
    if operation.content_type(status) != "application/json" and status[0] in "23":
        return
    body = response.json()
    validator(operation.key, status).validate(body)
    if isinstance(body, dict) and body.get("type") == "error.list":
        assert body["request_id"] == response.headers["x-request-id"]


def test_the_description_has_231_operations() -> None:
    assert len(OPERATIONS) == 231
    assert len({op.key for op in OPERATIONS}) == 231


@pytest.mark.parametrize("operation", OPERATIONS, ids=[op.key for op in OPERATIONS])
def test_every_operation_answers_schema_valid(operation: Operation, raw: httpx.Client) -> None:
    response = raw.request(**build_request(operation))
    check_answer(operation, response)
    if operation.key not in STATEFUL_KEYS and operation.success in operation.responses:
        # Stateless operations answer any well-formed request; stateful ones answer 404 for
        # the made-up ids and references of these requests, as Intercom does.
        assert response.status_code < 400, response.text


def test_unknown_path_and_wrong_method_are_404_error_lists(raw: httpx.Client) -> None:
    for method, path in [("GET", "/no/such/thing"), ("PATCH", "/contacts"), ("PUT", "/me")]:
        response = raw.request(method, path)
        assert response.status_code == 404
        body = response.json()
        assert body["errors"][0]["code"] == "not_found"
        assert body["request_id"] == response.headers["x-request-id"]
        validator("GET /me", "404").validate(body)


def test_request_values_are_echoed(raw: httpx.Client) -> None:
    created = raw.post(
        "/news/news_items",
        json={"title": "Launch day", "sender_id": 991, "body": "<p>It is out</p>"},
    ).json()
    assert (created["title"], created["sender_id"]) == ("Launch day", 991)
    found = raw.get("/macros/4242").json()
    assert found["id"] == "4242"


def test_new_routes_keep_journal_faults_and_quota(fake: FakeIntercom, raw: httpx.Client) -> None:
    fake.faults.fail_next(1, status=503, path="/macros/*")
    assert raw.get("/macros/1").status_code == 503
    ok = raw.get("/macros/1")
    assert ok.status_code == 200
    assert int(ok.headers["x-ratelimit-remaining"]) < int(ok.headers["x-ratelimit-limit"])
    entry = fake.journal.last(path="/macros/1")
    assert entry is not None
    assert (entry.template, entry.status) == ("/macros/{id}", 200)
