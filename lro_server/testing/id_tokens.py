"""Locally signed Google-style ID tokens and a certificates endpoint, for auth tests.

Never touches the network: a fresh RSA key and self-signed certificate are generated here,
and :class:`CertsServer` serves ``{"key id": "PEM certificate"}`` on 127.0.0.1.
"""

from __future__ import annotations

import datetime
import json
import time
from typing import Any, Self

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from google.auth import crypt, jwt

from lro_server.testing.loop_thread import LoopThread


class TokenIssuer:
    """Signs ID tokens with its own key; ``certs`` is what a verifier needs."""

    def __init__(self, key_id: str = "test-key") -> None:
        self.key_id = key_id
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lro-test")])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256())
        )
        pem_key = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        self._signer = crypt.RSASigner.from_string(pem_key, key_id)  # type: ignore[no-untyped-call]
        self.certs = {key_id: cert.public_bytes(serialization.Encoding.PEM).decode()}

    def token(
        self,
        *,
        email: str,
        audience: str,
        issuer: str = "https://accounts.google.com",
        lifetime: int = 3600,
        **claims: Any,
    ) -> str:
        """A signed ID token for ``email``."""
        now = int(time.time())
        payload = {
            "iss": issuer,
            "aud": audience,
            "sub": f"sub-{email}",
            "email": email,
            "email_verified": True,
            "iat": now,
            "exp": now + lifetime,
            **claims,
        }
        encoded: bytes = jwt.encode(self._signer, payload)  # type: ignore[no-untyped-call]
        return encoded.decode()


class CertsServer:
    """Serves an issuer's certificates on 127.0.0.1 and counts the fetches."""

    def __init__(self, issuer: TokenIssuer) -> None:
        self.issuer = issuer
        self.fetches = 0
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> str:
        """Start serving; returns the certificates URL."""
        app = web.Application()
        app.router.add_get("/certs", self._certs)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/certs"
        return self.url

    async def _certs(self, request: web.Request) -> web.Response:
        self.fetches += 1
        return web.Response(text=json.dumps(self.issuer.certs), content_type="application/json")

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()


class CertsServerThread(LoopThread):
    """A :class:`CertsServer` on its own event loop in a daemon thread, for sync tests::

    with CertsServerThread(TokenIssuer()) as certs:
        options = AuthOptions(audience="https://lro.test", certs_url=certs.url)
    """

    def __init__(self, issuer: TokenIssuer) -> None:
        super().__init__("certs-server")
        self.server = CertsServer(issuer)

    @property
    def url(self) -> str:
        """The certificates URL (empty before :meth:`start`)."""
        return self.server.url

    @property
    def fetches(self) -> int:
        """How many times the certificates were fetched."""
        return self.server.fetches

    def start(self) -> Self:
        """Start serving; returns once the port is bound."""
        super().start()
        self.run(self.server.start(), timeout=10)
        return self

    def stop(self) -> None:
        """Stop serving and end the thread."""
        self.run(self.server.stop(), timeout=10)
        super().stop()
