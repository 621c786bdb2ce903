"""Credentials out of everything the library shows: one helper for URLs and the text around them.

Every ``repr``, event and error that shows a URL passes it through :func:`redact_url` (or the text
that may contain one through :func:`redact_text`): the password of ``redis://user:secret@host``
becomes ``***``, and so do credential-bearing query parameters (``?password=…``, which redis-py
accepts too). The host, port, path and database stay, because they are what an operator needs to
find the server.
"""

from __future__ import annotations

import re

__all__ = ["MASK", "redact_text", "redact_url"]

#: What stands where a secret was.
MASK = "***"

# scheme://[user[:password]@]host — the userinfo ends at the last "@" before the host's "/".
_USERINFO = re.compile(
    r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<userinfo>[^/?#\s]*)@(?=[^/?#@\s]*(?:[/?#\s]|$))"
)
_SECRET_PARAMETER = re.compile(
    r"(?i)(?P<name>[?&;](?:password|passwd|pass|pwd|secret|token|access_token|api_key|auth)=)"
    r"[^&;#\s]*"
)


def _mask_userinfo(match: re.Match[str]) -> str:
    user, colon, _password = match["userinfo"].partition(":")
    if not colon:
        # A lone userinfo may be a password given in the user's place (some clients accept it).
        return f"{match['scheme']}{MASK}@"
    return f"{match['scheme']}{user}:{MASK}@"


def redact_text(text: str) -> str:
    """*text* with the credentials of every URL in it masked (the rest untouched)."""
    if "@" not in text and "=" not in text:
        return text  # the common case costs two scans of a short string
    text = _USERINFO.sub(_mask_userinfo, text)
    return _SECRET_PARAMETER.sub(lambda match: f"{match['name']}{MASK}", text)


def redact_url(url: str | None) -> str | None:
    """*url* with its password (and credential query parameters) masked; ``None`` stays."""
    if url is None:
        return None
    return redact_text(url)
