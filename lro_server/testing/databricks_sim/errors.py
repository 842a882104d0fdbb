"""Databricks-shaped API errors that simulator handlers raise."""

from __future__ import annotations


class ApiError(Exception):
    """An error answered as Databricks does: an HTTP status and ``{"error_code", "message"}``.

    Attributes:
        status: The HTTP status code.
        error_code: The Databricks error code, e.g. ``INVALID_PARAMETER_VALUE``.
        message: The human-readable message.
    """

    def __init__(self, status: int, error_code: str, message: str) -> None:
        super().__init__(f"{status} {error_code}: {message}")
        self.status = status
        self.error_code = error_code
        self.message = message

    def body(self) -> dict[str, str]:
        """Returns the JSON body Databricks sends for this error."""
        return {"error_code": self.error_code, "message": self.message}


def invalid_parameter(message: str) -> ApiError:
    """400 INVALID_PARAMETER_VALUE: also what Databricks answers for many unknown ids."""
    return ApiError(400, "INVALID_PARAMETER_VALUE", message)


def invalid_state(message: str) -> ApiError:
    """400 INVALID_STATE: the entity is not in a state that allows the action."""
    return ApiError(400, "INVALID_STATE", message)


def not_found(message: str) -> ApiError:
    """404 RESOURCE_DOES_NOT_EXIST."""
    return ApiError(404, "RESOURCE_DOES_NOT_EXIST", message)


def conflict(message: str) -> ApiError:
    """409 RESOURCE_CONFLICT."""
    return ApiError(409, "RESOURCE_CONFLICT", message)


def unauthenticated() -> ApiError:
    """401 without a usable bearer token."""
    return ApiError(
        401,
        "UNAUTHENTICATED",
        "Credential was not sent or was of an unsupported type for this API.",
    )
