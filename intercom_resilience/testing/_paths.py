"""Path patterns shared by the fault scripts and the journal queries.

One small language for "which requests": a pattern is a URL path in which ``*`` matches within one
segment, ``**`` matches across segments, ``?`` matches one character, and a ``{name}`` placeholder
(the OpenAPI template syntax) matches one whole segment. So ``/contacts/*``,
``/contacts/{contact_id}`` and ``/conversations/*/reply`` all read the way they look.
"""

from __future__ import annotations

import functools
import re

__all__ = ["PathPattern", "normalize_path"]


def normalize_path(path: str) -> str:
    """Strip the query string and a trailing slash so ``/contacts/`` and ``/contacts`` agree."""
    path = path.split("?", 1)[0] or "/"
    if len(path) > 1 and path.endswith("/"):
        path = path.rstrip("/") or "/"
    return path


@functools.lru_cache(maxsize=512)
def _compile(pattern: str) -> re.Pattern[str]:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif char == "*":
            out.append("[^/]*")
            i += 1
        elif char == "?":
            out.append("[^/]")
            i += 1
        elif char == "{" and "}" in pattern[i:]:
            i = pattern.index("}", i) + 1
            out.append("[^/]+")
        else:
            out.append(re.escape(char))
            i += 1
    return re.compile("".join(out))


class PathPattern:
    """A compiled path pattern; ``PathPattern("/contacts/*").matches("/contacts/abc")`` is true.

    Args:
        pattern: the pattern, or ``None`` to match every path.
    """

    __slots__ = ("_regex", "pattern")

    def __init__(self, pattern: str | None) -> None:
        self.pattern = None if pattern is None else normalize_path(pattern)
        self._regex = None if self.pattern is None else _compile(self.pattern)

    def matches(self, path: str) -> bool:
        """Whether *path* (already normalised, without query string) matches the pattern."""
        return self._regex is None or self._regex.fullmatch(path) is not None

    def __repr__(self) -> str:
        return f"PathPattern({self.pattern!r})"
