"""The search-pager fix.

python-intercom 5.0.1 builds the next page of ``contacts.search`` (and of every other search pager)
by calling ``search`` again with the *original* ``pagination`` argument, so iterating the pager asks
for page 1 forever. Search takes its cursor in the request body (``pagination.starting_after``), so
the fix is to re-issue the search with the cursor of the page just read. This module wraps the
``search`` method of each affected namespace so that the returned pager (sync or async) walks every
page exactly once and stops; a server that repeats a cursor ends the walk with
:class:`PaginationLoopError` instead of an endless loop. How the pagers are taken apart is the SDK
seam's business (`_sdk.py`, touch point ``search-pagers``).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NoReturn

from intercom import AsyncIntercom, Intercom
from intercom.core.pagination import AsyncPager, SyncPager

from ._errors import PaginationLoopError
from ._sdk import next_search_cursor, patch_method, with_next_page

__all__ = ["SEARCH_ENDPOINTS", "SEARCH_NAMESPACES", "fix_search_pagers"]

#: The namespaces whose ``search`` returns a cursor pager with the bug, and their endpoints.
SEARCH_ENDPOINTS: dict[str, str] = {
    "contacts": "POST /contacts/search",
    "conversations": "POST /conversations/search",
    "tickets": "POST /tickets/search",
}
SEARCH_NAMESPACES: tuple[str, ...] = tuple(SEARCH_ENDPOINTS)


@dataclass(frozen=True)
class _Walk:
    """Where a walk over a search's pages stands: the cursors followed so far.

    Immutable, and carried from page to page rather than shared, so that walking one pager twice
    (``iter_pages()`` again) is two independent walks, not a false loop.
    """

    endpoint: str
    seen: frozenset[str]
    pages: int = 1

    def then(self, cursor: str) -> _Walk:
        return _Walk(self.endpoint, self.seen | {cursor}, self.pages + 1)

    def loop(self, cursor: str) -> PaginationLoopError:
        return PaginationLoopError(self.endpoint, cursor=cursor, pages=self.pages)


def _page_size(pagination: Any) -> int | None:
    per_page = (
        pagination.get("per_page")
        if isinstance(pagination, dict)
        else getattr(pagination, "per_page", None)
    )
    return per_page if isinstance(per_page, int) else None


def _first_cursor(pagination: Any) -> str | None:
    cursor = (
        pagination.get("starting_after")
        if isinstance(pagination, dict)
        else getattr(pagination, "starting_after", None)
    )
    return cursor if isinstance(cursor, str) and cursor else None


def _with_cursor(pagination: Any, cursor: str) -> dict[str, Any]:
    """The ``pagination`` argument for the page after *cursor*, keeping the caller's page size."""
    fixed: dict[str, Any] = {"starting_after": cursor}
    per_page = _page_size(pagination)
    if per_page is not None:
        fixed["per_page"] = per_page
    return fixed


def _first_walk(endpoint: str, pagination: Any) -> _Walk:
    first = _first_cursor(pagination)
    return _Walk(endpoint, frozenset() if first is None else frozenset({first}))


def _fix_sync(
    pager: SyncPager[Any, Any], fetch: Callable[[str], SyncPager[Any, Any]], walk: _Walk
) -> SyncPager[Any, Any]:
    cursor = next_search_cursor(pager)
    if cursor is None:
        return with_next_page(pager, None)
    if cursor in walk.seen:
        # Raised when the next page is asked for, so the items of this page are still yielded.
        def loop() -> NoReturn:
            raise walk.loop(cursor)

        return with_next_page(pager, loop)
    after = walk.then(cursor)
    return with_next_page(pager, lambda: _fix_sync(fetch(cursor), fetch, after))


def _fix_async(
    pager: AsyncPager[Any, Any],
    fetch: Callable[[str], Awaitable[AsyncPager[Any, Any]]],
    walk: _Walk,
) -> AsyncPager[Any, Any]:
    cursor = next_search_cursor(pager)
    if cursor is None:
        return with_next_page(pager, None)
    if cursor in walk.seen:

        async def loop() -> NoReturn:
            raise walk.loop(cursor)

        return with_next_page(pager, loop)
    after = walk.then(cursor)

    async def get_next() -> AsyncPager[Any, Any]:
        return _fix_async(await fetch(cursor), fetch, after)

    return with_next_page(pager, get_next)


def _wrap_sync(endpoint: str) -> Callable[[Callable[..., SyncPager[Any, Any]]], Any]:
    def wrap(search: Callable[..., SyncPager[Any, Any]]) -> Callable[..., SyncPager[Any, Any]]:
        @functools.wraps(search)
        def fixed_search(
            *, query: Any, pagination: Any = None, **kwargs: Any
        ) -> SyncPager[Any, Any]:
            if pagination is not None:
                kwargs["pagination"] = pagination

            def fetch(cursor: str) -> SyncPager[Any, Any]:
                return search(
                    query=query, **{**kwargs, "pagination": _with_cursor(pagination, cursor)}
                )

            return _fix_sync(
                search(query=query, **kwargs), fetch, _first_walk(endpoint, pagination)
            )

        return fixed_search

    return wrap


def _wrap_async(endpoint: str) -> Callable[[Callable[..., Awaitable[AsyncPager[Any, Any]]]], Any]:
    def wrap(
        search: Callable[..., Awaitable[AsyncPager[Any, Any]]],
    ) -> Callable[..., Awaitable[AsyncPager[Any, Any]]]:
        @functools.wraps(search)
        async def fixed_search(
            *, query: Any, pagination: Any = None, **kwargs: Any
        ) -> AsyncPager[Any, Any]:
            if pagination is not None:
                kwargs["pagination"] = pagination

            def fetch(cursor: str) -> Awaitable[AsyncPager[Any, Any]]:
                return search(
                    query=query, **{**kwargs, "pagination": _with_cursor(pagination, cursor)}
                )

            first = await search(query=query, **kwargs)
            return _fix_async(first, fetch, _first_walk(endpoint, pagination))

        return fixed_search

    return wrap


def fix_search_pagers(client: Intercom | AsyncIntercom) -> None:
    """Wrap ``search`` on each of *client*'s :data:`SEARCH_NAMESPACES` (idempotent)."""
    wrapper = _wrap_async if isinstance(client, AsyncIntercom) else _wrap_sync
    for name, endpoint in SEARCH_ENDPOINTS.items():
        patch_method(getattr(client, name), "search", wrapper(endpoint))
