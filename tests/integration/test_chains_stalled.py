"""A chain whose create answer was lost still runs: a retry finds it, the server begins it."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from chain_helpers import chain_request, future, run_now
from conftest import fast_config
from google.api_core import operations_v1

from lro_server._proto.lro.databricks.v1 import chains_pb2_grpc
from lro_server.cli.resume_assembly import ResumeConfig
from lro_server.storage.sqlite import SqliteStore
from lro_server.testing.flaky_store import FlakyStore
from lro_server.testing.server_thread import ServerThread


def test_chain_created_but_unanswered_is_begun_later(sim, tmp_path: Path, create_job):
    job_id = create_job("first")
    flaky = FlakyStore(
        SqliteStore(str(tmp_path / "lro.db")),
        lost_answer_share=1.0,
        lost_answer_methods=frozenset({"create"}),
    )
    config = fast_config(
        f"sqlite:///{tmp_path}/lro.db", sim.url, resume=ResumeConfig(stall_seconds=0.2)
    )
    with (
        ServerThread(config, store=flaky) as server,
        grpc.insecure_channel(server.grpc_target) as channel,
    ):
        chains = chains_pb2_grpc.ChainsStub(channel)
        request = chain_request(run_now("only", job_id))
        request.request_id = "nightly-1"
        flaky.probability = 1.0  # every store call fails; a create is applied first
        with pytest.raises(grpc.RpcError) as caught:
            chains.RunChain(request)  # stored, but the store's answer never came back
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        flaky.probability = 0.0
        op = chains.RunChain(request)  # the retry finds the stored chain: nothing was begun
        assert not op.done
        result = future(op, operations_v1.OperationsClient(channel)).result(timeout=30)
        assert [step.name for step in result.steps] == ["only"]
    assert len(sim.created("runs")) == 1
