"""The two 2.16 responses whose ``data`` is an object (the article searches) reach the caller.

Before the fix every 2xx ``data`` that was not a list was a broken answer: ``articles.search``
through the facade raised ``IntercomRemoteProtocolError`` ("data is a dict, not a list").
"""

from __future__ import annotations

import pytest

from intercom_resilience import VirtualClock
from intercom_resilience._core.responses import malformed_json
from intercom_resilience.testing import FakeIntercom

from ._drive import MODES, done, make_client


@pytest.mark.parametrize("mode", MODES)
async def test_article_search_answers(mode: str) -> None:
    clock = VirtualClock()
    fake = FakeIntercom(clock=clock)
    client = make_client(mode, fake, clock)
    admin = next(iter(fake.workspace().admins))
    article = {"title": "Reset your password", "author_id": int(admin), "state": "published"}
    await done(client.articles.create(request=article))
    found = await done(client.articles.search(phrase="password"))
    assert found.data is not None
    assert [article.title for article in found.data.articles or []] == ["Reset your password"]


def test_object_data_is_judged_as_an_object() -> None:
    body = b'{"type": "list", "data": {"articles": []}}'
    assert malformed_json(200, body, is_list=True, data_is_object=True) is None
    assert malformed_json(200, body, is_list=True) is not None  # a page's data is a list
    listed = b'{"type": "list", "data": []}'
    assert malformed_json(200, listed, is_list=True, data_is_object=True) is not None
