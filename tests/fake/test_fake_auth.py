"""Authentication: registered tokens, revocation at runtime, and no token ever in the clear."""

from __future__ import annotations

import httpx
import intercom
import pytest
from intercom.errors import UnauthorizedError

from intercom_resilience.testing import FakeIntercom, fingerprint

RATE_HEADERS = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset")


def _get(fake: FakeIntercom, token: str | None, path: str = "/me") -> httpx.Response:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    with httpx.Client(transport=fake.transport(), base_url="https://api.intercom.io") as client:
        return client.get(path, headers=headers)


@pytest.mark.parametrize("token", [None, "wrong-token", ""])
def test_missing_or_unknown_token_is_unauthorized(fake: FakeIntercom, token: str | None) -> None:
    response = _get(fake, token)
    assert response.status_code == 401
    body = response.json()
    assert body["errors"][0]["code"] == "unauthorized"
    assert body["request_id"] == response.headers["x-request-id"]
    assert not any(h in response.headers for h in RATE_HEADERS)


def test_unauthenticated_unknown_path_is_401_not_404(fake: FakeIntercom) -> None:
    assert _get(fake, None, "/nowhere").status_code == 401


def test_revocation_and_new_tokens_at_runtime(fake: FakeIntercom) -> None:
    fake.add_token("second", app="other-app")
    assert _get(fake, "second").status_code == 200
    fake.revoke_token("second")
    revoked = _get(fake, "second")
    assert revoked.status_code == 401
    assert revoked.json()["errors"][0]["code"] == "token_revoked"
    assert not any(h in revoked.headers for h in RATE_HEADERS)
    assert _get(fake, "fake-token").status_code == 200  # other tokens are unaffected
    fake.add_token("second", app="other-app")  # re-registering restores it
    assert _get(fake, "second").status_code == 200
    fake.remove_token("second")
    assert _get(fake, "second").json()["errors"][0]["code"] == "unauthorized"


def test_default_token_can_be_changed_or_disabled() -> None:
    assert _get(FakeIntercom(), "fake-token").status_code == 200
    custom = FakeIntercom(token="my-token")
    assert _get(custom, "fake-token").status_code == 401
    assert _get(custom, "my-token").status_code == 200
    assert _get(FakeIntercom(token=None), "fake-token").status_code == 401


def test_sdk_sees_unauthorized_error(fake: FakeIntercom) -> None:
    fake.revoke_token("fake-token")
    with httpx.Client(transport=fake.transport()) as http:
        sdk = intercom.Intercom(token="fake-token", httpx_client=http)
        with pytest.raises(UnauthorizedError) as error:
            sdk.contacts.find("any")
    assert error.value.status_code == 401
    assert error.value.body.errors[0].code == "token_revoked"  # type: ignore[union-attr]


def test_tokens_never_appear_in_journal_or_reprs(fake: FakeIntercom) -> None:
    secret = "dG9rOnNlY3JldC12YWx1ZS0xMjM0"  # intercom-resilience: allow-token
    fake.add_token(secret, app="secret-app")
    _get(fake, secret)
    _get(fake, secret + "-wrong")
    fake.revoke_token(secret)
    _get(fake, secret)
    dumped = (
        repr(fake) + repr(fake.tokens) + repr(fake.journal.entries()) + repr(fake.tokens.tokens())
    )
    assert secret not in dumped
    assert fingerprint(secret) in dumped
    entries = fake.journal.filter(token_fingerprint=fingerprint(secret))
    assert [e.status for e in entries] == [200, 401]
    assert entries[0].app == "secret-app"
    with pytest.raises(KeyError) as error:
        fake.revoke_token("never-registered")
    assert "never-registered" not in str(error.value)
