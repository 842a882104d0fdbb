"""Caller authentication: Google-signed ID tokens, verified locally with google-auth.

The verifier fetches the signing certificates (``{"key id": "PEM certificate"}``, Google's
``oauth2/v1/certs`` format) over HTTP without blocking the event loop, caches them, and
checks each bearer token's signature, expiry, audience and issuer. Verified tokens are
cached until they expire, so a client that reuses its token costs one dictionary lookup.

Answers never say why a token was refused (UNAUTHENTICATED "invalid credentials"); the reason
is logged at debug level without the token.

One method needs no identity: ``lro.durable.v1.Methods/ResolvePromise``. Its promise id
(128 random bits) is the capability, handed to outside work that has no Google identity
(a Databricks notebook); both fronts call it as :data:`NOBODY` (see docs/security.md).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import aiohttp
from google.auth import exceptions as auth_exceptions
from google.auth import jwt

from lro_server.core.errors import PermissionDenied, Unauthenticated, Unavailable
from lro_server.core.principal import Principal

_log = logging.getLogger(__name__)

#: Methods called without authentication (their request carries its own capability).
PUBLIC_METHODS = frozenset({"/lro.durable.v1.Methods/ResolvePromise"})
#: The caller of a public method: no identity, no rights (not even a waiter's).
NOBODY = Principal(subject="")

#: Where Google publishes the certificates of its ID tokens.
GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"
#: Issuers of Google-signed ID tokens.
GOOGLE_ISSUERS = ("accounts.google.com", "https://accounts.google.com")


@dataclasses.dataclass(frozen=True, slots=True)
class AuthOptions:
    """What a valid caller looks like.

    Attributes:
        audience: Expected ``aud`` (the service URL on Cloud Run).
        certs_url: Signing certificates.
        issuers: Accepted ``iss`` values.
        allowed: Principals allowed to call (empty: any valid token).
        admins: Principals that see every owner's operations.
        waiters: Principals allowed to resume waiting methods (the workflow's identity).
        certs_max_age_seconds: Longest the certificates are cached.
        clock_skew_seconds: Tolerance for ``iat``/``exp``.
    """

    audience: str
    certs_url: str = GOOGLE_CERTS_URL
    issuers: tuple[str, ...] = GOOGLE_ISSUERS
    allowed: frozenset[str] = frozenset()
    admins: frozenset[str] = frozenset()
    waiters: frozenset[str] = frozenset()
    certs_max_age_seconds: float = 3600.0
    clock_skew_seconds: int = 10


class IdTokenAuthenticator:
    """Turns call metadata into a Principal, or raises Unauthenticated / PermissionDenied."""

    #: Verified tokens kept (token → principal, expiry).
    CACHE_SIZE = 4096

    def __init__(self, options: AuthOptions) -> None:
        if not options.audience:
            raise ValueError("authentication needs an audience")
        self.options = options
        self._certs: dict[str, str] = {}
        self._certs_expire = 0.0
        self._certs_lock = asyncio.Lock()
        self._verified: OrderedDict[str, tuple[Principal, float]] = OrderedDict()
        self._session: aiohttp.ClientSession | None = None

    async def __call__(self, metadata: Mapping[str, str]) -> Principal:
        """Authenticate one call from its (lower-case) metadata."""
        token = _bearer(metadata.get("authorization", ""))
        cached = self._verified.get(token)
        now = time.time()
        if cached is not None and cached[1] > now:
            self._verified.move_to_end(token)
            return self._authorize(cached[0])
        claims = await self._verify(token)
        principal = self._principal(claims)
        self._verified[token] = (principal, float(claims.get("exp", now)))
        if len(self._verified) > self.CACHE_SIZE:
            self._verified.popitem(last=False)
        return self._authorize(principal)

    def _authorize(self, principal: Principal) -> Principal:
        allowed = self.options.allowed
        if (
            allowed
            and principal.subject not in allowed
            and not (principal.admin or principal.waiter)
        ):
            raise PermissionDenied(
                "the caller is not allowed to use this service", reason="CALLER_NOT_ALLOWED"
            )
        return principal

    def _principal(self, claims: Mapping[str, Any]) -> Principal:
        email = claims.get("email")
        subject = str(email if email and claims.get("email_verified", True) else claims["sub"])
        return Principal(
            subject=subject,
            admin=subject in self.options.admins,
            waiter=subject in self.options.waiters,
        )

    async def _verify(self, token: str) -> Mapping[str, Any]:
        certs = await self._certificates()
        try:
            claims: Mapping[str, Any] = jwt.decode(  # type: ignore[no-untyped-call]
                token,
                certs=certs,
                audience=self.options.audience,
                clock_skew_in_seconds=self.options.clock_skew_seconds,
            )
        except (auth_exceptions.GoogleAuthError, ValueError, KeyError, TypeError) as exc:
            _log.debug("token refused: %s", type(exc).__name__)
            raise _invalid() from None
        if claims.get("iss") not in self.options.issuers or not claims.get("sub"):
            _log.debug("token refused: issuer or subject")
            raise _invalid()
        return claims

    async def _certificates(self) -> dict[str, str]:
        if time.monotonic() < self._certs_expire:
            return self._certs
        async with self._certs_lock:
            if time.monotonic() < self._certs_expire:
                return self._certs
            if self._session is None:
                self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
            try:
                async with self._session.get(self.options.certs_url) as response:
                    response.raise_for_status()
                    certs = json.loads(await response.read())
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                if self._certs:  # keep serving with the certificates we have
                    _log.warning("refreshing token certificates failed: %s", exc)
                    self._certs_expire = time.monotonic() + 60
                    return self._certs
                raise Unavailable("cannot fetch token signing certificates") from exc
            if not isinstance(certs, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in certs.items()
            ):
                raise Unavailable("token signing certificates are malformed")
            self._certs = certs
            self._certs_expire = time.monotonic() + self.options.certs_max_age_seconds
            return certs

    async def close(self) -> None:
        """Close the HTTP session used for certificates."""
        if self._session is not None:
            await self._session.close()


def _bearer(header: str) -> str:
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("missing bearer token", reason="MISSING_CREDENTIALS")
    return token.strip()


def _invalid() -> Unauthenticated:
    return Unauthenticated("invalid credentials", reason="INVALID_CREDENTIALS")
