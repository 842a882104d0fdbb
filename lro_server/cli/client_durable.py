"""``lro start`` and ``lro resolve``: start a durable method, resolve a promise.

``lro start acme.Nightly --input '{"job": 12}' [--wait]`` prints the operation (``--wait``
follows it as ``lro wait`` does); ``lro resolve PROMISE_ID --value '{"table": "gold"}'``
resolves a promise (``--reject MESSAGE [--code N]`` rejects it) and prints it as stored.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from google.longrunning import operations_pb2
from google.protobuf import json_format

from lro_server._proto.lro.durable.v1 import methods_pb2, methods_pb2_grpc
from lro_server.cli.client_rpc import CALL_TIMEOUT, Connection

#: google.rpc.Code of a rejection without --code (ABORTED: the outside work gave up).
DEFAULT_REJECT_CODE = 10


class UsageError(Exception):
    """A flag's value is wrong; the message says which."""


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add ``start`` and ``resolve`` to the ``lro`` sub-commands."""
    start = commands.add_parser("start", parents=[common], help="start a durable method")
    start.add_argument("method", help="the durable method's name, e.g. acme.Nightly")
    start.add_argument("--input", default="{}", help="the request, a JSON object")
    start.add_argument("--request-id", default="", help="AIP-155 request id")
    start.add_argument("--wait", action="store_true", help="follow it until it is done")
    start.add_argument("--timeout", type=float, default=0.0, help="with --wait: give up after S")
    start.add_argument("--interval", type=float, default=2.0, help=argparse.SUPPRESS)
    start.add_argument("--quiet", action="store_true", help="with --wait: only the outcome")
    resolve = commands.add_parser("resolve", parents=[common], help="resolve a promise")
    resolve.add_argument("promise", help="the promise id")
    outcome = resolve.add_mutually_exclusive_group(required=True)
    outcome.add_argument("--value", help="resolve with this JSON value")
    outcome.add_argument("--reject", metavar="MESSAGE", help="reject with this message")
    resolve.add_argument(
        "--code", type=int, default=DEFAULT_REJECT_CODE, help="google.rpc.Code of --reject"
    )


def start(connection: Connection, args: argparse.Namespace) -> operations_pb2.Operation:
    """Methods.Start with the flags' method and input."""
    value = _json(args.input, "--input")
    if not isinstance(value, dict):
        raise UsageError("--input must be a JSON object")
    request = methods_pb2.StartRequest(method=args.method, request_id=args.request_id)
    request.input.update(value)
    stub = methods_pb2_grpc.MethodsStub(connection.channel)
    answer: operations_pb2.Operation = stub.Start(
        request, timeout=CALL_TIMEOUT, metadata=connection.metadata
    )
    return answer


def resolve(connection: Connection, args: argparse.Namespace) -> methods_pb2.Promise:
    """Methods.ResolvePromise with the flags' value or rejection."""
    request = methods_pb2.ResolvePromiseRequest(name=args.promise)
    if args.reject is not None:
        if args.code <= 0 or args.code > 16:
            raise UsageError("--code must be a google.rpc.Code from 1 to 16")
        request.error.code = args.code
        request.error.message = args.reject
    else:
        json_format.ParseDict(_json(args.value, "--value"), request.value)
    stub = methods_pb2_grpc.MethodsStub(connection.channel)
    answer: methods_pb2.Promise = stub.ResolvePromise(
        request, timeout=CALL_TIMEOUT, metadata=connection.metadata
    )
    return answer


def promise_line(promise: methods_pb2.Promise) -> str:
    """One line saying where a promise stands."""
    state = methods_pb2.Promise.State.Name(promise.state)
    if promise.HasField("error"):
        return f"{promise.name}: {state} ({promise.error.code}: {promise.error.message})"
    if promise.HasField("value"):
        value = json.dumps(json_format.MessageToDict(promise.value))
        return f"{promise.name}: {state} {value}"
    return f"{promise.name}: {state}"


def _json(text: str, flag: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{flag} is not valid JSON: {exc}") from None


def usage(message: str) -> None:
    """Print a usage error."""
    print(f"lro: {message}", file=sys.stderr)
