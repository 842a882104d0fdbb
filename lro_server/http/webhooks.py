"""``POST /databricks/webhooks/jobs``: Databricks job notifications as refresh hints.

Basic auth with the configured user and password (compared in constant time); a call
without them is 401 and changes nothing, a body that is not a job notification is 400 and
changes nothing. A valid one makes the replica tracking each named run poll it now
(:class:`lro_server.core.hints.PushHints`); the answer says how many operations were
refreshed. Nothing in the payload but the run id is used.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hmac
import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from lro_server.core.errors import InvalidArgument, LroError, NotFound, Unauthenticated, Unavailable
from lro_server.databricks.webhook import run_ids
from lro_server.http.errors import error_body

_log = logging.getLogger(__name__)

#: The path Databricks' generic webhook destination is pointed at.
PATH = "/databricks/webhooks/jobs"
#: Largest body accepted (a job notification is well under 4 KiB).
MAX_BODY_BYTES = 64 * 1024


@dataclasses.dataclass(frozen=True, slots=True)
class WebhookCredentials:
    """The basic-auth user and password Databricks' destination sends."""

    username: str
    password: str


def webhook_routes(
    credentials: WebhookCredentials | None, refresh_run: Callable[[int], Awaitable[int]]
) -> list[web.RouteDef]:
    """The webhook route (answering 404 with the reason when webhooks are not configured)."""

    async def receive(request: web.Request) -> web.Response:
        if credentials is None:
            return _error(
                NotFound("webhook push is off: set LRO_WEBHOOK_USERNAME and LRO_WEBHOOK_PASSWORD")
            )
        if not _authorized(request.headers.get("Authorization", ""), credentials):
            response = _error(Unauthenticated("basic authentication is required"))
            response.headers["WWW-Authenticate"] = 'Basic realm="lro-server webhooks"'
            return response
        body = await request.content.read(MAX_BODY_BYTES + 1)
        if len(body) > MAX_BODY_BYTES:
            return _error(InvalidArgument(f"body over {MAX_BODY_BYTES} bytes"), status=413)
        try:
            ids = run_ids(json.loads(body or b"null"))
        except (ValueError, UnicodeDecodeError):
            return _error(InvalidArgument("the webhook body is not JSON"))
        except InvalidArgument as exc:
            return _error(exc)
        refreshed = 0
        try:
            for run_id in ids:
                refreshed += await refresh_run(run_id)
        except LroError as exc:
            # The store is down: Databricks retries failed deliveries; polling goes on.
            _log.warning("webhook for runs %s not applied: %s", ids, exc)
            return _error(Unavailable("the hint could not be applied; polling goes on"))
        return web.json_response({"refreshed": refreshed})

    return [web.post(PATH, receive)]


def _authorized(header: str, credentials: WebhookCredentials) -> bool:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return False
    username, separator, password = decoded.partition(":")
    # Both compared, always: the time taken does not tell which one was wrong.
    user_ok = hmac.compare_digest(username.encode(), credentials.username.encode())
    password_ok = hmac.compare_digest(password.encode(), credentials.password.encode())
    return bool(separator) and user_ok and password_ok


def _error(error: LroError, *, status: int | None = None) -> web.Response:
    code, body = error_body(error, status)
    return web.Response(status=code, body=body, content_type="application/json")
