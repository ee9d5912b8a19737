"""Monkeypatches that close the gaps between moto and the AWS APIs the controller uses.

Each patch names the AWS documentation it follows. They are applied by ``apply()``
(idempotent) before the moto server starts; see README.md in this folder.
"""

from __future__ import annotations

import copy
import json
import threading
from datetime import datetime, timezone
from typing import Any

import moto
import moto.codebuild.responses as cb_responses
from moto.codebuild.exceptions import InvalidInputException
from moto.codebuild.exceptions import ResourceNotFoundException as CbResourceNotFound
from moto.codebuild.models import CodeBuild, CodeBuildBackend
from moto.codebuild.responses import CodeBuildResponse
from moto.codepipeline.exceptions import (
    PipelineExecutionNotFoundException,
    PipelineNotFoundException,
)
from moto.codepipeline.models import (
    CodePipelineBackend,
    PipelineExecution,
    codepipeline_backends,
)
from moto.codepipeline.responses import CodePipelineResponse
from moto.core.exceptions import JsonRESTError
from moto.core.responses import ActionResult
from moto.core.utils import unix_time, utcnow
from moto.utilities.utils import get_partition

# The patches replace or wrap moto internals by name: check them against the pinned
# version rather than failing in surprising ways on another one.
TESTED_MOTO_VERSIONS = {"5.2.5"}

_applied = False
_lock = threading.Lock()


def _page_size(default: int) -> int:
    """The default page size of list calls. BPL_MOTO_PAGE_SIZE lowers it so tests page
    through a few dozen resources, as a production account pages through hundreds."""
    import os

    value = os.environ.get("BPL_MOTO_PAGE_SIZE", "")
    return int(value) if value.isdigit() and int(value) > 0 else default


def _page(items: list[Any], token: str | None, size: int) -> tuple[list[Any], str | None]:
    """One page of `items` from an opaque offset token, and the token of the next page."""
    start = int(token) if token and token.isdigit() else 0
    end = start + size
    return items[start:end], (str(end) if end < len(items) else None)

# ----------------------------------------------------------------------------- CodeBuild

# CodeBuild API Reference, ProjectSource.type.
SOURCE_TYPES = {
    "BITBUCKET", "CODECOMMIT", "CODEPIPELINE", "GITHUB", "GITHUB_ENTERPRISE",
    "GITLAB", "GITLAB_SELF_MANAGED", "NO_SOURCE", "S3",
}
# CodeBuild API Reference, ProjectEnvironment.type.
ENVIRONMENT_TYPES = {
    "WINDOWS_CONTAINER", "LINUX_CONTAINER", "LINUX_GPU_CONTAINER", "ARM_CONTAINER",
    "WINDOWS_SERVER_2019_CONTAINER", "WINDOWS_SERVER_2022_CONTAINER",
    "LINUX_LAMBDA_CONTAINER", "ARM_LAMBDA_CONTAINER",
    "LINUX_EC2", "ARM_EC2", "WINDOWS_EC2", "MAC_ARM",
}
LAMBDA_ENVIRONMENT_TYPES = {"LINUX_LAMBDA_CONTAINER", "ARM_LAMBDA_CONTAINER"}
# CodeBuild API Reference, ProjectEnvironment.computeType.
COMPUTE_TYPES = {
    "BUILD_GENERAL1_SMALL", "BUILD_GENERAL1_MEDIUM", "BUILD_GENERAL1_LARGE",
    "BUILD_GENERAL1_XLARGE", "BUILD_GENERAL1_2XLARGE",
    "BUILD_LAMBDA_1GB", "BUILD_LAMBDA_2GB", "BUILD_LAMBDA_4GB", "BUILD_LAMBDA_8GB",
    "BUILD_LAMBDA_10GB", "ATTRIBUTE_BASED_COMPUTE", "CUSTOM_INSTANCE_TYPE",
}

# CodeBuild API Reference, UpdateProject request members that moto's create_project
# does not store (it keeps only name/description/source/artifacts/environment/...).
PROJECT_FIELDS = (
    "description", "source", "secondarySources", "sourceVersion",
    "secondarySourceVersions", "artifacts", "secondaryArtifacts", "cache",
    "environment", "timeoutInMinutes", "queuedTimeoutInMinutes", "encryptionKey",
    "tags", "vpcConfig", "logsConfig", "fileSystemLocations", "buildBatchConfig",
    "concurrentBuildLimit", "autoRetryLimit",
)


def _validate_source(source: dict[str, Any]) -> None:
    # CodeBuild API Reference, ProjectSource.location: "If the source type is
    # CODEPIPELINE, don't specify this property"; NO_SOURCE has no location either.
    # moto 5.2.5 demands a location for every type.
    if source.get("type") not in SOURCE_TYPES:
        raise InvalidInputException("Invalid type provided: Project source type")
    if source["type"] in ("CODEPIPELINE", "NO_SOURCE"):
        return
    if not source.get("location"):
        raise InvalidInputException("Project source location is required")


def _validate_artifacts(artifacts: dict[str, Any]) -> None:
    # CodeBuild API Reference, ProjectArtifacts.location: "If type is set to
    # CODEPIPELINE, CodePipeline ignores this value"; only S3 needs a location.
    if artifacts.get("type") not in ("CODEPIPELINE", "S3", "NO_ARTIFACTS"):
        raise InvalidInputException("Invalid type provided: Artifact type")
    if artifacts["type"] == "NO_ARTIFACTS" and "location" in artifacts:
        raise InvalidInputException(
            "Invalid artifacts: artifact type NO_ARTIFACTS should have null location"
        )
    if artifacts["type"] == "S3" and not artifacts.get("location"):
        raise InvalidInputException("Project artifacts location is required")


def _validate_environment(environment: dict[str, Any]) -> None:
    # CodeBuild API Reference, ProjectEnvironment: moto 5.2.5 knows neither
    # BUILD_GENERAL1_XLARGE nor the Lambda compute types and environment types.
    env_type = environment.get("type")
    compute = environment.get("computeType")
    if env_type not in ENVIRONMENT_TYPES:
        raise InvalidInputException(f"Invalid type provided: {env_type}")
    if compute not in COMPUTE_TYPES:
        raise InvalidInputException(f"Invalid compute type provided: {compute}")
    # CodeBuild User Guide, "Lambda compute": BUILD_LAMBDA_* compute types run only
    # in the Lambda environment types, and those accept nothing else.
    if (env_type in LAMBDA_ENVIRONMENT_TYPES) != compute.startswith("BUILD_LAMBDA_"):
        raise InvalidInputException(
            f"Invalid compute type {compute} for environment type {env_type}"
        )


def _service_role_arn(backend: CodeBuildBackend, role: str) -> str:
    # Same normalisation as moto's CodeBuild model constructor.
    if role.startswith("arn:"):
        return role
    partition = get_partition(backend.region_name)
    return f"arn:{partition}:iam::{backend.account_id}:role/service-role/{role}"


def _apply_project_fields(
    backend: CodeBuildBackend, project: CodeBuild, params: dict[str, Any]
) -> None:
    meta = project.project_metadata
    for field in PROJECT_FIELDS:
        if field in params and params[field] is not None:
            meta[field] = copy.deepcopy(params[field])
    if params.get("tags") is not None:
        project.tags = meta["tags"]
    if params.get("serviceRole"):
        project.service_role = params["serviceRole"]
        meta["serviceRole"] = _service_role_arn(backend, params["serviceRole"])
    if params.get("badgeEnabled") is not None:
        meta["badge"] = {"badgeEnabled": bool(params["badgeEnabled"])}
    # CodeBuild API Reference, Project.lastModified (moto stores "lastModifiedDate",
    # which is not part of the Project shape and therefore never serialized).
    meta["lastModified"] = unix_time()


def _params(response: CodeBuildResponse) -> dict[str, Any]:
    return {
        name: response._get_param(name)
        for name in (*PROJECT_FIELDS, "name", "serviceRole", "badgeEnabled")
    }


def _not_found(response: CodeBuildResponse, name: str) -> CbResourceNotFound:
    partition = get_partition(response.region)
    return CbResourceNotFound(
        f"Project cannot be found: arn:{partition}:codebuild:{response.region}:"
        f"{response.current_account}:project/{name}"
    )


def _patch_codebuild() -> None:
    # The response module calls these by their module-level names.
    cb_responses._validate_required_params_source = _validate_source
    cb_responses._validate_required_params_artifacts = _validate_artifacts
    cb_responses._validate_required_params_environment = _validate_environment

    original_create = CodeBuildResponse.create_project

    def create_project(self: CodeBuildResponse) -> ActionResult:
        # CodeBuild API Reference, CreateProject: every request member is part of the
        # stored project (moto drops e.g. secondarySources, concurrentBuildLimit).
        original_create(self)
        backend = self.codebuild_backend
        params = _params(self)
        project = backend.codebuild_projects[params["name"]]
        _apply_project_fields(backend, project, params)
        project.project_metadata["created"] = project.project_metadata["lastModified"]
        return ActionResult({"project": project.project_metadata})

    def update_project(self: CodeBuildResponse) -> ActionResult:
        # CodeBuild API Reference, UpdateProject: only the members present in the
        # request change the project; the response is the whole updated project.
        params = _params(self)
        name = params["name"]
        backend = self.codebuild_backend
        project = backend.codebuild_projects.get(name)
        if project is None:
            for candidate in backend.codebuild_projects.values():
                if candidate.arn == name:
                    project = candidate
            if project is None:
                raise _not_found(self, name)
        if params.get("source") is not None:
            _validate_source(params["source"])
        if params.get("artifacts") is not None:
            _validate_artifacts(params["artifacts"])
        if params.get("environment") is not None:
            _validate_environment(params["environment"])
        if params.get("serviceRole"):
            cb_responses._validate_required_params_service_role(
                self.current_account, self.region, _service_role_arn(backend, params["serviceRole"])
            )
        _apply_project_fields(backend, project, params)
        return ActionResult({"project": project.project_metadata})

    original_batch_get = CodeBuildResponse.batch_get_projects

    def batch_get_projects(self: CodeBuildResponse) -> ActionResult:
        # CodeBuild API Reference, BatchGetProjects: names that match no project are
        # returned in projectsNotFound (moto omits the member).
        result = original_batch_get(self)
        found = result.result["projects"]
        known = {p["name"] for p in found} | {p["arn"] for p in found}
        missing = [n for n in self._get_param("names") or [] if n not in known]
        return ActionResult({"projects": found, "projectsNotFound": missing})

    def list_projects(self: CodeBuildResponse) -> ActionResult:
        # CodeBuild API Reference, ListProjects: at most 100 names per call, with nextToken
        # for the rest (moto returns every name at once).
        names = sorted(self.codebuild_backend.list_projects())
        page, next_token = _page(names, self._get_param("nextToken"), _page_size(100))
        body: dict[str, Any] = {"projects": page}
        if next_token:
            body["nextToken"] = next_token
        return ActionResult(body)

    CodeBuildResponse.create_project = create_project
    CodeBuildResponse.update_project = update_project
    CodeBuildResponse.batch_get_projects = batch_get_projects
    CodeBuildResponse.list_projects = list_projects


# -------------------------------------------------------------------------- CodePipeline

class PipelineExecutionNotStoppableException(JsonRESTError):
    code = 400

    def __init__(self, message: str):
        super().__init__("PipelineExecutionNotStoppableException", message)


def _epoch(value: Any) -> Any:
    # AWS JSON 1.1 protocol: timestamps are epoch seconds. moto's CodePipeline
    # responses emit ISO-8601 strings, which the Rust SDK refuses to parse.
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.timestamp()
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        return parsed.timestamp()
    return value


def _with_epochs(entry: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    entry = dict(entry)
    for key in keys:
        if key in entry:
            entry[key] = _epoch(entry[key])
    return entry


def _pipeline(backend: CodePipelineBackend, name: str) -> Any:
    pipeline = backend.pipelines.get(name)
    if pipeline is None:
        raise PipelineNotFoundException(
            f"Account '{backend.account_id}' does not have a pipeline with name '{name}'"
        )
    return pipeline


def _latest_execution(pipeline: Any) -> PipelineExecution | None:
    executions = list(pipeline.executions.values())
    return executions[-1] if executions else None


def _patch_codepipeline() -> None:
    original_get = CodePipelineResponse.get_pipeline
    original_list = CodePipelineResponse.list_pipelines
    original_list_exec = CodePipelineResponse.list_pipeline_executions

    def get_pipeline(self: CodePipelineResponse) -> str:
        body = json.loads(original_get(self))
        body["metadata"] = _with_epochs(body["metadata"], ("created", "updated"))
        return json.dumps(body)

    def list_pipelines(self: CodePipelineResponse) -> str:
        # CodePipeline API Reference, PipelineSummary: also carries pipelineType and
        # executionMode (V1 / SUPERSEDED when the declaration leaves them out).
        # ListPipelines: maxResults (1-1000, default 100) per page, nextToken for the rest.
        backend = self.codepipeline_backend
        body = json.loads(original_list(self))
        summaries = []
        for summary in sorted(body["pipelines"], key=lambda s: s["name"]):
            declaration = backend.pipelines[summary["name"]].pipeline
            summary = _with_epochs(summary, ("created", "updated"))
            summary["pipelineType"] = declaration.get("pipelineType", "V1")
            summary["executionMode"] = declaration.get("executionMode", "SUPERSEDED")
            summaries.append(summary)
        size = min(int(self._get_param("maxResults") or _page_size(100)), 1000)
        body["pipelines"], next_token = _page(summaries, self._get_param("nextToken"), size)
        if next_token:
            body["nextToken"] = next_token
        return json.dumps(body)

    def list_pipeline_executions(self: CodePipelineResponse) -> str:
        # CodePipeline API Reference, PipelineExecutionSummary.sourceRevisions: the revision
        # each source action ran, here the COMMIT_ID overrides the execution was started with.
        backend = self.codepipeline_backend
        pipeline = _pipeline(backend, self._get_param("pipelineName"))
        body = json.loads(original_list_exec(self))
        summaries = []
        for s in body["pipelineExecutionSummaries"]:
            s = _with_epochs(s, ("startTime", "lastUpdateTime"))
            execution = pipeline.executions.get(s["pipelineExecutionId"])
            overrides = getattr(execution, "_bpl_source_revisions", None) or []
            if overrides:
                s["sourceRevisions"] = [
                    {"actionName": o["actionName"], "revisionId": o["revisionValue"]}
                    for o in overrides
                ]
            summaries.append(s)
        body["pipelineExecutionSummaries"] = summaries
        if body.get("nextToken") is None:
            body.pop("nextToken", None)
        return json.dumps(body)

    def get_pipeline_state(self: CodePipelineResponse) -> str:
        # CodePipeline API Reference, GetPipelineState: one StageState per declared
        # stage, in order; latestExecution only once the pipeline has run. moto runs
        # no actions, so every stage reports the status of the latest execution.
        backend = self.codepipeline_backend
        pipeline = _pipeline(backend, self._get_param("name"))
        latest = _latest_execution(pipeline)
        stage_states = []
        for stage in pipeline.pipeline["stages"]:
            state: dict[str, Any] = {
                "stageName": stage["name"],
                "inboundTransitionState": {"enabled": True},
                "actionStates": [{"actionName": a["name"]} for a in stage["actions"]],
            }
            if latest is not None:
                state["latestExecution"] = {
                    "pipelineExecutionId": latest.pipeline_execution_id,
                    "status": latest.status,
                }
            stage_states.append(state)
        return json.dumps({
            "pipelineName": pipeline.pipeline["name"],
            "pipelineVersion": pipeline.pipeline["version"],
            "stageStates": stage_states,
            "created": _epoch(pipeline._created),
            "updated": _epoch(pipeline._updated),
        })

    def stop_pipeline_execution(self: CodePipelineResponse) -> str:
        # CodePipeline API Reference, StopPipelineExecution: only an InProgress
        # execution can be stopped (PipelineExecutionNotStoppableException otherwise);
        # abandon=true stops at once, else the execution is Stopping. moto finishes
        # executions instantly, so tests set InProgress via POST /_bpl/pipeline-execution.
        backend = self.codepipeline_backend
        execution = backend.get_pipeline_execution(
            self._get_param("pipelineName"), self._get_param("pipelineExecutionId")
        )
        if execution.status != "InProgress":
            raise PipelineExecutionNotStoppableException(
                f"Pipeline execution {execution.pipeline_execution_id} is not in progress "
                f"(status {execution.status})"
            )
        execution.status = "Stopped" if self._get_param("abandon") else "Stopping"
        execution.status_summary = self._get_param("reason")
        execution.last_update_time = utcnow()
        return json.dumps({"pipelineExecutionId": execution.pipeline_execution_id})

    original_start = CodePipelineResponse.start_pipeline_execution

    def start_pipeline_execution(self: CodePipelineResponse) -> str:
        # CodePipeline API Reference, StartPipelineExecution: clientRequestToken is an
        # idempotency token; a repeated token returns the execution it started instead of
        # starting another. moto ignores it. The controller relies on it to never start a
        # manual run twice when it crashes between the start and its status write.
        backend = self.codepipeline_backend
        name = self._get_param("name")
        token = self._get_param("clientRequestToken")
        pipeline = _pipeline(backend, name)
        tokens = pipeline.__dict__.setdefault("_bpl_request_tokens", {})
        if token and token in tokens:
            return json.dumps({"pipelineExecutionId": tokens[token]})
        body = original_start(self)
        execution_id = json.loads(body)["pipelineExecutionId"]
        if token:
            tokens[token] = execution_id
        # Kept for ListPipelineExecutions' sourceRevisions (moto drops the overrides).
        revisions = self._get_param("sourceRevisions") or []
        pipeline.executions[execution_id]._bpl_source_revisions = revisions
        return body

    CodePipelineResponse.start_pipeline_execution = start_pipeline_execution
    CodePipelineResponse.get_pipeline = get_pipeline
    CodePipelineResponse.list_pipelines = list_pipelines
    CodePipelineResponse.list_pipeline_executions = list_pipeline_executions
    CodePipelineResponse.get_pipeline_state = get_pipeline_state
    CodePipelineResponse.stop_pipeline_execution = stop_pipeline_execution


def set_execution_status(
    pipeline_name: str, execution_id: str | None, status: str, summary: str | None = None
) -> dict[str, Any]:
    """Test hook: force the status of an execution (the latest one if no id is given).

    Searches every account and region that moto has instantiated.
    """
    for per_account in dict.values(codepipeline_backends):
        for backend in dict.values(per_account):
            pipeline = backend.pipelines.get(pipeline_name)
            if pipeline is None:
                continue
            if execution_id is None:
                execution = _latest_execution(pipeline)
            else:
                execution = pipeline.executions.get(execution_id)
            if execution is None:
                raise PipelineExecutionNotFoundException(
                    f"no execution {execution_id!r} for pipeline {pipeline_name!r}"
                )
            execution.status = status
            execution.status_summary = summary
            execution.last_update_time = utcnow()
            return {"pipelineExecutionId": execution.pipeline_execution_id, "status": status}
    raise PipelineNotFoundException(f"no pipeline named {pipeline_name!r}")


def apply() -> None:
    global _applied
    with _lock:
        if _applied:
            return
        if moto.__version__ not in TESTED_MOTO_VERSIONS:
            raise RuntimeError(
                f"moto_ext patches target moto {sorted(TESTED_MOTO_VERSIONS)}, found "
                f"{moto.__version__}: re-run scripts/testbed-install.sh"
            )
        _patch_codebuild()
        _patch_codepipeline()
        _applied = True
