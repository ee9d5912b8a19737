"""Tests of the execution engine (engine.py) through the patched moto server.

Run from the repository root with the moto venv's python:

    $BPL_MOTO_PYTHON -m unittest discover -s tests/moto_ext -p 'test_*.py'

The server runs as a subprocess (run_moto.py on a free port) and is driven with boto3
and urllib, as the Rust test bed drives it. Pipelines are the two of
tests/golden/orders-api.render.json (what the product renders), plus small ones built
from its Source stage.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request
from typing import Any, Callable

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402

from moto_ext.engine import glob_match  # noqa: E402

GOLDEN = os.path.join(os.path.dirname(HERE), "golden", "orders-api.render.json")
REPO = "acme/orders-api"
ACCOUNT = "123456789012"
DEVELOP = "team-orders-orders-api"
PRODUCTION = "team-orders-orders-api-production"

_server: subprocess.Popen[bytes] | None = None
_url = ""
_tmp: tempfile.TemporaryDirectory[str] | None = None
_log: Any = None


def setUpModule() -> None:  # noqa: N802 - unittest hook
    global _server, _url, _tmp, _log
    _tmp = tempfile.TemporaryDirectory()
    port_file = os.path.join(_tmp.name, "port")
    _log = open(os.path.join(_tmp.name, "moto.log"), "wb")
    _server = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "run_moto.py"), "--port", "0", "--port-file", port_file],
        stdout=_log, stderr=subprocess.STDOUT,
    )
    deadline = time.time() + 30
    while not os.path.exists(port_file):
        if _server.poll() is not None or time.time() > deadline:
            _log.flush()
            with open(_log.name, "rb") as f:
                raise RuntimeError(f"moto did not start:\n{f.read().decode(errors='replace')}")
        time.sleep(0.05)
    with open(port_file) as f:
        _url = f"http://127.0.0.1:{f.read().strip()}"


def tearDownModule() -> None:  # noqa: N802 - unittest hook
    if _server is not None:
        _server.terminate()
        try:
            _server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            _server.kill()
    if _log is not None:
        _log.close()
        if os.environ.get("BPL_ENGINE_TEST_LOG"):
            with open(_log.name, "rb") as f:
                sys.stderr.write(f.read().decode(errors="replace"))
    if _tmp is not None:
        _tmp.cleanup()


def control(path: str, body: dict[str, Any] | None = None, method: str = "POST") -> Any:
    data = json.dumps(body or {}).encode() if method == "POST" else None
    request = urllib.request.Request(
        _url + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def control_error(path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    try:
        control(path, body)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
    raise AssertionError(f"{path} {body} succeeded")


def client(service: str) -> Any:
    return boto3.client(
        service, endpoint_url=_url, region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1}),
    )


def sha(n: int) -> str:
    return f"{n:040x}"


def golden() -> dict[str, dict[str, Any]]:
    with open(GOLDEN) as f:
        rendered = json.load(f)
    return {p["pipeline"]["name"]: p["pipeline"] for p in rendered["pipelines"]}


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def codebuild_action(name: str, project: str | None = None, run_order: int = 1) -> dict[str, Any]:
    return {
        "name": name,
        "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
        "runOrder": run_order,
        "configuration": {"ProjectName": project or f"proj-{name}"},
        "inputArtifacts": [{"name": "SourceOutput"}],
        "outputArtifacts": [],
    }


def approval_action(name: str = "approve", run_order: int = 1) -> dict[str, Any]:
    return {
        "name": name,
        "actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"},
        "runOrder": run_order,
        "configuration": {},
    }


def variable_check(variable: str, operator: str, value: str, result: str = "SKIP") -> dict[str, Any]:
    return {
        "conditions": [{
            "result": result,
            "rules": [{
                "name": "Check",
                "ruleTypeId": {"category": "Rule", "owner": "AWS", "provider": "VariableCheck", "version": "1"},
                "configuration": {"Variable": variable, "Operator": operator, "Value": value},
            }],
        }]
    }


class EngineTest(unittest.TestCase):
    role_arn: str

    def setUp(self) -> None:
        control("/_bpl/reset")
        control("/_bpl/engine", {"actionSeconds": 0.05})
        self.cp = client("codepipeline")
        iam = client("iam")
        role = iam.create_role(
            RoleName="bpl-codepipeline",
            AssumeRolePolicyDocument=json.dumps({
                "Version": "2012-10-17",
                "Statement": [{
                    "Effect": "Allow",
                    "Principal": {"Service": "codepipeline.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }],
            }),
        )
        self.role_arn = role["Role"]["Arn"]

    # ---------------------------------------------------------------- helpers

    def create(self, declaration: dict[str, Any]) -> dict[str, Any]:
        declaration = copy.deepcopy(declaration)
        declaration["roleArn"] = self.role_arn
        self.cp.create_pipeline(pipeline=declaration)
        return declaration

    def create_golden(self) -> dict[str, dict[str, Any]]:
        return {name: self.create(p) for name, p in golden().items()}

    def small(self, name: str, stages: list[dict[str, Any]], mode: str = "SUPERSEDED",
              triggers: list[dict[str, Any]] | None = None, branch: str = "main",
              variables: list[dict[str, Any]] | None = None,
              detect_changes: str = "true") -> dict[str, Any]:
        source_stage = copy.deepcopy(golden()[PRODUCTION]["stages"][0])
        source_stage["actions"][0]["configuration"]["BranchName"] = branch
        source_stage["actions"][0]["configuration"]["DetectChanges"] = detect_changes
        declaration: dict[str, Any] = {
            "name": name,
            "roleArn": self.role_arn,
            "artifactStore": {"type": "S3", "location": "bucket"},
            "pipelineType": "V2",
            "executionMode": mode,
            "stages": [source_stage, *stages],
        }
        if triggers is not None:
            declaration["triggers"] = triggers
        if variables is not None:
            declaration["variables"] = variables
        return self.create(declaration)

    def push(self, branch: str, commit: str, files: list[str] | None = None,
             repository: str = REPO) -> list[dict[str, str]]:
        body: dict[str, Any] = {"repository": repository, "branch": branch, "commit": commit}
        if files is not None:
            body["files"] = files
        return control("/_bpl/push", body)["started"]

    def execution(self, name: str, execution_id: str) -> dict[str, Any]:
        return self.cp.get_pipeline_execution(
            pipelineName=name, pipelineExecutionId=execution_id
        )["pipelineExecution"]

    def wait_status(self, name: str, execution_id: str, status: str, timeout: float = 10.0) -> dict[str, Any]:
        return wait_for(
            lambda: (e := self.execution(name, execution_id))["status"] == status and e,
            timeout, f"{name}/{execution_id} {status}",
        )

    def stages(self, name: str) -> dict[str, dict[str, Any]]:
        state = self.cp.get_pipeline_state(name=name)
        return {s["stageName"]: s for s in state["stageStates"]}

    def stage_status(self, name: str, stage: str) -> str | None:
        return (self.stages(name)[stage].get("latestExecution") or {}).get("status")

    def approval_token(self, name: str, stage: str, execution_id: str, action: str = "approve") -> str:
        def token() -> str | None:
            state = self.stages(name)[stage]
            if (state.get("latestExecution") or {}).get("pipelineExecutionId") != execution_id:
                return None
            for action_state in state["actionStates"]:
                if action_state["actionName"] == action:
                    return (action_state.get("latestExecution") or {}).get("token")
            return None

        return wait_for(token, what=f"approval token of {execution_id}")

    def actions(self, name: str, execution_id: str) -> list[dict[str, Any]]:
        details: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"pipelineName": name, "filter": {"pipelineExecutionId": execution_id}}
        while True:
            page = self.cp.list_action_executions(**kwargs)
            details.extend(page["actionExecutionDetails"])
            if "nextToken" not in page:
                return details
            kwargs["nextToken"] = page["nextToken"]

    def start(self, name: str, **kwargs: Any) -> str:
        return self.cp.start_pipeline_execution(name=name, **kwargs)["pipelineExecutionId"]

    def assert_client_error(self, code: str, call: Callable[[], Any]) -> None:
        with self.assertRaises(ClientError) as raised:
            call()
        self.assertEqual(raised.exception.response["Error"]["Code"], code)

    # ------------------------------------------------------------------ tests

    def test_glob_syntax(self) -> None:
        self.assertTrue(glob_match("release/*", "release/1.0"))
        self.assertFalse(glob_match("release/*", "release/1/hotfix"))
        self.assertTrue(glob_match("release/**", "release/1/hotfix"))
        self.assertTrue(glob_match("src/**/*.rs", "src/a/b.rs"))
        self.assertFalse(glob_match("src/**/*.rs", "src/b.rs"))  # Java glob: ** then /
        self.assertTrue(glob_match("**", "any/thing"))
        self.assertTrue(glob_match("v?", "v1"))
        self.assertFalse(glob_match("v?", "v10"))
        self.assertTrue(glob_match("*.{rs,toml}", "Cargo.toml"))
        self.assertTrue(glob_match("[ab]x", "bx"))
        self.assertFalse(glob_match("[!ab]x", "bx"))
        self.assertTrue(glob_match("a\\*b", "a*b"))
        self.assertFalse(glob_match("a\\*b", "axb"))

    def test_push_runs_the_golden_pipeline_and_reports_skipped_stages(self) -> None:
        self.create_golden()
        started = self.push("develop", sha(1))
        self.assertEqual([s["pipelineName"] for s in started], [DEVELOP])
        execution_id = started[0]["pipelineExecutionId"]
        execution = self.wait_status(DEVELOP, execution_id, "Succeeded")
        self.assertEqual(execution["pipelineVersion"], 1)
        self.assertEqual(execution["executionMode"], "QUEUED")
        self.assertEqual(execution["executionType"], "STANDARD")
        self.assertEqual(execution["trigger"]["triggerType"], "WebhookV2")
        self.assertIn("connection/", execution["trigger"]["triggerDetail"])
        self.assertEqual(execution["artifactRevisions"][0]["name"], "SourceOutput")
        self.assertEqual(execution["artifactRevisions"][0]["revisionId"], sha(1))

        stages = self.stages(DEVELOP)
        statuses = {name: s["latestExecution"]["status"] for name, s in stages.items()}
        self.assertEqual(statuses, {
            "Source": "Succeeded", "lint": "Succeeded", "test": "Succeeded", "build": "Succeeded",
            "deploy-dev": "Succeeded", "deploy-qa": "Skipped", "deploy-stage": "Skipped",
            "deploy-perf": "Skipped",
        })
        self.assertTrue(all(s["latestExecution"]["pipelineExecutionId"] == execution_id
                            for s in stages.values()))
        self.assertNotIn("latestExecution", stages["deploy-qa"]["actionStates"][0])
        condition = stages["deploy-qa"]["beforeEntryConditionState"]
        self.assertEqual(condition["latestExecution"]["status"], "Failed")
        self.assertEqual(
            condition["conditionStates"][0]["ruleStates"][0]["latestExecution"]["status"], "Failed"
        )
        self.assertEqual(stages["deploy-dev"]["beforeEntryConditionState"]["latestExecution"]["status"],
                         "Succeeded")
        self.assertEqual(stages["lint"]["actionStates"][0]["latestExecution"]["status"], "Succeeded")
        self.assertIn("team-orders-orders-api-lint:",
                      stages["lint"]["actionStates"][0]["latestExecution"]["externalExecutionId"])

        details = self.actions(DEVELOP, execution_id)
        self.assertEqual(
            [(d["stageName"], d["actionName"]) for d in reversed(details)],
            [("Source", "Source"), ("lint", "lint"), ("test", "test"), ("build", "build"),
             ("deploy-dev", "deploy")],
        )
        source = details[-1]
        self.assertEqual(source["status"], "Succeeded")
        self.assertEqual(source["input"]["namespace"], "SourceVariables")
        variables = source["output"]["outputVariables"]
        self.assertEqual(variables["BranchName"], "develop")
        self.assertEqual(variables["CommitId"], sha(1))
        self.assertEqual(variables["FullRepositoryName"], REPO)
        self.assertTrue(variables["ConnectionArn"].startswith("arn:aws:codeconnections:"))
        self.assertEqual(set(variables), {"AuthorDate", "BranchName", "CommitId", "CommitMessage",
                                          "ConnectionArn", "FullRepositoryName", "ProviderType"})
        deploy = details[0]
        self.assertEqual(deploy["input"]["resolvedConfiguration"]["ProjectName"],
                         "team-orders-orders-api-deploy")
        self.assertEqual(deploy["output"]["executionResult"]["externalExecutionId"].split(":")[0],
                         "team-orders-orders-api-deploy")

        summary = self.cp.list_pipeline_executions(pipelineName=DEVELOP)["pipelineExecutionSummaries"][0]
        self.assertEqual(summary["pipelineExecutionId"], execution_id)
        self.assertEqual(summary["sourceRevisions"][0]["actionName"], "Source")
        self.assertEqual(summary["sourceRevisions"][0]["revisionId"], sha(1))
        self.assertIn("revisionSummary", summary["sourceRevisions"][0])
        self.assertIn("revisionUrl", summary["sourceRevisions"][0])
        self.assertEqual(summary["trigger"]["triggerType"], "WebhookV2")
        self.assertEqual(summary["executionMode"], "QUEUED")
        self.assertNotIn("stopTrigger", summary)

    def test_push_that_matches_no_filter_starts_nothing(self) -> None:
        self.create_golden()
        self.assertEqual(self.push("feature/login", sha(2)), [])
        self.assertEqual(self.push("develop", sha(3), repository="acme/other"), [])
        self.assertEqual(self.cp.list_pipeline_executions(pipelineName=DEVELOP)["pipelineExecutionSummaries"], [])
        started = self.push("release/1.0", sha(4))
        self.assertEqual([s["pipelineName"] for s in started], [DEVELOP])
        started = self.push("main", sha(5))
        self.assertEqual([s["pipelineName"] for s in started], [PRODUCTION])

    def test_push_branch_excludes_and_file_paths(self) -> None:
        self.small("filtered", [{"name": "build", "actions": [codebuild_action("build")]}], triggers=[{
            "providerType": "CodeStarSourceConnection",
            "gitConfiguration": {"sourceActionName": "Source", "push": [{
                "branches": {"includes": ["**"], "excludes": ["release/**"]},
                "filePaths": {"includes": ["src/**", "Cargo.toml"], "excludes": ["**/*.md"]},
            }]},
        }])
        self.assertEqual(len(self.push("main", sha(10), ["src/lib.rs"])), 1)
        self.assertEqual(len(self.push("feature/x", sha(11), ["docs/a.md", "Cargo.toml"])), 1)
        self.assertEqual(self.push("release/1", sha(12), ["src/lib.rs"]), [])  # excluded branch
        self.assertEqual(self.push("main", sha(13), ["docs/readme.txt"]), [])  # no include
        self.assertEqual(self.push("main", sha(14), ["src/notes.md"]), [])  # excluded path
        self.assertEqual(self.push("main", sha(15)), [])  # no file information
        self.assertEqual(self.push("main", sha(16), []), [])

    def test_default_trigger_uses_detect_changes_and_configured_branch(self) -> None:
        self.small("default-on", [{"name": "build", "actions": [codebuild_action("build")]}])
        self.small("default-off", [{"name": "build", "actions": [codebuild_action("build")]}],
                   detect_changes="false")
        self.assertEqual([s["pipelineName"] for s in self.push("main", sha(20))], ["default-on"])
        self.assertEqual(self.push("develop", sha(21)), [])

    def test_pull_request_events(self) -> None:
        self.small("pr", [{"name": "build", "actions": [codebuild_action("build")]}], triggers=[{
            "providerType": "CodeStarSourceConnection",
            "gitConfiguration": {"sourceActionName": "Source", "pullRequest": [{
                "events": ["OPEN", "UPDATED"],
                "branches": {"includes": ["main"]},
            }]},
        }])
        body = {"repository": REPO, "event": "OPEN", "pullRequestId": "7",
                "sourceBranch": "feature/login", "destinationBranch": "main", "commit": sha(30)}
        started = control("/_bpl/pull-request", body)["started"]
        self.assertEqual([s["pipelineName"] for s in started], ["pr"])
        execution_id = started[0]["pipelineExecutionId"]
        self.wait_status("pr", execution_id, "Succeeded")
        source = self.actions("pr", execution_id)[-1]
        self.assertEqual(source["output"]["outputVariables"]["BranchName"], "feature/login")
        self.assertEqual(source["output"]["outputVariables"]["SourceBranchName"], "feature/login")
        self.assertEqual(source["output"]["outputVariables"]["DestinationBranchName"], "main")
        self.assertEqual(source["output"]["outputVariables"]["PullRequestId"], "7")
        self.assertEqual(source["output"]["outputVariables"]["CommitId"], sha(30))
        self.assertEqual(self.execution("pr", execution_id)["trigger"]["triggerType"], "WebhookV2")
        self.assertEqual(len(control("/_bpl/pull-request", {**body, "event": "UPDATED"})["started"]), 1)
        self.assertEqual(control("/_bpl/pull-request", {**body, "event": "CLOSED"})["started"], [])
        self.assertEqual(
            control("/_bpl/pull-request", {**body, "destinationBranch": "develop"})["started"], []
        )
        # A push does not match a pull-request-only trigger.
        self.assertEqual(self.push("main", sha(31)), [])
        code, _ = control_error("/_bpl/pull-request", {**body, "event": "MERGED"})
        self.assertEqual(code, 400)

    def test_declared_and_undeclared_variables(self) -> None:
        self.small("vars", [{"name": "build", "actions": [codebuild_action("build")]}], variables=[
            {"name": "DEPLOY", "defaultValue": "no"},
            {"name": "TAG"},
            {"name": "REGION", "defaultValue": "us-east-1"},
        ])
        execution_id = self.start("vars", variables=[{"name": "DEPLOY", "value": "yes"}])
        execution = self.execution("vars", execution_id)
        self.assertEqual(execution["variables"], [
            {"name": "DEPLOY", "resolvedValue": "yes"},
            {"name": "REGION", "resolvedValue": "us-east-1"},
        ])
        self.assertEqual(execution["trigger"]["triggerType"], "StartPipelineExecution")
        self.assertEqual(execution["trigger"]["triggerDetail"], f"arn:aws:sts::{ACCOUNT}:user/moto")
        self.assert_client_error("ValidationException", lambda: self.start(
            "vars", variables=[{"name": "UNDECLARED", "value": "x"}]
        ))
        self.assert_client_error("ValidationException", lambda: self.start(
            "vars", sourceRevisions=[{"actionName": "Source", "revisionType": "S3_OBJECT_KEY",
                                      "revisionValue": "k"}]
        ))
        self.assert_client_error("PipelineNotFoundException", lambda: self.start("nope"))
        self.assertEqual(len(self.cp.list_pipeline_executions(pipelineName="vars")
                             ["pipelineExecutionSummaries"]), 1)

    def test_manual_start_branch_readings(self) -> None:
        self.create_golden()
        self.push("develop", sha(40))
        self.push("main", sha(41))

        def branch_of(execution_id: str) -> str:
            wait_for(lambda: self.actions(PRODUCTION, execution_id), what="source action")
            return self.actions(PRODUCTION, execution_id)[-1]["output"]["outputVariables"]["BranchName"]

        override = [{"actionName": "Source", "revisionType": "COMMIT_ID", "revisionValue": sha(40)}]
        configured = self.start(PRODUCTION, sourceRevisions=override)
        self.assertEqual(branch_of(configured), "main")
        self.assertEqual(self.execution(PRODUCTION, configured)["artifactRevisions"][0]["revisionId"], sha(40))

        self.assertEqual(control("/_bpl/engine", {"manualStartBranch": "commit"})["manualStartBranch"], "commit")
        by_commit = self.start(PRODUCTION, sourceRevisions=override)
        self.assertEqual(branch_of(by_commit), "develop")
        unknown = self.start(PRODUCTION, sourceRevisions=[
            {"actionName": "Source", "revisionType": "COMMIT_ID", "revisionValue": sha(99)}
        ])
        self.assertEqual(branch_of(unknown), "main")

        # Without an override: the latest commit pushed to the configured branch...
        head = self.start(PRODUCTION)
        summary = next(s for s in self.cp.list_pipeline_executions(pipelineName=PRODUCTION)
                       ["pipelineExecutionSummaries"] if s["pipelineExecutionId"] == head)
        self.assertEqual(summary["sourceRevisions"][0]["revisionId"], sha(41))
        self.assertEqual(branch_of(head), "main")
        # ...or a deterministic fake commit for a branch nothing was pushed to.
        self.small("fresh", [{"name": "build", "actions": [codebuild_action("build")]}], branch="trunk")
        first = self.execution("fresh", self.start("fresh"))["artifactRevisions"][0]["revisionId"]
        second = self.execution("fresh", self.start("fresh"))["artifactRevisions"][0]["revisionId"]
        self.assertEqual(first, second)
        self.assertRegex(first, "^[0-9a-f]{40}$")

    def copy_of(self, declaration: dict[str, Any], name: str, branch: str | None = None) -> str:
        """Creates `declaration` as `name`, its source action configured for `branch`."""
        declaration = copy.deepcopy(declaration)
        declaration["name"] = name
        if branch is not None:
            declaration["stages"][0]["actions"][0]["configuration"]["BranchName"] = branch
        self.create(declaration)
        return name

    def deploy_results(self, name: str) -> dict[str, str]:
        """Each deploy stage's status in the pipeline's latest execution, by environment."""
        return {stage[len("deploy-"):]: (state.get("latestExecution") or {}).get("status", "")
                for stage, state in self.stages(name).items() if stage.startswith("deploy-")}

    def approve_stage(self, name: str, stage: str, execution_id: str) -> None:
        token = self.approval_token(name, stage, execution_id)
        self.cp.put_approval_result(pipelineName=name, stageName=stage, actionName="approve",
                                    result={"status": "Approved", "summary": "ok"}, token=token)

    def test_console_release_change_routes_as_a_push_of_the_configured_branch(self) -> None:
        """The README routing table's row "push of branch b, or console "Release change"",
        for its second half. A console Release change is a StartPipelineExecution without a
        source revision: it builds the source action's configured branch b ("pipelines-filter":
        BranchName is what a manual start uses) and, with no variables given, every BPL_*
        variable keeps its `@push` default, so it routes as a push of b: an automatic
        environment taking b runs, a manual one is skipped, a promotion does what its source
        did and then waits at its approval. The manualStartBranch switch concerns only starts
        with a COMMIT_ID override, so both readings must give the same routing; the test runs
        under each. The golden pipelines are what the product renders for the example."""
        declarations = golden()
        defaults = [{"name": v["name"], "value": v["defaultValue"]}
                    for v in declarations[DEVELOP]["variables"]]
        for reading in ("configured", "commit"):
            with self.subTest(manualStartBranch=reading):
                control("/_bpl/engine", {"manualStartBranch": reading})
                self.release_change_of_develop(declarations[DEVELOP], reading, defaults)
                self.release_change_of_a_release_branch(declarations[DEVELOP], reading)
                self.release_change_of_main(declarations[PRODUCTION], reading)

    def release_change_of_develop(self, declaration: dict[str, Any], reading: str,
                                  defaults: list[dict[str, str]]) -> None:
        # Configured branch develop: dev (automatic, takes develop) runs; qa (manual), stage
        # (release/*) and perf (as stage) are skipped. The same whether the console sends no
        # variables or the declared defaults.
        name = self.copy_of(declaration, f"rc-develop-{reading}")
        for variables in (None, defaults):
            execution_id = self.start(name, **({} if variables is None else {"variables": variables}))
            execution = self.wait_status(name, execution_id, "Succeeded")
            self.assertEqual(execution["trigger"]["triggerType"], "StartPipelineExecution")
            self.assertEqual({v["name"]: v["resolvedValue"] for v in execution["variables"]},
                             {"BPL_TARGET": "@push", "BPL_BRANCH": "@push", "BPL_RUN": "@push"})
            source = next(d for d in self.actions(name, execution_id) if d["stageName"] == "Source")
            self.assertEqual(source["output"]["outputVariables"]["BranchName"], "develop")
            self.assertEqual(self.deploy_results(name),
                             {"dev": "Succeeded", "qa": "Skipped", "stage": "Skipped", "perf": "Skipped"},
                             f"variables={variables}")

    def release_change_of_a_release_branch(self, declaration: dict[str, Any], reading: str) -> None:
        # Configured branch release/1.4: stage runs, and perf (promoted from stage) runs as
        # stage did and waits at its approval before its deploy; dev and qa are skipped.
        name = self.copy_of(declaration, f"rc-release-{reading}", branch="release/1.4")
        execution_id = self.start(name)
        self.approval_token(name, "deploy-perf", execution_id)
        self.assertEqual(self.execution(name, execution_id)["status"], "InProgress")
        self.assertEqual(self.deploy_results(name),
                         {"dev": "Skipped", "qa": "Skipped", "stage": "Succeeded", "perf": "InProgress"})
        ran = {(d["stageName"], d["actionName"], d["status"]) for d in self.actions(name, execution_id)}
        self.assertIn(("deploy-perf", "approve", "InProgress"), ran)
        self.assertNotIn("deploy", {a for s, a, _ in ran if s == "deploy-perf"})
        self.approve_stage(name, "deploy-perf", execution_id)
        self.wait_status(name, execution_id, "Succeeded")
        self.assertEqual(self.deploy_results(name),
                         {"dev": "Skipped", "qa": "Skipped", "stage": "Succeeded", "perf": "Succeeded"})

    def release_change_of_main(self, declaration: dict[str, Any], reading: str) -> None:
        # The production pipeline, configured branch main: prod (automatic, takes main) runs
        # through its approval.
        name = self.copy_of(declaration, f"rc-production-{reading}")
        execution_id = self.start(name)
        self.approve_stage(name, "deploy-prod", execution_id)
        self.wait_status(name, execution_id, "Succeeded")
        self.assertEqual(self.deploy_results(name), {"prod": "Succeeded"})

    def test_variable_check_operators(self) -> None:
        def stage(name: str, condition: dict[str, Any]) -> dict[str, Any]:
            return {"name": name, "actions": [codebuild_action(name)], "beforeEntry": condition}

        self.small("checks", [
            stage("eq", variable_check("#{variables.ENV}", "EQ", "prod")),
            stage("ne", variable_check("#{variables.ENV}", "NE", "prod")),
            stage("contains", variable_check("#{SourceVariables.BranchName}", "CONTAINS", "feat")),
            stage("matches", variable_check("#{SourceVariables.BranchName}", "MATCHES", "^(?:feature/[^/]*)$")),
            stage("partial", variable_check("#{SourceVariables.BranchName}", "MATCHES", "feat")),
            stage("value-var", variable_check("prod", "EQ", "#{variables.ENV}")),
            stage("unresolvable", variable_check("#{Nope.Thing}", "NE", "x")),
            stage("commit", variable_check("#{SourceVariables.CommitId}", "EQ", sha(50))),
        ], mode="PARALLEL", variables=[{"name": "ENV", "defaultValue": "dev"}], triggers=[{
            "providerType": "CodeStarSourceConnection",
            "gitConfiguration": {"sourceActionName": "Source", "push": [{"branches": {"includes": ["**"]}}]},
        }])
        control("/_bpl/push", {"repository": REPO, "branch": "feature/a", "commit": sha(50)})
        first = self.cp.list_pipeline_executions(pipelineName="checks")["pipelineExecutionSummaries"][0]
        self.wait_status("checks", first["pipelineExecutionId"], "Succeeded")
        statuses = {n: s["latestExecution"]["status"] for n, s in self.stages("checks").items()}
        self.assertEqual(statuses, {
            "Source": "Succeeded", "eq": "Skipped", "ne": "Succeeded", "contains": "Succeeded",
            "matches": "Succeeded", "partial": "Skipped", "value-var": "Skipped",
            "unresolvable": "Skipped", "commit": "Succeeded",
        })
        summary = self.stages("checks")["unresolvable"]["beforeEntryConditionState"]["latestExecution"]["summary"]
        self.assertIn("#{Nope.Thing}", summary)

        control("/_bpl/engine", {"matchesMode": "search"})
        execution_id = self.start("checks", variables=[{"name": "ENV", "value": "prod"}])
        self.wait_status("checks", execution_id, "Succeeded")
        statuses = {n: s["latestExecution"]["status"] for n, s in self.stages("checks").items()}
        self.assertEqual(statuses["eq"], "Succeeded")
        self.assertEqual(statuses["ne"], "Skipped")
        self.assertEqual(statuses["value-var"], "Succeeded")
        # A manual start builds the configured branch (main): CONTAINS/MATCHES feat fail.
        self.assertEqual(statuses["contains"], "Skipped")
        executed = {d["stageName"] for d in self.actions("checks", execution_id)}
        self.assertEqual(executed, {"Source", "eq", "value-var"})

    def test_before_entry_fail_fails_the_execution(self) -> None:
        self.small("gate", [
            {"name": "gate", "actions": [codebuild_action("gate")],
             "beforeEntry": variable_check("#{SourceVariables.BranchName}", "EQ", "release", "FAIL")},
            {"name": "after", "actions": [codebuild_action("after")]},
        ])
        execution_id = self.start("gate")
        execution = self.wait_status("gate", execution_id, "Failed")
        self.assertIn("gate", execution["statusSummary"])
        stages = self.stages("gate")
        self.assertEqual(stages["gate"]["latestExecution"]["status"], "Failed")
        self.assertNotIn("latestExecution", stages["after"])

    def test_approvals(self) -> None:
        self.create_golden()
        execution_id = self.push("main", sha(60))[0]["pipelineExecutionId"]
        token = self.approval_token(PRODUCTION, "deploy-prod", execution_id)
        self.assertEqual(self.execution(PRODUCTION, execution_id)["status"], "InProgress")
        self.assertEqual(self.stage_status(PRODUCTION, "deploy-prod"), "InProgress")
        approve = {"status": "Approved", "summary": "ship it"}
        self.assert_client_error("InvalidApprovalTokenException", lambda: self.cp.put_approval_result(
            pipelineName=PRODUCTION, stageName="deploy-prod", actionName="approve",
            result=approve, token="00000000-0000-0000-0000-000000000000"))
        self.assert_client_error("StageNotFoundException", lambda: self.cp.put_approval_result(
            pipelineName=PRODUCTION, stageName="nope", actionName="approve", result=approve, token=token))
        self.assert_client_error("ActionNotFoundException", lambda: self.cp.put_approval_result(
            pipelineName=PRODUCTION, stageName="deploy-prod", actionName="nope", result=approve, token=token))
        # The deploy at runOrder 2 has not started while the approval waits.
        self.assertNotIn("deploy", {d["actionName"] for d in self.actions(PRODUCTION, execution_id)})
        answer = self.cp.put_approval_result(pipelineName=PRODUCTION, stageName="deploy-prod",
                                             actionName="approve", result=approve, token=token)
        self.assertIn("approvedAt", answer)
        self.wait_status(PRODUCTION, execution_id, "Succeeded")
        details = self.actions(PRODUCTION, execution_id)
        self.assertEqual([d["actionName"] for d in details[:2]], ["deploy", "approve"])
        self.assertEqual(details[1]["output"]["executionResult"]["externalExecutionSummary"], "ship it")
        self.assert_client_error("ApprovalAlreadyCompletedException", lambda: self.cp.put_approval_result(
            pipelineName=PRODUCTION, stageName="deploy-prod", actionName="approve",
            result=approve, token=token))

        rejected = self.push("main", sha(61))[0]["pipelineExecutionId"]
        token = self.approval_token(PRODUCTION, "deploy-prod", rejected)
        self.cp.put_approval_result(pipelineName=PRODUCTION, stageName="deploy-prod", actionName="approve",
                                    result={"status": "Rejected", "summary": "not today"}, token=token)
        execution = self.wait_status(PRODUCTION, rejected, "Failed")
        self.assertIn("not today", execution["statusSummary"])
        self.assertEqual(self.stage_status(PRODUCTION, "deploy-prod"), "Failed")
        details = self.actions(PRODUCTION, rejected)
        self.assertEqual(details[0]["actionName"], "approve")
        self.assertEqual(details[0]["status"], "Failed")

    def test_configured_build_failure(self) -> None:
        self.create_golden()
        rules = control("/_bpl/action-outcome", {"pipelineName": DEVELOP, "stageName": "test",
                                                  "status": "Failed", "summary": "tests failed"})
        self.assertEqual(len(rules["rules"]), 1)
        execution_id = self.push("develop", sha(70))[0]["pipelineExecutionId"]
        execution = self.wait_status(DEVELOP, execution_id, "Failed")
        self.assertIn("tests failed", execution["statusSummary"])
        stages = self.stages(DEVELOP)
        self.assertEqual(stages["test"]["latestExecution"]["status"], "Failed")
        self.assertEqual(stages["test"]["actionStates"][0]["latestExecution"]["summary"], "tests failed")
        self.assertNotIn("latestExecution", stages["build"])
        details = self.actions(DEVELOP, execution_id)
        self.assertEqual((details[0]["actionName"], details[0]["status"]), ("test", "Failed"))
        self.assertEqual(details[0]["output"]["executionResult"]["externalExecutionSummary"], "tests failed")

        # projectName matching, and clearing.
        control("/_bpl/action-outcome", {"clear": True})
        control("/_bpl/action-outcome", {"projectName": "team-orders-orders-api-build", "status": "Failed"})
        execution_id = self.push("develop", sha(71))[0]["pipelineExecutionId"]
        self.wait_status(DEVELOP, execution_id, "Failed")
        self.assertEqual(self.stage_status(DEVELOP, "build"), "Failed")
        self.assertEqual(control("/_bpl/action-outcome", {"clear": True}), {"rules": []})
        execution_id = self.push("develop", sha(72))[0]["pipelineExecutionId"]
        self.wait_status(DEVELOP, execution_id, "Succeeded")

    def hold_pipeline(self, name: str, mode: str) -> None:
        self.small(name, [
            {"name": "build", "actions": [codebuild_action("build")]},
            {"name": "hold", "actions": [approval_action(), codebuild_action("deploy", run_order=2)]},
        ], mode=mode)

    def approve(self, name: str, execution_id: str) -> None:
        token = self.approval_token(name, "hold", execution_id)
        self.cp.put_approval_result(pipelineName=name, stageName="hold", actionName="approve",
                                    result={"status": "Approved", "summary": "ok"}, token=token)

    def test_queued_mode_runs_executions_in_start_order(self) -> None:
        self.hold_pipeline("queued", "QUEUED")
        ids = [self.start("queued") for _ in range(3)]
        self.approval_token("queued", "hold", ids[0])
        inbound = wait_for(
            lambda: len(self.stages("queued")["hold"].get("inboundExecutions", [])) == 2
            and self.stages("queued")["hold"]["inboundExecutions"], what="two queued executions")
        self.assertEqual([e["pipelineExecutionId"] for e in inbound], ids[1:])
        self.assertEqual(self.stages("queued")["hold"]["inboundExecution"]["pipelineExecutionId"], ids[1])
        # A queued execution is InProgress (PipelineExecutionStatus has no Queued).
        self.assertEqual([self.execution("queued", i)["status"] for i in ids], ["InProgress"] * 3)
        for index, execution_id in enumerate(ids):
            self.approve("queued", execution_id)
            self.wait_status("queued", execution_id, "Succeeded")
            for later in ids[index + 1:]:
                self.assertEqual(self.execution("queued", later)["status"], "InProgress")
        summaries = self.cp.list_pipeline_executions(pipelineName="queued")["pipelineExecutionSummaries"]
        ends = {s["pipelineExecutionId"]: s["lastUpdateTime"] for s in summaries}
        self.assertEqual(sorted(ids, key=ends.__getitem__), ids)

    def test_superseded_mode(self) -> None:
        self.hold_pipeline("superseded", "SUPERSEDED")
        first = self.start("superseded")
        self.approval_token("superseded", "hold", first)
        second = self.start("superseded")
        wait_for(lambda: self.stages("superseded")["hold"].get("inboundExecution", {})
                 .get("pipelineExecutionId") == second, what="second waiting")
        third = self.start("superseded")
        self.wait_status("superseded", second, "Superseded")
        wait_for(lambda: self.stages("superseded")["hold"].get("inboundExecution", {})
                 .get("pipelineExecutionId") == third, what="third waiting")
        # The execution inside the locked stage is not superseded.
        self.assertEqual(self.execution("superseded", first)["status"], "InProgress")
        self.approve("superseded", first)
        self.wait_status("superseded", first, "Succeeded")
        self.approve("superseded", third)
        self.wait_status("superseded", third, "Succeeded")
        self.assertEqual(self.execution("superseded", second)["status"], "Superseded")
        self.assertNotIn("hold", {d["stageName"] for d in self.actions("superseded", second)})

    def test_superseded_back_to_back_starts_both_run(self) -> None:
        # The first execution enters the free Source stage at once, so a second one
        # started right after waits behind it instead of superseding it.
        self.small("quick", [{"name": "build", "actions": [codebuild_action("build")]}])
        first, second = self.start("quick"), self.start("quick")
        self.wait_status("quick", first, "Succeeded")
        self.wait_status("quick", second, "Succeeded")

    def test_parallel_mode_and_approval_by_external_execution_id(self) -> None:
        self.hold_pipeline("parallel", "PARALLEL")
        ids = [self.start("parallel") for _ in range(2)]
        for execution_id in ids:
            wait_for(lambda: any(d["actionName"] == "approve" for d in self.actions("parallel", execution_id)),
                     what="approval waiting")
        state = self.stages("parallel")["hold"]
        self.assertNotIn("token", state["actionStates"][0]["latestExecution"])
        for execution_id in reversed(ids):
            approval = next(d for d in self.actions("parallel", execution_id) if d["actionName"] == "approve")
            self.assertEqual(approval["status"], "InProgress")
            self.cp.put_approval_result(
                pipelineName="parallel", stageName="hold", actionName="approve",
                result={"status": "Approved", "summary": "ok"},
                token=approval["output"]["executionResult"]["externalExecutionId"])
        for execution_id in ids:
            self.wait_status("parallel", execution_id, "Succeeded")

    def test_update_pipeline_cancels_executions_in_flight(self) -> None:
        declaration = self.small("updated", [
            {"name": "hold", "actions": [approval_action()]},
        ], mode="QUEUED")
        waiting = self.start("updated")
        token = self.approval_token("updated", "hold", waiting)
        queued = self.start("updated")
        wait_for(lambda: self.stages("updated")["hold"].get("inboundExecutions"), what="queued execution")
        declaration["stages"].append({"name": "extra", "actions": [codebuild_action("extra")]})
        self.assertEqual(self.cp.update_pipeline(pipeline=declaration)["pipeline"]["version"], 2)
        for execution_id in (waiting, queued):
            execution = self.execution("updated", execution_id)
            self.assertEqual(execution["status"], "Cancelled")
            self.assertEqual(execution["pipelineVersion"], 1)
        stages = self.stages("updated")
        self.assertEqual(stages["hold"]["latestExecution"],
                         {"pipelineExecutionId": waiting, "status": "Cancelled", "type": "STANDARD"})
        self.assertEqual(stages["hold"]["actionStates"][0]["latestExecution"]["status"], "Abandoned")
        self.assertNotIn("inboundExecutions", stages["hold"])
        self.assert_client_error("InvalidApprovalTokenException", lambda: self.cp.put_approval_result(
            pipelineName="updated", stageName="hold", actionName="approve",
            result={"status": "Approved", "summary": "late"}, token=token))
        # The new version runs.
        fresh = self.start("updated")
        self.approve_hold_only("updated", fresh)
        execution = self.wait_status("updated", fresh, "Succeeded")
        self.assertEqual(execution["pipelineVersion"], 2)
        self.cp.delete_pipeline(name="updated")
        self.assert_client_error("PipelineNotFoundException",
                                 lambda: self.cp.get_pipeline_state(name="updated"))

    def approve_hold_only(self, name: str, execution_id: str) -> None:
        token = self.approval_token(name, "hold", execution_id)
        self.cp.put_approval_result(pipelineName=name, stageName="hold", actionName="approve",
                                    result={"status": "Approved", "summary": "ok"}, token=token)

    def test_stop_pipeline_execution(self) -> None:
        self.small("stops", [
            {"name": "build", "actions": [codebuild_action("build"), codebuild_action("after", run_order=2)]},
            {"name": "deploy", "actions": [codebuild_action("deploy")]},
        ], mode="PARALLEL")
        control("/_bpl/action-outcome", {"pipelineName": "stops", "actionName": "build",
                                          "status": "Succeeded", "seconds": 0.6})
        abandoned = self.start("stops")
        wait_for(lambda: self.stage_status("stops", "build") == "InProgress", what="build running")
        self.cp.stop_pipeline_execution(pipelineName="stops", pipelineExecutionId=abandoned,
                                        abandon=True, reason="abandon it")
        execution = self.execution("stops", abandoned)
        self.assertEqual(execution["status"], "Stopped")
        summary = self.cp.list_pipeline_executions(pipelineName="stops")["pipelineExecutionSummaries"][0]
        self.assertEqual(summary["stopTrigger"], {"reason": "abandon it"})
        build = next(d for d in self.actions("stops", abandoned) if d["actionName"] == "build")
        self.assertEqual(build["status"], "Abandoned")
        self.assertEqual(self.stage_status("stops", "build"), "Stopped")

        waited = self.start("stops")
        wait_for(lambda: any(d["actionName"] == "build" for d in self.actions("stops", waited)),
                 what="build running")
        self.cp.stop_pipeline_execution(pipelineName="stops", pipelineExecutionId=waited, reason="wait")
        self.assertEqual(self.execution("stops", waited)["status"], "Stopping")
        self.assertEqual(self.stage_status("stops", "build"), "Stopping")
        self.assert_client_error("DuplicatedStopRequestException", lambda: self.cp.stop_pipeline_execution(
            pipelineName="stops", pipelineExecutionId=waited))
        self.wait_status("stops", waited, "Stopped")
        details = {d["actionName"]: d["status"] for d in self.actions("stops", waited)}
        self.assertEqual(details, {"Source": "Succeeded", "build": "Succeeded"})
        self.assertEqual(self.stage_status("stops", "build"), "Stopped")
        self.assert_client_error("PipelineExecutionNotStoppableException", lambda: self.cp.stop_pipeline_execution(
            pipelineName="stops", pipelineExecutionId=waited, abandon=True))
        self.assert_client_error("PipelineExecutionNotFoundException", lambda: self.cp.stop_pipeline_execution(
            pipelineName="stops", pipelineExecutionId="00000000-0000-0000-0000-000000000000"))

    def test_create_of_an_existing_name_is_name_in_use(self) -> None:
        declaration = self.small("taken", [{"name": "build", "actions": [codebuild_action("build")]}])
        with self.assertRaises(ClientError) as caught:
            self.create(declaration)
        self.assertEqual(caught.exception.response["Error"]["Code"], "PipelineNameInUseException")

    def test_idempotency_token(self) -> None:
        self.small("tokens", [{"name": "build", "actions": [codebuild_action("build")]}])
        first = self.start("tokens", clientRequestToken="token-1")
        self.assertEqual(self.start("tokens", clientRequestToken="token-1"), first)
        other = self.start("tokens", clientRequestToken="token-2")
        self.assertNotEqual(other, first)
        ids = [s["pipelineExecutionId"] for s in
               self.cp.list_pipeline_executions(pipelineName="tokens")["pipelineExecutionSummaries"]]
        self.assertEqual(ids, [other, first])

    def test_list_pipeline_executions_pages_newest_first(self) -> None:
        self.small("paged", [{"name": "build", "actions": [codebuild_action("build")]}], mode="PARALLEL")
        ids = [self.start("paged") for _ in range(5)]
        for execution_id in ids:
            self.wait_status("paged", execution_id, "Succeeded")
        seen: list[str] = []
        pages = 0
        kwargs: dict[str, Any] = {"pipelineName": "paged", "maxResults": 2}
        while True:
            page = self.cp.list_pipeline_executions(**kwargs)
            pages += 1
            self.assertLessEqual(len(page["pipelineExecutionSummaries"]), 2)
            seen.extend(s["pipelineExecutionId"] for s in page["pipelineExecutionSummaries"])
            if "nextToken" not in page:
                break
            kwargs["nextToken"] = page["nextToken"]
            if pages == 1:
                self.start("paged")  # a new execution does not shift later pages
        self.assertEqual(pages, 3)
        self.assertEqual(seen, list(reversed(ids)))
        paginator = self.cp.get_paginator("list_pipeline_executions")
        self.assertEqual(sum(len(p["pipelineExecutionSummaries"])
                             for p in paginator.paginate(pipelineName="paged", PaginationConfig={"PageSize": 2})), 6)
        control("/_bpl/action-outcome", {"pipelineName": "paged", "status": "Failed"})
        failed = self.start("paged")
        self.wait_status("paged", failed, "Failed")
        succeeded = self.cp.list_pipeline_executions(
            pipelineName="paged", filter={"succeededInStage": {"stageName": "build"}}
        )["pipelineExecutionSummaries"]
        self.assertNotIn(failed, {s["pipelineExecutionId"] for s in succeeded})
        self.assertTrue(set(ids) <= {s["pipelineExecutionId"] for s in succeeded})
        self.assert_client_error("InvalidNextTokenException", lambda: self.cp.list_pipeline_executions(
            pipelineName="paged", nextToken="garbage"))

    def test_status_override_engine_config_and_reset(self) -> None:
        self.hold_pipeline("override", "SUPERSEDED")
        execution_id = self.start("override")
        self.approval_token("override", "hold", execution_id)
        result = control("/_bpl/pipeline-execution", {"pipelineName": "override", "status": "Failed",
                                                     "statusSummary": "forced"})
        self.assertEqual(result, {"pipelineExecutionId": execution_id, "status": "Failed"})
        execution = self.execution("override", execution_id)
        self.assertEqual((execution["status"], execution["statusSummary"]), ("Failed", "forced"))
        # A finished execution forced back to InProgress can be stopped, as before.
        control("/_bpl/pipeline-execution", {"pipelineName": "override", "pipelineExecutionId": execution_id,
                                             "status": "InProgress"})
        self.cp.stop_pipeline_execution(pipelineName="override", pipelineExecutionId=execution_id, abandon=True)
        self.assertEqual(self.execution("override", execution_id)["status"], "Stopped")

        config = control("/_bpl/engine", {"actionSeconds": 0.5, "manualStartBranch": "commit"})
        self.assertEqual(config, {"actionSeconds": 0.5, "manualStartBranch": "commit",
                                  "matchesMode": "fullmatch", "startOnCreate": False})
        self.assertEqual(control("/_bpl/engine", method="GET"), config)
        self.assertEqual(control_error("/_bpl/engine", {"manualStartBranch": "tip"})[0], 400)
        self.assertEqual(control_error("/_bpl/engine", {"bogus": 1})[0], 400)
        control("/_bpl/action-outcome", {"status": "Failed"})
        control("/_bpl/reset")
        self.assertEqual(control("/_bpl/engine", method="GET")["actionSeconds"], 0.3)
        self.assertEqual(control("/_bpl/action-outcome", method="GET"), {"rules": []})
        self.assert_client_error("PipelineNotFoundException",
                                 lambda: self.cp.get_pipeline_state(name="override"))

    def test_responses_match_the_botocore_model(self) -> None:
        """Every member of every engine response is in botocore's output shape, enum
        values are in their enums and timestamps are epoch numbers (what the Rust SDK
        parses)."""
        checked: dict[str, int] = {}
        problems: list[str] = []

        def check(shape: Any, value: Any, path: str) -> None:
            kind = shape.type_name
            if kind == "structure":
                if not isinstance(value, dict):
                    problems.append(f"{path}: not an object")
                    return
                for key, member in value.items():
                    if key not in shape.members:
                        problems.append(f"{path}.{key}: not a member of {shape.name}")
                    else:
                        check(shape.members[key], member, f"{path}.{key}")
                for required in shape.required_members:
                    if required not in value:
                        problems.append(f"{path}: required {required} missing")
            elif kind == "list":
                for index, item in enumerate(value):
                    check(shape.member, item, f"{path}[{index}]")
            elif kind == "map":
                for key, item in value.items():
                    check(shape.value, item, f"{path}[{key}]")
            elif kind == "timestamp":
                if not isinstance(value, (int, float)):
                    problems.append(f"{path}: timestamp {value!r} is not epoch seconds")
            elif kind == "string":
                if not isinstance(value, str):
                    problems.append(f"{path}: {value!r} is not a string")
                elif shape.enum and value not in shape.enum:
                    problems.append(f"{path}: {value!r} not in {shape.enum}")
            elif kind in ("integer", "long") and not isinstance(value, int):
                problems.append(f"{path}: {value!r} is not an integer")
            elif kind == "boolean" and not isinstance(value, bool):
                problems.append(f"{path}: {value!r} is not a boolean")

        def after_call(http_response: Any, model: Any, **_: Any) -> None:
            if http_response.status_code == 200 and model.output_shape is not None and http_response.content:
                check(model.output_shape, json.loads(http_response.content), model.name)
                checked[model.name] = checked.get(model.name, 0) + 1

        self.cp.meta.events.register("after-call.codepipeline.*", after_call)
        self.create_golden()
        develop = self.push("develop", sha(80))[0]["pipelineExecutionId"]
        production = self.push("main", sha(81))[0]["pipelineExecutionId"]
        self.wait_status(DEVELOP, develop, "Succeeded")
        token = self.approval_token(PRODUCTION, "deploy-prod", production)
        queued = self.push("main", sha(82))[0]["pipelineExecutionId"]
        wait_for(lambda: self.stages(PRODUCTION)["deploy-prod"].get("inboundExecutions"), what="inbound")
        self.cp.put_approval_result(pipelineName=PRODUCTION, stageName="deploy-prod", actionName="approve",
                                    result={"status": "Approved", "summary": "ok"}, token=token)
        self.cp.stop_pipeline_execution(pipelineName=PRODUCTION, pipelineExecutionId=queued,
                                        abandon=True, reason="enough")
        self.wait_status(PRODUCTION, production, "Succeeded")
        manual = self.start(PRODUCTION, sourceRevisions=[
            {"actionName": "Source", "revisionType": "COMMIT_ID", "revisionValue": sha(80)}])
        self.stages(PRODUCTION)
        for name, execution_id in ((DEVELOP, develop), (PRODUCTION, production), (PRODUCTION, queued),
                                   (PRODUCTION, manual)):
            self.execution(name, execution_id)
            self.actions(name, execution_id)
        self.cp.list_pipeline_executions(pipelineName=PRODUCTION)
        self.cp.list_action_executions(pipelineName=DEVELOP)
        self.assertEqual(problems, [])
        self.assertTrue({"GetPipelineState", "GetPipelineExecution", "ListPipelineExecutions",
                         "ListActionExecutions", "PutApprovalResult", "StopPipelineExecution",
                         "StartPipelineExecution"} <= set(checked), checked)

    def test_start_on_create_switch(self) -> None:
        control("/_bpl/engine", {"startOnCreate": True})
        self.small("created", [{"name": "build", "actions": [codebuild_action("build")]}])
        summaries = self.cp.list_pipeline_executions(pipelineName="created")["pipelineExecutionSummaries"]
        self.assertEqual([s["trigger"]["triggerType"] for s in summaries], ["CreatePipeline"])


if __name__ == "__main__":
    unittest.main()
