"""The exceptions a durable method sees: a child, promise or step that failed.

Exception
└── OperationFailed     a child operation failed or was cancelled, a promise was
    │                   rejected (``.code``, ``.message``, ``.operation``)
    └── StepFailed      a step raised and has no attempts left (code UNKNOWN)
"""

from __future__ import annotations


class OperationFailed(Exception):
    """A child operation ended with an error (or was cancelled), or a promise was rejected.

    Raising it out of a method fails the method's operation with the same code and
    message.

    Args:
        code: The ``google.rpc.Code`` number (1 CANCELLED, 4 DEADLINE_EXCEEDED, ...).
        message: The child's error message, or the rejection's.
        operation: The child operation's name, or the promise id.
    """

    def __init__(self, code: int, message: str, operation: str = "") -> None:
        super().__init__(message)
        self.code = int(code)
        self.message = message
        self.operation = operation

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code}, message={self.message!r})"


class StepFailed(OperationFailed):
    """A step raised and has no attempts left; ``message`` is ``"Type: text"`` of what it
    raised (the same on every replay; the original exception is not kept)."""
