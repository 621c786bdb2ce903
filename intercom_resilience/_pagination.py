"""The search-pager fix.

python-intercom 5.0.1 builds the next page of ``contacts.search`` (and of every other search pager)
by calling ``search`` again with the *original* ``pagination`` argument, so iterating the pager asks
for page 1 forever. Search takes its cursor in the request body (``pagination.starting_after``), so
the fix is to re-issue the search with the cursor of the page just read. This module wraps the
``search`` method of each affected namespace so that the returned pager (sync or async) walks every
page exactly once and stops.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Awaitable, Callable
from typing import Any

from intercom.core.pagination import AsyncPager, SyncPager

__all__ = ["SEARCH_NAMESPACES", "fix_search_pagers"]

#: Namespaces whose ``search`` returns a cursor pager with the bug.
SEARCH_NAMESPACES: tuple[str, ...] = ("contacts", "conversations", "tickets")

_FIXED_MARK = "_intercom_resilience_search_fixed"


def _next_cursor(pager: SyncPager[Any, Any] | AsyncPager[Any, Any]) -> str | None:
    pages = getattr(pager.response, "pages", None)
    following = getattr(pages, "next", None)
    cursor = getattr(following, "starting_after", None)
    return cursor if isinstance(cursor, str) and cursor else None


def _with_cursor(pagination: Any, cursor: str) -> dict[str, Any]:
    """The ``pagination`` argument for the page after *cursor*, keeping the caller's page size."""
    per_page = None
    if isinstance(pagination, dict):
        per_page = pagination.get("per_page")
    elif pagination is not None:
        per_page = getattr(pagination, "per_page", None)
    fixed: dict[str, Any] = {"starting_after": cursor}
    if isinstance(per_page, int):
        fixed["per_page"] = per_page
    return fixed


def _fix_sync(
    pager: SyncPager[Any, Any], fetch: Callable[[str], SyncPager[Any, Any]]
) -> SyncPager[Any, Any]:
    cursor = _next_cursor(pager)
    if cursor is None:
        return dataclasses.replace(pager, has_next=False, get_next=None)
    return dataclasses.replace(
        pager, has_next=True, get_next=lambda: _fix_sync(fetch(cursor), fetch)
    )


def _fix_async(
    pager: AsyncPager[Any, Any], fetch: Callable[[str], Awaitable[AsyncPager[Any, Any]]]
) -> AsyncPager[Any, Any]:
    cursor = _next_cursor(pager)
    if cursor is None:
        return dataclasses.replace(pager, has_next=False, get_next=None)

    async def get_next() -> AsyncPager[Any, Any]:
        return _fix_async(await fetch(cursor), fetch)

    return dataclasses.replace(pager, has_next=True, get_next=get_next)


def _wrap_sync(search: Callable[..., SyncPager[Any, Any]]) -> Callable[..., SyncPager[Any, Any]]:
    @functools.wraps(search)
    def fixed_search(*, query: Any, pagination: Any = None, **kwargs: Any) -> SyncPager[Any, Any]:
        if pagination is not None:
            kwargs["pagination"] = pagination

        def fetch(cursor: str) -> SyncPager[Any, Any]:
            return search(query=query, **{**kwargs, "pagination": _with_cursor(pagination, cursor)})

        return _fix_sync(search(query=query, **kwargs), fetch)

    return fixed_search


def _wrap_async(
    search: Callable[..., Awaitable[AsyncPager[Any, Any]]],
) -> Callable[..., Awaitable[AsyncPager[Any, Any]]]:
    @functools.wraps(search)
    async def fixed_search(
        *, query: Any, pagination: Any = None, **kwargs: Any
    ) -> AsyncPager[Any, Any]:
        if pagination is not None:
            kwargs["pagination"] = pagination

        def fetch(cursor: str) -> Awaitable[AsyncPager[Any, Any]]:
            return search(query=query, **{**kwargs, "pagination": _with_cursor(pagination, cursor)})

        return _fix_async(await search(query=query, **kwargs), fetch)

    return fixed_search


def fix_search_pagers(client: Any, *, is_async: bool) -> None:
    """Wrap ``search`` on each of *client*'s :data:`SEARCH_NAMESPACES` (idempotent)."""
    for name in SEARCH_NAMESPACES:
        namespace = getattr(client, name)
        if getattr(namespace, _FIXED_MARK, False):
            continue
        original = namespace.search
        namespace.search = _wrap_async(original) if is_async else _wrap_sync(original)
        setattr(namespace, _FIXED_MARK, True)
