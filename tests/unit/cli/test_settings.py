"""Settings: environment and flags, and the generated configuration reference."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from lro_server.cli.server import _parser, settings_from
from lro_server.cli.settings import Settings, configuration_reference

DOCS = Path(__file__).resolve().parents[3] / "docs" / "configuration.md"


def test_configuration_reference_is_current():
    assert DOCS.read_text() == configuration_reference(), (
        "docs/configuration.md is stale: run `python -m lro_server.cli.settings > "
        "docs/configuration.md`"
    )


def test_every_setting_is_documented():
    text = DOCS.read_text()
    missing = [n for n in Settings.model_fields if f"`LRO_{n.upper()}`" not in text]
    assert missing == []


def test_flags_override_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LRO_GRPC_PORT", "6001")
    monkeypatch.setenv("LRO_HTTP_PORT", "6002")
    monkeypatch.setenv("LRO_STORE", "sqlite:///env.db")
    args = _parser().parse_args(["serve", "--grpc-port", "7001"])
    settings = settings_from(args)
    assert settings.grpc_port == 7001
    assert settings.http_port == 6002
    assert settings.store == "sqlite:///env.db"


def test_defaults_match_the_documented_ports():
    settings = settings_from(_parser().parse_args(["serve"]))
    assert (settings.grpc_port, settings.http_port) == (50051, 8080)
    assert settings.store.startswith("sqlite:///")


def test_invalid_port_is_refused(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LRO_GRPC_PORT", "70000")
    with pytest.raises(ValidationError):
        Settings()
