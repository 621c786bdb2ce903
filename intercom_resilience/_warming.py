"""Cache warming: read chosen resources ahead of an outage, so that the stale cache can answer.

The runbook's answer to "the cache was empty when Intercom went down": walk the contacts (by id or
by a search), companies, conversations and tickets that matter, through the client itself, on the
background lane (``client.background()``), so warming never takes quota from interactive calls and
every read lands in the stale cache exactly as a normal call's would.

A :class:`Warming` holds what is done (and the checkpoint file that remembers it across runs); the
sync and async walks (:func:`warm` and :func:`awarm`) are thin loops around it. A run stopped
part-way (Ctrl-C, an outage, a crash) leaves the checkpoint behind, and the next run with the same
plan and checkpoint skips what was already read.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from intercom.core.api_error import ApiError

from ._callinfo import capture_calls
from ._health import CacheWarmth

if TYPE_CHECKING:
    from ._client import AsyncResilientIntercom, ResilientIntercom

__all__ = [
    "StaleAnswerError",
    "cache_warmth",
    "WarmPlan",
    "WarmProgress",
    "WarmReport",
    "Warming",
    "awarm",
    "warm",
]

Kind = Literal["contact", "company", "conversation", "ticket"]
_FORMAT_VERSION = 1
_SEARCH_PAGE = 150  # Intercom's largest search page


def _ids(value: Iterable[str] | None, field: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        raise ValueError(f"warm_cache {field} must be a list of ids, not one string")
    ids = tuple(value)
    for item in ids:
        if not isinstance(item, str) or not item.strip():
            raise ValueError(f"warm_cache {field} must hold non-empty string ids, got {item!r}")
    return tuple(dict.fromkeys(ids))  # once each, in the given order


@dataclasses.dataclass(frozen=True, slots=True)
class WarmPlan:
    """What to read: ids per resource, and optionally a contact search (every match is read).

    Attributes:
        contacts: contact ids (``GET /contacts/{id}``).
        contact_search: a search ``query`` (as for ``client.contacts.search``); every matching
            contact is read by id too, so that ``contacts.find`` answers from the cache.
        companies: company ids.
        conversations: conversation ids.
        tickets: ticket ids.
    """

    contacts: tuple[str, ...] = ()
    contact_search: Mapping[str, Any] | None = None
    companies: tuple[str, ...] = ()
    conversations: tuple[str, ...] = ()
    tickets: tuple[str, ...] = ()

    @classmethod
    def build(
        cls,
        *,
        contacts: Iterable[str] | None = None,
        contact_search: Mapping[str, Any] | None = None,
        companies: Iterable[str] | None = None,
        conversations: Iterable[str] | None = None,
        tickets: Iterable[str] | None = None,
    ) -> WarmPlan:
        """A checked plan (``ValueError`` naming the argument; an empty plan is an error)."""
        if contact_search is not None and not isinstance(contact_search, Mapping):
            raise ValueError("warm_cache contact_search must be a search query (a mapping)")
        plan = cls(
            _ids(contacts, "contacts"),
            None if contact_search is None else dict(contact_search),
            _ids(companies, "companies"),
            _ids(conversations, "conversations"),
            _ids(tickets, "tickets"),
        )
        if not (plan.items() or plan.contact_search):
            raise ValueError("warm_cache needs something to read: ids or a contact_search")
        return plan

    def items(self) -> list[tuple[Kind, str]]:
        """The reads named by id, in order: contacts, companies, conversations, tickets."""
        listed: list[tuple[Kind, str]] = [("contact", i) for i in self.contacts]
        listed += [("company", i) for i in self.companies]
        listed += [("conversation", i) for i in self.conversations]
        listed += [("ticket", i) for i in self.tickets]
        return listed

    @property
    def fingerprint(self) -> str:
        """Identifies the plan in a checkpoint (another plan must not resume from it)."""
        text = json.dumps(
            [self.contacts, self.contact_search, self.companies, self.conversations, self.tickets],
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclasses.dataclass(frozen=True, slots=True)
class WarmProgress:
    """Where a warming run stands, after each read (what ``on_progress`` receives).

    Attributes:
        kind: what was just read (``contact``, ``company``, ``conversation``, ``ticket``).
        item_id: its id.
        done: reads finished in this run and earlier ones (from the checkpoint).
        total: reads planned (``None`` while a contact search is still being paged).
    """

    kind: str
    item_id: str
    done: int
    total: int | None


@dataclasses.dataclass(frozen=True, slots=True)
class WarmReport:
    """How a warming run ended.

    Attributes:
        warmed: reads answered and now in the cache.
        missing: ids Intercom answered 404 for (skipped, not retried on resume).
        skipped: reads done by an earlier run (from the checkpoint).
        error: the exception type that stopped the run (an outage, a revoked token), or
            ``None`` when it finished. The checkpoint keeps what was done.
        checkpoint: the checkpoint file, if one was used (removed when the run finished).
    """

    warmed: int
    missing: int
    skipped: int
    error: str | None
    checkpoint: Path | None

    @property
    def complete(self) -> bool:
        """Whether every planned read was done."""
        return self.error is None


class Warming:
    """The state of one warming run: what is done, counted, and checkpointed.

    Args:
        plan: what to read.
        checkpoint: a file remembering what was done across runs (``None``: none).
        on_progress: called with a :class:`WarmProgress` after each read.
        flush_every: reads between two checkpoint writes (and one at every stop).
    """

    def __init__(
        self,
        plan: WarmPlan,
        checkpoint: str | os.PathLike[str] | None = None,
        on_progress: Callable[[WarmProgress], None] | None = None,
        *,
        flush_every: int = 25,
    ) -> None:
        self.plan = plan
        self.path = None if checkpoint is None else Path(checkpoint)
        self.on_progress = on_progress
        self.flush_every = flush_every
        self.done: set[str] = set()
        self.warmed = self.missing = 0
        self._unsaved = 0
        self._total: int | None = None if plan.contact_search else len(plan.items())
        self._load()
        self.skipped = 0

    @staticmethod
    def key(kind: str, item_id: str) -> str:
        """The checkpoint's name of one read."""
        return f"{kind}:{item_id}"

    def _load(self) -> None:
        if self.path is None or not self.path.exists():
            return
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            valid = isinstance(data, dict) and data.get("version") == _FORMAT_VERSION
            done = data.get("done") if valid else None
        except (OSError, ValueError) as error:
            raise ValueError(f"warm_cache checkpoint {self.path} is unreadable: {error}") from None
        if not isinstance(done, list) or not all(isinstance(k, str) for k in done):
            raise ValueError(f"warm_cache checkpoint {self.path} is not a warming checkpoint")
        if data.get("plan") != self.plan.fingerprint:
            raise ValueError(
                f"warm_cache checkpoint {self.path} belongs to another plan: "
                "delete it, or pass another checkpoint path"
            )
        self.done = set(done)

    def pending(self, items: Iterable[tuple[Kind, str]]) -> Iterator[tuple[Kind, str]]:
        """The reads of *items* not done yet (done ones are counted as skipped)."""
        for kind, item_id in items:
            if self.key(kind, item_id) in self.done:
                self.skipped += 1
                continue
            yield kind, item_id

    def searched(self, found: int) -> None:
        """The contact search is paged to its end: *found* more reads are planned."""
        self._total = len(self.plan.items()) + found

    def finished(self, kind: str, item_id: str, *, found: bool) -> None:
        """One read is done (*found*: answered; else a 404)."""
        self.done.add(self.key(kind, item_id))
        if found:
            self.warmed += 1
        else:
            self.missing += 1
        self._unsaved += 1
        if self._unsaved >= self.flush_every:
            self.save()
        if self.on_progress is not None:
            self.on_progress(WarmProgress(kind, item_id, len(self.done), self._total))

    def save(self) -> None:
        """Write the checkpoint atomically (a crash mid-write leaves the previous one)."""
        self._unsaved = 0
        if self.path is None:
            return
        payload = {
            "version": _FORMAT_VERSION,
            "plan": self.plan.fingerprint,
            "done": sorted(self.done),
        }
        directory = self.path.parent
        handle, temporary = tempfile.mkstemp(prefix=".warm-", dir=directory)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump(payload, out)
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise

    def report(self, error: BaseException | None) -> WarmReport:
        """End the run: keep the checkpoint if it stopped early, remove it if it finished."""
        if error is None and self.path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        elif self.path is not None:
            self.save()
        return WarmReport(
            self.warmed,
            self.missing,
            self.skipped,
            None if error is None else type(error).__name__,
            self.path,
        )


class StaleAnswerError(Exception):
    """A warming read was answered from the stale cache: Intercom is not answering, so the run
    stops (the entry was not refreshed, and counting it as warmed would be a lie)."""

    def __init__(self, reason: str | None) -> None:
        super().__init__(f"served stale ({reason or 'unknown reason'}): Intercom is not answering")
        self.reason = reason


def _fresh(calls: Iterable[Any]) -> None:
    """Raise :class:`StaleAnswerError` if a read of *calls* came from the stale cache."""
    for call in calls:
        if call.stale:
            raise StaleAnswerError(call.reason)


def _gone(error: ApiError) -> bool:
    # The SDK raises NotFoundError for some finds and a plain ApiError(404) for others
    # (contacts.find); 410 is a merged contact. Either way there is nothing to warm.
    return error.status_code in (404, 410)


def _read(client: ResilientIntercom, kind: Kind, item_id: str) -> None:
    if kind == "contact":
        client.contacts.find(contact_id=item_id)
    elif kind == "company":
        client.companies.find(company_id=item_id)
    elif kind == "conversation":
        client.conversations.find(conversation_id=item_id)
    else:
        client.tickets.get(ticket_id=item_id)


async def _aread(client: AsyncResilientIntercom, kind: Kind, item_id: str) -> None:
    if kind == "contact":
        await client.contacts.find(contact_id=item_id)
    elif kind == "company":
        await client.companies.find(company_id=item_id)
    elif kind == "conversation":
        await client.conversations.find(conversation_id=item_id)
    else:
        await client.tickets.get(ticket_id=item_id)


def _search_ids(client: ResilientIntercom, query: Mapping[str, Any]) -> list[str]:
    with capture_calls() as calls:
        pager = client.contacts.search(query=query, pagination={"per_page": _SEARCH_PAGE})  # type: ignore[arg-type]
        found = [str(contact.id) for contact in pager if contact.id]
    _fresh(calls.calls)
    return found


async def _asearch_ids(client: AsyncResilientIntercom, query: Mapping[str, Any]) -> list[str]:
    found: list[str] = []
    with capture_calls() as calls:
        pager = await client.contacts.search(query=query, pagination={"per_page": _SEARCH_PAGE})  # type: ignore[arg-type]
        async for contact in pager:
            if contact.id:
                found.append(str(contact.id))
    _fresh(calls.calls)
    return found


def warm(client: ResilientIntercom, warming: Warming) -> WarmReport:
    """Walk *warming*'s plan with *client* on the background lane (see the module docstring)."""
    error: BaseException | None = None
    try:
        with client.background():
            plan = warming.plan
            items: list[tuple[Kind, str]] = plan.items()
            if plan.contact_search is not None:
                found = [
                    i for i in _search_ids(client, plan.contact_search) if i not in plan.contacts
                ]
                warming.searched(len(found))
                items += [("contact", i) for i in dict.fromkeys(found)]
            for kind, item_id in warming.pending(items):
                try:
                    with capture_calls() as calls:
                        _read(client, kind, item_id)
                    _fresh(calls.calls)
                except ApiError as answer:
                    if not _gone(answer):
                        raise
                    warming.finished(kind, item_id, found=False)
                else:
                    warming.finished(kind, item_id, found=True)
    except Exception as failure:  # an outage, a revoked token: stop, keep the checkpoint
        error = failure
    except BaseException:  # Ctrl-C: keep the checkpoint, then let it through
        warming.save()
        raise
    return warming.report(error)


async def awarm(client: AsyncResilientIntercom, warming: Warming) -> WarmReport:
    """Async twin of :func:`warm`."""
    error: BaseException | None = None
    try:
        with client.background():
            plan = warming.plan
            items: list[tuple[Kind, str]] = plan.items()
            if plan.contact_search is not None:
                found = [
                    i
                    for i in await _asearch_ids(client, plan.contact_search)
                    if i not in plan.contacts
                ]
                warming.searched(len(found))
                items += [("contact", i) for i in dict.fromkeys(found)]
            for kind, item_id in warming.pending(items):
                try:
                    with capture_calls() as calls:
                        await _aread(client, kind, item_id)
                    _fresh(calls.calls)
                except ApiError as answer:
                    if not _gone(answer):
                        raise
                    warming.finished(kind, item_id, found=False)
                else:
                    warming.finished(kind, item_id, found=True)
    except Exception as failure:
        error = failure
    except BaseException:
        warming.save()
        raise
    return warming.report(error)


def cache_warmth(cache: object, max_entries: int, now: float) -> CacheWarmth | None:
    """How warm *cache* is, for the health: entries and the oldest one's age (``None``: no cache,
    or it could not be read; a Redis cache gives a count, its ages are not tracked centrally)."""
    try:
        warmth = getattr(cache, "warmth", None)
        if warmth is not None:
            entries, oldest = warmth()
            return CacheWarmth(
                entries, max_entries, None if oldest is None else max(0.0, now - oldest)
            )
        stats = getattr(cache, "stats", None)
        if stats is not None:
            figures = stats()
            return (
                CacheWarmth(int(figures["entries"]), max_entries) if "entries" in figures else None
            )
    except Exception:  # health must answer even when the cache cannot be read
        return None
    return None
