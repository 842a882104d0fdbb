"""The operation future of the synchronous client: google-api-core's, waiting with WaitOperation.

:class:`Operation` is a ``google.api_core.operation.Operation`` (``result(timeout)``,
``done()``, ``cancel()``, ``cancelled()``, ``metadata``, ``add_done_callback``, and the
google-api-core exceptions it raises), except in how it waits: instead of polling
GetOperation with backoff, it holds a WaitOperation call, which the server answers the
moment the operation is done (or at the call's timeout, with the latest state, when it
simply asks again). No polling loop, no added latency.
"""

from __future__ import annotations

import time
from typing import Any

from google.api_core import operation as api_operation

from lro_server.client._following import TRANSIENT, Following, OperationCalls, WaitSchedule

__all__ = ["Operation", "OperationCalls"]


class Operation(Following[OperationCalls], api_operation.Operation):
    """A long-running operation of lro-server, as a google-api-core future.

    Args:
        operation: The operation as started (or read).
        calls: The client's Operations calls.
        result_type: Message class of the response.
        metadata_type: Message class of the metadata.
    """

    def _blocking_poll(self, timeout: Any = None, retry: Any = None, polling: Any = None) -> None:
        """Wait with WaitOperation until done, or raise TimeoutError after ``timeout`` s."""
        del retry  # the calls are made by the client; polling has no meaning here
        if self._result_set:
            return
        if timeout is api_operation.Operation._DEFAULT_VALUE:
            timeout = (polling or self._polling).timeout
        schedule = WaitSchedule(self.name, timeout)
        while not self._result_set:
            seconds = schedule.next_wait()
            try:
                self._operation = self._wait(seconds)
            except TRANSIENT:
                time.sleep(schedule.pause())
                continue
            schedule.answered()
            self._set_result_from_operation()  # type: ignore[no-untyped-call]
