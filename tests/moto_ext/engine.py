"""CodePipeline execution engine for the test bed.

moto 5.2.5 marks every pipeline execution ``Succeeded`` the moment it starts. The engine
replaces that with executions that run their stages in order, in a background thread,
the way the AWS CodePipeline documentation describes. README.md ("Execution engine")
lists every rule with its AWS source; the comments here name the same sources.

Sources cited below:

* botocore: the CodePipeline service model shipped with botocore in the moto venv,
  ``botocore/data/codepipeline/2015-07-09/service-2.json.gz`` (botocore 1.44.8).
* User guide pages by their file names: "concepts-how-it-works", "pipelines-filter",
  "pipelines-triggers", "syntax-glob", "action-reference-CodestarConnectionSource",
  "stage-conditions", "rule-reference-VariableCheck".

Everything runs under one condition variable (``Engine._cond``): API handlers and
execution threads hold it only while reading or changing engine state, and execution
threads release it while they wait, so calls that do not touch executions (CodeBuild,
GetPipeline, ...) never wait for it, and executions never block one another.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import os
import re
import threading
import time
import traceback
import uuid
from datetime import datetime, timezone
from typing import Any, Iterable

from moto.codepipeline.exceptions import (
    PipelineExecutionNotFoundException,
    PipelineNotFoundException,
)
from moto.codepipeline.models import CodePipelineBackend, codepipeline_backends
from moto.core.exceptions import JsonRESTError
from moto.utilities.utils import get_partition

# ------------------------------------------------------------------------- exceptions


class _CodePipelineError(JsonRESTError):
    code = 400

    def __init__(self, message: str):
        super().__init__(type(self).__name__, message)


# botocore: StartPipelineExecution, PutApprovalResult, ... errors.
class ValidationException(_CodePipelineError):
    pass


class InvalidNextTokenException(_CodePipelineError):
    pass


class PipelineExecutionNotStoppableException(_CodePipelineError):
    pass


class DuplicatedStopRequestException(_CodePipelineError):
    pass


class InvalidApprovalTokenException(_CodePipelineError):
    pass


class ApprovalAlreadyCompletedException(_CodePipelineError):
    pass


class StageNotFoundException(_CodePipelineError):
    pass


class ActionNotFoundException(_CodePipelineError):
    pass


class ControlError(ValueError):
    """A malformed control request (answered with HTTP 400)."""


# ----------------------------------------------------------------------------- config

DEFAULT_CONFIG: dict[str, Any] = {
    # Seconds a CodeBuild (or other non-source, non-approval) action runs.
    "actionSeconds": 0.3,
    # What #{SourceVariables.BranchName} is for a manual start with a COMMIT_ID
    # override: "configured" (the action's BranchName) or "commit" (the branch the
    # commit was pushed on). AWS does not document it.
    "manualStartBranch": "configured",
    # VariableCheck MATCHES: "fullmatch" (Java String.matches) or "search" (Java
    # Matcher.find). AWS only says "regular expression".
    "matchesMode": "fullmatch",
    # Start an execution (trigger CreatePipeline) when a pipeline is created.
    "startOnCreate": False,
}

_CONFIG_CHOICES = {
    "manualStartBranch": ("configured", "commit"),
    "matchesMode": ("fullmatch", "search"),
}

TERMINAL = ("Succeeded", "Failed", "Stopped", "Superseded", "Cancelled")
PIPELINE_STATUSES = TERMINAL + ("InProgress", "Stopping")
PR_EVENTS = ("OPEN", "UPDATED", "CLOSED")
SOURCE_PROVIDER = "CodeStarSourceConnection"
# Pipeline-level variable and output-variable references: #{Namespace.Name}.
_VARIABLE_REF = re.compile(r"#\{([A-Za-z0-9@\-_]+)\.([A-Za-z0-9@\-_.]+)\}")


def _now() -> float:
    return time.time()


def _epoch(value: datetime) -> float:
    # moto keeps naive UTC datetimes; AWS JSON 1.1 timestamps are epoch seconds.
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.timestamp()


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _default_page_size() -> int:
    # Same knob as patches._page_size: the bed lowers list page sizes.
    value = os.environ.get("BPL_MOTO_PAGE_SIZE", "")
    return int(value) if value.isdigit() and int(value) > 0 else 100


def _fake_sha(*parts: str) -> str:
    """A deterministic 40-hex commit for a branch nothing was pushed to."""
    return hashlib.sha1("\0".join(parts).encode()).hexdigest()


# ------------------------------------------------------------------------------- globs


def glob_regex(pattern: str) -> re.Pattern[str]:
    """The regex of an AWS trigger glob ("syntax-glob" user-guide page).

    ``*`` matches within a path segment, ``**`` across segments, ``?`` one character
    other than ``/``, ``[...]`` a character class (``[!...]`` negated), ``{a,b}`` one
    of the alternatives, ``\\`` escapes the next character. The whole name must match.
    """
    out: list[str] = []
    i, n = 0, len(pattern)
    in_group = False
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if c == "*":
            if i + 1 < n and pattern[i + 1] == "*":
                out.append(".*")
                i += 2
            else:
                out.append("[^/]*")
                i += 1
            continue
        if c == "?":
            out.append("[^/]")
        elif c == "[":
            j = pattern.find("]", i + 2 if i + 1 < n and pattern[i + 1] in "!^" else i + 1)
            if j < 0:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1 : j]
                negate = body[:1] in ("!", "^")
                if negate:
                    body = body[1:]
                body = body.replace("\\", "\\\\").replace("]", "\\]")
                out.append(f"[{'^' if negate else ''}{body}]")
                i = j + 1
                continue
        elif c == "{" and not in_group:
            out.append("(?:")
            in_group = True
        elif c == "}" and in_group:
            out.append(")")
            in_group = False
        elif c == "," and in_group:
            out.append("|")
        else:
            out.append(re.escape(c))
        i += 1
    if in_group:
        out.append(")")
    return re.compile("".join(out), re.DOTALL)


def glob_match(pattern: str, name: str) -> bool:
    try:
        return glob_regex(pattern).fullmatch(name) is not None
    except re.error:
        return False


def _branch_criteria_match(criteria: dict[str, Any] | None, branch: str) -> bool:
    # "pipelines-filter": excludes take priority over includes; an absent criteria (or
    # absent includes) admits every branch.
    if not criteria:
        return True
    if any(glob_match(p, branch) for p in criteria.get("excludes") or []):
        return False
    includes = criteria.get("includes") or []
    return not includes or any(glob_match(p, branch) for p in includes)


def _file_criteria_match(criteria: dict[str, Any] | None, files: list[str]) -> bool:
    # Bed choice: with a filePaths criteria, a push/PR without file information never
    # matches; otherwise it matches when at least one file is included (or includes
    # are absent) and not excluded.
    if not criteria:
        return True
    if not files:
        return False
    includes = criteria.get("includes") or []
    excludes = criteria.get("excludes") or []
    for path in files:
        if any(glob_match(p, path) for p in excludes):
            continue
        if not includes or any(glob_match(p, path) for p in includes):
            return True
    return False


def push_filter_matches(flt: dict[str, Any], branch: str, files: list[str]) -> bool:
    # botocore GitPushFilter: tags, branches, filePaths. The bed pushes branches only,
    # so a tags filter never matches.
    if flt.get("tags"):
        return False
    return _branch_criteria_match(flt.get("branches"), branch) and _file_criteria_match(
        flt.get("filePaths"), files
    )


def pull_request_filter_matches(
    flt: dict[str, Any], event: str, destination: str, files: list[str]
) -> bool:
    # botocore GitPullRequestFilter: events, branches (the destination branch, per
    # "pipelines-filter"), filePaths. Absent events: every event (bed choice).
    events = flt.get("events") or []
    if events and event not in events:
        return False
    return _branch_criteria_match(flt.get("branches"), destination) and _file_criteria_match(
        flt.get("filePaths"), files
    )


# ------------------------------------------------------------------------------ models


def _actions_of(declaration: dict[str, Any]) -> Iterable[tuple[str, dict[str, Any]]]:
    for stage in declaration.get("stages") or []:
        for action in stage.get("actions") or []:
            yield stage["name"], action


def _type(action: dict[str, Any]) -> dict[str, Any]:
    return action.get("actionTypeId") or {}


def _is_source(action: dict[str, Any]) -> bool:
    return _type(action).get("category") == "Source"


class Source:
    """The revision one source action of one execution builds."""

    def __init__(self, action: dict[str, Any], commit: str, branch: str | None,
                 message: str, author_date: str, extra: dict[str, str] | None = None):
        cfg = action.get("configuration") or {}
        self.action_name = action["name"]
        self.provider = _type(action).get("provider")
        self.repository = cfg.get("FullRepositoryId") or cfg.get("RepositoryName") or ""
        self.connection_arn = cfg.get("ConnectionArn", "")
        self.commit = commit
        self.branch = branch
        self.message = message
        self.author_date = author_date
        self.extra = extra or {}
        self.artifacts = [a["name"] for a in action.get("outputArtifacts") or [] if "name" in a]

    def output_variables(self) -> dict[str, str]:
        if self.provider != SOURCE_PROVIDER:
            return {"CommitId": self.commit}
        # "action-reference-CodestarConnectionSource", output variables; pull-request
        # runs add SourceBranchName, DestinationBranchName, PullRequestId.
        variables = {
            "AuthorDate": self.author_date,
            "BranchName": self.branch or "",
            "CommitId": self.commit,
            "CommitMessage": self.message,
            "ConnectionArn": self.connection_arn,
            "FullRepositoryName": self.repository,
            "ProviderType": "GitHub",
        }
        variables.update(self.extra)
        return variables

    def revision_summary(self) -> str:
        if self.provider != SOURCE_PROVIDER:
            return self.message
        return json.dumps({"ProviderType": "GitHub", "CommitMessage": self.message})

    def revision_url(self) -> str | None:
        if self.provider != SOURCE_PROVIDER or not self.connection_arn:
            return None
        region = self.connection_arn.split(":")[3] if self.connection_arn.count(":") >= 5 else "us-east-1"
        return (
            f"https://{region}.console.aws.amazon.com/codesuite/settings/connections/redirect"
            f"?connectionArn={self.connection_arn}&referenceType=COMMIT"
            f"&FullRepositoryId={self.repository}&Commit={self.commit}"
        )


class ActionRun:
    """One action execution (botocore ActionExecutionDetail / ActionExecution)."""

    def __init__(self, execution: "Execution", stage: str, action: dict[str, Any], seq: int):
        self.id = str(uuid.uuid4())
        self.seq = seq
        self.execution = execution
        self.stage = stage
        self.action = action
        self.name = action["name"]
        self.start = _now()
        self.updated = self.start
        self.status = "InProgress"
        self.summary: str | None = None
        self.token: str | None = None
        self.external_id: str | None = None
        self.external_summary: str | None = None
        self.output_variables: dict[str, str] = {}
        self.resolved_configuration: dict[str, str] = {}
        self.deadline: float | None = None
        self.outcome: tuple[str, str | None] = ("Succeeded", None)

    def latest_execution(self, with_token: bool) -> dict[str, Any]:
        # botocore ActionExecution (GetPipelineState actionStates[].latestExecution).
        body: dict[str, Any] = {
            "actionExecutionId": self.id,
            "status": self.status,
            "lastStatusChange": self.updated,
        }
        if self.summary:
            body["summary"] = self.summary
        if self.token and self.status == "InProgress" and with_token:
            body["token"] = self.token
        if self.external_id:
            body["externalExecutionId"] = self.external_id
        return body

    def detail(self, region: str) -> dict[str, Any]:
        # botocore ActionExecutionDetail (ListActionExecutions).
        action = self.action
        inputs: dict[str, Any] = {
            "actionTypeId": _type(action),
            "configuration": dict(action.get("configuration") or {}),
            "resolvedConfiguration": dict(self.resolved_configuration),
            "region": action.get("region") or region,
            "inputArtifacts": [{"name": a["name"]} for a in action.get("inputArtifacts") or []],
        }
        if action.get("roleArn"):
            inputs["roleArn"] = action["roleArn"]
        if action.get("namespace"):
            inputs["namespace"] = action["namespace"]
        output: dict[str, Any] = {
            "outputArtifacts": [{"name": a["name"]} for a in action.get("outputArtifacts") or []]
            if self.status == "Succeeded" else [],
            "outputVariables": dict(self.output_variables) if self.status == "Succeeded" else {},
        }
        result: dict[str, Any] = {}
        if self.external_id:
            result["externalExecutionId"] = self.external_id
        if self.external_summary:
            result["externalExecutionSummary"] = self.external_summary
        if result:
            output["executionResult"] = result
        return {
            "pipelineExecutionId": self.execution.id,
            "actionExecutionId": self.id,
            "pipelineVersion": self.execution.version,
            "stageName": self.stage,
            "actionName": self.name,
            "startTime": self.start,
            "lastUpdateTime": self.updated,
            "status": self.status,
            "input": inputs,
            "output": output,
        }


class Execution:
    def __init__(self, runtime: "Runtime", declaration: dict[str, Any], seq: int,
                 trigger: dict[str, str], variables: list[dict[str, str]],
                 sources: dict[str, Source]):
        self.id = str(uuid.uuid4())
        self.seq = seq
        self.runtime = runtime
        self.declaration = declaration
        self.name = declaration["name"]
        self.version = declaration.get("version", 1)
        self.mode = declaration.get("executionMode") or "SUPERSEDED"
        self.start = _now()
        self.updated = self.start
        self.status = "InProgress"
        self.summary: str | None = None
        self.trigger = trigger
        self.variables = variables
        self.sources = sources
        self.stop_trigger: dict[str, str] | None = None
        self.stopping = False
        # done: the engine no longer runs this execution (its thread returns).
        self.done = False
        self.stage_status: dict[str, str] = {}
        self.conditions: dict[str, dict[str, Any]] = {}
        self.runs: list[ActionRun] = []
        self.current_stage: str | None = None
        self.outputs: dict[str, dict[str, str]] = {
            "variables": {v["name"]: v["resolvedValue"] for v in variables},
            "codepipeline": {"PipelineExecutionId": self.id},
        }

    def touch(self) -> None:
        self.updated = _now()

    def source_revisions(self) -> list[dict[str, Any]]:
        revisions = []
        for source in self.sources.values():
            revision: dict[str, Any] = {
                "actionName": source.action_name,
                "revisionId": source.commit,
                "revisionSummary": source.revision_summary(),
            }
            url = source.revision_url()
            if url:
                revision["revisionUrl"] = url
            revisions.append(revision)
        return revisions

    def artifact_revisions(self) -> list[dict[str, Any]]:
        revisions = []
        for source in self.sources.values():
            for name in source.artifacts or [source.action_name]:
                revision: dict[str, Any] = {
                    "name": name,
                    "revisionId": source.commit,
                    "revisionSummary": source.revision_summary(),
                    "created": self.start,
                }
                url = source.revision_url()
                if url:
                    revision["revisionUrl"] = url
                revisions.append(revision)
        return revisions

    def summary_dict(self) -> dict[str, Any]:
        # botocore PipelineExecutionSummary.
        body: dict[str, Any] = {
            "pipelineExecutionId": self.id,
            "status": self.status,
            "startTime": self.start,
            "lastUpdateTime": self.updated,
            "sourceRevisions": self.source_revisions(),
            "trigger": dict(self.trigger),
            "executionMode": self.mode,
            "executionType": "STANDARD",
        }
        if self.summary:
            body["statusSummary"] = self.summary
        if self.stop_trigger is not None:
            body["stopTrigger"] = dict(self.stop_trigger)
        return body

    def to_dict(self) -> dict[str, Any]:
        # botocore PipelineExecution.
        body: dict[str, Any] = {
            "pipelineName": self.name,
            "pipelineVersion": self.version,
            "pipelineExecutionId": self.id,
            "status": self.status,
            "artifactRevisions": self.artifact_revisions(),
            "variables": [dict(v) for v in self.variables],
            "trigger": dict(self.trigger),
            "executionMode": self.mode,
            "executionType": "STANDARD",
        }
        if self.summary:
            body["statusSummary"] = self.summary
        return body


class Runtime:
    """Engine state of one pipeline (one moto CodePipeline object)."""

    def __init__(self, key: tuple[str, str, str], pipeline: Any):
        self.key = key
        self.pipeline = pipeline
        self.executions: dict[str, Execution] = {}
        # Stage locks ("concepts-how-it-works", rule 1): stage name -> execution in it.
        self.holders: dict[str, Execution] = {}
        # Executions waiting to enter a stage, oldest first. SUPERSEDED keeps at most
        # one (rule 3); QUEUED keeps them all in arrival order.
        self.waiting: dict[str, list[Execution]] = {}
        self.tokens: dict[str, str] = {}


# ------------------------------------------------------------------------------ engine


class Engine:
    def __init__(self) -> None:
        self._cond = threading.Condition(threading.RLock())
        self._seq = itertools.count(1)
        self._reset_state()

    def _reset_state(self) -> None:
        self.config: dict[str, Any] = dict(DEFAULT_CONFIG)
        self.runtimes: dict[tuple[str, str, str], Runtime] = {}
        # (repository, commit) -> {"branch", "message", "authorDate"}
        self.commits: dict[tuple[str, str], dict[str, str]] = {}
        # (repository, branch) -> latest commit pushed to it
        self.heads: dict[tuple[str, str], str] = {}
        self.outcome_rules: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ control API

    def reset(self) -> None:
        with self._cond:
            for runtime in self.runtimes.values():
                for execution in runtime.executions.values():
                    execution.done = True
            self._reset_state()
            self._cond.notify_all()

    def get_config(self) -> dict[str, Any]:
        with self._cond:
            return dict(self.config)

    def configure(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._cond:
            update = dict(self.config)
            for key, value in body.items():
                if key not in DEFAULT_CONFIG:
                    raise ControlError(f"unknown engine setting {key!r}; known: {sorted(DEFAULT_CONFIG)}")
                if key == "actionSeconds":
                    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                        raise ControlError("actionSeconds must be a number >= 0")
                    value = float(value)
                elif key == "startOnCreate":
                    if not isinstance(value, bool):
                        raise ControlError("startOnCreate must be a boolean")
                elif value not in _CONFIG_CHOICES[key]:
                    raise ControlError(f"{key} must be one of {list(_CONFIG_CHOICES[key])}")
                update[key] = value
            self.config = update
            return dict(self.config)

    def set_outcome(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._cond:
            if body.get("clear"):
                self.outcome_rules.clear()
                return {"rules": []}
            status = body.get("status")
            if status not in ("Succeeded", "Failed"):
                raise ControlError("status must be Succeeded or Failed")
            rule: dict[str, Any] = {"status": status}
            for key in ("pipelineName", "stageName", "actionName", "projectName", "summary"):
                if body.get(key) is not None:
                    if not isinstance(body[key], str):
                        raise ControlError(f"{key} must be a string")
                    rule[key] = body[key]
            if body.get("seconds") is not None:
                if not isinstance(body["seconds"], (int, float)) or body["seconds"] < 0:
                    raise ControlError("seconds must be a number >= 0")
                rule["seconds"] = float(body["seconds"])
            if body.get("count") is not None:
                if not isinstance(body["count"], int) or body["count"] < 1:
                    raise ControlError("count must be an integer >= 1")
                rule["count"] = body["count"]
            self.outcome_rules.append(rule)
            return {"rules": [dict(r) for r in self.outcome_rules]}

    def list_outcomes(self) -> dict[str, Any]:
        with self._cond:
            return {"rules": [dict(r) for r in self.outcome_rules]}

    def _record_commit(self, repository: str, branch: str, commit: str,
                       message: str | None, author_date: str | None) -> dict[str, str]:
        meta = {
            "branch": branch,
            "message": message if message is not None else f"bed commit {commit[:7]} on {branch}",
            "authorDate": author_date or _iso(_now()),
        }
        self.commits[(repository, commit)] = meta
        self.heads[(repository, branch)] = commit
        return meta

    def push(self, body: dict[str, Any]) -> dict[str, Any]:
        repository = _required_str(body, "repository")
        branch = _required_str(body, "branch")
        commit = _required_str(body, "commit")
        files = _files(body)
        with self._cond:
            meta = self._record_commit(
                repository, branch, commit, body.get("commitMessage"), body.get("authorDate")
            )
            started = []
            for backend, pipeline in self._all_pipelines():
                declaration = pipeline.pipeline
                for _, action in _actions_of(declaration):
                    if not self._watches(action, repository):
                        continue
                    if not self._push_starts(declaration, action, branch, files):
                        continue
                    source = Source(action, commit, branch, meta["message"], meta["authorDate"])
                    execution = self._start(
                        backend, pipeline, _webhook_trigger(action), None, {action["name"]: source}
                    )
                    started.append({"pipelineName": execution.name,
                                    "pipelineExecutionId": execution.id})
                    break  # one execution per pipeline and push
            return {"started": started}

    def pull_request(self, body: dict[str, Any]) -> dict[str, Any]:
        repository = _required_str(body, "repository")
        event = _required_str(body, "event")
        if event not in PR_EVENTS:
            raise ControlError(f"event must be one of {list(PR_EVENTS)}")
        pr_id = body.get("pullRequestId")
        if isinstance(pr_id, int) and not isinstance(pr_id, bool):
            pr_id = str(pr_id)
        if not isinstance(pr_id, str) or not pr_id:
            raise ControlError("pullRequestId must be a non-empty string")
        source_branch = _required_str(body, "sourceBranch")
        destination = _required_str(body, "destinationBranch")
        commit = _required_str(body, "commit")
        files = _files(body)
        with self._cond:
            meta = self._record_commit(
                repository, source_branch, commit, body.get("commitMessage"), body.get("authorDate")
            )
            started = []
            for backend, pipeline in self._all_pipelines():
                declaration = pipeline.pipeline
                for _, action in _actions_of(declaration):
                    if not self._watches(action, repository):
                        continue
                    filters = _trigger_filters(declaration, action, "pullRequest")
                    if not any(
                        pull_request_filter_matches(f, event, destination, files) for f in filters
                    ):
                        continue
                    extra = {
                        "SourceBranchName": source_branch,
                        "DestinationBranchName": destination,
                        "PullRequestId": pr_id,
                    }
                    # A pull-request run builds the source branch ("pipelines-filter");
                    # BranchName = source branch is a bed choice (not documented).
                    source = Source(action, commit, source_branch, meta["message"],
                                    meta["authorDate"], extra)
                    execution = self._start(
                        backend, pipeline, _webhook_trigger(action), None, {action["name"]: source}
                    )
                    started.append({"pipelineName": execution.name,
                                    "pipelineExecutionId": execution.id})
                    break
            return {"started": started}

    def set_status(self, pipeline_name: str, execution_id: str | None, status: str,
                   summary: str | None) -> dict[str, Any]:
        """Test hook: force an execution's status (the newest if no id)."""
        if status not in PIPELINE_STATUSES:
            raise ControlError(f"status must be one of {list(PIPELINE_STATUSES)}")
        with self._cond:
            for backend, pipeline in self._all_pipelines():
                if pipeline.pipeline["name"] != pipeline_name:
                    continue
                runtime = self._runtime(backend, pipeline)
                if execution_id is None:
                    execution = next(reversed(runtime.executions.values()), None)
                else:
                    execution = runtime.executions.get(execution_id)
                if execution is None:
                    raise PipelineExecutionNotFoundException(
                        f"no execution {execution_id!r} for pipeline {pipeline_name!r}"
                    )
                if status in TERMINAL and not execution.done:
                    self._finish(execution, status, summary)
                else:
                    execution.status = status
                    execution.summary = summary
                    execution.touch()
                    self._cond.notify_all()
                return {"pipelineExecutionId": execution.id, "status": status}
        raise PipelineNotFoundException(f"no pipeline named {pipeline_name!r}")

    # --------------------------------------------------------------- AWS API: hooks

    def pipeline_created(self, backend: CodePipelineBackend, name: str) -> None:
        with self._cond:
            pipeline = backend.pipelines.get(name)
            if pipeline is None:
                return
            self._drop_runtime((backend.account_id, backend.region_name, name))
            if self.config["startOnCreate"]:
                trigger = {"triggerType": "CreatePipeline", "triggerDetail": _caller(backend)}
                self._start(backend, pipeline, trigger, None, {})

    def pipeline_updated(self, backend: CodePipelineBackend, name: str) -> None:
        # botocore PipelineExecution.status: "Cancelled: The pipeline's definition was
        # updated before the pipeline execution could be completed."
        with self._cond:
            runtime = self.runtimes.get((backend.account_id, backend.region_name, name))
            if runtime is None:
                return
            for execution in runtime.executions.values():
                if execution.status in ("InProgress", "Stopping"):
                    if execution.done:
                        execution.status = "Cancelled"
                        execution.touch()
                    else:
                        self._finish(execution, "Cancelled", None)

    def pipeline_deleted(self, backend: CodePipelineBackend, name: str) -> None:
        with self._cond:
            self._drop_runtime((backend.account_id, backend.region_name, name))

    # ------------------------------------------------------------ AWS API: requests

    def start_manual(self, backend: CodePipelineBackend, name: str,
                     variables: list[dict[str, Any]] | None,
                     source_revisions: list[dict[str, Any]] | None,
                     token: str | None) -> str:
        with self._cond:
            pipeline = _pipeline(backend, name)
            runtime = self._runtime(backend, pipeline)
            # botocore StartPipelineExecutionInput.clientRequestToken: idempotencyToken.
            if token and token in runtime.tokens:
                return runtime.tokens[token]
            declaration = pipeline.pipeline
            resolved = _resolve_pipeline_variables(declaration, variables)
            overrides = _commit_overrides(declaration, source_revisions)
            sources: dict[str, Source] = {}
            for _, action in _actions_of(declaration):
                if not _is_source(action) or action["name"] not in overrides:
                    continue
                commit = overrides[action["name"]]
                source = self._default_source(action)
                repository = source.repository
                meta = self.commits.get((repository, commit), {})
                branch = source.branch
                if self.config["manualStartBranch"] == "commit" and meta.get("branch"):
                    branch = meta["branch"]
                sources[action["name"]] = Source(
                    action, commit, branch, meta.get("message", ""),
                    meta.get("authorDate") or _iso(_now()),
                )
            trigger = {"triggerType": "StartPipelineExecution", "triggerDetail": _caller(backend)}
            execution = self._start(backend, pipeline, trigger, resolved, sources)
            if token:
                runtime.tokens[token] = execution.id
            return execution.id

    def get_execution(self, backend: CodePipelineBackend, name: str, execution_id: str) -> dict[str, Any]:
        with self._cond:
            return self._execution(backend, name, execution_id).to_dict()

    def list_executions(self, backend: CodePipelineBackend, name: str,
                        max_results: Any, next_token: str | None,
                        flt: dict[str, Any] | None) -> dict[str, Any]:
        with self._cond:
            pipeline = _pipeline(backend, name)
            runtime = self._runtime(backend, pipeline)
            executions = sorted(runtime.executions.values(), key=lambda e: -e.seq)
            stage = ((flt or {}).get("succeededInStage") or {}).get("stageName")
            if stage:
                # botocore SucceededInStageFilter: "successfully completed the stage in
                # the current pipeline version".
                version = pipeline.pipeline.get("version")
                executions = [
                    e for e in executions
                    if e.stage_status.get(stage) == "Succeeded" and e.version == version
                ]
            page, token = _seq_page(executions, next_token, max_results)
            body: dict[str, Any] = {"pipelineExecutionSummaries": [e.summary_dict() for e in page]}
            if token:
                body["nextToken"] = token
            return body

    def list_action_executions(self, backend: CodePipelineBackend, name: str,
                               flt: dict[str, Any] | None, max_results: Any,
                               next_token: str | None) -> dict[str, Any]:
        with self._cond:
            pipeline = _pipeline(backend, name)
            runtime = self._runtime(backend, pipeline)
            execution_id = (flt or {}).get("pipelineExecutionId")
            if execution_id:
                executions = [self._execution(backend, name, execution_id)]
            else:
                executions = list(runtime.executions.values())
            runs = sorted((r for e in executions for r in e.runs), key=lambda r: -r.seq)
            page, token = _seq_page(runs, next_token, max_results)
            body: dict[str, Any] = {
                "actionExecutionDetails": [r.detail(backend.region_name) for r in page]
            }
            if token:
                body["nextToken"] = token
            return body

    def pipeline_state(self, backend: CodePipelineBackend, name: str) -> dict[str, Any]:
        with self._cond:
            pipeline = _pipeline(backend, name)
            runtime = self._runtime(backend, pipeline)
            executions = sorted(runtime.executions.values(), key=lambda e: -e.seq)
            runs = sorted((r for e in executions for r in e.runs), key=lambda r: -r.seq)
            mode = pipeline.pipeline.get("executionMode") or "SUPERSEDED"
            stage_states = []
            for stage in pipeline.pipeline["stages"]:
                stage_name = stage["name"]
                action_states = []
                for action in stage["actions"]:
                    state: dict[str, Any] = {"actionName": action["name"]}
                    latest_run = next(
                        (r for r in runs if r.stage == stage_name and r.name == action["name"]), None
                    )
                    if latest_run is not None:
                        # botocore PutApprovalResultInput.token: in PARALLEL mode the token
                        # is not in GetPipelineState (use ListActionExecutions' externalExecutionId).
                        state["latestExecution"] = latest_run.latest_execution(mode != "PARALLEL")
                    action_states.append(state)
                stage_state: dict[str, Any] = {
                    "stageName": stage_name,
                    "inboundTransitionState": {"enabled": True},
                    "actionStates": action_states,
                }
                latest = next((e for e in executions if stage_name in e.stage_status), None)
                if latest is not None:
                    stage_state["latestExecution"] = {
                        "pipelineExecutionId": latest.id,
                        "status": latest.stage_status[stage_name],
                        "type": "STANDARD",
                    }
                    condition = latest.conditions.get(stage_name)
                    if condition is not None:
                        stage_state["beforeEntryConditionState"] = _condition_state(condition)
                waiting = runtime.waiting.get(stage_name) or []
                if waiting:
                    inbound = [
                        {"pipelineExecutionId": e.id, "status": "InProgress", "type": "STANDARD"}
                        for e in waiting
                    ]
                    stage_state["inboundExecution"] = inbound[0]
                    stage_state["inboundExecutions"] = inbound
                stage_states.append(stage_state)
            return {
                "pipelineName": pipeline.pipeline["name"],
                "pipelineVersion": pipeline.pipeline["version"],
                "stageStates": stage_states,
                "created": _epoch(pipeline._created),
                "updated": _epoch(pipeline._updated),
            }

    def put_approval_result(self, backend: CodePipelineBackend, name: str, stage_name: str,
                            action_name: str, result: dict[str, Any] | None,
                            token: str | None) -> dict[str, Any]:
        with self._cond:
            pipeline = _pipeline(backend, name)
            stage = next((s for s in pipeline.pipeline["stages"] if s["name"] == stage_name), None)
            if stage is None:
                raise StageNotFoundException(f"Stage {stage_name} not found in pipeline {name}")
            if not any(a["name"] == action_name for a in stage["actions"]):
                raise ActionNotFoundException(
                    f"Action {action_name} not found in stage {stage_name} of pipeline {name}"
                )
            result = result or {}
            status = result.get("status")
            if status not in ("Approved", "Rejected"):
                raise ValidationException("result.status must be Approved or Rejected")
            if not token:
                raise ValidationException("token is required")
            runtime = self._runtime(backend, pipeline)
            runs = [
                r for e in runtime.executions.values() for r in e.runs
                if r.stage == stage_name and r.name == action_name and r.token == token
            ]
            waiting = [r for r in runs if r.status == "InProgress"]
            if not waiting:
                # botocore: ApprovalAlreadyCompletedException "The approval action has
                # already been approved or rejected"; InvalidApprovalTokenException "The
                # approval request already received a response or has expired".
                if any(r.status in ("Succeeded", "Failed") for r in runs):
                    raise ApprovalAlreadyCompletedException(
                        f"The approval action {action_name} has already been approved or rejected"
                    )
                raise InvalidApprovalTokenException(
                    f"The token {token} is not valid for an open approval of {stage_name}/{action_name}"
                )
            run = waiting[0]
            run.status = "Succeeded" if status == "Approved" else "Failed"
            run.summary = result.get("summary") or None
            run.external_summary = run.summary
            run.updated = _now()
            run.execution.touch()
            self._cond.notify_all()
            return {"approvedAt": run.updated}

    def stop(self, backend: CodePipelineBackend, name: str, execution_id: str,
             abandon: bool, reason: str | None) -> dict[str, Any]:
        # botocore StopPipelineExecution: Stopping while in-progress actions finish
        # (or are abandoned), then Stopped. "concepts-how-it-works", stopping:
        # "stop and wait" cannot be repeated on a Stopping execution, "stop and
        # abandon" can.
        with self._cond:
            execution = self._execution(backend, name, execution_id)
            if execution.status == "Stopping":
                if not abandon:
                    raise DuplicatedStopRequestException(
                        f"Execution {execution_id} is already Stopping"
                    )
            elif execution.status != "InProgress":
                raise PipelineExecutionNotStoppableException(
                    f"Pipeline execution {execution_id} is not in progress "
                    f"(status {execution.status})"
                )
            execution.stop_trigger = {"reason": reason} if reason else {}
            running = [r for r in execution.runs if r.status == "InProgress"]
            if execution.done:
                execution.status = "Stopped"
                execution.summary = reason
                execution.touch()
            elif abandon or not running:
                self._finish(execution, "Stopped", reason)
            else:
                execution.stopping = True
                execution.status = "Stopping"
                execution.summary = reason
                if execution.current_stage:
                    execution.stage_status[execution.current_stage] = "Stopping"
                execution.touch()
                self._cond.notify_all()
            return {"pipelineExecutionId": execution.id}

    # ------------------------------------------------------------------ internals

    def _all_pipelines(self) -> Iterable[tuple[CodePipelineBackend, Any]]:
        # dict.values: iterate the instantiated backends without creating new ones.
        for per_account in list(dict.values(codepipeline_backends)):
            for backend in list(dict.values(per_account)):
                for pipeline in list(backend.pipelines.values()):
                    yield backend, pipeline

    def _runtime(self, backend: CodePipelineBackend, pipeline: Any) -> Runtime:
        key = (backend.account_id, backend.region_name, pipeline.pipeline["name"])
        runtime = self.runtimes.get(key)
        if runtime is not None and runtime.pipeline is not pipeline:
            # The pipeline was deleted and created again (or moto was reset).
            self._drop_runtime(key)
            runtime = None
        if runtime is None:
            runtime = self.runtimes[key] = Runtime(key, pipeline)
        return runtime

    def _drop_runtime(self, key: tuple[str, str, str]) -> None:
        runtime = self.runtimes.pop(key, None)
        if runtime is not None:
            for execution in runtime.executions.values():
                execution.done = True
            self._cond.notify_all()

    def _execution(self, backend: CodePipelineBackend, name: str, execution_id: str) -> Execution:
        pipeline = _pipeline(backend, name)
        execution = self._runtime(backend, pipeline).executions.get(execution_id or "")
        if execution is None:
            raise PipelineExecutionNotFoundException(
                f"Account '{backend.account_id}' does not have an execution with id "
                f"'{execution_id}' for pipeline '{name}'"
            )
        return execution

    @staticmethod
    def _watches(action: dict[str, Any], repository: str) -> bool:
        return (
            _type(action).get("provider") == SOURCE_PROVIDER
            and (action.get("configuration") or {}).get("FullRepositoryId") == repository
        )

    @staticmethod
    def _push_starts(declaration: dict[str, Any], action: dict[str, Any], branch: str,
                     files: list[str]) -> bool:
        # botocore PipelineDeclaration.triggers: "When a trigger configuration is
        # specified, default change detection for repository and branch commits is
        # disabled."
        if declaration.get("triggers"):
            return any(
                push_filter_matches(f, branch, files)
                for f in _trigger_filters(declaration, action, "push")
            )
        # "pipelines-triggers", no filter: "starts your pipeline on any push to the
        # default branch specified as part of action configuration";
        # "action-reference-CodestarConnectionSource": DetectChanges defaults to true.
        cfg = action.get("configuration") or {}
        detect = str(cfg.get("DetectChanges", "true")).lower() == "true"
        return detect and cfg.get("BranchName") == branch

    def _default_source(self, action: dict[str, Any]) -> Source:
        """What a source action builds without a trigger revision: the head of its
        configured branch ("pipelines-filter": BranchName is what a manual start uses)."""
        cfg = action.get("configuration") or {}
        repository = cfg.get("FullRepositoryId") or cfg.get("RepositoryName") or ""
        branch = cfg.get("BranchName")
        commit = self.heads.get((repository, branch or ""))
        if commit is None:
            commit = _fake_sha(repository, branch or "", action["name"])
        meta = self.commits.get((repository, commit), {})
        return Source(action, commit, branch, meta.get("message", ""),
                      meta.get("authorDate") or _iso(_now()))

    def _start(self, backend: CodePipelineBackend, pipeline: Any, trigger: dict[str, str],
               variables: list[dict[str, str]] | None, sources: dict[str, Source]) -> Execution:
        runtime = self._runtime(backend, pipeline)
        declaration = copy.deepcopy(pipeline.pipeline)
        if variables is None:
            variables = _resolve_pipeline_variables(declaration, None)
        all_sources: dict[str, Source] = {}
        for _, action in _actions_of(declaration):
            if _is_source(action):
                all_sources[action["name"]] = sources.get(action["name"]) or self._default_source(action)
        execution = Execution(runtime, declaration, next(self._seq), trigger, variables, all_sources)
        runtime.executions[execution.id] = execution
        stages = declaration.get("stages") or []
        if stages:
            # Arrive at (and, if it is free, enter) the first stage now, under the lock:
            # executions queue in start order whatever order their threads run in, and
            # one started a moment before another is not superseded before it ran.
            self._arrive(execution, stages[0]["name"])
            self._try_enter(execution, stages[0]["name"])
        thread = threading.Thread(
            target=self._run, args=(execution,), name=f"bpl-execution-{execution.id[:8]}",
            daemon=True,
        )
        thread.start()
        return execution

    # ---------------------------------------------------------- execution thread

    def _run(self, execution: Execution) -> None:
        try:
            with self._cond:
                self._run_locked(execution)
        except Exception as error:  # noqa: BLE001 - reported on the execution
            traceback.print_exc()
            with self._cond:
                if not execution.done:
                    self._finish(execution, "Failed", f"bed engine error: {error!r}")

    def _run_locked(self, execution: Execution) -> None:
        stages = execution.declaration.get("stages") or []
        for index, stage in enumerate(stages):
            name = stage["name"]
            if index > 0:
                self._arrive(execution, name)
            if not self._enter(execution, name):
                return
            execution.current_stage = name
            verdict, summary = self._before_entry(execution, stage)
            if verdict == "SKIP":
                # "stage-conditions": a beforeEntry condition with result SKIP skips the
                # stage; its actions do not run.
                execution.stage_status[name] = "Skipped"
                self._leave(execution, name)
                execution.touch()
                continue
            if verdict is not None:
                execution.stage_status[name] = "Failed"
                self._finish(execution, "Failed", summary)
                return
            execution.stage_status[name] = "InProgress"
            execution.touch()
            if not self._run_stage(execution, stage):
                return
            execution.stage_status[name] = "Succeeded"
            self._leave(execution, name)
            execution.touch()
            if execution.stopping:
                self._finish(execution, "Stopped", execution.summary)
                return
        self._finish(execution, "Succeeded", None)

    def _arrive(self, execution: Execution, stage: str) -> None:
        runtime = execution.runtime
        if execution.done or execution.mode == "PARALLEL":
            return
        waiting = runtime.waiting.setdefault(stage, [])
        if execution.mode == "QUEUED":
            # Executions queue at the stage entry in arrival order; none overtakes another.
            waiting.append(execution)
            return
        # SUPERSEDED ("concepts-how-it-works", rule 3): a more recent execution overtakes
        # the one waiting for the same stage, which ends Superseded.
        for other in list(waiting):
            if other.seq < execution.seq:
                self._finish(other, "Superseded", None)
            else:
                self._finish(execution, "Superseded", None)
                return
        waiting.append(execution)

    def _try_enter(self, execution: Execution, stage: str) -> bool:
        """Takes the stage's lock if the execution is first in line and the stage free."""
        runtime = execution.runtime
        if execution.done:
            return False
        if execution.mode == "PARALLEL" or runtime.holders.get(stage) is execution:
            return True
        waiting = runtime.waiting.get(stage) or []
        if stage not in runtime.holders and waiting and waiting[0] is execution:
            waiting.pop(0)
            runtime.holders[stage] = execution
            self._cond.notify_all()
            return True
        return False

    def _enter(self, execution: Execution, stage: str) -> bool:
        """Waits until the execution holds the stage (False if it ended meanwhile)."""
        while not self._try_enter(execution, stage):
            if execution.done:
                return False
            self._cond.wait()
        return True

    def _leave(self, execution: Execution, stage: str) -> None:
        runtime = execution.runtime
        if runtime.holders.get(stage) is execution:
            del runtime.holders[stage]
        if execution.current_stage == stage:
            execution.current_stage = None
        self._cond.notify_all()

    def _before_entry(self, execution: Execution, stage: dict[str, Any]) -> tuple[str | None, str | None]:
        """Evaluates the stage's beforeEntry conditions: (result, summary) of the first
        condition whose rules do not all pass, or (None, None)."""
        conditions = (stage.get("beforeEntry") or {}).get("conditions") or []
        if not conditions:
            return None, None
        now = _now()
        record: dict[str, Any] = {"time": now, "conditions": []}
        verdict: str | None = None
        verdict_summary: str | None = None
        for condition in conditions:
            rule_states = []
            failures = []
            for rule in condition.get("rules") or []:
                passed, summary = self._evaluate_rule(execution, rule)
                rule_states.append({
                    "ruleName": rule.get("name"),
                    "ruleExecutionId": str(uuid.uuid4()),
                    "status": "Succeeded" if passed else "Failed",
                    "summary": summary,
                })
                if not passed:
                    failures.append(summary)
            passed_all = not failures
            record["conditions"].append({
                "status": "Succeeded" if passed_all else "Failed",
                "summary": "All rules passed" if passed_all else failures[0],
                "rules": rule_states,
            })
            if not passed_all and verdict is None:
                verdict = condition.get("result") or "FAIL"
                verdict_summary = f"beforeEntry condition of stage {stage['name']}: {failures[0]}"
        record["status"] = "Failed" if verdict else "Succeeded"
        record["summary"] = verdict_summary or "All conditions passed"
        execution.conditions[stage["name"]] = record
        return verdict, verdict_summary

    def _evaluate_rule(self, execution: Execution, rule: dict[str, Any]) -> tuple[bool, str]:
        provider = (rule.get("ruleTypeId") or {}).get("provider")
        if provider != "VariableCheck":
            return True, f"bed: {provider} rules are not evaluated and pass"
        # "rule-reference-VariableCheck": Variable, Value, Operator (EQ, NE, CONTAINS,
        # MATCHES).
        cfg = rule.get("configuration") or {}
        variable_expr = cfg.get("Variable", "")
        operator = cfg.get("Operator", "")
        variable, missing = self._resolve(execution, variable_expr)
        if missing:
            return False, f"Variable {missing[0]} could not be resolved"
        value, missing = self._resolve(execution, cfg.get("Value", ""))
        if missing:
            return False, f"Variable {missing[0]} could not be resolved"
        if operator == "EQ":
            passed = variable == value
        elif operator == "NE":
            passed = variable != value
        elif operator == "CONTAINS":
            passed = value in variable
        elif operator == "MATCHES":
            try:
                regex = re.compile(value)
            except re.error as error:
                return False, f"Invalid regular expression {value!r}: {error}"
            if self.config["matchesMode"] == "search":
                passed = regex.search(variable) is not None
            else:
                passed = regex.fullmatch(variable) is not None
        else:
            return False, f"Unsupported operator {operator!r}"
        verb = "passed" if passed else "failed"
        return passed, f"{variable_expr} = {variable!r} {operator} {value!r}: {verb}"

    def _resolve(self, execution: Execution, text: Any) -> tuple[str, list[str]]:
        """Replaces #{Namespace.Name} references; returns the text and the references
        that could not be resolved (left in place)."""
        if not isinstance(text, str):
            return str(text), []
        missing: list[str] = []

        def replace(match: re.Match[str]) -> str:
            value = execution.outputs.get(match.group(1), {}).get(match.group(2))
            if value is None:
                missing.append(match.group(0))
                return match.group(0)
            return value

        return _VARIABLE_REF.sub(replace, text), missing

    def _run_stage(self, execution: Execution, stage: dict[str, Any]) -> bool:
        """Runs the stage's actions by runOrder; False if the execution ended."""
        name = stage["name"]
        actions = stage.get("actions") or []
        orders = sorted({int(a.get("runOrder") or 1) for a in actions})
        for position, order in enumerate(orders):
            if execution.done:
                return False
            runs = [
                self._start_action(execution, name, a)
                for a in actions if int(a.get("runOrder") or 1) == order
            ]
            execution.touch()
            self._cond.notify_all()
            while True:
                if execution.done:
                    return False
                now = _now()
                for run in runs:
                    if run.status == "InProgress" and run.deadline is not None and now >= run.deadline:
                        self._complete(execution, run, *run.outcome)
                pending = [r for r in runs if r.status == "InProgress"]
                if not pending:
                    break
                deadlines = [r.deadline - now for r in pending if r.deadline is not None]
                self._cond.wait(timeout=max(min(deadlines), 0.001) if deadlines else None)
            for run in runs:
                if run.status == "Succeeded" and run.action.get("namespace"):
                    execution.outputs[run.action["namespace"]] = dict(run.output_variables)
            failed = [r for r in runs if r.status == "Failed"]
            if failed:
                execution.stage_status[name] = "Failed"
                run = failed[0]
                self._finish(execution, "Failed",
                             f"Action {run.name} in stage {name} failed: {run.summary or 'Failed'}")
                return False
            if execution.stopping:
                # Stop and wait: in-progress actions completed, no further ones start.
                execution.stage_status[name] = "Stopped" if position < len(orders) - 1 else "Succeeded"
                self._finish(execution, "Stopped", execution.summary)
                return False
        return True

    def _start_action(self, execution: Execution, stage: str, action: dict[str, Any]) -> ActionRun:
        run = ActionRun(execution, stage, action, next(self._seq))
        execution.runs.append(run)
        for key, value in (action.get("configuration") or {}).items():
            run.resolved_configuration[key] = self._resolve(execution, value)[0]
        category = _type(action).get("category")
        provider = _type(action).get("provider")
        if category == "Source":
            source = execution.sources.get(action["name"]) or self._default_source(action)
            run.output_variables = source.output_variables()
            run.external_id = source.commit
            run.external_summary = source.revision_summary()
            self._complete(execution, run, "Succeeded", None)
        elif category == "Approval":
            # botocore ActionExecution.token: identifies the open approval request.
            run.token = str(uuid.uuid4())
            run.external_id = run.token
        else:
            rule = self._outcome_rule(execution, stage, action)
            seconds = self.config["actionSeconds"]
            if rule is not None:
                run.outcome = (rule["status"], rule.get("summary"))
                seconds = rule.get("seconds", seconds)
            run.deadline = run.start + seconds
            if provider == "CodeBuild":
                project = (action.get("configuration") or {}).get("ProjectName", "project")
                run.external_id = f"{project}:{uuid.uuid4()}"
        return run

    def _complete(self, execution: Execution, run: ActionRun, status: str, summary: str | None) -> None:
        run.status = status
        run.summary = summary
        if summary:
            run.external_summary = summary
        run.updated = _now()
        execution.touch()
        self._cond.notify_all()

    def _outcome_rule(self, execution: Execution, stage: str, action: dict[str, Any]) -> dict[str, Any] | None:
        project = (action.get("configuration") or {}).get("ProjectName")
        # The most recently added matching rule wins.
        for rule in reversed(self.outcome_rules):
            if rule.get("pipelineName", execution.name) != execution.name:
                continue
            if rule.get("stageName", stage) != stage:
                continue
            if rule.get("actionName", action["name"]) != action["name"]:
                continue
            if "projectName" in rule and rule["projectName"] != project:
                continue
            if "count" in rule:
                rule["count"] -= 1
                if rule["count"] <= 0:
                    self.outcome_rules.remove(rule)
            return rule
        return None

    def _finish(self, execution: Execution, status: str, summary: str | None) -> None:
        if execution.done:
            return
        now = _now()
        execution.done = True
        execution.status = status
        execution.summary = summary
        execution.updated = now
        for run in execution.runs:
            if run.status == "InProgress":
                run.status = "Abandoned"
                run.updated = now
        stage = execution.current_stage
        if stage and execution.stage_status.get(stage) in ("InProgress", "Stopping"):
            execution.stage_status[stage] = {
                "Stopped": "Stopped",
                "Cancelled": "Cancelled",
                "Failed": "Failed",
                "Succeeded": "Succeeded",
            }.get(status, "Cancelled")
        runtime = execution.runtime
        for name, holder in list(runtime.holders.items()):
            if holder is execution:
                del runtime.holders[name]
        for waiting in runtime.waiting.values():
            if execution in waiting:
                waiting.remove(execution)
        execution.current_stage = None
        self._cond.notify_all()


# ----------------------------------------------------------------------------- helpers


def _pipeline(backend: CodePipelineBackend, name: str) -> Any:
    pipeline = backend.pipelines.get(name)
    if pipeline is None:
        raise PipelineNotFoundException(
            f"Account '{backend.account_id}' does not have a pipeline with name '{name}'"
        )
    return pipeline


def _caller(backend: CodePipelineBackend) -> str:
    # botocore ExecutionTrigger.triggerDetail: "the user ARN for a user-initiated
    # start-pipeline-execution CLI command". moto's default caller (STS GetCallerIdentity).
    return f"arn:{get_partition(backend.region_name)}:sts::{backend.account_id}:user/moto"


def _webhook_trigger(action: dict[str, Any]) -> dict[str, str]:
    # botocore TriggerType WebhookV2: a V2 pipeline's Git trigger. triggerDetail is the
    # source action's connection ARN (bed choice; not documented).
    return {
        "triggerType": "WebhookV2",
        "triggerDetail": (action.get("configuration") or {}).get("ConnectionArn", ""),
    }


def _trigger_filters(declaration: dict[str, Any], action: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    filters: list[dict[str, Any]] = []
    for trigger in declaration.get("triggers") or []:
        git = trigger.get("gitConfiguration") or {}
        if git.get("sourceActionName") == action["name"]:
            filters.extend(git.get(kind) or [])
    return filters


def _resolve_pipeline_variables(declaration: dict[str, Any],
                                given: list[dict[str, Any]] | None) -> list[dict[str, str]]:
    """botocore StartPipelineExecutionInput.variables: overrides of the declared
    pipeline-level variables; the rest take their defaultValue."""
    declared = {v["name"]: v for v in declaration.get("variables") or [] if "name" in v}
    values: dict[str, str] = {}
    for variable in given or []:
        name = variable.get("name")
        value = variable.get("value")
        if name not in declared:
            raise ValidationException(
                f"Pipeline variable '{name}' is not declared in pipeline "
                f"'{declaration.get('name')}'"
            )
        if not isinstance(value, str) or value == "":
            raise ValidationException(f"Pipeline variable '{name}' needs a non-empty value")
        values[name] = value
    resolved = []
    for name, declaration_entry in declared.items():
        if name in values:
            resolved.append({"name": name, "resolvedValue": values[name]})
        elif declaration_entry.get("defaultValue") is not None:
            resolved.append({"name": name, "resolvedValue": declaration_entry["defaultValue"]})
    return resolved


def _commit_overrides(declaration: dict[str, Any],
                      revisions: list[dict[str, Any]] | None) -> dict[str, str]:
    sources = {a["name"] for _, a in _actions_of(declaration) if _is_source(a)}
    overrides: dict[str, str] = {}
    for revision in revisions or []:
        action = revision.get("actionName")
        kind = revision.get("revisionType")
        value = revision.get("revisionValue")
        if action not in sources:
            raise ValidationException(f"Source action '{action}' not found in the pipeline")
        if kind != "COMMIT_ID":
            raise ValidationException(
                f"bed: revisionType {kind} is not supported (only COMMIT_ID)"
            )
        if not isinstance(value, str) or not value:
            raise ValidationException("revisionValue is required")
        overrides[action] = value
    return overrides


def _seq_page(items: list[Any], token: str | None, max_results: Any) -> tuple[list[Any], str | None]:
    """One page of newest-first items; the token is the seq of the next item, so pages
    stay stable while new executions start."""
    if max_results is None:
        size = _default_page_size()
    else:
        try:
            size = int(max_results)
        except (TypeError, ValueError):
            raise ValidationException("maxResults must be an integer") from None
        if not 1 <= size <= 100:
            raise ValidationException("maxResults must be between 1 and 100")
    if token:
        if not token.isdigit():
            raise InvalidNextTokenException(f"Invalid nextToken {token!r}")
        bound = int(token)
        items = [i for i in items if i.seq <= bound]
    page = items[:size]
    next_token = str(items[size].seq) if len(items) > size else None
    return page, next_token


def _condition_state(record: dict[str, Any]) -> dict[str, Any]:
    # botocore StageConditionState / ConditionState / RuleState.
    return {
        "latestExecution": {"status": record["status"], "summary": record["summary"]},
        "conditionStates": [
            {
                "latestExecution": {
                    "status": condition["status"],
                    "summary": condition["summary"],
                    "lastStatusChange": record["time"],
                },
                "ruleStates": [
                    {
                        "ruleName": rule["ruleName"],
                        "latestExecution": {
                            "ruleExecutionId": rule["ruleExecutionId"],
                            "status": rule["status"],
                            "summary": rule["summary"],
                            "lastStatusChange": record["time"],
                        },
                    }
                    for rule in condition["rules"]
                ],
            }
            for condition in record["conditions"]
        ],
    }


def _required_str(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise ControlError(f"{key} must be a non-empty string")
    return value


def _files(body: dict[str, Any]) -> list[str]:
    files = body.get("files") or []
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise ControlError("files must be a list of strings")
    return files


ENGINE = Engine()
