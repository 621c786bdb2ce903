"""Tags and stale decisions (pure): what a write drops, and when a failure may be served stale."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intercom_resilience._core.cache import (
    StaleReason,
    is_servable,
    read_resources,
    serve_stale_for,
    stale_reason_for,
    write_invalidations,
)

S = "0123456789abcdef"
OTHER = "fedcba9876543210"
ids = st.text(alphabet=string.ascii_lowercase + string.digits, min_size=1, max_size=24).filter(
    lambda s: not s.isalpha()  # an all-letters id could be a literal route segment
)


def drops(write: tuple[str, str], read: tuple[str, str], scope: str = S, other: str = S) -> bool:
    """Does a successful *write* (in *scope*) drop a cached *read* (in *other*)?"""
    return bool(set(write_invalidations(scope, *write)) & set(read_resources(other, *read)))


def test_read_tags() -> None:
    assert read_resources(S, "GET", "/contacts/42") == (f"{S}|/contacts/42", f"{S}|/contacts/**")
    assert read_resources(S, "GET", "/contacts") == (f"{S}|/contacts*", f"{S}|/contacts/**")
    assert read_resources(S, "POST", "/contacts/search") == read_resources(S, "GET", "/contacts")
    assert read_resources(S, "GET", "/companies/7/contacts") == (
        f"{S}|/companies/7",
        f"{S}|/contacts*",
        f"{S}|/companies/**",
    )


def test_write_tags() -> None:
    assert write_invalidations(S, "PUT", "/contacts/42") == (f"{S}|/contacts/42", f"{S}|/contacts*")
    assert write_invalidations(S, "POST", "/contacts") == (f"{S}|/contacts*",)
    assert write_invalidations(S, "POST", "/contacts/merge") == (
        f"{S}|/contacts*",
        f"{S}|/contacts/**",
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/contacts/1"), ("HEAD", "/contacts"), ("POST", "/contacts/search"), ("GET", "/")],
)
def test_reads_invalidate_nothing(method: str, path: str) -> None:
    assert write_invalidations(S, method, path) == ()


@pytest.mark.parametrize(
    ("method", "path"),
    [("PUT", "/contacts/1"), ("POST", "/contacts"), ("DELETE", "/contacts/1"), ("OPTIONS", "/x")],
)
def test_writes_carry_no_read_tags(method: str, path: str) -> None:
    assert read_resources(S, method, path) == ()


CONTACT_READS = {
    "instance": ("GET", "/contacts/42"),
    "nested": ("GET", "/contacts/42/tags"),
    "list": ("GET", "/contacts"),
    "search": ("POST", "/contacts/search"),
    "by_external_id": ("GET", "/contacts/find_by_external_id/alice"),
    "company_contacts": ("GET", "/companies/7/contacts"),
    "other_instance": ("GET", "/contacts/43"),
    "other_nested": ("GET", "/contacts/43/notes"),
}


@pytest.mark.parametrize(
    ("write", "dropped"),
    [
        (
            ("PUT", "/contacts/42"),
            {"instance", "nested", "list", "search", "by_external_id", "company_contacts"},
        ),
        (
            ("DELETE", "/contacts/42"),
            {"instance", "nested", "list", "search", "by_external_id", "company_contacts"},
        ),
        (
            ("POST", "/contacts/42/tags"),
            {"instance", "nested", "list", "search", "by_external_id", "company_contacts"},
        ),
        # a create changes no existing contact: only lists and searches may miss the new one
        (("POST", "/contacts"), {"list", "search", "by_external_id", "company_contacts"}),
        # merge names its contacts in the body: every contact read goes
        (("POST", "/contacts/merge"), set(CONTACT_READS)),
        # bulk tagging names contacts in the body
        (("POST", "/tags"), set(CONTACT_READS)),
        (("PUT", "/conversations/9"), set()),
        (("POST", "/messages"), set()),
    ],
)
def test_contact_invalidation_semantics(write: tuple[str, str], dropped: set[str]) -> None:
    actual = {name for name, read in CONTACT_READS.items() if drops(write, read)}
    assert actual == dropped


@given(ids, ids, st.sampled_from(["PUT", "DELETE"]))
def test_a_contact_write_drops_it_and_the_collection_never_another_contact(
    a: str, b: str, method: str
) -> None:
    write = (method, f"/contacts/{a}")
    assert drops(write, ("GET", f"/contacts/{a}"))
    assert drops(write, ("GET", f"/contacts/{a}/companies"))
    assert drops(write, ("GET", "/contacts"))
    assert drops(write, ("POST", "/contacts/search"))
    if a != b:
        assert not drops(write, ("GET", f"/contacts/{b}"))


#: Every (write, read) pair of the 2.16 route table where the write changes what the read returns.
MUST_DROP = [
    (("PUT", "/companies/7"), ("GET", "/companies/7")),
    (("PUT", "/companies/7"), ("POST", "/companies/list")),
    (("PUT", "/companies/7"), ("GET", "/contacts/42/companies")),
    (("POST", "/companies"), ("GET", "/companies/7")),  # create-or-update by company_id
    (("POST", "/contacts/42/companies"), ("GET", "/companies/7")),  # user_count changes
    (("POST", "/conversations/9/reply"), ("GET", "/conversations/9")),
    (("POST", "/conversations/9/reply"), ("POST", "/conversations/search")),
    (("POST", "/conversations/redact"), ("GET", "/conversations/9")),
    (("POST", "/messages"), ("GET", "/conversations")),
    (("PUT", "/tickets/5"), ("POST", "/tickets/search")),
    (("POST", "/tags"), ("GET", "/tags/3")),
    (("DELETE", "/tags/3"), ("GET", "/contacts/42/tags")),
    (("PUT", "/admins/1/away"), ("GET", "/me")),
    (("PUT", "/admins/1/away"), ("GET", "/admins/1")),
    (("PUT", "/help_center/collections/5"), ("GET", "/help_center/collections/5")),
    (("PUT", "/help_center/collections/5"), ("GET", "/help_center/collections")),
    (("POST", "/visitors/convert"), ("GET", "/contacts")),
    (("PUT", "/visitors"), ("GET", "/visitors")),
    (("POST", "/custom_object_instances/Order"), ("GET", "/custom_object_instances/Order/1")),
]


@pytest.mark.parametrize(("write", "read"), MUST_DROP)
def test_writes_drop_what_they_change(write: tuple[str, str], read: tuple[str, str]) -> None:
    assert drops(write, read)


@pytest.mark.parametrize(("write", "read"), MUST_DROP)
def test_one_workspace_never_drops_another(write: tuple[str, str], read: tuple[str, str]) -> None:
    assert not drops(write, read, scope=S, other=OTHER)


def test_tags_ignore_query_and_method_case() -> None:
    assert read_resources(S, "get", "/contacts/42") == read_resources(S, "GET", "/contacts/42")
    assert write_invalidations(S, "put", "/contacts/42?x=1") == write_invalidations(
        S, "PUT", "/contacts/42"
    )


# ------------------------------------------------------------------------------ stale decisions


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 410, 422])
@pytest.mark.parametrize("reason", [None, *StaleReason])
def test_answers_are_never_masked(status: int, reason: StaleReason | None) -> None:
    assert not serve_stale_for(status, reason)
    assert stale_reason_for(status) is None


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (429, StaleReason.RATE_LIMITED),
        (500, StaleReason.SERVER_ERROR),
        (502, StaleReason.SERVER_ERROR),
        (503, StaleReason.SERVER_ERROR),
        (504, StaleReason.SERVER_ERROR),
        (408, StaleReason.TIMEOUT),
    ],
)
def test_outage_statuses_serve_stale(status: int, reason: StaleReason) -> None:
    assert stale_reason_for(status) is reason
    assert serve_stale_for(status)
    assert serve_stale_for(status, reason)


@pytest.mark.parametrize("reason", list(StaleReason))
def test_every_reason_without_a_status_serves_stale(reason: StaleReason) -> None:
    assert serve_stale_for(None, reason)


def test_no_response_is_a_network_error_or_a_timeout() -> None:
    assert stale_reason_for(None) is StaleReason.NETWORK_ERROR
    assert stale_reason_for(None, timed_out=True) is StaleReason.TIMEOUT


@pytest.mark.parametrize("status", [200, 201, 204, 301, 304, 405, 418])
def test_successes_and_other_statuses_do_not_serve_stale(status: int) -> None:
    assert not serve_stale_for(status)
    assert not serve_stale_for(None)


def test_servable_up_to_the_window_inclusive() -> None:
    assert is_servable(1000.0, 1000.0 + 3600.0, 3600.0)
    assert not is_servable(1000.0, 1000.0 + 3600.001, 3600.0)
    assert is_servable(1000.0, 900.0, 3600.0)  # from the future (skewed clock): age zero
