"""Each gRPC call's handler sees its own metadata, however many calls run at once.

The gRPC front takes a call's metadata from the method lookup grpc.aio made for that call
(api/server.py), so concurrent calls must never see each other's headers.
"""

from __future__ import annotations

import asyncio

import grpc
from google.longrunning import operations_pb2

from lro_server.api.context import CallContext
from lro_server.api.registry import Method, Registry
from lro_server.api.server import build_server

ECHO = "/test.Echo/Echo"
CALLS = 200


async def _echo(
    request: operations_pb2.GetOperationRequest, ctx: CallContext
) -> operations_pb2.Operation:
    await asyncio.sleep(0)  # let the other calls' lookups run in between
    return operations_pb2.Operation(name=f"{request.name}|{ctx.metadata.get('x-caller', '')}")


async def test_concurrent_calls_each_see_their_own_metadata():
    registry = Registry(
        [
            Method(
                "test.Echo",
                "Echo",
                operations_pb2.GetOperationRequest,
                operations_pb2.Operation,
                _echo,
            )
        ]
    )
    server = build_server(registry)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            echo = channel.unary_unary(
                ECHO,
                request_serializer=operations_pb2.GetOperationRequest.SerializeToString,
                response_deserializer=operations_pb2.Operation.FromString,
            )

            async def call(i: int) -> str:
                answer = await echo(
                    operations_pb2.GetOperationRequest(name=str(i)),
                    metadata=(("x-caller", f"caller-{i}"),),
                    timeout=30,
                )
                return str(answer.name)

            answers = await asyncio.gather(*(call(i) for i in range(CALLS)))
    finally:
        await server.stop(0)
    assert answers == [f"{i}|caller-{i}" for i in range(CALLS)]
