"""Log formatting: Cloud Logging keys, bound context, redaction, text mode."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from lro_server.cli.logs import configure_logging, redact
from lro_server.core.logcontext import Trace, bound, set_operation


@pytest.fixture
def capture() -> Iterator[tuple[io.StringIO, logging.Logger]]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    stream = io.StringIO()
    configure_logging("INFO", "json", stream=stream)
    yield stream, logging.getLogger("lro_server.test")
    root.handlers[:], level = saved
    root.setLevel(level)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_has_severity_message_and_bound_context(capture):
    stream, log = capture
    log.info("outside")
    with bound(operation="operations/abc", trace=Trace("a" * 32, "b" * 16, True)):
        log.warning("inside %s", "call")
    first, second = lines(stream)
    assert first["severity"] == "INFO" and "operation" not in first
    assert "logging.googleapis.com/trace" not in first
    assert second["severity"] == "WARNING" and second["message"] == "inside call"
    assert second["operation"] == "operations/abc"
    assert second["logging.googleapis.com/trace"] == "a" * 32
    assert second["logging.googleapis.com/spanId"] == "b" * 16
    assert second["logging.googleapis.com/trace_sampled"] is True


def test_context_is_restored_after_the_block(capture):
    stream, log = capture
    with bound(operation="operations/one"):
        with bound(operation="operations/two"):
            pass
        log.info("x")
    log.info("y")
    x, y = lines(stream)
    assert x["operation"] == "operations/one" and "operation" not in y


def test_exceptions_are_rendered_and_redacted(capture):
    stream, log = capture
    try:
        raise RuntimeError("call failed with Authorization: Bearer abc.def.ghi")
    except RuntimeError:
        log.exception("boom")
    (entry,) = lines(stream)
    assert entry["severity"] == "ERROR"
    assert "abc.def.ghi" not in json.dumps(entry)
    assert "Bearer [REDACTED]" in str(entry["stack_trace"])


@pytest.mark.parametrize(
    "text, secret",
    [
        ("authorization: Bearer eyJhbGciOi.payload.sig", "eyJhbGciOi.payload.sig"),
        ("token dapi0123456789abcdef0123456789abcdef-2 used", "dapi0123456789abcdef"),
        ('{"token": "s3cr3t"}', "s3cr3t"),
        ("token=s3cr3t&x=1", "s3cr3t"),
    ],
)
def test_redact_masks_secrets(text: str, secret: str):
    assert secret not in redact(text)


def test_payload_loggers_stay_at_info(capture):
    configure_logging("DEBUG", "json", stream=io.StringIO())
    assert logging.getLogger("databricks.sdk").getEffectiveLevel() >= logging.INFO


def test_text_format_appends_the_operation():
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    stream = io.StringIO()
    try:
        configure_logging("INFO", "text", stream=stream)
        set_operation("operations/xyz")  # this test's own context; pytest runs each in a copy
        logging.getLogger("t").info("hello")
    finally:
        set_operation("")
        root.handlers[:], level = saved
        root.setLevel(level)
    assert stream.getvalue().rstrip().endswith("hello [operations/xyz]")
