"""Access tokens: which app (and so which workspace) a bearer token belongs to.

The registry never holds a token in clear: it is keyed by the SHA-256 digest, and everything the
fake records or prints uses a short fingerprint of that digest.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass

__all__ = ["AuthResult", "TokenInfo", "TokenRegistry", "fingerprint"]


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def fingerprint(token: str) -> str:
    """A short, stable, non-reversible name for *token* (the first 12 hex digits of its SHA-256)."""
    return _digest(token)[:12]


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What the fake knows about a registered token (never the token itself)."""

    fingerprint: str
    app: str
    workspace: str
    revoked: bool = False


@dataclass(frozen=True, slots=True)
class AuthResult:
    """The verdict for one request: ``info`` when accepted, else an Intercom error code."""

    info: TokenInfo | None
    code: str | None = None
    fingerprint: str | None = None


class TokenRegistry:
    """Tokens registered on a fake, revocable at runtime. Thread-safe."""

    __slots__ = ("_lock", "_tokens")

    def __init__(self) -> None:
        self._tokens: dict[str, TokenInfo] = {}
        self._lock = threading.Lock()

    def add(self, token: str, *, app: str, workspace: str) -> TokenInfo:
        """Register (or re-register, un-revoking) *token* for *app* in *workspace*."""
        if not isinstance(token, str) or not token:
            raise ValueError("token must be a non-empty string")
        info = TokenInfo(fingerprint=fingerprint(token), app=app, workspace=workspace)
        with self._lock:
            self._tokens[_digest(token)] = info
        return info

    def revoke(self, token: str) -> None:
        """Mark *token* revoked: requests with it get 401 ``token_revoked`` from now on."""
        key = _digest(token)
        with self._lock:
            info = self._tokens.get(key)
            if info is None:
                raise KeyError(f"no such token (fingerprint {fingerprint(token)})")
            self._tokens[key] = TokenInfo(info.fingerprint, info.app, info.workspace, revoked=True)

    def remove(self, token: str) -> None:
        """Forget *token*: requests with it get 401 ``unauthorized``."""
        with self._lock:
            self._tokens.pop(_digest(token), None)

    def authenticate(self, authorization: str | None) -> AuthResult:
        """Check an ``Authorization`` header value the way Intercom does."""
        if not authorization:
            return AuthResult(None, "unauthorized")
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return AuthResult(None, "unauthorized")
        digest = _digest(token)
        info = self._tokens.get(digest)
        if info is None:
            return AuthResult(None, "unauthorized", digest[:12])
        if info.revoked:
            return AuthResult(None, "token_revoked", info.fingerprint)
        return AuthResult(info, None, info.fingerprint)

    def tokens(self) -> list[TokenInfo]:
        """Every registered token's info (fingerprints only)."""
        with self._lock:
            return list(self._tokens.values())

    def __repr__(self) -> str:
        return f"TokenRegistry({len(self._tokens)} tokens)"
