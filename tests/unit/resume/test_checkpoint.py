"""Checkpoint format: JSON round trip, commits and waits, unreadable bytes."""

from __future__ import annotations

import json

import pytest

from lro_server.core.errors import FailedPrecondition, InvalidArgument
from lro_server.resume.checkpoint import FORMAT, Checkpoint, Wait
from lro_server.resume.method import WaitOutcome

METHOD = "lro.databricks.v1.Chains/RunChain"


def test_round_trip_is_plain_json():
    checkpoint = Checkpoint(METHOD, 3, Wait(3, ("operations/a",), 123, "exec", 1), {"step": 1})
    data = checkpoint.encode()
    document = json.loads(data)  # language-neutral: any JSON reader can follow it
    assert document["format"] == FORMAT and document["wait"]["children"] == ["operations/a"]
    assert Checkpoint.decode(data) == checkpoint


def test_commits_number_waits_and_clear_them():
    first = Checkpoint(METHOD).committed(
        state={"step": 0}, wait_on=("operations/a",), deadline_us=9
    )
    assert first.seq == 1 and first.wait == Wait(1, ("operations/a",), 9)
    done = first.committed(state={"step": 1}, wait_on=None, deadline_us=9)
    assert done.seq == 2 and done.wait is None and done.state == {"step": 1}


def test_rewait_is_a_new_wait_on_the_same_children():
    waiting = Checkpoint(METHOD).committed(state={}, wait_on=("operations/a",), deadline_us=9)
    again = waiting.handed_to("exec-1").rewaited()
    assert again.seq == 2 and again.wait is not None
    assert again.wait.id == 2 and again.wait.retries == 1 and again.wait.handle == ""
    assert again.wait.children == ("operations/a",)


@pytest.mark.parametrize(
    "data",
    [b"not json", b"{}", json.dumps({"format": "other/9", "method": "m", "seq": 1}).encode()],
)
def test_unreadable_checkpoints_fail_precondition(data):
    with pytest.raises(FailedPrecondition) as caught:
        Checkpoint.decode(data, name="operations/x")
    assert caught.value.reason == "CHECKPOINT_UNREADABLE"


@pytest.mark.parametrize(
    ("text", "outcome"),
    [
        ("", WaitOutcome.DONE),
        ("done", WaitOutcome.DONE),
        (" TIMEOUT ", WaitOutcome.TIMEOUT),
        ("error", WaitOutcome.ERROR),
    ],
)
def test_wait_outcome_header(text, outcome):
    assert WaitOutcome.parse(text) is outcome


def test_unknown_wait_outcome_is_invalid():
    with pytest.raises(InvalidArgument):
        WaitOutcome.parse("maybe")
