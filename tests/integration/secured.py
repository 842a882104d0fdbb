"""An lro-server with authentication on, plus the principals and tokens its tests use.

Tokens are signed by a local :class:`TokenIssuer` whose certificates a local server
publishes: nothing here touches the network beyond 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
from reliability import quick_config

from lro_server.api.auth import AuthOptions
from lro_server.testing.databricks_sim import SimulatorThread
from lro_server.testing.id_tokens import CertsServerThread, TokenIssuer
from lro_server.testing.server_thread import ServerThread

AUDIENCE = "https://lro.test.example"
ALICE = "alice@example.com"
BOB = "bob@example.com"
ADMIN = "admin@example.com"
WAITER = "workflow@example.iam.gserviceaccount.com"


@dataclasses.dataclass
class Secured:
    """A running server with auth on, its simulator and the issuer of valid tokens."""

    server: ServerThread
    sim: SimulatorThread
    issuer: TokenIssuer
    certs: CertsServerThread

    def token(self, email: str, **claims: Any) -> str:
        """A valid ID token for ``email`` (claims override the defaults)."""
        return self.issuer.token(email=email, audience=AUDIENCE, **claims)

    def metadata(self, email: str) -> tuple[tuple[str, str], ...]:
        """gRPC call metadata authenticating as ``email``."""
        return (("authorization", f"Bearer {self.token(email)}"),)

    def headers(self, email: str, **extra: str) -> dict[str, str]:
        """HTTP headers authenticating as ``email``."""
        return {"Authorization": f"Bearer {self.token(email)}", **extra}


def auth_options(certs_url: str, **overrides: Any) -> AuthOptions:
    """The options of these tests: one admin and one waiter identity."""
    values: dict[str, Any] = {
        "audience": AUDIENCE,
        "certs_url": certs_url,
        "admins": frozenset({ADMIN}),
        "waiters": frozenset({WAITER}),
    }
    values.update(overrides)
    return AuthOptions(**values)


@contextlib.contextmanager
def secured_server(directory: Path, **overrides: Any) -> Iterator[Secured]:
    """Start a simulator, a certificates server and an lro-server with auth on."""
    issuer = TokenIssuer()
    auth_overrides = overrides.pop("auth_overrides", {})
    with SimulatorThread() as sim, CertsServerThread(issuer) as certs:
        config = quick_config(
            f"sqlite:///{directory}/lro.db",
            sim.url,
            auth=auth_options(certs.url, **auth_overrides),
            **overrides,
        )
        with ServerThread(config) as server:
            yield Secured(server=server, sim=sim, issuer=issuer, certs=certs)


def channel_to(secured: Secured) -> grpc.Channel:
    """A plaintext channel to the server's gRPC port."""
    return grpc.insecure_channel(secured.server.grpc_target)
