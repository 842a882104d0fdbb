"""The ports the server listens on: checked before anything starts, bound with one-line errors."""

from __future__ import annotations

import dataclasses
import errno
import socket

import grpc

from lro_server.core.errors import FailedPrecondition


@dataclasses.dataclass(frozen=True)
class Listener:
    """One port the server listens on, and how a user picks another."""

    front: str
    host: str
    port: int
    flag: str
    variable: str

    def check(self) -> None:
        """Fail in one line, before anything starts, when the port cannot be listened on.

        Raises:
            FailedPrecondition: The port is in use, or the address cannot be bound.
        """
        if self.port <= 0:
            return
        try:
            with socket.create_server((self.host, self.port)):
                return
        except OSError as exc:
            raise self.error(exc) from None

    def error(self, exc: OSError) -> FailedPrecondition:
        """The one-line error of a failed bind."""
        why = "it is in use" if exc.errno == errno.EADDRINUSE else exc.strerror or str(exc)
        return FailedPrecondition(
            f"cannot listen for {self.front} on {self.host}:{self.port}: {why}; "
            f"choose another port with {self.flag} or {self.variable}",
            reason="PORT_UNAVAILABLE",
            metadata={"port": str(self.port), "host": self.host},
        )


def bind_grpc(
    server: grpc.aio.Server, listener: Listener, tls_cert_file: str, tls_key_file: str
) -> int:
    """Bind ``server`` to the listener's address (TLS with both PEM files, else plaintext).

    Returns:
        The bound port (the one chosen when the listener's port is 0).

    Raises:
        FailedPrecondition: The port was taken since it was checked.
    """
    address = f"{listener.host}:{listener.port}"
    try:
        if not tls_cert_file:
            return int(server.add_insecure_port(address))
        with open(tls_cert_file, "rb") as cert, open(tls_key_file, "rb") as key:
            credentials = grpc.ssl_server_credentials([(key.read(), cert.read())])
        return int(server.add_secure_port(address, credentials))
    except RuntimeError:  # taken since it was checked (grpc says no more than that)
        raise listener.error(OSError(errno.EADDRINUSE, "in use")) from None
