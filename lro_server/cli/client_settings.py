"""Settings of the ``lro`` client, read from ``LRO_*`` environment variables and flags.

Next to the server's settings (``cli/settings.py``), and like them the only place the client
reads its environment; docs/configuration.md lists both.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ClientSettings(BaseSettings):
    """Client settings. Each field is read from ``LRO_<NAME>``; flags override them."""

    model_config = SettingsConfigDict(env_prefix="LRO_", extra="ignore")

    server: str = Field("localhost:50051", description="`lro`: gRPC address of the server.")
    token: str = Field(
        "", description="`lro`: bearer token sent as `authorization` metadata (empty: none)."
    )
    tls: bool = Field(False, description="`lro`: connect with TLS instead of plaintext.")
    ca_cert: Path | None = Field(
        None, description="`lro`: PEM bundle of CAs to trust with TLS (default: system roots)."
    )
