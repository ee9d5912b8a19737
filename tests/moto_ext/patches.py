"""Monkeypatches that close the gaps between moto and the AWS APIs the controller uses.

Each patch names the AWS documentation it follows. They are applied by ``apply()``
(idempotent) before the moto server starts; see README.md in this folder.
"""

from __future__ import annotations

import bisect
import copy
import json
import threading
from datetime import datetime, timezone
from typing import Any

import moto
import moto.backends
import moto.codebuild.responses as cb_responses
from moto.codebuild.exceptions import InvalidInputException
from moto.codebuild.exceptions import ResourceNotFoundException as CbResourceNotFound
from moto.codebuild.models import CodeBuild, CodeBuildBackend
from moto.codebuild.responses import CodeBuildResponse
from moto.codepipeline.responses import CodePipelineResponse
from moto.core.exceptions import JsonRESTError
from moto.core.responses import ActionResult
from moto.core.utils import unix_time
from moto.utilities.utils import get_partition

from .engine import ENGINE

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


def _page(
    items: list[Any], token: str | None, size: int, key: Any = lambda item: item
) -> tuple[list[Any], str | None]:
    """One page of name-sorted `items` from an opaque token, and the token of the next page.

    AWS documents `nextToken` as opaque and says nothing of what a listing returns for items
    created or deleted while it pages, so the product must not depend on either answer and
    the bed plays both (BPL_MOTO_PAGE_CURSOR):
    * "name" (the default): the token is the last name returned, so an item present for the
      whole listing is listed exactly once whatever else changes meanwhile;
    * "offset": the token is a position, so a create or delete before it shifts the rest and
      the listing skips or repeats items, as a naive offset pager would.
    """
    import os

    if os.environ.get("BPL_MOTO_PAGE_CURSOR", "name") == "offset":
        start = int(token) if token and token.isdigit() else 0
        end = start + size
        return items[start:end], (str(end) if end < len(items) else None)
    after = token[len("after:"):] if token and token.startswith("after:") else None
    # A page costs a search and the page itself, not the whole account, as a server-side
    # pager's would: a listing of N items then costs O(N), not O(N^2 / page size).
    start = 0 if after is None else bisect.bisect_right(items, after, key=key)
    page = items[start:start + size]
    return page, (f"after:{key(page[-1])}" if len(items) > start + size else None)

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


def _patch_codepipeline() -> None:
    original_get = CodePipelineResponse.get_pipeline
    original_create = CodePipelineResponse.create_pipeline
    original_update = CodePipelineResponse.update_pipeline
    original_delete = CodePipelineResponse.delete_pipeline

    def get_pipeline(self: CodePipelineResponse) -> str:
        body = json.loads(original_get(self))
        body["metadata"] = _with_epochs(body["metadata"], ("created", "updated"))
        return json.dumps(body)

    def list_pipelines(self: CodePipelineResponse) -> str:
        # CodePipeline API Reference, PipelineSummary: also carries pipelineType and
        # executionMode (V1 / SUPERSEDED when the declaration leaves them out).
        # ListPipelines: maxResults (1-1000, default 100) per page, nextToken for the rest.
        # Pages by name first and builds summaries for that page only, as moto's own
        # list_pipelines would for every pipeline in the account on every page.
        backend = self.codepipeline_backend
        size = min(int(self._get_param("maxResults") or _page_size(100)), 1000)
        names, next_token = _page(sorted(backend.pipelines), self._get_param("nextToken"), size)
        summaries = []
        for name in names:
            pipeline = backend.pipelines[name]
            declaration = pipeline.pipeline
            summary = {
                "name": name,
                "version": declaration["version"],
                "created": _epoch(pipeline.metadata["created"]),
                "updated": _epoch(pipeline.metadata["updated"]),
                "pipelineType": declaration.get("pipelineType", "V1"),
                "executionMode": declaration.get("executionMode", "SUPERSEDED"),
            }
            summaries.append(summary)
        body: dict[str, Any] = {"pipelines": summaries}
        if next_token:
            body["nextToken"] = next_token
        return json.dumps(body)

    # Executions: moto 5.2.5 marks each execution Succeeded at once. The execution
    # engine (engine.py; README.md, "Execution engine") runs them instead and answers
    # every execution call in the shapes of the CodePipeline API Reference.

    def create_pipeline(self: CodePipelineResponse) -> str:
        # CodePipeline API Reference, CreatePipeline errors: an existing name is
        # PipelineNameInUseException ("The specified pipeline name is already in use");
        # moto raises InvalidStructureException, a code that means a malformed declaration.
        name = self._get_param("pipeline")["name"]
        if name in self.codepipeline_backend.pipelines:
            raise JsonRESTError(
                "PipelineNameInUseException", f"The specified pipeline name {name} is already in use."
            )
        body = original_create(self)
        ENGINE.pipeline_created(self.codepipeline_backend, self._get_param("pipeline")["name"])
        return body

    def update_pipeline(self: CodePipelineResponse) -> str:
        # CodePipeline API Reference, PipelineExecution.status "Cancelled": the
        # definition was updated before the execution completed.
        body = original_update(self)
        ENGINE.pipeline_updated(self.codepipeline_backend, self._get_param("pipeline")["name"])
        return body

    def delete_pipeline(self: CodePipelineResponse) -> str:
        body = original_delete(self)
        ENGINE.pipeline_deleted(self.codepipeline_backend, self._get_param("name"))
        return body

    def start_pipeline_execution(self: CodePipelineResponse) -> str:
        # CodePipeline API Reference, StartPipelineExecution: variables (declared
        # pipeline-level variables only), sourceRevisions, and clientRequestToken, an
        # idempotency token: a repeated token returns the execution it first started
        # (moto ignores it; the controller relies on it never to start a manual run twice).
        execution_id = ENGINE.start_manual(
            self.codepipeline_backend,
            self._get_param("name"),
            self._get_param("variables"),
            self._get_param("sourceRevisions"),
            self._get_param("clientRequestToken"),
        )
        return json.dumps({"pipelineExecutionId": execution_id})

    def get_pipeline_execution(self: CodePipelineResponse) -> str:
        execution = ENGINE.get_execution(
            self.codepipeline_backend,
            self._get_param("pipelineName"),
            self._get_param("pipelineExecutionId"),
        )
        return json.dumps({"pipelineExecution": execution})

    def list_pipeline_executions(self: CodePipelineResponse) -> str:
        # CodePipeline API Reference, ListPipelineExecutions: newest first, maxResults
        # (1-100, default 100) and nextToken, filter.succeededInStage.
        return json.dumps(ENGINE.list_executions(
            self.codepipeline_backend,
            self._get_param("pipelineName"),
            self._get_param("maxResults"),
            self._get_param("nextToken"),
            self._get_param("filter"),
        ))

    def list_action_executions(self: CodePipelineResponse) -> str:
        # CodePipeline API Reference, ListActionExecutions (moto: not implemented).
        return json.dumps(ENGINE.list_action_executions(
            self.codepipeline_backend,
            self._get_param("pipelineName"),
            self._get_param("filter"),
            self._get_param("maxResults"),
            self._get_param("nextToken"),
        ))

    def get_pipeline_state(self: CodePipelineResponse) -> str:
        # CodePipeline API Reference, GetPipelineState (moto: not implemented): one
        # StageState per declared stage, in order, with the stage's and each action's
        # latest execution.
        return json.dumps(ENGINE.pipeline_state(self.codepipeline_backend, self._get_param("name")))

    def put_approval_result(self: CodePipelineResponse) -> str:
        # CodePipeline API Reference, PutApprovalResult (moto: not implemented).
        return json.dumps(ENGINE.put_approval_result(
            self.codepipeline_backend,
            self._get_param("pipelineName"),
            self._get_param("stageName"),
            self._get_param("actionName"),
            self._get_param("result"),
            self._get_param("token"),
        ))

    def stop_pipeline_execution(self: CodePipelineResponse) -> str:
        # CodePipeline API Reference, StopPipelineExecution (moto: not implemented):
        # abandon=true stops at once; otherwise Stopping until the in-progress actions
        # finish. PipelineExecutionNotStoppableException unless InProgress,
        # DuplicatedStopRequestException for a second stop-and-wait.
        return json.dumps(ENGINE.stop(
            self.codepipeline_backend,
            self._get_param("pipelineName"),
            self._get_param("pipelineExecutionId"),
            bool(self._get_param("abandon")),
            self._get_param("reason"),
        ))

    CodePipelineResponse.get_pipeline = get_pipeline
    CodePipelineResponse.list_pipelines = list_pipelines
    CodePipelineResponse.create_pipeline = create_pipeline
    CodePipelineResponse.update_pipeline = update_pipeline
    CodePipelineResponse.delete_pipeline = delete_pipeline
    CodePipelineResponse.start_pipeline_execution = start_pipeline_execution
    CodePipelineResponse.get_pipeline_execution = get_pipeline_execution
    CodePipelineResponse.list_pipeline_executions = list_pipeline_executions
    CodePipelineResponse.list_action_executions = list_action_executions
    CodePipelineResponse.get_pipeline_state = get_pipeline_state
    CodePipelineResponse.put_approval_result = put_approval_result
    CodePipelineResponse.stop_pipeline_execution = stop_pipeline_execution


def set_execution_status(
    pipeline_name: str, execution_id: str | None, status: str, summary: str | None = None
) -> dict[str, Any]:
    """Test hook: force the status of an execution (the latest one if no id is given).

    A terminal status ends the engine's run of a running execution. Searches every
    account and region that moto has instantiated.
    """
    return ENGINE.set_status(pipeline_name, execution_id, status, summary)


def _patch_dispatch() -> None:
    """Performance only, no AWS behaviour: moto's server finds the backend of every request
    by listing its own package directory (`list_of_moto_modules`: an os.listdir and an
    isdir per entry, about 200 system calls) while it holds the dispatcher's global lock.
    The package does not change while the server runs, so the list is computed once.

    It was about a fifth of moto's CPU per request, for every client (docs/benchmarks.md:
    2.0 to 3.2 ms a Create call since, 2.6 to 4.0 before), and concurrent requests queued on
    that lock besides.
    """
    modules = tuple(moto.backends.list_of_moto_modules())
    moto.backends.list_of_moto_modules = lambda: modules


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
        _patch_dispatch()
        _patch_codebuild()
        _patch_codepipeline()
        _applied = True
