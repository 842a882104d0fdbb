"""Runs Cloud Workflows YAML in PyPI workflows-emulator 1.10.0, with its known gaps patched.

The emulator differs from Cloud Workflows in ways that matter here; each patch below names
the gap it closes:

- OIDC auth raises NotImplementedError → requests carry a fake bearer token instead
  (recorded, so tests can assert the workflow asked for OIDC auth);
- ``parallel for`` shares one variable scope across threads → iterations run one after
  the other, each in its own scope, and only ``shared`` variables flow back;
- ``sys.sleep`` (and the retry backoff) really sleep → a virtual clock advances instead
  (with a 1000-fold compressed real pause so the server under test gets the CPU), and
  ``sys.now`` reads that clock;
- retry ignores ``initial_delay`` → nothing to patch: backoff delays are virtual anyway;
- error tags are ``HTTPError``, Cloud Workflows says ``HttpError`` → both tags are set;
  a requests ConnectionError escapes the emulator → it becomes a ``ConnectionError`` tag;
- ``true``/``false``/``null`` are not names in expressions → injected into the library;
- ``load_workflow`` results are mutated by a run → every run gets a deep copy;
- ``sys.get_env`` reads os.environ → it reads the harness's environment first;
- Cloud Workflows binds the whole execution argument to ``main``'s one parameter, the
  emulator looks the parameter's name up inside the argument → the argument is wrapped.
"""

from __future__ import annotations

import contextlib
import copy
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

import requests
from workflows_emulator import main as wf_main
from workflows_emulator import render as wf_render
from workflows_emulator.lib import http_utils, sys_utils
from workflows_emulator.utils import WorkflowError

FAKE_TOKEN = "fake-oidc-token"
#: Real seconds paused per virtual second slept.
TIME_COMPRESSION = 0.001
_LOCK = threading.Lock()


class VirtualClock:
    """Seconds since the epoch that only move when the workflow sleeps."""

    def __init__(self) -> None:
        self.now = time.time()
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(float(seconds))
        self.now += float(seconds)
        time.sleep(min(float(seconds) * TIME_COMPRESSION, 0.05))


class EmulatedWorkflow:
    """A workflow definition run by workflows-emulator with the patches above.

    Args:
        path: The YAML file (validated against the emulator's schema on load).
        env: The workflow's environment (``user_env_vars``), read by ``sys.get_env``.
    """

    def __init__(self, path: str, env: Mapping[str, str] | None = None) -> None:
        self.definition = wf_main.load_workflow(path)
        self.env = dict(env or {})
        self.clock = VirtualClock()
        #: Every HTTP request made: (method, url, headers, body).
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []

    def run(self, args: Mapping[str, Any]) -> Any:
        """Execute ``main`` with ``args``; returns its result."""
        definition = copy.deepcopy(self.definition)
        params = definition["main"].get("params") or ["args"]
        with _LOCK, self.patched():
            return wf_main.execute_workflow(definition, {params[0]: dict(args)})

    @contextlib.contextmanager
    def patched(self) -> Iterator[None]:
        saved: list[tuple[Any, str, Any]] = []

        def patch(owner: Any, name: str, value: Any) -> None:
            saved.append((owner, name, getattr(owner, name)))
            setattr(owner, name, value)

        original_request = http_utils.request
        original_execute_step = wf_main.execute_step

        def request(method: str, url: str, **kwargs: Any) -> Any:
            headers = dict(kwargs.pop("headers", None) or {})
            auth = kwargs.pop("auth", None)
            if auth and auth.get("type") == "OIDC":
                headers["Authorization"] = f"Bearer {FAKE_TOKEN}"
                auth = None
            self.requests.append((method, url, headers, kwargs.get("body")))
            return original_request(method, url, headers=headers, auth=auth, **kwargs)

        def execute_step(step_id: Any, config: Any, context: Any) -> Any:
            try:
                return original_execute_step(step_id, config, context)
            except WorkflowError as err:
                tags = err.payload.get("tags") if hasattr(err.payload, "get") else None
                if isinstance(tags, list) and "HTTPError" in tags and "HttpError" not in tags:
                    tags.append("HttpError")
                raise
            except requests.ConnectionError as exc:
                raise WorkflowError(
                    message=str(exc), tags=["ConnectionError", "ConnectionFailedError"]
                ) from exc

        def get_env(*args: Any) -> Any:
            if args and args[0] in self.env:
                return self.env[args[0]]
            return sys_utils.os.getenv(*args)

        patch(http_utils, "request", request)
        patch(wf_main, "execute_step", execute_step)
        patch(wf_main.StepParallel, "execute", _sequential_parallel)
        patch(wf_main, "sleep", self.clock.sleep)
        patch(sys_utils, "sleep", self.clock.sleep)
        patch(sys_utils, "now", lambda: self.clock.now)
        patch(sys_utils, "get_env", get_env)
        library = wf_render.STANDARD_LIBRARY
        added = [k for k in ("true", "false", "null") if k not in library]
        library.update({"true": True, "false": False, "null": None})
        try:
            yield
        finally:
            for owner, name, value in reversed(saved):
                setattr(owner, name, value)
            for key in added:
                library.pop(key, None)


def _sequential_parallel(self: Any) -> tuple[Any, Any, Any]:
    """StepParallel.execute: iterations/branches in turn, each in its own scope."""
    config = self.config["parallel"]
    shared = list(config.get("shared", []))
    if "for" in config:
        loop = config["for"]
        values = wf_main.StepFor(self.step_id, config, self.context).get_iterator()
        units = []
        for index, value in enumerate(values):
            bound = {loop.get("value", "__value"): value}
            if "index" in loop:
                bound[loop["index"]] = index
            units.append((bound, {"steps": loop["steps"]}))
    else:
        units = [({}, next(iter(b.values()))) for b in config["branches"]]
    for bound, steps in units:
        scope = copy.deepcopy(self.context)
        scope.update(bound)
        scope, _next, _ret = wf_main.StepSteps(self.step_id, steps, scope).execute()
        for name in shared:
            if name in scope:
                self.context[name] = scope[name]
    return self.context, self.config.get("next"), None
