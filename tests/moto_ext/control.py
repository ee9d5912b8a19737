"""WSGI middleware in front of moto: request log and test-control endpoints.

    GET  /_bpl/requests               {"requests": [{"method", "path", "target", "action", "resource", "status", "time"}]}
    POST /_bpl/requests/reset         clears the log
    POST /_bpl/reset                  moto's /moto-api/reset (all state) plus the log
    POST /_bpl/pipeline-execution     {"pipelineName", "pipelineExecutionId"?, "status", "statusSummary"?}
    GET  /_bpl/health                 {"ok": true, "moto": "<version>"}

Execution engine (engine.py; README.md, "Execution engine"):

    POST /_bpl/push                   {"repository", "branch", "commit", "files"?, "commitMessage"?, "authorDate"?}
                                      -> {"started": [{"pipelineName", "pipelineExecutionId"}]}
    POST /_bpl/pull-request           {"repository", "event", "pullRequestId", "sourceBranch",
                                       "destinationBranch", "commit", "files"?, ...} -> same
    GET  /_bpl/engine                 the engine settings
    POST /_bpl/engine                 {"actionSeconds"?, "manualStartBranch"?, "matchesMode"?,
                                       "startOnCreate"?} -> the engine settings
    GET  /_bpl/action-outcome         {"rules": [...]}
    POST /_bpl/action-outcome         {"pipelineName"?, "stageName"?, "actionName"?, "projectName"?,
                                       "status", "summary"?, "seconds"?, "count"?} | {"clear": true}
                                      -> {"rules": [...]}

Only AWS API calls are logged: /_bpl/* and /moto-api/* are not.
"""

from __future__ import annotations

import io
import json
import threading
import time
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs

import moto
from moto.moto_api._internal import moto_api_backend

from . import patches
from .engine import ENGINE

Environ = dict[str, Any]
StartResponse = Callable[..., Any]


class RequestLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[dict[str, Any]] = []

    def add(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._entries.append(entry)

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def _read_body(environ: Environ) -> bytes:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    return environ["wsgi.input"].read(length) if length else b""


def _query_action(environ: Environ) -> tuple[str | None, bytes | None]:
    """Action of a query-protocol call (IAM, STS)."""
    content_type = environ.get("CONTENT_TYPE", "")
    if environ.get("REQUEST_METHOD") != "POST" or "x-www-form-urlencoded" not in content_type:
        return None, None
    body = _read_body(environ)
    action = parse_qs(body.decode("utf-8", "replace")).get("Action", [None])[0]
    return action, body


# Request members that name the resource of a CodeBuild / CodePipeline call, so that
# tests sharing one moto can count only the calls about their own resources.
_RESOURCE_KEYS = ("name", "pipelineName", "projectName", "resourceArn", "arn")


def _json_resource(body: bytes) -> str | None:
    try:
        params = json.loads(body or b"{}")
    except ValueError:
        return None
    if not isinstance(params, dict):
        return None
    for key in _RESOURCE_KEYS:
        if isinstance(params.get(key), str):
            return params[key]
    pipeline = params.get("pipeline")
    if isinstance(pipeline, dict) and isinstance(pipeline.get("name"), str):
        return pipeline["name"]
    names = params.get("names")
    if isinstance(names, list) and names and isinstance(names[0], str):
        return names[0]
    return None


class ControlApp:
    def __init__(self, moto_app: Callable[[Environ, StartResponse], Iterable[bytes]]):
        self.moto_app = moto_app
        self.log = RequestLog()

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_bpl/"):
            return self._control(environ, start_response, path)
        if path.startswith("/moto-api"):
            if path.rstrip("/") == "/moto-api/reset":
                ENGINE.reset()
            return self.moto_app(environ, start_response)

        target = environ.get("HTTP_X_AMZ_TARGET")
        resource = None
        if target:
            action = target.rsplit(".", 1)[-1]
            body = _read_body(environ)
            resource = _json_resource(body)
        else:
            action, body = _query_action(environ)
        if body is not None:
            # moto reads the body again.
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        entry = {
            "method": environ.get("REQUEST_METHOD"),
            "path": path,
            "target": target,
            "action": action,
            "resource": resource,
            "status": None,
            "time": time.time(),
        }

        def recording_start_response(status: str, headers: Any, *args: Any) -> Any:
            entry["status"] = int(status.split(" ", 1)[0])
            return start_response(status, headers, *args)

        try:
            return self.moto_app(environ, recording_start_response)
        finally:
            self.log.add(entry)

    def _control(self, environ: Environ, start_response: StartResponse, path: str) -> Iterable[bytes]:
        # Every endpoint reads its whole body, used or not: werkzeug drains what a handler left
        # unread with a read that only EOF ends, so a body arriving just after the answer held
        # the connection, and a client waiting for the server to close, forever.
        environ["wsgi.input"] = io.BytesIO(_read_body(environ))
        method = environ.get("REQUEST_METHOD")
        try:
            if method == "GET" and path == "/_bpl/requests":
                return _json(start_response, 200, {"requests": self.log.snapshot()})
            if method == "GET" and path == "/_bpl/health":
                return _json(start_response, 200, {"ok": True, "moto": moto.__version__})
            if method == "POST" and path == "/_bpl/requests/reset":
                self.log.clear()
                return _json(start_response, 200, {"ok": True})
            if method == "POST" and path == "/_bpl/reset":
                ENGINE.reset()
                moto_api_backend.reset()
                self.log.clear()
                return _json(start_response, 200, {"ok": True})
            if method == "POST" and path == "/_bpl/push":
                return _json(start_response, 200, ENGINE.push(_read_json(environ)))
            if method == "POST" and path == "/_bpl/pull-request":
                return _json(start_response, 200, ENGINE.pull_request(_read_json(environ)))
            if method == "GET" and path == "/_bpl/engine":
                return _json(start_response, 200, ENGINE.get_config())
            if method == "POST" and path == "/_bpl/engine":
                return _json(start_response, 200, ENGINE.configure(_read_json(environ)))
            if method == "GET" and path == "/_bpl/action-outcome":
                return _json(start_response, 200, ENGINE.list_outcomes())
            if method == "POST" and path == "/_bpl/action-outcome":
                return _json(start_response, 200, ENGINE.set_outcome(_read_json(environ)))
            if method == "POST" and path == "/_bpl/pipeline-execution":
                body = _read_json(environ)
                result = patches.set_execution_status(
                    body["pipelineName"],
                    body.get("pipelineExecutionId"),
                    body["status"],
                    body.get("statusSummary"),
                )
                return _json(start_response, 200, result)
        except Exception as error:  # noqa: BLE001 - reported to the test as JSON
            return _json(start_response, 400, {"error": f"{type(error).__name__}: {error}"})
        return _json(start_response, 404, {"error": f"no control endpoint {method} {path}"})


def _read_json(environ: Environ) -> dict[str, Any]:
    body = json.loads(_read_body(environ) or b"{}")
    if not isinstance(body, dict):
        raise ValueError("the request body must be a JSON object")
    return body


def _json(start_response: StartResponse, status: int, body: Any) -> list[bytes]:
    payload = json.dumps(body).encode()
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found"}[status]
    start_response(
        f"{status} {reason}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))],
    )
    return [payload]
