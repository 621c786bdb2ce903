"""Reading httpx headers on the hot path without copying them.

``httpx.Headers`` keeps a list of ``(raw name, lower-case name, raw value)`` triples. Its public
views build a new list (``raw``) or decode every header (``items()``, ``get``) on each use, and
every call reads the headers of one request and one response: the list itself is read in place
when this httpx keeps it so (checked once, at import), else the triples are built from ``raw``.
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx

__all__ = ["header_triples"]

#: Whether this httpx keeps ``Headers._list`` as the triples described above (it has since 0.18).
_KEEPS_TRIPLES = getattr(httpx.Headers([("X-Probe", "v")]), "_list", None) == [
    (b"X-Probe", b"x-probe", b"v")
]


def header_triples(headers: httpx.Headers) -> Sequence[tuple[bytes, bytes, bytes]]:
    """``(raw name, lower-case name, raw value)`` for each header of *headers*, in order.

    Read-only: the sequence may be the one *headers* keeps.
    """
    if _KEEPS_TRIPLES:
        return headers._list
    return [(name, name.lower(), value) for name, value in headers.raw]
