"""What both clients share about the wire: channels, the bearer token, durations."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import duration_pb2

OPERATIONS = "/google.longrunning.Operations/"
#: Added to a WaitOperation's own timeout for its RPC deadline: the server answers first.
WAIT_SLACK_SECONDS = 10.0


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


def duration(seconds: float) -> duration_pb2.Duration:
    """A Duration of ``seconds``."""
    value = duration_pb2.Duration()
    value.FromNanoseconds(int(seconds * 1e9))
    return value
