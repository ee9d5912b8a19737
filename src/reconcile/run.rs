//! BranchPipelineRun decisions. Pure: [`accept`] checks a run against its BranchPipeline before
//! any AWS call and says what to start; [`progress`] turns what AWS reports about the execution
//! into the run's status, events and next poll. The controller only observes and carries out.

use std::time::Duration;

use super::events::EventSpec;
use super::status::set_condition;
use crate::api::*;
use crate::aws::StartRun;
use crate::aws::executions::{ActionRun, ActionStatus, Execution, ExecutionStatus, StageState};
use crate::render::DesiredPipeline;
use crate::render::routing::{RUN_BRANCH_VARIABLE, RUN_VARIABLE, TARGET_VARIABLE};
use crate::render::{
    APPROVAL_ACTION, DesiredState, SOURCE_ACTION, SOURCE_STAGE, branches, stage_name,
};
use crate::resolved::{Environment, Feed, ValidatedSpec};
use crate::validate::rules;

pub const CONDITION_ACCEPTED: &str = "Accepted";
pub const CONDITION_SUCCEEDED: &str = "Succeeded";

/// Why a run was refused, naming the field to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub field: &'static str,
    pub message: String,
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// What an accepted run starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    pub branch: String,
    pub start: StartRun,
}

/// The BranchPipeline a run names, as the controller found it, and what it renders to (`None`
/// when its spec is invalid).
pub struct Target<'a> {
    pub bp: &'a BranchPipeline,
    pub rendered: Option<(&'a ValidatedSpec, &'a DesiredState)>,
}

fn reject(field: &'static str, message: String) -> Rejection {
    Rejection { field, message }
}

/// Whether `bp` is Ready for its current generation: AWS matches this very spec.
pub fn is_ready(bp: &BranchPipeline) -> bool {
    bp.metadata.deletion_timestamp.is_none()
        && bp.status.as_ref().is_some_and(|s| {
            s.condition(CONDITION_READY)
                .is_some_and(|c| c.status == "True")
                && s.observed_generation == bp.metadata.generation
        })
}

/// Checks `run` before any AWS call. `target` is `None` when the BranchPipeline does not exist.
pub fn accept(run: &BranchPipelineRun, target: Option<Target<'_>>) -> Result<Accepted, Rejection> {
    let name = &run.spec.branch_pipeline;
    let Some(Target { bp, rendered }) = target else {
        return Err(reject(
            "spec.branchPipeline",
            format!(
                "there is no BranchPipeline {name:?} in this namespace; create it or name an existing one"
            ),
        ));
    };
    ready(name, bp)?;
    let Some((spec, desired)) = rendered else {
        return Err(reject(
            "spec.branchPipeline",
            format!("BranchPipeline {name:?} does not render; see its status"),
        ));
    };
    let (env, pipeline) = environment(run, spec, desired)?;
    let source = source_branch(pipeline);
    let branch = resolve_branch(run, &env.branches, &source)?;
    reachable(run, env, &branch, &source)?;
    let uid = run.metadata.uid.as_deref().unwrap_or_default();
    Ok(Accepted {
        branch: branch.clone(),
        start: StartRun {
            pipeline: pipeline.pipeline.name.clone(),
            source_action: SOURCE_ACTION.to_string(),
            commit: run.spec.commit.clone(),
            variables: vec![
                (TARGET_VARIABLE.to_string(), env.name.clone()),
                (RUN_BRANCH_VARIABLE.to_string(), branch),
                (
                    RUN_VARIABLE.to_string(),
                    run.metadata.name.clone().unwrap_or_default(),
                ),
            ],
            client_request_token: request_token(uid),
        },
    })
}

fn ready(name: &str, bp: &BranchPipeline) -> Result<(), Rejection> {
    if is_ready(bp) {
        return Ok(());
    }
    let why = bp
        .status
        .as_ref()
        .and_then(|s| s.condition(CONDITION_READY))
        .map(|c| format!(" ({}: {})", c.reason, c.message))
        .unwrap_or_default();
    Err(reject(
        "spec.branchPipeline",
        format!(
            "BranchPipeline {name:?} is not Ready{why}; a run starts only when AWS matches its spec, so create the run again once it is Ready"
        ),
    ))
}

/// The environment the run names and the pipeline that deploys it.
fn environment<'a>(
    run: &BranchPipelineRun,
    spec: &'a ValidatedSpec,
    desired: &'a DesiredState,
) -> Result<(&'a Environment, &'a DesiredPipeline), Rejection> {
    let env_name = &run.spec.environment;
    let Some(env) = spec.environment(env_name) else {
        let known: Vec<&str> = spec.environments.iter().map(|e| e.name.as_str()).collect();
        return Err(reject(
            "spec.environment",
            format!(
                "BranchPipeline {:?} has no environment {env_name:?}; it has {}",
                run.spec.branch_pipeline,
                known.join(", ")
            ),
        ));
    };
    if let Feed::Promotion { from, .. } = &env.feed {
        return Err(reject(
            "spec.environment",
            format!(
                "{env_name:?} is promoted from {from:?} and runs only after it; run {from:?} instead"
            ),
        ));
    }
    let pipeline = desired
        .pipelines
        .iter()
        .find(|p| p.environments.contains(env_name))
        .ok_or_else(|| {
            reject(
                "spec.environment",
                format!("no pipeline deploys {env_name:?}"),
            )
        })?;
    Ok((env, pipeline))
}

/// The branch must feed the environment, and the execution must reach it whatever
/// CodePipeline reports as the branch of a manual start.
fn reachable(
    run: &BranchPipelineRun,
    env: &Environment,
    branch: &str,
    source: &str,
) -> Result<(), Rejection> {
    let env_name = &env.name;
    if !matches(&env.branches, branch) {
        return Err(reject(
            "spec.branch",
            format!(
                "{branch:?} is not a branch {env_name:?} takes ({}); use one that matches",
                env.branches.join(", ")
            ),
        ));
    }
    if branch != source && run.spec.commit.is_none() {
        return Err(reject(
            "spec.commit",
            format!(
                "is required for {branch:?}: CodePipeline cannot pick a branch per execution, and without a commit this pipeline builds {source:?}; give the full SHA of the {branch:?} commit to deploy"
            ),
        ));
    }
    if env.feed == Feed::Automatic && !matches(&env.branches, source) {
        return Err(reject(
            "spec.environment",
            format!(
                "{env_name:?} deploys pushes of {} and its pipeline's manual start builds {source:?}, so a run cannot reach it without depending on behaviour AWS does not document; push {branch:?} to deploy it, or set trigger: manual on {env_name:?}",
                env.branches.join(", ")
            ),
        ));
    }
    Ok(())
}

/// The branch requested, or the default: the environment's only literal branch, else the
/// pipeline's source branch when the environment takes it.
fn resolve_branch(
    run: &BranchPipelineRun,
    patterns: &[String],
    source: &str,
) -> Result<String, Rejection> {
    if let Some(branch) = &run.spec.branch {
        rules::branch(branch, false).map_err(|m| reject("spec.branch", m))?;
        return Ok(branch.clone());
    }
    match patterns {
        [only] if branches::is_literal(only) => Ok(only.clone()),
        _ if matches(patterns, source) => Ok(source.to_string()),
        _ => Err(reject(
            "spec.branch",
            format!(
                "is required: {:?} takes {}; name the branch to deploy",
                run.spec.environment,
                patterns.join(", ")
            ),
        )),
    }
}

/// Glob semantics identical to the trigger filters (see [`branches::glob_matches`]).
fn matches(patterns: &[String], branch: &str) -> bool {
    patterns.iter().any(|p| branches::glob_matches(p, branch))
}

/// The branch the pipeline's source action builds without a commit override.
fn source_branch(pipeline: &DesiredPipeline) -> String {
    pipeline
        .pipeline
        .stages
        .iter()
        .find(|s| s.name == SOURCE_STAGE)
        .and_then(|s| s.actions.first())
        .and_then(|a| a.configuration.get("BranchName"))
        .cloned()
        .unwrap_or_default()
}

/// One execution per run, ever: the run's UID as StartPipelineExecution's idempotency token
/// (`clientRequestToken`, `^[a-zA-Z0-9-]+$`, 1-128 characters), so a start repeated after a
/// crash or a leader change returns the execution the first one started.
pub fn request_token(uid: &str) -> String {
    format!("bplrun-{uid}")
}

/// Records a rejection: final, with a Warning.
pub fn rejected(
    status: &mut BranchPipelineRunStatus,
    rejection: &Rejection,
    generation: Option<i64>,
    now: &str,
) -> EventSpec {
    let message = rejection.to_string();
    status.phase = Some(RunPhase::Rejected);
    status.message = Some(message.clone());
    status.completion_time = Some(now.to_string());
    status.observed_generation = generation;
    set_condition(
        &mut status.conditions,
        CONDITION_ACCEPTED,
        false,
        "Rejected",
        &message,
        generation,
        now,
    );
    EventSpec::warning("RunRejected", message)
}

/// Records the started execution.
pub fn started(
    status: &mut BranchPipelineRunStatus,
    accepted: &Accepted,
    execution: &str,
    generation: Option<i64>,
    now: &str,
) -> EventSpec {
    let pipeline = &accepted.start.pipeline;
    let message = format!(
        "started {pipeline} execution {execution} for {}{}",
        accepted.branch,
        accepted
            .start
            .commit
            .as_deref()
            .map(|c| format!(" at {c}"))
            .unwrap_or_default()
    );
    status.phase = Some(RunPhase::InProgress);
    status.message = Some(message.clone());
    status.pipeline = Some(pipeline.clone());
    status.execution_id = Some(execution.to_string());
    status.branch = Some(accepted.branch.clone());
    status.commit = accepted.start.commit.clone();
    status.start_time = Some(now.to_string());
    status.observed_generation = generation;
    set_condition(
        &mut status.conditions,
        CONDITION_ACCEPTED,
        true,
        "Started",
        &message,
        generation,
        now,
    );
    set_unknown(&mut status.conditions, "Running", &message, generation, now);
    EventSpec::normal("RunStarted", message)
}

fn set_unknown(
    conditions: &mut Vec<Condition>,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: &str,
) {
    set_condition(
        conditions,
        CONDITION_SUCCEEDED,
        false,
        reason,
        message,
        generation,
        now,
    );
    if let Some(c) = conditions
        .iter_mut()
        .find(|c| c.type_ == CONDITION_SUCCEEDED)
    {
        c.status = "Unknown".into();
    }
}

/// What AWS reports about a started run's execution.
pub struct Observed<'a> {
    /// `None` when AWS no longer knows the execution.
    pub execution: Option<&'a Execution>,
    pub actions: &'a [ActionRun],
    /// Every stage of the pipeline, in order.
    pub stages: &'a [StageState],
}

/// The run's next status, the events its change deserves, and when to look again (`None`
/// once it has finished).
pub fn progress(
    run: &BranchPipelineRun,
    observed: &Observed<'_>,
    age: Duration,
    now: &str,
) -> (BranchPipelineRunStatus, Vec<EventSpec>, Option<Duration>) {
    let previous = run.status.clone().unwrap_or_default();
    let mut status = previous.clone();
    let Some(execution) = observed.execution else {
        status.phase = Some(RunPhase::Failed);
        status.message = Some(format!(
            "execution {} is no longer known to CodePipeline (it keeps 12 months of history)",
            status.execution_id.as_deref().unwrap_or("?")
        ));
        return finish(previous, status, now);
    };
    status.stages = stage_results(execution, observed.actions, observed.stages);
    status.commit = source_commit(observed.actions).or_else(|| execution.commit.clone());
    let target = stage_name(&run.spec.environment);
    let (phase, message) = phase_of(execution, &status.stages, &target);
    status.phase = Some(phase);
    status.message = Some(message);
    if phase.is_finished() {
        return finish(previous, status, now);
    }
    let mut events = Vec::new();
    if phase == RunPhase::AwaitingApproval && previous.phase != Some(phase) {
        events.push(EventSpec::normal(
            "AwaitingApproval",
            status.message.clone().unwrap_or_default(),
        ));
    }
    let poll = poll_interval(phase, age);
    (status, events, Some(poll))
}

fn finish(
    previous: BranchPipelineRunStatus,
    mut status: BranchPipelineRunStatus,
    now: &str,
) -> (BranchPipelineRunStatus, Vec<EventSpec>, Option<Duration>) {
    let phase = status.phase.unwrap_or(RunPhase::Failed);
    let message = status.message.clone().unwrap_or_default();
    status.completion_time = Some(now.to_string());
    let generation = status.observed_generation;
    set_condition(
        &mut status.conditions,
        CONDITION_SUCCEEDED,
        phase == RunPhase::Succeeded,
        phase.as_str(),
        &message,
        generation,
        now,
    );
    let event = if phase == RunPhase::Succeeded {
        EventSpec::normal("RunSucceeded", &message)
    } else {
        EventSpec::warning(&format!("Run{}", phase.as_str()), &message)
    };
    let events = if previous.phase.is_some_and(RunPhase::is_finished) {
        Vec::new()
    } else {
        vec![event]
    };
    (status, events, None)
}

/// While it builds and deploys, look every few seconds, backing off as it ages; an approval
/// can take hours, so look less often while one waits.
pub fn poll_interval(phase: RunPhase, age: Duration) -> Duration {
    let (divisor, min, max) = match phase {
        RunPhase::AwaitingApproval => (10, Duration::from_secs(5), Duration::from_secs(60)),
        _ => (20, Duration::from_secs(2), Duration::from_secs(30)),
    };
    (age / divisor).clamp(min, max)
}

fn phase_of(execution: &Execution, stages: &[RunStage], target: &str) -> (RunPhase, String) {
    let summary = execution.summary.clone().unwrap_or_default();
    match execution.status {
        ExecutionStatus::Succeeded => succeeded(stages, target),
        ExecutionStatus::Failed => {
            let message = match stages.iter().find(|s| s.result == "Failed") {
                Some(s) => format!(
                    "stage {} failed{}",
                    s.name,
                    s.message
                        .as_deref()
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default()
                ),
                None => format!("the execution failed: {summary}"),
            };
            (RunPhase::Failed, message)
        }
        ExecutionStatus::Stopped | ExecutionStatus::Stopping => (
            RunPhase::Stopped,
            format!("the execution was stopped {summary}")
                .trim_end()
                .to_string(),
        ),
        ExecutionStatus::Superseded => (
            RunPhase::Superseded,
            "a newer execution took this one's place (SUPERSEDED execution mode)".to_string(),
        ),
        ExecutionStatus::Cancelled => (
            RunPhase::Cancelled,
            "the pipeline's definition was updated before the execution completed".to_string(),
        ),
        ExecutionStatus::InProgress | ExecutionStatus::Unknown => {
            match stages.iter().find(|s| s.result == "AwaitingApproval") {
                Some(s) => (
                    RunPhase::AwaitingApproval,
                    format!("{} waits for a manual approval", s.name),
                ),
                None => (
                    RunPhase::InProgress,
                    "the execution is in progress".to_string(),
                ),
            }
        }
    }
}

/// A run succeeds only if its environment's stage did: an execution that skipped it (its entry
/// condition refused the run) deployed nothing where it was asked to.
fn succeeded(stages: &[RunStage], target: &str) -> (RunPhase, String) {
    match stages.iter().find(|s| s.name == target) {
        Some(s) if s.result == "Succeeded" => (RunPhase::Succeeded, format!("{target} succeeded")),
        Some(s) => (
            RunPhase::Failed,
            format!(
                "the execution succeeded but {target} was {}: its entry condition did not let this run in",
                s.result
            ),
        ),
        None => (
            RunPhase::Failed,
            format!("the pipeline has no stage {target}"),
        ),
    }
}

/// The source action's `CommitId` output variable: what the execution actually built.
fn source_commit(actions: &[ActionRun]) -> Option<String> {
    actions
        .iter()
        .find(|a| a.stage == SOURCE_STAGE)
        .and_then(|a| a.output_variables.get("CommitId"))
        .cloned()
}

/// Every stage with its result in this execution. Actions that ran tell most; a stage with
/// none was skipped if the execution went past it (GetPipelineState shows `Skipped` while it
/// is the stage's latest execution), else it was not reached.
pub fn stage_results(
    execution: &Execution,
    actions: &[ActionRun],
    states: &[StageState],
) -> Vec<RunStage> {
    states
        .iter()
        .map(|state| {
            let runs: Vec<&ActionRun> = actions.iter().filter(|a| a.stage == state.name).collect();
            let latest = state
                .latest
                .as_ref()
                .filter(|(id, _)| *id == execution.id)
                .map(|(_, status)| status.as_str());
            let (result, message) = if runs.is_empty() {
                (without_actions(execution, latest), None)
            } else {
                with_actions(execution, &runs, latest)
            };
            RunStage {
                name: state.name.clone(),
                result: result.to_string(),
                message,
            }
        })
        .collect()
}

fn without_actions(execution: &Execution, latest: Option<&str>) -> &'static str {
    match latest {
        Some("Skipped") => "Skipped",
        Some("InProgress") => "InProgress",
        Some("Cancelled") => "Cancelled",
        Some("Stopped") | Some("Stopping") => "Stopped",
        Some("Failed") => "Failed",
        _ if execution.status == ExecutionStatus::Succeeded => "Skipped",
        _ if execution.status.is_finished() => "NotRun",
        _ => "Pending",
    }
}

fn with_actions(
    execution: &Execution,
    runs: &[&ActionRun],
    latest: Option<&str>,
) -> (&'static str, Option<String>) {
    if let Some(failed) = runs.iter().find(|a| a.status == ActionStatus::Failed) {
        return ("Failed", failed.summary.clone());
    }
    if let Some(running) = runs.iter().find(|a| a.status == ActionStatus::InProgress) {
        let waiting = running.action == APPROVAL_ACTION;
        return (
            if waiting {
                "AwaitingApproval"
            } else {
                "InProgress"
            },
            None,
        );
    }
    if runs.iter().any(|a| a.status == ActionStatus::Abandoned) {
        let result = match execution.status {
            ExecutionStatus::Cancelled => "Cancelled",
            _ => "Stopped",
        };
        return (result, None);
    }
    // Every action that ran succeeded; more may follow (a deploy after its approval).
    match latest {
        Some("InProgress") if !execution.status.is_finished() => ("InProgress", None),
        _ => ("Succeeded", None),
    }
}

/// Finished runs of one BranchPipeline beyond the newest `keep`, oldest first: the ones to
/// delete. `runs` are `(name, completion time)` of finished runs.
pub fn beyond_history(mut runs: Vec<(String, String)>, keep: usize) -> Vec<String> {
    // RFC 3339 times in UTC sort as text.
    runs.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
    runs.into_iter().skip(keep).map(|(name, _)| name).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::reconcile::status::{reason, set_ready_synced};
    use crate::{manifest, render, validate};

    fn bp() -> BranchPipeline {
        let mut bp = manifest::parse_documents(include_str!("../../examples/orders-api.yaml"))
            .remove(0)
            .result
            .expect("the example parses");
        bp.metadata.generation = Some(2);
        let mut status = BranchPipelineStatus::default();
        set_ready_synced(&mut status, true, reason::SYNCED, "ok", Some(2), "t");
        bp.status = Some(status);
        bp
    }

    fn run(env: &str, branch: Option<&str>, commit: Option<&str>) -> BranchPipelineRun {
        let mut run = BranchPipelineRun::new(
            "release-1",
            BranchPipelineRunSpec {
                branch_pipeline: "orders-api".into(),
                environment: env.into(),
                branch: branch.map(str::to_string),
                commit: commit.map(str::to_string),
            },
        );
        run.metadata.uid = Some("8d1e1c4e-1b4f-4c55-9a58-2f5b1c2d3e4f".into());
        run
    }

    const SHA: &str = "4f2a9c1d0e5b6a7f8091a2b3c4d5e6f708192a3b";

    fn check(run: &BranchPipelineRun, bp: &BranchPipeline) -> Result<Accepted, Rejection> {
        let spec = validate::validate(bp).expect("valid");
        let desired = render::render(&spec).expect("renders");
        accept(
            run,
            Some(Target {
                bp,
                rendered: Some((&spec, &desired)),
            }),
        )
    }

    fn field(result: Result<Accepted, Rejection>) -> &'static str {
        result.expect_err("should be rejected").field
    }

    #[test]
    fn a_manual_environment_runs_a_commit_of_its_branch() {
        let accepted =
            check(&run("qa", Some("feature/login"), Some(SHA)), &bp()).expect("accepted");
        let start = &accepted.start;
        assert_eq!(start.pipeline, "team-orders-orders-api");
        assert_eq!(start.commit.as_deref(), Some(SHA));
        assert_eq!(
            start.variables,
            [
                ("BPL_TARGET".to_string(), "qa".to_string()),
                ("BPL_BRANCH".to_string(), "feature/login".to_string()),
                ("BPL_RUN".to_string(), "release-1".to_string()),
            ]
        );
        assert_eq!(
            start.client_request_token,
            "bplrun-8d1e1c4e-1b4f-4c55-9a58-2f5b1c2d3e4f"
        );
    }

    #[test]
    fn an_automatic_environment_runs_its_pipelines_source_branch() {
        let accepted = check(&run("prod", None, None), &bp()).expect("accepted");
        assert_eq!(accepted.branch, "main");
        assert_eq!(accepted.start.pipeline, "team-orders-orders-api-production");
        assert_eq!(accepted.start.commit, None);
        let dev = check(&run("dev", None, None), &bp()).expect("accepted");
        assert_eq!(dev.branch, "develop");
    }

    #[test]
    fn a_branch_the_environment_does_not_take_is_rejected() {
        assert_eq!(
            field(check(&run("qa", Some("release/1.4"), Some(SHA)), &bp())),
            "spec.branch"
        );
        assert_eq!(
            field(check(&run("qa", Some("../x"), Some(SHA)), &bp())),
            "spec.branch"
        );
    }

    #[test]
    fn an_unknown_or_promoted_environment_is_rejected() {
        let unknown = check(&run("staging", None, None), &bp()).expect_err("rejected");
        assert_eq!(unknown.field, "spec.environment");
        assert!(
            unknown.message.contains("dev, qa, stage, perf, prod"),
            "{unknown}"
        );
        let promoted = check(&run("perf", None, None), &bp()).expect_err("rejected");
        assert!(promoted.message.contains("run \"stage\""), "{promoted}");
    }

    #[test]
    fn a_commit_is_required_off_the_source_branch() {
        let missing = check(&run("qa", Some("feature/login"), None), &bp()).expect_err("rejected");
        assert_eq!(missing.field, "spec.commit");
        assert!(missing.message.contains("builds \"develop\""), "{missing}");
        assert_eq!(field(check(&run("qa", None, None), &bp())), "spec.branch");
    }

    #[test]
    fn an_automatic_environment_off_the_source_branch_cannot_be_reached() {
        let r = check(&run("stage", Some("release/1.4"), Some(SHA)), &bp()).expect_err("rejected");
        assert_eq!(r.field, "spec.environment");
        assert!(r.message.contains("trigger: manual"), "{r}");
    }

    #[test]
    fn a_missing_or_unready_branch_pipeline_is_rejected() {
        assert_eq!(
            field(accept(&run("qa", None, None), None)),
            "spec.branchPipeline"
        );
        let mut stale = bp();
        stale.metadata.generation = Some(3);
        let r = check(&run("dev", None, None), &stale).expect_err("rejected");
        assert!(r.message.contains("not Ready"), "{r}");
    }

    fn execution(status: ExecutionStatus) -> Execution {
        Execution {
            id: "e1".into(),
            status,
            ..Execution::default()
        }
    }

    fn action(stage: &str, action: &str, status: ActionStatus) -> ActionRun {
        ActionRun {
            stage: stage.into(),
            action: action.into(),
            status,
            summary: (status == ActionStatus::Failed).then(|| "3 tests failed".to_string()),
            start_time: None,
            last_update_time: None,
            output_variables: if stage == "Source" {
                BTreeMap::from([("CommitId".to_string(), SHA.to_string())])
            } else {
                BTreeMap::new()
            },
        }
    }

    fn states(latest: &[(&str, Option<(&str, &str)>)]) -> Vec<StageState> {
        latest
            .iter()
            .map(|(name, l)| StageState {
                name: name.to_string(),
                latest: l.map(|(id, s)| (id.to_string(), s.to_string())),
            })
            .collect()
    }

    fn started_run() -> BranchPipelineRun {
        let mut r = run("qa", Some("feature/login"), Some(SHA));
        let accepted = check(&r, &bp()).expect("accepted");
        let mut status = BranchPipelineRunStatus::default();
        started(&mut status, &accepted, "e1", Some(1), "t0");
        r.status = Some(status);
        r
    }

    fn result_of(status: &BranchPipelineRunStatus, stage: &str) -> String {
        status
            .stages
            .iter()
            .find(|s| s.name == stage)
            .map(|s| s.result.clone())
            .unwrap_or_default()
    }

    #[test]
    fn a_succeeded_run_lists_skipped_stages_and_the_commit() {
        let r = started_run();
        let e = execution(ExecutionStatus::Succeeded);
        let actions = [
            action("Source", "Source", ActionStatus::Succeeded),
            action("build", "build", ActionStatus::Succeeded),
            action("deploy-qa", "deploy", ActionStatus::Succeeded),
        ];
        let s = states(&[
            ("Source", Some(("e1", "Succeeded"))),
            ("build", Some(("e1", "Succeeded"))),
            ("deploy-dev", Some(("e1", "Skipped"))),
            ("deploy-qa", Some(("e1", "Succeeded"))),
            ("deploy-stage", Some(("e0", "Succeeded"))),
        ]);
        let observed = Observed {
            execution: Some(&e),
            actions: &actions,
            stages: &s,
        };
        let (status, events, next) = progress(&r, &observed, Duration::from_secs(30), "t1");
        assert_eq!(status.phase, Some(RunPhase::Succeeded));
        assert_eq!(next, None);
        assert_eq!(result_of(&status, "deploy-dev"), "Skipped");
        assert_eq!(
            result_of(&status, "deploy-stage"),
            "Skipped",
            "inferred: the execution went past it"
        );
        assert_eq!(result_of(&status, "deploy-qa"), "Succeeded");
        assert_eq!(status.commit.as_deref(), Some(SHA));
        assert_eq!(status.completion_time.as_deref(), Some("t1"));
        assert_eq!(events[0].reason, "RunSucceeded");
        let mut done = r.clone();
        done.status = Some(status);
        let (_, again, _) = progress(&done, &observed, Duration::from_secs(31), "t2");
        assert!(again.is_empty(), "the end is reported once");
    }

    #[test]
    fn a_failed_build_names_the_stage() {
        let r = started_run();
        let e = execution(ExecutionStatus::Failed);
        let actions = [
            action("Source", "Source", ActionStatus::Succeeded),
            action("test", "test", ActionStatus::Failed),
        ];
        let s = states(&[("Source", None), ("test", None), ("deploy-qa", None)]);
        let observed = Observed {
            execution: Some(&e),
            actions: &actions,
            stages: &s,
        };
        let (status, events, _) = progress(&r, &observed, Duration::from_secs(30), "t1");
        assert_eq!(status.phase, Some(RunPhase::Failed));
        assert_eq!(
            status.message.as_deref(),
            Some("stage test failed: 3 tests failed")
        );
        assert_eq!(result_of(&status, "deploy-qa"), "NotRun");
        assert_eq!(events[0].reason, "RunFailed");
        assert!(events[0].warning);
    }

    #[test]
    fn a_waiting_approval_is_its_own_phase_and_polled_less_often() {
        let r = started_run();
        let e = execution(ExecutionStatus::InProgress);
        let actions = [
            action("Source", "Source", ActionStatus::Succeeded),
            action("deploy-qa", "approve", ActionStatus::InProgress),
        ];
        let s = states(&[("Source", None), ("deploy-qa", Some(("e1", "InProgress")))]);
        let observed = Observed {
            execution: Some(&e),
            actions: &actions,
            stages: &s,
        };
        let (status, events, next) = progress(&r, &observed, Duration::from_secs(600), "t1");
        assert_eq!(status.phase, Some(RunPhase::AwaitingApproval));
        assert_eq!(result_of(&status, "deploy-qa"), "AwaitingApproval");
        assert_eq!(events[0].reason, "AwaitingApproval");
        assert_eq!(next, Some(Duration::from_secs(60)));
    }

    #[test]
    fn a_succeeded_execution_that_skipped_the_target_is_a_failed_run() {
        let r = started_run();
        let e = execution(ExecutionStatus::Succeeded);
        let s = states(&[("deploy-qa", Some(("e1", "Skipped")))]);
        let observed = Observed {
            execution: Some(&e),
            actions: &[],
            stages: &s,
        };
        let (status, _, _) = progress(&r, &observed, Duration::from_secs(30), "t1");
        assert_eq!(status.phase, Some(RunPhase::Failed));
        assert!(status.message.expect("message").contains("was Skipped"));
    }

    #[test]
    fn cancelled_superseded_and_vanished_executions_end_the_run() {
        let r = started_run();
        for (st, phase) in [
            (ExecutionStatus::Cancelled, RunPhase::Cancelled),
            (ExecutionStatus::Superseded, RunPhase::Superseded),
            (ExecutionStatus::Stopped, RunPhase::Stopped),
        ] {
            let e = execution(st);
            let observed = Observed {
                execution: Some(&e),
                actions: &[],
                stages: &[],
            };
            assert_eq!(
                progress(&r, &observed, Duration::ZERO, "t").0.phase,
                Some(phase)
            );
        }
        let gone = Observed {
            execution: None,
            actions: &[],
            stages: &[],
        };
        assert_eq!(
            progress(&r, &gone, Duration::ZERO, "t").0.phase,
            Some(RunPhase::Failed)
        );
    }

    #[test]
    fn polling_backs_off_within_bounds() {
        assert_eq!(
            poll_interval(RunPhase::InProgress, Duration::ZERO),
            Duration::from_secs(2)
        );
        assert_eq!(
            poll_interval(RunPhase::InProgress, Duration::from_secs(200)),
            Duration::from_secs(10)
        );
        assert_eq!(
            poll_interval(RunPhase::InProgress, Duration::from_secs(9999)),
            Duration::from_secs(30)
        );
        assert_eq!(
            poll_interval(RunPhase::AwaitingApproval, Duration::ZERO),
            Duration::from_secs(5)
        );
    }

    #[test]
    fn history_keeps_the_newest_finished_runs() {
        let runs = vec![
            ("a".to_string(), "2026-01-01T00:00:01Z".to_string()),
            ("b".to_string(), "2026-01-01T00:00:03Z".to_string()),
            ("c".to_string(), "2026-01-01T00:00:02Z".to_string()),
        ];
        assert_eq!(beyond_history(runs.clone(), 2), ["a"]);
        assert_eq!(beyond_history(runs.clone(), 0), ["b", "c", "a"]);
        assert!(beyond_history(runs, 10).is_empty());
    }

    #[test]
    fn a_rejection_is_final_and_names_the_field() {
        let mut status = BranchPipelineRunStatus::default();
        let event = rejected(
            &mut status,
            &Rejection {
                field: "spec.branch",
                message: "nope".into(),
            },
            Some(1),
            "t",
        );
        assert_eq!(status.phase, Some(RunPhase::Rejected));
        assert!(status.phase.expect("phase").is_finished());
        assert_eq!(event.note, "spec.branch: nope");
        assert!(event.warning);
    }
}
