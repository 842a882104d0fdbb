"""ID token authentication against a local certificates endpoint (no network)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from lro_server.api.auth import AuthOptions, IdTokenAuthenticator
from lro_server.core.errors import PermissionDenied, Unauthenticated
from lro_server.testing.id_tokens import CertsServer, TokenIssuer

AUDIENCE = "https://lro.example.run.app"


@pytest.fixture(scope="module")
def issuer() -> TokenIssuer:
    return TokenIssuer()


@pytest.fixture
async def certs(issuer: TokenIssuer) -> AsyncIterator[CertsServer]:
    server = CertsServer(issuer)
    await server.start()
    yield server
    await server.stop()


def _auth(certs: CertsServer, **kwargs: object) -> IdTokenAuthenticator:
    return IdTokenAuthenticator(AuthOptions(audience=AUDIENCE, certs_url=certs.url, **kwargs))  # type: ignore[arg-type]


async def test_valid_token_gives_the_email_as_subject(issuer, certs):
    auth = _auth(certs, admins=frozenset({"admin@x.iam"}))
    try:
        token = issuer.token(email="alice@x.iam", audience=AUDIENCE)
        principal = await auth({"authorization": f"Bearer {token}"})
        assert principal.subject == "alice@x.iam"
        assert not principal.admin and not principal.waiter
        admin = await auth(
            {"authorization": "Bearer " + issuer.token(email="admin@x.iam", audience=AUDIENCE)}
        )
        assert admin.admin
    finally:
        await auth.close()


async def test_certificates_and_verified_tokens_are_cached(issuer, certs):
    auth = _auth(certs)
    try:
        token = issuer.token(email="alice@x.iam", audience=AUDIENCE)
        for _ in range(5):
            await auth({"authorization": f"Bearer {token}"})
        await auth(
            {"authorization": "Bearer " + issuer.token(email="bob@x.iam", audience=AUDIENCE)}
        )
        assert certs.fetches == 1
    finally:
        await auth.close()


@pytest.mark.parametrize(
    "header",
    ["", "Basic abc", "Bearer ", "Bearer not-a-jwt", "bearer a.b.c"],
)
async def test_missing_or_garbage_token_is_unauthenticated(certs, header):
    auth = _auth(certs)
    try:
        with pytest.raises(Unauthenticated) as caught:
            await auth({"authorization": header} if header else {})
        assert "token" in caught.value.message or "credentials" in caught.value.message
    finally:
        await auth.close()


@pytest.mark.parametrize(
    "claims",
    [
        {"audience": "https://other.example"},
        {"issuer": "https://evil.example"},
        {"lifetime": -3600},
    ],
    ids=["wrong-audience", "wrong-issuer", "expired"],
)
async def test_wrong_audience_issuer_or_expired_is_refused_without_detail(issuer, certs, claims):
    auth = _auth(certs)
    try:
        kwargs = {"email": "alice@x.iam", "audience": AUDIENCE, **claims}
        token = issuer.token(**kwargs)  # type: ignore[arg-type]
        with pytest.raises(Unauthenticated) as caught:
            await auth({"authorization": f"Bearer {token}"})
        assert caught.value.message == "invalid credentials"
    finally:
        await auth.close()


async def test_token_signed_by_another_key_is_refused(certs):
    auth = _auth(certs)
    try:
        forged = TokenIssuer(key_id="test-key").token(email="alice@x.iam", audience=AUDIENCE)
        with pytest.raises(Unauthenticated):
            await auth({"authorization": f"Bearer {forged}"})
    finally:
        await auth.close()


async def test_principal_outside_the_allowed_list_is_denied(issuer, certs):
    auth = _auth(certs, allowed=frozenset({"alice@x.iam"}), waiters=frozenset({"wf@x.iam"}))
    try:
        ok = await auth(
            {"authorization": "Bearer " + issuer.token(email="alice@x.iam", audience=AUDIENCE)}
        )
        assert ok.subject == "alice@x.iam"
        waiter = await auth(
            {"authorization": "Bearer " + issuer.token(email="wf@x.iam", audience=AUDIENCE)}
        )
        assert waiter.waiter
        with pytest.raises(PermissionDenied):
            await auth(
                {"authorization": "Bearer " + issuer.token(email="eve@x.iam", audience=AUDIENCE)}
            )
    finally:
        await auth.close()
