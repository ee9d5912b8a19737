//! What the pipelines' executions mean: each environment's last run and deployed commit, and
//! the commit statuses GitHub should show. Pure: the tracker reads the executions once and
//! hands them here.
//!
//! Where the facts come from (CodePipeline API Reference):
//! - ListPipelineExecutions gives each execution's status, `trigger` and `sourceRevisions` (the
//!   commit), newest first, but no branch.
//! - ListActionExecutions gives the source action's output variables (CodeStarSourceConnection
//!   action reference, "Variables"): `BranchName` and `CommitId`, and for a pull request
//!   `SourceBranchName`, `DestinationBranchName` and `PullRequestId`.
//! - GetPipelineExecution gives the resolved pipeline-level variables: `BPL_RUN` and
//!   `BPL_BRANCH` say which BranchPipelineRun started it and for which branch (see
//!   [`crate::render::routing`]); `BranchName` may then be the configured branch.
//! - When a deploy ended is its stage's, not the execution's: each ActionExecutionDetail of
//!   ListActionExecutions has its own `startTime` and `lastUpdateTime`
//!   (<https://docs.aws.amazon.com/codepipeline/latest/APIReference/API_ActionExecutionDetail.html>),
//!   while the execution's `lastUpdateTime` moves on with every later stage (an approval after
//!   it can hold the execution for days).

use std::collections::{BTreeMap, BTreeSet};

use super::run::stage_results;
use crate::api::{Deployed, EnvironmentStatus, ExecutionRecord, RunStage};
use crate::aws::executions::{ActionRun, ActionStatus, Execution, ExecutionStatus, StageState};
use crate::github::{CommitStatus, State};
use crate::render::routing::{PUSH, RUN_BRANCH_VARIABLE, RUN_VARIABLE, TARGET_VARIABLE};
use crate::render::{DesiredPipeline, SOURCE_STAGE, stage_name};

/// A pipeline as the tracker follows it.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackedPipeline {
    pub name: String,
    /// The environments it deploys, in order.
    pub environments: Vec<String>,
    /// Its build stages, in order.
    pub build_stages: Vec<String>,
    /// The pull-request pipeline: one `branchpipeline/pr` status, no environments.
    pub pull_request: bool,
}

impl TrackedPipeline {
    /// What to follow of a rendered pipeline.
    pub fn from_desired(desired: &DesiredPipeline) -> Self {
        let deploy_stages: Vec<String> =
            desired.environments.iter().map(|e| stage_name(e)).collect();
        let declaration = &desired.pipeline;
        Self {
            name: declaration.name.clone(),
            environments: desired.environments.clone(),
            build_stages: declaration
                .stages
                .iter()
                .map(|s| s.name.clone())
                .filter(|s| s != SOURCE_STAGE && !deploy_stages.contains(s))
                .collect(),
            pull_request: declaration
                .triggers
                .iter()
                .any(|t| !t.git_configuration.pull_request.is_empty()),
        }
    }
}

/// Everything read about one execution.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionView {
    pub execution: Execution,
    /// Every stage with its result in this execution.
    pub stages: Vec<RunStage>,
    /// The source action's output variables.
    pub source: BTreeMap<String, String>,
    /// Per stage whose actions have all ended: the latest `lastUpdateTime` among them.
    pub stage_ends: BTreeMap<String, String>,
}

impl ExecutionView {
    pub fn new(execution: Execution, actions: &[ActionRun], states: &[StageState]) -> Self {
        let source = actions
            .iter()
            .find(|a| a.stage == SOURCE_STAGE)
            .map(|a| a.output_variables.clone())
            .unwrap_or_default();
        Self {
            stages: stage_results(&execution, actions, states),
            execution,
            source,
            stage_ends: stage_ends(actions),
        }
    }

    fn variable(&self, name: &str) -> Option<&str> {
        self.execution
            .variables
            .get(name)
            .map(String::as_str)
            .filter(|v| *v != PUSH)
    }

    /// `push`, `pull-request`, the BranchPipelineRun's name, or `console`.
    pub fn trigger(&self) -> String {
        match self.execution.trigger.as_deref() {
            Some("WebhookV2" | "Webhook") if self.source.contains_key("PullRequestId") => {
                "pull-request".into()
            }
            Some("WebhookV2" | "Webhook" | "PollForSourceChanges" | "CloudWatchEvent") => {
                "push".into()
            }
            Some("StartPipelineExecution") => self
                .variable(RUN_VARIABLE)
                .map_or_else(|| "console".to_string(), str::to_string),
            other => other.unwrap_or("unknown").to_string(),
        }
    }

    pub fn branch(&self) -> Option<String> {
        self.variable(RUN_BRANCH_VARIABLE)
            .map(str::to_string)
            .or_else(|| self.source.get("SourceBranchName").cloned())
            .or_else(|| self.source.get("BranchName").cloned())
    }

    pub fn commit(&self) -> Option<String> {
        self.source
            .get("CommitId")
            .cloned()
            .or_else(|| self.execution.commit.clone())
    }

    fn stage(&self, name: &str) -> Option<&RunStage> {
        self.stages.iter().find(|s| s.name == name)
    }

    /// When `stage` ended, if its result is final and its actions say when.
    fn stage_end(&self, stage: &str, result: &str) -> Option<String> {
        let ended = matches!(result, "Succeeded" | "Failed" | "Stopped" | "Cancelled");
        ended.then(|| self.stage_ends.get(stage).cloned()).flatten()
    }

    pub fn record(&self, result: &str) -> ExecutionRecord {
        ExecutionRecord {
            execution_id: self.execution.id.clone(),
            pipeline: None,
            trigger: self.trigger(),
            branch: self.branch(),
            commit: self.commit(),
            result: result.to_string(),
            start_time: self.execution.start_time.clone(),
            end_time: self
                .execution
                .status
                .is_finished()
                .then(|| self.execution.last_update_time.clone())
                .flatten(),
        }
    }

    /// The pipeline-level result: the execution's status, or AwaitingApproval.
    pub fn result(&self) -> String {
        if !self.execution.status.is_finished()
            && self.stages.iter().any(|s| s.result == "AwaitingApproval")
        {
            return "AwaitingApproval".into();
        }
        format!("{:?}", self.execution.status)
    }
}

/// An environment's updated status after `views` (oldest first) of the pipeline deploying it.
/// An execution counts for an environment when it reached its stage, or targeted it and was
/// skipped; the newest such is its last run, the newest success what it runs.
pub fn environment(
    previous: Option<&EnvironmentStatus>,
    pipeline: &str,
    env: &str,
    views: &[ExecutionView],
) -> EnvironmentStatus {
    let mut status = previous.cloned().unwrap_or_else(|| EnvironmentStatus {
        name: env.to_string(),
        pipeline: pipeline.to_string(),
        last_run: None,
        deployed: None,
    });
    status.pipeline = pipeline.to_string();
    let stage = stage_name(env);
    for view in views {
        let Some(result) = view.stage(&stage).map(|s| s.result.as_str()) else {
            continue;
        };
        let targeted = view.variable(TARGET_VARIABLE) == Some(env);
        let counts = match result {
            "Pending" | "NotRun" => false,
            "Skipped" => targeted,
            _ => true,
        };
        if !counts {
            continue;
        }
        let end = view.stage_end(&stage, result);
        let mut run = view.record(result);
        if end.is_some() {
            run.end_time.clone_from(&end);
        }
        status.last_run = Some(run);
        if result == "Succeeded"
            && let Some(commit) = view.commit()
        {
            status.deployed = Some(Deployed {
                commit,
                branch: view.branch(),
                // The execution's time only when the actions give none.
                time: end.or_else(|| view.execution.last_update_time.clone()),
                execution_id: view.execution.id.clone(),
            });
        }
    }
    status
}

/// When each stage ended: the latest `lastUpdateTime` of its actions, for a stage none of
/// whose actions still runs (a retried stage has one action execution per attempt). Times are
/// compared as instants: RFC 3339 text with and without fractions does not sort as text.
fn stage_ends(actions: &[ActionRun]) -> BTreeMap<String, String> {
    let mut running = BTreeSet::new();
    let mut ends: BTreeMap<String, (jiff::Timestamp, String)> = BTreeMap::new();
    for action in actions {
        if matches!(
            action.status,
            ActionStatus::InProgress | ActionStatus::Unknown
        ) {
            running.insert(action.stage.as_str());
            continue;
        }
        let Some(text) = &action.last_update_time else {
            continue;
        };
        let Ok(at) = text.parse::<jiff::Timestamp>() else {
            continue;
        };
        if ends
            .get(&action.stage)
            .is_none_or(|(latest, _)| at > *latest)
        {
            ends.insert(action.stage.clone(), (at, text.clone()));
        }
    }
    ends.into_iter()
        .filter(|(stage, _)| !running.contains(stage.as_str()))
        .map(|(stage, (_, text))| (stage, text))
        .collect()
}

/// The statuses GitHub should show for one execution's commit: `branchpipeline/build` for the
/// build stages and `branchpipeline/<environment>` for each environment it reached, or
/// `branchpipeline/pr` for a pull request. A skipped or unreached environment gets none.
pub fn commit_statuses(
    pipeline: &TrackedPipeline,
    view: &ExecutionView,
    target_url: Option<String>,
) -> Vec<CommitStatus> {
    let Some(sha) = view.commit() else {
        return Vec::new();
    };
    let context = if pipeline.pull_request {
        "branchpipeline/pr"
    } else {
        "branchpipeline/build"
    };
    let (state, description) = build_state(pipeline, view);
    let mut out =
        vec![CommitStatus::new(&sha, context, state, &description).linked(target_url.clone())];
    for env in &pipeline.environments {
        let Some(stage) = view.stage(&stage_name(env)) else {
            continue;
        };
        if let Some((state, description)) = deploy_state(env, stage) {
            out.push(
                CommitStatus::new(&sha, &format!("branchpipeline/{env}"), state, &description)
                    .linked(target_url.clone()),
            );
        }
    }
    out
}

fn build_state(pipeline: &TrackedPipeline, view: &ExecutionView) -> (State, String) {
    let builds: Vec<&RunStage> = pipeline
        .build_stages
        .iter()
        .filter_map(|s| view.stage(s))
        .collect();
    if let Some(failed) = builds.iter().find(|s| s.result == "Failed") {
        return (State::Failure, format!("{} failed", failed.name));
    }
    if !builds.is_empty() && builds.iter().all(|s| s.result == "Succeeded") {
        let names: Vec<&str> = builds.iter().map(|s| s.name.as_str()).collect();
        return (State::Success, format!("{} passed", names.join(", ")));
    }
    match view.execution.status {
        ExecutionStatus::Stopped | ExecutionStatus::Stopping => {
            (State::Error, "stopped before the build finished".into())
        }
        ExecutionStatus::Cancelled => (State::Error, "cancelled by a pipeline update".into()),
        ExecutionStatus::Superseded => (State::Error, "superseded by a newer run".into()),
        ExecutionStatus::Failed => (State::Failure, "the pipeline failed".into()),
        _ => (State::Pending, "building".into()),
    }
}

fn deploy_state(env: &str, stage: &RunStage) -> Option<(State, String)> {
    let summary = stage
        .message
        .as_deref()
        .map(|m| format!(": {m}"))
        .unwrap_or_default();
    Some(match stage.result.as_str() {
        "InProgress" => (State::Pending, format!("deploying to {env}")),
        "AwaitingApproval" => (State::Pending, format!("{env}: awaiting approval")),
        "Succeeded" => (State::Success, format!("deployed to {env}")),
        "Failed" => (State::Failure, format!("deploy to {env} failed{summary}")),
        "Stopped" => (State::Error, format!("deploy to {env} stopped")),
        "Cancelled" => (
            State::Error,
            format!("deploy to {env} cancelled by a pipeline update"),
        ),
        _ => return None,
    })
}

/// The newest execution at or before which every execution has finished: the next listing
/// stops there. `listed` is newest first, as ListPipelineExecutions returns it.
pub fn cursor(previous: Option<&str>, listed: &[Execution]) -> Option<String> {
    let mut cursor = previous.map(str::to_string);
    for execution in listed.iter().rev() {
        if !execution.status.is_finished() {
            break;
        }
        cursor = Some(execution.id.clone());
    }
    cursor
}

/// The CodePipeline console's page of an execution.
pub fn console_url(region: &str, pipeline: &str, execution: &str) -> String {
    format!(
        "https://{region}.console.aws.amazon.com/codesuite/codepipeline/pipelines/{pipeline}/executions/{execution}/timeline?region={region}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "4f2a9c1d0e5b6a7f8091a2b3c4d5e6f708192a3b";

    fn pipeline() -> TrackedPipeline {
        TrackedPipeline {
            name: "ns-app".into(),
            environments: vec!["dev".into(), "qa".into(), "stage".into(), "perf".into()],
            build_stages: vec!["lint".into(), "test".into(), "build".into()],
            pull_request: false,
        }
    }

    fn action(stage: &str, action: &str, status: ActionStatus) -> ActionRun {
        ActionRun {
            stage: stage.into(),
            action: action.into(),
            status,
            summary: (status == ActionStatus::Failed).then(|| "2 tests failed".into()),
            start_time: None,
            last_update_time: None,
            output_variables: if stage == SOURCE_STAGE {
                BTreeMap::from([
                    ("BranchName".to_string(), "develop".to_string()),
                    ("CommitId".to_string(), SHA.to_string()),
                ])
            } else {
                BTreeMap::new()
            },
        }
    }

    fn execution(id: &str, status: ExecutionStatus, trigger: &str) -> Execution {
        Execution {
            id: id.into(),
            status,
            trigger: Some(trigger.into()),
            start_time: Some(format!("2026-11-27T10:00:0{}Z", id.len() % 10)),
            last_update_time: Some("2026-11-27T10:05:00Z".into()),
            ..Execution::default()
        }
    }

    fn skipped(id: &str, stages: &[&str]) -> Vec<StageState> {
        stages
            .iter()
            .map(|s| StageState {
                name: s.to_string(),
                latest: Some((id.to_string(), "Skipped".to_string())),
            })
            .collect()
    }

    /// A push of develop that built and deployed dev, skipping the others.
    fn develop_push(id: &str, status: ExecutionStatus, dev: ActionStatus) -> ExecutionView {
        let actions = [
            action(SOURCE_STAGE, "Source", ActionStatus::Succeeded),
            action("lint", "lint", ActionStatus::Succeeded),
            action("test", "test", ActionStatus::Succeeded),
            action("build", "build", ActionStatus::Succeeded),
            action("deploy-dev", "deploy", dev),
        ];
        let mut states = vec![
            StageState {
                name: SOURCE_STAGE.into(),
                latest: None,
            },
            StageState {
                name: "lint".into(),
                latest: None,
            },
            StageState {
                name: "test".into(),
                latest: None,
            },
            StageState {
                name: "build".into(),
                latest: None,
            },
            StageState {
                name: "deploy-dev".into(),
                latest: Some((id.into(), "InProgress".into())),
            },
        ];
        states.extend(skipped(id, &["deploy-qa", "deploy-stage", "deploy-perf"]));
        ExecutionView::new(execution(id, status, "WebhookV2"), &actions, &states)
    }

    fn contexts(statuses: &[CommitStatus]) -> Vec<(String, State)> {
        statuses
            .iter()
            .map(|s| (s.context.clone(), s.state))
            .collect()
    }

    #[test]
    fn a_push_reports_build_and_the_one_environment_it_reached() {
        let running = develop_push("e1", ExecutionStatus::InProgress, ActionStatus::InProgress);
        assert_eq!(
            contexts(&commit_statuses(&pipeline(), &running, None)),
            [
                ("branchpipeline/build".to_string(), State::Success),
                ("branchpipeline/dev".to_string(), State::Pending),
            ]
        );
        let done = develop_push("e1", ExecutionStatus::Succeeded, ActionStatus::Succeeded);
        let statuses = commit_statuses(&pipeline(), &done, Some("https://console/e1".into()));
        assert_eq!(statuses[1].state, State::Success);
        assert!(
            statuses
                .iter()
                .all(|s| s.sha == SHA && s.target_url.is_some())
        );
        assert_eq!(done.trigger(), "push");
        assert_eq!(done.branch().as_deref(), Some("develop"));
    }

    #[test]
    fn a_failed_test_stage_fails_the_build_and_reports_no_environment() {
        let actions = [
            action(SOURCE_STAGE, "Source", ActionStatus::Succeeded),
            action("lint", "lint", ActionStatus::Succeeded),
            action("test", "test", ActionStatus::Failed),
        ];
        let states: Vec<StageState> = ["Source", "lint", "test", "build", "deploy-dev"]
            .iter()
            .map(|s| StageState {
                name: s.to_string(),
                latest: None,
            })
            .collect();
        let view = ExecutionView::new(
            execution("e2", ExecutionStatus::Failed, "WebhookV2"),
            &actions,
            &states,
        );
        let statuses = commit_statuses(&pipeline(), &view, None);
        assert_eq!(statuses.len(), 1, "{statuses:?}");
        assert_eq!(statuses[0].state, State::Failure);
        assert_eq!(statuses[0].description, "test failed");
    }

    #[test]
    fn an_approval_is_pending_with_its_reason() {
        let stage = RunStage {
            name: "deploy-perf".into(),
            result: "AwaitingApproval".into(),
            message: None,
        };
        assert_eq!(
            deploy_state("perf", &stage),
            Some((State::Pending, "perf: awaiting approval".into()))
        );
        let skipped = RunStage {
            result: "Skipped".into(),
            ..stage
        };
        assert_eq!(deploy_state("perf", &skipped), None);
    }

    #[test]
    fn environments_keep_their_last_run_and_what_they_run() {
        let first = develop_push("e1", ExecutionStatus::Succeeded, ActionStatus::Succeeded);
        let second = develop_push("e22", ExecutionStatus::Failed, ActionStatus::Failed);
        let dev = environment(None, "ns-app", "dev", &[first, second]);
        let last = dev.last_run.expect("a last run");
        assert_eq!(
            (last.execution_id.as_str(), last.result.as_str()),
            ("e22", "Failed")
        );
        let deployed = dev.deployed.expect("deployed");
        assert_eq!(
            (deployed.execution_id.as_str(), deployed.commit.as_str()),
            ("e1", SHA)
        );
        let qa = environment(
            None,
            "ns-app",
            "qa",
            &[develop_push(
                "e1",
                ExecutionStatus::Succeeded,
                ActionStatus::Succeeded,
            )],
        );
        assert_eq!(qa.last_run, None, "a skipped environment has no run");
    }

    /// A release push that deployed stage and waits for perf's approval: the execution is still
    /// running, and its `lastUpdateTime` is long after stage's deploy ended.
    fn release_push(approval: ActionStatus) -> ExecutionView {
        let timed = |stage: &str, action: &str, status, end: &str| ActionRun {
            start_time: Some("2026-11-27T10:00:00Z".into()),
            last_update_time: Some(end.into()),
            ..self::action(stage, action, status)
        };
        let actions = [
            timed(
                SOURCE_STAGE,
                "Source",
                ActionStatus::Succeeded,
                "2026-11-27T10:00:10Z",
            ),
            timed(
                "build",
                "build",
                ActionStatus::Succeeded,
                "2026-11-27T10:02:00Z",
            ),
            // Two actions in one stage: the later one ends it, fractions and all.
            timed(
                "deploy-stage",
                "deploy",
                ActionStatus::Succeeded,
                "2026-11-27T10:03:00Z",
            ),
            timed(
                "deploy-stage",
                "smoke",
                ActionStatus::Succeeded,
                "2026-11-27T10:03:00.5Z",
            ),
            timed("deploy-perf", "approve", approval, "2026-11-27T11:00:00Z"),
        ];
        let states: Vec<StageState> = [SOURCE_STAGE, "build", "deploy-stage", "deploy-perf"]
            .iter()
            .map(|s| StageState {
                name: s.to_string(),
                latest: None,
            })
            .collect();
        let mut e = execution("e9", ExecutionStatus::InProgress, "WebhookV2");
        e.last_update_time = Some("2026-11-27T11:00:00Z".into());
        if approval != ActionStatus::InProgress {
            e.status = ExecutionStatus::Succeeded;
            e.last_update_time = Some("2026-11-27T12:00:00Z".into());
        }
        ExecutionView::new(e, &actions, &states)
    }

    #[test]
    fn a_deploy_ends_when_its_stage_does_not_when_the_execution_does() {
        let waiting = release_push(ActionStatus::InProgress);
        let stage = environment(None, "ns-app", "stage", std::slice::from_ref(&waiting));
        let run = stage.last_run.expect("stage ran");
        assert_eq!(run.result, "Succeeded");
        assert_eq!(
            run.end_time.as_deref(),
            Some("2026-11-27T10:03:00.5Z"),
            "its last action's end, though the execution still runs"
        );
        let deployed = stage.deployed.expect("deployed");
        assert_eq!(deployed.time.as_deref(), Some("2026-11-27T10:03:00.5Z"));
        let perf = environment(None, "ns-app", "perf", std::slice::from_ref(&waiting));
        let run = perf.last_run.expect("perf is waiting");
        assert_eq!(
            (run.result.as_str(), run.end_time),
            ("AwaitingApproval", None),
            "a stage still running has not ended"
        );

        let done = release_push(ActionStatus::Succeeded);
        let stage = environment(None, "ns-app", "stage", std::slice::from_ref(&done));
        assert_eq!(
            stage.deployed.and_then(|d| d.time).as_deref(),
            Some("2026-11-27T10:03:00.5Z"),
            "not the execution's end (12:00)"
        );
        let perf = environment(None, "ns-app", "perf", std::slice::from_ref(&done));
        assert_eq!(
            perf.last_run.and_then(|r| r.end_time).as_deref(),
            Some("2026-11-27T11:00:00Z")
        );
    }

    #[test]
    fn without_action_times_a_deploy_takes_the_executions() {
        let done = develop_push("e1", ExecutionStatus::Succeeded, ActionStatus::Succeeded);
        let dev = environment(None, "ns-app", "dev", std::slice::from_ref(&done));
        assert_eq!(
            dev.deployed.and_then(|d| d.time).as_deref(),
            Some("2026-11-27T10:05:00Z")
        );
        assert_eq!(
            dev.last_run.and_then(|r| r.end_time).as_deref(),
            Some("2026-11-27T10:05:00Z")
        );
    }

    #[test]
    fn a_run_is_named_and_its_branch_taken_from_its_variables() {
        let mut e = execution("e3", ExecutionStatus::InProgress, "StartPipelineExecution");
        e.variables = BTreeMap::from([
            ("BPL_RUN".to_string(), "login-to-qa".to_string()),
            ("BPL_BRANCH".to_string(), "feature/login".to_string()),
            ("BPL_TARGET".to_string(), "qa".to_string()),
        ]);
        let actions = [action(SOURCE_STAGE, "Source", ActionStatus::Succeeded)];
        let states = skipped("e3", &["deploy-qa"]);
        let view = ExecutionView::new(e, &actions, &states);
        assert_eq!(view.trigger(), "login-to-qa");
        assert_eq!(view.branch().as_deref(), Some("feature/login"));
        let qa = environment(None, "ns-app", "qa", std::slice::from_ref(&view));
        assert_eq!(qa.last_run.expect("targeted").result, "Skipped");
        let mut console = execution("e4", ExecutionStatus::InProgress, "StartPipelineExecution");
        console.variables = BTreeMap::from([("BPL_RUN".to_string(), "@push".to_string())]);
        assert_eq!(ExecutionView::new(console, &[], &[]).trigger(), "console");
    }

    #[test]
    fn pull_requests_report_one_status() {
        let pr = TrackedPipeline {
            name: "ns-app-pr".into(),
            environments: Vec::new(),
            build_stages: vec!["lint".into()],
            pull_request: true,
        };
        let mut source = action(SOURCE_STAGE, "Source", ActionStatus::Succeeded);
        source
            .output_variables
            .insert("PullRequestId".into(), "7".into());
        source
            .output_variables
            .insert("SourceBranchName".into(), "feature/x".into());
        let view = ExecutionView::new(
            execution("p1", ExecutionStatus::Succeeded, "WebhookV2"),
            &[source, action("lint", "lint", ActionStatus::Succeeded)],
            &[SOURCE_STAGE, "lint"].map(|name| StageState {
                name: name.into(),
                latest: None,
            }),
        );
        assert_eq!(view.trigger(), "pull-request");
        assert_eq!(view.branch().as_deref(), Some("feature/x"));
        assert_eq!(
            contexts(&commit_statuses(&pr, &view, None)),
            [("branchpipeline/pr".to_string(), State::Success)]
        );
    }

    #[test]
    fn the_example_is_followed_as_three_pipelines() {
        let mut bp =
            crate::manifest::parse_documents(include_str!("../../examples/orders-api.yaml"))
                .remove(0)
                .result
                .expect("the example parses");
        bp.spec.pull_requests = Some(crate::api::PullRequestSpec {
            branches: vec!["develop".into()],
            events: vec![crate::api::PullRequestEvent::Open],
            stages: vec!["lint".into(), "test".into()],
        });
        let state = crate::render::compile(&bp).expect("renders");
        let tracked: Vec<TrackedPipeline> = state
            .pipelines
            .iter()
            .map(TrackedPipeline::from_desired)
            .collect();
        let summary: Vec<(&str, usize, usize, bool)> = tracked
            .iter()
            .map(|t| {
                (
                    t.name.as_str(),
                    t.environments.len(),
                    t.build_stages.len(),
                    t.pull_request,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("team-orders-orders-api", 4, 3, false),
                ("team-orders-orders-api-production", 1, 3, false),
                ("team-orders-orders-api-pr", 0, 2, true),
            ]
        );
    }

    #[test]
    fn the_cursor_stops_at_the_oldest_execution_still_running() {
        let listed = [
            execution("e5", ExecutionStatus::Succeeded, "WebhookV2"),
            execution("e4", ExecutionStatus::InProgress, "WebhookV2"),
            execution("e3", ExecutionStatus::Succeeded, "WebhookV2"),
        ];
        assert_eq!(cursor(Some("e2"), &listed).as_deref(), Some("e3"));
        assert_eq!(cursor(Some("e2"), &[]).as_deref(), Some("e2"));
        assert_eq!(cursor(None, &listed[..1]).as_deref(), Some("e5"));
    }
}
