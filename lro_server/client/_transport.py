"""What both clients share about the connection: channels and the bearer token."""

from __future__ import annotations

from typing import Any

import grpc


def channel_for(
    target: str, tls: bool, credentials: grpc.ChannelCredentials | None, *, aio: bool = False
) -> Any:
    """A plaintext channel, or a TLS one (system roots unless ``credentials`` say otherwise)."""
    module: Any = grpc.aio if aio else grpc
    if tls or credentials is not None:
        return module.secure_channel(target, credentials or grpc.ssl_channel_credentials())
    return module.insecure_channel(target)


def bearer(token: str | None) -> tuple[tuple[str, str], ...]:
    """Call metadata carrying ``token`` (nothing without one)."""
    return (("authorization", f"Bearer {token}"),) if token else ()
