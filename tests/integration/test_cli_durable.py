"""`lro start` and `lro resolve` against a live server with durable methods."""

from __future__ import annotations

import json
from collections.abc import Callable

import durable_methods
import pytest
from durable_helpers import metadata

from lro_server.cli.client import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main
from lro_server.durable import methods_in
from lro_server.testing.polling import wait_until
from lro_server.testing.server_thread import ServerThread


@pytest.fixture
def dserver(make_server: Callable[..., ServerThread]) -> ServerThread:
    return make_server(durable_methods=tuple(methods_in(durable_methods)))


def test_start_waits_for_the_result_and_resolve_answers_the_promise(
    sim, dserver, create_job, capsys, operations
):
    fan = ["--server", dserver.grpc_target]
    a, b = create_job("a"), create_job("b")
    code = main(
        [
            "start",
            "test.FanOut",
            "--input",
            json.dumps({"a": a, "b": b}),
            "--wait",
            "--quiet",
            "--json",
            *fan,
        ]
    )
    out = capsys.readouterr().out
    assert code == EXIT_OK, out
    done = json.loads(out)
    assert done["done"] is True and len(done["response"]["value"]["runs"]) == 2

    job = create_job("publish")
    assert (
        main(
            [
                "start",
                "test.Notebook",
                "--input",
                json.dumps({"job": job, "owner": "x"}),
                "--json",
                *fan,
            ]
        )
        == EXIT_OK
    )
    name = json.loads(capsys.readouterr().out)["name"]
    promise = wait_until(
        lambda: [
            w
            for w in metadata(operations.get_operation(name)).waiting_on
            if "." in w and not w.startswith("operations/")
        ],
        timeout=30,
        what="the method to wait on its promise",
    )[0]
    assert main(["resolve", promise, "--value", '{"rows": 5}', *fan]) == EXIT_OK
    assert "RESOLVED" in capsys.readouterr().out
    assert main(["wait", name, "--quiet", *fan]) == EXIT_OK


def test_bad_json_is_a_usage_error_and_a_wrong_promise_fails(dserver, capsys):
    fan = ["--server", dserver.grpc_target]
    assert main(["start", "test.FanOut", "--input", "{nope", *fan]) == EXIT_USAGE
    assert "--input is not valid JSON" in capsys.readouterr().err
    assert main(["start", "test.FanOut", "--input", "[1]", *fan]) == EXIT_USAGE
    wrong = "00000000-0000-4000-8000-000000000000.0." + "a" * 32
    assert main(["resolve", wrong, "--reject", "gave up", *fan]) == EXIT_FAILED
    assert "NOT_FOUND" in capsys.readouterr().err
    assert main(["start", "acme.Missing", *fan]) == EXIT_FAILED
