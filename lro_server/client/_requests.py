"""Requests from keyword arguments, and the response and metadata types of each method.

A start method takes its request message, or its fields as keyword arguments with the
Databricks REST body's names (``job_id=1, notebook_params={...}``), as proto3 JSON does;
``timeout`` may be a ``datetime.timedelta`` or a number of seconds. The types an operation
resolves to come from the method's ``google.longrunning.operation_info`` option.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from google.longrunning import operations_pb2
from google.protobuf import descriptor_pool, json_format
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

import lro_server.v1  # registers every message of the API in the default pool

_DURATION = "google.protobuf.Duration"


def method_descriptor(service: str, method: str) -> MethodDescriptor:
    """The descriptor of ``service/method`` (e.g. ``lro.databricks.v1.Jobs``, ``RunNow``)."""
    found: MethodDescriptor = (
        descriptor_pool.Default().FindServiceByName(service).methods_by_name[method]
    )
    return found


def path(method: MethodDescriptor) -> str:
    """The gRPC path ``/package.Service/Method``."""
    return f"/{method.containing_service.full_name}/{method.name}"


def request_class(method: MethodDescriptor) -> type[Message]:
    """The request message class of ``method``."""
    return GetMessageClass(method.input_type)


def operation_types(method: MethodDescriptor) -> tuple[type[Message], type[Message]]:
    """(response class, metadata class) of a method that returns an operation."""
    info = method.GetOptions().Extensions[operations_pb2.operation_info]
    pool = descriptor_pool.Default()
    response = GetMessageClass(pool.FindMessageTypeByName(info.response_type))
    metadata = GetMessageClass(pool.FindMessageTypeByName(info.metadata_type))
    return response, metadata


def types_of_operation(
    name: str, operation: operations_pb2.Operation
) -> tuple[type[Message], type[Message]]:
    """(response, metadata) classes of operation ``name``, known by its metadata's type.

    Raises:
        ValueError: Its metadata is of a type this client does not know.
    """
    type_url = operation.metadata.type_url
    wanted = type_url.rsplit("/", 1)[-1]
    for service in lro_server.v1.SERVICES:
        for method in descriptor_pool.Default().FindServiceByName(service).methods:
            if method.output_type.full_name != operations_pb2.Operation.DESCRIPTOR.full_name:
                continue
            response, metadata = operation_types(method)
            if metadata.DESCRIPTOR.full_name == wanted:
                return response, metadata
    raise ValueError(f"{name} has metadata of unknown type {type_url!r}")


def build_request(
    method: MethodDescriptor, request: Message | None, fields: Mapping[str, Any]
) -> Message:
    """The request of ``method``: ``request`` as given, or built from ``fields``.

    Raises:
        TypeError: Both or a wrong request type, or a field the request does not have.
        ValueError: A field value the request cannot hold.
    """
    cls = request_class(method)
    caller = f"{method.name}()"
    if request is not None:
        if fields:
            raise TypeError(f"{caller} takes a request or fields, not both")
        if not isinstance(request, cls):
            raise TypeError(f"{caller} takes a {cls.DESCRIPTOR.full_name}")
        return request
    values = {name: _json_value(cls, name, value) for name, value in fields.items()}
    message = cls()
    try:
        json_format.ParseDict(values, message)
    except json_format.ParseError as exc:
        text = str(exc)
        if "has no field named" in text:
            unknown = text.split('has no field named "', 1)[1].split('"', 1)[0]
            raise TypeError(f"{caller} got an unexpected field {unknown!r}") from None
        raise ValueError(f"{caller}: {text.splitlines()[0]}") from None
    return message


def _json_value(cls: type[Message], name: str, value: Any) -> Any:
    field = cls.DESCRIPTOR.fields_by_name.get(name)
    if field is None or field.message_type is None:
        return value
    if field.message_type.full_name == _DURATION:
        if isinstance(value, datetime.timedelta):
            return f"{value.total_seconds():.9f}s"
        if isinstance(value, int | float) and not isinstance(value, bool):
            return f"{float(value):.9f}s"
    if isinstance(value, Message):
        return json_format.MessageToDict(value, preserving_proto_field_name=True)
    return value
