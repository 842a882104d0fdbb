"""Security settings → AppConfig: auth options, TLS files, and refusals of half settings."""

from __future__ import annotations

import pytest

from lro_server.cli.config import app_config
from lro_server.cli.settings import Settings
from lro_server.core.errors import InvalidArgument


def test_auth_is_off_by_default():
    config = app_config(Settings())
    assert config.auth is None and config.tls_cert_file == "" and config.tls_key_file == ""


def test_auth_settings_become_options():
    config = app_config(
        Settings(
            auth=True,
            auth_audience="https://lro.example",
            auth_certs_url="http://127.0.0.1:1/certs",
            allowed_principals=["a@x"],
            admin_principals=["admin@x"],
            waiter_principals=["wf@x"],
        )
    )
    assert config.auth is not None
    assert config.auth.audience == "https://lro.example"
    assert config.auth.certs_url == "http://127.0.0.1:1/certs"
    assert config.auth.allowed == {"a@x"}
    assert config.auth.admins == {"admin@x"} and config.auth.waiters == {"wf@x"}


def test_principal_lists_read_from_the_environment_as_json(monkeypatch):
    monkeypatch.setenv("LRO_AUTH", "true")
    monkeypatch.setenv("LRO_AUTH_AUDIENCE", "https://lro.example")
    monkeypatch.setenv("LRO_WAITER_PRINCIPALS", '["wf@p.iam.gserviceaccount.com"]')
    config = app_config(Settings())
    assert config.auth is not None and config.auth.waiters == {"wf@p.iam.gserviceaccount.com"}


def test_auth_without_audience_is_refused():
    with pytest.raises(InvalidArgument, match="LRO_AUTH_AUDIENCE"):
        app_config(Settings(auth=True))


def test_tls_needs_both_files(tmp_path):
    with pytest.raises(InvalidArgument, match="together"):
        app_config(Settings(tls_cert=tmp_path / "cert.pem"))
    config = app_config(Settings(tls_cert=tmp_path / "c.pem", tls_key=tmp_path / "k.pem"))
    assert config.tls_cert_file.endswith("c.pem") and config.tls_key_file.endswith("k.pem")
