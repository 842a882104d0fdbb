"""The Python client of lro-server: typed start methods, google-api-core operation futures.

::

    from lro_server.client import Client

    client = Client("localhost:50051")                 # token=..., tls=True for Cloud Run
    op = client.jobs.run_now(job_id=1)                  # an Operation future, at once
    run = op.result(timeout=3600)                       # lro_server.v1.Run
    client.operations.list("done = false")              # google.longrunning.Operations

Futures wait with WaitOperation (the server answers when the operation is done; no polling)
and raise google-api-core exceptions (``google.api_core.exceptions.NotFound``, ...) carrying
Databricks' message. Messages are importable from :mod:`lro_server.v1`. This package needs
only grpcio, protobuf, googleapis-common-protos and google-api-core
(``pip install 'lro-server[client]'``).
"""

from lro_server.client.aio import AsyncClient, AsyncOperations
from lro_server.client.operation import Operation
from lro_server.client.operation_async import AsyncOperation
from lro_server.client.sync import Client, Operations

__all__ = [
    "AsyncClient",
    "AsyncOperation",
    "AsyncOperations",
    "Client",
    "Operation",
    "Operations",
]
