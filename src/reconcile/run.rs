//! BranchPipelineRun decisions. Pure: [`accept`] checks a run against its BranchPipeline before
//! any AWS call and says what to start; [`rejected`], [`started`] and [`start_failed`] record
//! the verdict; [`progress`] turns what AWS reports about the execution into the run's status,
//! events and next poll; [`spec_change`] reports an edit made after the verdict; [`History`]
//! says which runs a finished one is kept with. The controller only observes and carries out.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use super::error::Step;
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
pub const CONDITION_SPEC_CHANGE_IGNORED: &str = "SpecChangeIgnored";

/// Why a run was refused, naming the field to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub field: &'static str,
    pub message: String,
    /// The branch the run would have built, when the check got that far (for the Branch
    /// column of a rejected run).
    pub branch: Option<String>,
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// What an accepted run starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    /// The BranchPipeline and environment accepted, recorded in status: the spec can be
    /// edited afterwards, the run cannot change.
    pub branch_pipeline: String,
    pub environment: String,
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
    Rejection {
        field,
        message,
        branch: None,
    }
}

/// The BranchPipeline a run belongs to: the one recorded when the controller accepted or
/// rejected it, else (not judged yet) the one its spec names. Nothing stops an edit of the
/// spec at admission (a CEL transition rule needs kube-apiserver 1.25; see
/// [`BranchPipelineRun`]), so after the verdict only the recorded name counts.
pub fn branch_pipeline_of(run: &BranchPipelineRun) -> &str {
    run.status
        .as_ref()
        .and_then(|s| s.branch_pipeline.as_deref())
        .unwrap_or(&run.spec.branch_pipeline)
}

/// The environment a run deploys, recorded likewise.
pub fn environment_of(run: &BranchPipelineRun) -> &str {
    run.status
        .as_ref()
        .and_then(|s| s.environment.as_deref())
        .unwrap_or(&run.spec.environment)
}

/// The step a failure belongs to, for logs and the failure metric: starting the run until an
/// execution is recorded, following it after.
pub fn step_of(run: &BranchPipelineRun) -> Step {
    match run.status.as_ref().and_then(|s| s.execution_id.as_ref()) {
        Some(_) => Step::FollowRun,
        None => Step::StartRun,
    }
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
    reachable(run, env, &branch, &source).map_err(|r| Rejection {
        branch: Some(branch.clone()),
        ..r
    })?;
    Ok(accepted(
        run,
        &pipeline.pipeline.name,
        &env.name,
        branch,
        run.spec.commit.clone(),
    ))
}

fn accepted(
    run: &BranchPipelineRun,
    pipeline: &str,
    environment: &str,
    branch: String,
    commit: Option<String>,
) -> Accepted {
    let uid = run.metadata.uid.as_deref().unwrap_or_default();
    Accepted {
        branch_pipeline: run.spec.branch_pipeline.clone(),
        environment: environment.to_string(),
        branch: branch.clone(),
        start: StartRun {
            pipeline: pipeline.to_string(),
            source_action: SOURCE_ACTION.to_string(),
            commit,
            variables: vec![
                (TARGET_VARIABLE.to_string(), environment.to_string()),
                (RUN_BRANCH_VARIABLE.to_string(), branch),
                (
                    RUN_VARIABLE.to_string(),
                    run.metadata.name.clone().unwrap_or_default(),
                ),
            ],
            client_request_token: request_token(uid),
        },
    }
}

/// What a run accepted earlier and still Pending (its start failed) was accepted to start,
/// rebuilt from its status: a retry starts exactly that, with the same idempotency token,
/// whatever the spec or the BranchPipeline became since. `None` for a run not accepted yet
/// (or recorded by a version that did not keep the accepted target).
pub fn accepted_before(run: &BranchPipelineRun) -> Option<Accepted> {
    let status = run.status.as_ref()?;
    if status.phase != Some(RunPhase::Pending) {
        return None;
    }
    let mut accepted = accepted(
        run,
        status.pipeline.as_deref()?,
        status.environment.as_deref()?,
        status.branch.clone()?,
        status.commit.clone(),
    );
    accepted.branch_pipeline = status.branch_pipeline.clone()?;
    Some(accepted)
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

/// The generation the verdict is about: the one recorded when the run was first judged (a
/// Pending run keeps it), else the current one.
fn judged_generation(run: &BranchPipelineRun) -> Option<i64> {
    run.status
        .as_ref()
        .and_then(|s| s.observed_generation)
        .or(run.metadata.generation)
}

/// Records a rejection: final, with a Warning. What the run asked for is recorded too, so the
/// printer columns show it and a later edit of the spec changes nothing.
pub fn rejected(
    run: &BranchPipelineRun,
    rejection: &Rejection,
    now: &str,
) -> (BranchPipelineRunStatus, EventSpec) {
    let mut status = run.status.clone().unwrap_or_default();
    let generation = judged_generation(run);
    let message = rejection.to_string();
    status.phase = Some(RunPhase::Rejected);
    status.message = Some(message.clone());
    status.branch_pipeline = Some(run.spec.branch_pipeline.clone());
    status.environment = Some(run.spec.environment.clone());
    status.branch = rejection.branch.clone().or_else(|| run.spec.branch.clone());
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
    (status, EventSpec::warning("RunRejected", message))
}

/// What every accepted run's status records: the accepted target, which later decisions read
/// instead of the editable spec.
fn record_accepted(
    status: &mut BranchPipelineRunStatus,
    accepted: &Accepted,
    generation: Option<i64>,
) {
    status.branch_pipeline = Some(accepted.branch_pipeline.clone());
    status.environment = Some(accepted.environment.clone());
    status.pipeline = Some(accepted.start.pipeline.clone());
    status.branch = Some(accepted.branch.clone());
    status.commit = accepted.start.commit.clone();
    status.observed_generation = generation;
}

/// Records the started execution.
pub fn started(
    run: &BranchPipelineRun,
    accepted: &Accepted,
    execution: &str,
    now: &str,
) -> (BranchPipelineRunStatus, EventSpec) {
    let mut status = run.status.clone().unwrap_or_default();
    let generation = judged_generation(run);
    let message = format!(
        "started {} execution {execution} for {}{}",
        accepted.start.pipeline,
        accepted.branch,
        accepted
            .start
            .commit
            .as_deref()
            .map(|c| format!(" at {c}"))
            .unwrap_or_default()
    );
    record_accepted(&mut status, accepted, generation);
    status.phase = Some(RunPhase::InProgress);
    status.message = Some(message.clone());
    status.execution_id = Some(execution.to_string());
    status.start_time = Some(now.to_string());
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
    (status, EventSpec::normal("RunStarted", message))
}

/// Records an accepted run whose StartPipelineExecution failed: it stays Pending, with what
/// it was accepted to start (see [`accepted_before`]), and the controller retries. The start
/// is retried with the same `clientRequestToken`, so one that AWS carried out but whose answer
/// was lost returns that execution instead of starting another. A Warning marks the first
/// failure only: a start that keeps failing is retried every few seconds.
pub fn start_failed(
    run: &BranchPipelineRun,
    accepted: &Accepted,
    error: &str,
    now: &str,
) -> (BranchPipelineRunStatus, Vec<EventSpec>) {
    let mut status = run.status.clone().unwrap_or_default();
    let first = status.phase != Some(RunPhase::Pending);
    let generation = judged_generation(run);
    let message = format!(
        "accepted, but {} could not be started yet: {error}; retrying",
        accepted.start.pipeline
    );
    record_accepted(&mut status, accepted, generation);
    status.phase = Some(RunPhase::Pending);
    status.message = Some(message.clone());
    set_condition(
        &mut status.conditions,
        CONDITION_ACCEPTED,
        true,
        "Accepted",
        &message,
        generation,
        now,
    );
    set_unknown(
        &mut status.conditions,
        "StartFailed",
        &message,
        generation,
        now,
    );
    let events = if first {
        vec![EventSpec::warning("RunStartFailed", &message)]
    } else {
        Vec::new()
    };
    (status, events)
}

/// A spec edited after the controller judged the run (accepted or rejected it): the status
/// reporting it with a `SpecChangeIgnored` condition, and one Warning, once per generation.
/// `None` when there is nothing new to report. The edit itself is ignored: what the run does
/// is what its status recorded (see [`branch_pipeline_of`]).
pub fn spec_change(
    run: &BranchPipelineRun,
    now: &str,
) -> Option<(BranchPipelineRunStatus, EventSpec)> {
    let mut status = run.status.clone().unwrap_or_default();
    let judged = status.observed_generation?;
    let generation = run.metadata.generation?;
    let reported = status.conditions.iter().any(|c| {
        c.type_ == CONDITION_SPEC_CHANGE_IGNORED && c.observed_generation == Some(generation)
    });
    if judged == generation || reported {
        return None;
    }
    let kept = if status.phase == Some(RunPhase::Rejected) {
        "stays rejected"
    } else {
        "keeps what it was accepted to do"
    };
    let changed = changed_fields(run, &status);
    let message = format!(
        "the spec changed after generation {judged} was judged{changed}; a BranchPipelineRun cannot change, so this one {kept}; create a new run instead"
    );
    set_condition(
        &mut status.conditions,
        CONDITION_SPEC_CHANGE_IGNORED,
        true,
        "Immutable",
        &message,
        Some(generation),
        now,
    );
    Some((status, EventSpec::warning("SpecChangeIgnored", message)))
}

/// ` (spec.environment "qa", recorded "dev")` for each recorded field the spec now
/// contradicts; empty when none can be told (e.g. a commit removed).
fn changed_fields(run: &BranchPipelineRun, status: &BranchPipelineRunStatus) -> String {
    let spec = &run.spec;
    let pairs = [
        (
            "spec.branchPipeline",
            Some(&spec.branch_pipeline),
            status.branch_pipeline.as_ref(),
        ),
        (
            "spec.environment",
            Some(&spec.environment),
            status.environment.as_ref(),
        ),
        ("spec.branch", spec.branch.as_ref(), status.branch.as_ref()),
    ];
    let changed: Vec<String> = pairs
        .into_iter()
        .filter_map(|(field, now, recorded)| match (now, recorded) {
            (Some(now), Some(recorded)) if now != recorded => {
                Some(format!("{field} {now:?}, recorded {recorded:?}"))
            }
            _ => None,
        })
        .collect();
    if changed.is_empty() {
        String::new()
    } else {
        format!(" ({})", changed.join("; "))
    }
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
    let target = stage_name(environment_of(run));
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

/// A finished run, as retention orders them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub name: String,
    /// `status.completionTime`: RFC 3339 in UTC, whole seconds.
    pub completed: String,
    /// When it was created: orders runs that finished within the same second.
    pub created: Option<jiff::Timestamp>,
}

/// Finished runs of one history beyond the newest `keep`, oldest first: the ones to delete.
/// `latest`, the run whose end triggers the trim, is the newest whatever the clocks say:
/// completion times have whole seconds, so an older run can share its second.
pub fn beyond_history(mut runs: Vec<Finished>, keep: usize, latest: &str) -> Vec<String> {
    // RFC 3339 times in UTC sort as text.
    let key = |r: &Finished| (r.name == latest, r.completed.clone(), r.created);
    runs.sort_by(|a, b| key(b).cmp(&key(a)).then_with(|| b.name.cmp(&a.name)));
    runs.into_iter().skip(keep).map(|r| r.name).collect()
}

/// The runs a finished run's history is kept with. Never chosen by the spec, which can be
/// edited after the verdict (see [`branch_pipeline_of`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum History {
    /// The runs owned by one BranchPipeline (its UID in their owner references): every run
    /// judged while it existed, accepted or rejected. Its `spec.runHistoryLimit` applies.
    Owned { uid: String, name: String },
    /// Runs rejected because the BranchPipeline they named did not exist: no owner, so no
    /// garbage collection either. They are kept per recorded name, within the default limit,
    /// so that retrying a typo does not pile up runs for ever.
    Unowned { branch_pipeline: String },
}

/// The BranchPipeline owner reference of `run`, if any.
fn owner(run: &BranchPipelineRun) -> Option<&OwnerReference> {
    run.metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.kind == "BranchPipeline" && o.api_version.starts_with("branchpipeline.dev/"))
}

/// Whether `run` is owned by the BranchPipeline with `uid`.
pub fn owned_by(run: &BranchPipelineRun, uid: &str) -> bool {
    owner(run).is_some_and(|o| o.uid == uid)
}

/// Which history `run` counts in; `None` for a run not judged yet, or judged by a version of
/// the controller that neither owned it nor recorded its BranchPipeline (kept until deleted).
pub fn history_of(run: &BranchPipelineRun) -> Option<History> {
    if let Some(o) = owner(run) {
        return Some(History::Owned {
            uid: o.uid.clone(),
            name: o.name.clone(),
        });
    }
    let recorded = run.status.as_ref()?.branch_pipeline.clone()?;
    Some(History::Unowned {
        branch_pipeline: recorded,
    })
}

/// The finished runs of `finished`'s history among `runs` beyond the newest `keep`: the ones
/// to delete when `finished` has just ended. `None` when it counts in no history.
pub fn to_trim(
    finished: &BranchPipelineRun,
    runs: &[BranchPipelineRun],
    keep: usize,
) -> Option<Vec<String>> {
    let history = history_of(finished)?;
    let candidates = runs
        .iter()
        .filter(|r| history_of(r).as_ref() == Some(&history))
        .filter_map(|r| {
            let status = r.status.as_ref()?;
            status.phase.filter(|p| p.is_finished())?;
            Some(Finished {
                name: r.metadata.name.clone()?,
                completed: status.completion_time.clone()?,
                created: r.metadata.creation_timestamp.as_ref().map(|t| t.0),
            })
        })
        .collect();
    let latest = finished.metadata.name.as_deref().unwrap_or_default();
    Some(beyond_history(candidates, keep, latest))
}

/// Whether deleting the BranchPipeline `name` (UID `uid`) deletes `run`: it owns the run, or
/// the run names it and has not been judged yet (its spec still counts, and nothing owns it).
pub fn belongs_to(run: &BranchPipelineRun, name: &str, uid: &str) -> bool {
    let judged = run.status.as_ref().is_some_and(|s| s.phase.is_some());
    owned_by(run, uid) || (!judged && owner(run).is_none() && run.spec.branch_pipeline == name)
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
        run.metadata.generation = Some(1);
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
        r.status = Some(started(&r, &accepted, "e1", "t0").0);
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

    fn done(name: &str, completed: &str, created: &str) -> Finished {
        Finished {
            name: name.into(),
            completed: completed.into(),
            created: Some(created.parse().expect("a timestamp")),
        }
    }

    #[test]
    fn history_keeps_the_newest_finished_runs() {
        let runs = vec![
            done("a", "2026-01-01T00:00:01Z", "2026-01-01T00:00:00Z"),
            done("b", "2026-01-01T00:00:03Z", "2026-01-01T00:00:00Z"),
            done("c", "2026-01-01T00:00:02Z", "2026-01-01T00:00:00Z"),
        ];
        assert_eq!(beyond_history(runs.clone(), 2, "b"), ["a"]);
        assert_eq!(beyond_history(runs.clone(), 0, "b"), ["b", "c", "a"]);
        assert!(beyond_history(runs, 10, "b").is_empty());
    }

    /// Completion times have whole seconds: a run that finishes in the second an older one did
    /// is still the newest, and is never trimmed by its own end.
    #[test]
    fn a_run_finishing_within_the_same_second_is_the_newest() {
        let runs = vec![
            done("second", "2026-01-01T00:00:12Z", "2026-01-01T00:00:09Z"),
            done("rejected", "2026-01-01T00:00:12Z", "2026-01-01T00:00:12Z"),
        ];
        assert_eq!(beyond_history(runs.clone(), 1, "rejected"), ["second"]);
        let older = vec![
            done("x", "2026-01-01T00:00:05Z", "2026-01-01T00:00:01Z"),
            done("w", "2026-01-01T00:00:05Z", "2026-01-01T00:00:02Z"),
        ];
        assert_eq!(
            beyond_history(older, 1, "none"),
            ["x"],
            "then the later created is newer"
        );
    }

    #[test]
    fn a_rejection_is_final_and_names_the_field() {
        let r = run("qa", Some("feature/x"), None);
        let (status, event) = rejected(
            &r,
            &Rejection {
                field: "spec.branch",
                message: "nope".into(),
                branch: None,
            },
            "t",
        );
        assert_eq!(status.phase, Some(RunPhase::Rejected));
        assert!(status.phase.expect("phase").is_finished());
        assert_eq!(status.observed_generation, Some(1));
        assert_eq!(status.completion_time.as_deref(), Some("t"));
        assert_eq!(event.note, "spec.branch: nope");
        assert!(event.warning);
    }

    #[test]
    fn a_rejected_run_records_what_it_asked_for() {
        let r = run("stage", Some("release/1.4"), Some(SHA));
        let rejection = check(&r, &bp()).expect_err("rejected");
        assert_eq!(rejection.branch.as_deref(), Some("release/1.4"));
        let (status, _) = rejected(&r, &rejection, "t");
        assert_eq!(status.branch_pipeline.as_deref(), Some("orders-api"));
        assert_eq!(status.environment.as_deref(), Some("stage"));
        assert_eq!(status.branch.as_deref(), Some("release/1.4"));
        // Refused before a branch was resolved: the branch asked for, if any.
        let bad = run("qa", Some("../x"), Some(SHA));
        let (status, _) = rejected(&bad, &check(&bad, &bp()).expect_err("rejected"), "t");
        assert_eq!(status.branch.as_deref(), Some("../x"));
        let missing = run("staging", None, None);
        let (status, _) = rejected(&missing, &accept(&missing, None).expect_err("no bp"), "t");
        assert_eq!(status.branch, None);
        assert_eq!(status.environment.as_deref(), Some("staging"));
    }

    #[test]
    fn an_edit_after_the_verdict_is_reported_once_per_generation() {
        let mut r = started_run();
        assert_eq!(spec_change(&r, "t1"), None, "nothing changed");
        r.metadata.generation = Some(2);
        r.spec.environment = "dev".into();
        let (status, event) = spec_change(&r, "t1").expect("reported");
        assert!(event.warning);
        assert_eq!(event.reason, "SpecChangeIgnored");
        assert!(
            event
                .note
                .contains(r#"spec.environment "dev", recorded "qa""#),
            "{}",
            event.note
        );
        assert!(event.note.contains("keeps what it was accepted to do"));
        let condition = status
            .conditions
            .iter()
            .find(|c| c.type_ == CONDITION_SPEC_CHANGE_IGNORED)
            .expect("condition");
        assert_eq!(
            (condition.status.as_str(), condition.observed_generation),
            ("True", Some(2))
        );
        assert_eq!(status.observed_generation, Some(1), "the verdict stands");
        r.status = Some(status);
        assert_eq!(spec_change(&r, "t2"), None, "once per generation");
        r.metadata.generation = Some(3);
        assert!(
            spec_change(&r, "t3").is_some(),
            "a further edit is reported"
        );
    }

    #[test]
    fn an_edit_of_a_run_not_judged_yet_is_no_change() {
        let mut r = run("qa", Some("feature/login"), Some(SHA));
        r.metadata.generation = Some(4);
        assert_eq!(spec_change(&r, "t"), None);
        let (status, _) = rejected(
            &r,
            &check(&r, &{
                let mut stale = bp();
                stale.metadata.generation = Some(3);
                stale
            })
            .expect_err("not ready"),
            "t",
        );
        r.status = Some(status);
        r.metadata.generation = Some(5);
        let (_, event) = spec_change(&r, "t").expect("reported");
        assert!(event.note.contains("stays rejected"), "{}", event.note);
    }

    #[test]
    fn after_the_verdict_the_recorded_target_counts_not_the_spec() {
        let mut r = started_run();
        r.spec.environment = "dev".into();
        r.spec.branch_pipeline = "elsewhere".into();
        assert_eq!(branch_pipeline_of(&r), "orders-api");
        assert_eq!(environment_of(&r), "qa");
        let e = execution(ExecutionStatus::Succeeded);
        let actions = [action("deploy-qa", "deploy", ActionStatus::Succeeded)];
        let s = states(&[
            ("deploy-dev", Some(("e1", "Skipped"))),
            ("deploy-qa", Some(("e1", "Succeeded"))),
        ]);
        let observed = Observed {
            execution: Some(&e),
            actions: &actions,
            stages: &s,
        };
        let (status, _, _) = progress(&r, &observed, Duration::ZERO, "t1");
        assert_eq!(
            status.phase,
            Some(RunPhase::Succeeded),
            "judged on deploy-qa, what it started: {:?}",
            status.message
        );
        let fresh = run("dev", None, None);
        assert_eq!(environment_of(&fresh), "dev", "not judged yet: the spec");
    }

    #[test]
    fn a_failed_start_stays_pending_and_retries_exactly_what_was_accepted() {
        let mut r = run("qa", Some("feature/login"), Some(SHA));
        let accepted = check(&r, &bp()).expect("accepted");
        let (status, events) = start_failed(&r, &accepted, "StartPipelineExecution failed", "t");
        assert_eq!(status.phase, Some(RunPhase::Pending));
        assert!(!status.phase.expect("phase").is_finished());
        assert_eq!(
            status.message.as_deref(),
            Some(
                "accepted, but team-orders-orders-api could not be started yet: StartPipelineExecution failed; retrying"
            )
        );
        assert_eq!(status.execution_id, None);
        assert_eq!(status.environment.as_deref(), Some("qa"));
        assert_eq!(status.observed_generation, Some(1));
        let reasons: Vec<(&str, &str)> = status
            .conditions
            .iter()
            .map(|c| (c.type_.as_str(), c.status.as_str()))
            .collect();
        assert_eq!(reasons, [("Accepted", "True"), ("Succeeded", "Unknown")]);
        assert_eq!(events.len(), 1);
        assert!(events[0].warning);
        r.status = Some(status);
        assert!(
            start_failed(&r, &accepted, "again", "t2").1.is_empty(),
            "warned once"
        );
        // The spec edited while Pending: the retry still starts what was accepted.
        r.metadata.generation = Some(2);
        r.spec.environment = "dev".into();
        r.spec.branch = Some("develop".into());
        r.spec.commit = None;
        assert_eq!(accepted_before(&r), Some(accepted.clone()));
        let (status, _) = started(&r, &accepted, "e1", "t3");
        assert_eq!(
            status.observed_generation,
            Some(1),
            "the generation accepted"
        );
        assert_eq!(status.phase, Some(RunPhase::InProgress));
        assert_eq!(accepted_before(&run("qa", None, None)), None);
    }

    #[test]
    fn failures_are_labelled_with_the_step_the_run_is_in() {
        let mut r = run("qa", Some("feature/login"), Some(SHA));
        assert_eq!(step_of(&r), Step::StartRun);
        let accepted = check(&r, &bp()).expect("accepted");
        r.status = Some(start_failed(&r, &accepted, "throttled", "t").0);
        assert_eq!(step_of(&r), Step::StartRun, "pending: still starting");
        assert_eq!(step_of(&started_run()), Step::FollowRun);
        let mut done = started_run();
        done.status.as_mut().expect("status").phase = Some(RunPhase::Succeeded);
        assert_eq!(step_of(&done), Step::FollowRun);
    }

    fn owned(mut r: BranchPipelineRun, uid: &str) -> BranchPipelineRun {
        r.metadata.owner_references = Some(vec![OwnerReference {
            api_version: "branchpipeline.dev/v1alpha1".into(),
            kind: "BranchPipeline".into(),
            name: "orders-api".into(),
            uid: uid.into(),
            controller: Some(true),
            ..OwnerReference::default()
        }]);
        r
    }

    fn finished(name: &str, at: &str) -> BranchPipelineRun {
        let mut r = started_run();
        r.metadata.name = Some(name.into());
        let status = r.status.as_mut().expect("status");
        status.phase = Some(RunPhase::Succeeded);
        status.completion_time = Some(at.into());
        r
    }

    fn rejected_run(name: &str, at: &str) -> BranchPipelineRun {
        let mut r = run("qa", None, None);
        r.metadata.name = Some(name.into());
        let rejection = accept(&r, None).expect_err("no BranchPipeline");
        r.status = Some(rejected(&r, &rejection, at).0);
        r
    }

    #[test]
    fn history_is_chosen_by_owner_never_by_the_editable_spec() {
        let mut edited = owned(finished("a1", "2026-01-01T00:00:01Z"), "uid-a");
        edited.spec.branch_pipeline = "other".into();
        let runs = vec![
            edited,
            owned(finished("a2", "2026-01-01T00:00:02Z"), "uid-a"),
            owned(rejected_run("a3", "2026-01-01T00:00:03Z"), "uid-a"),
            // A BranchPipeline of the same name, deleted and created again: another history.
            owned(finished("b1", "2026-01-01T00:00:00Z"), "uid-b"),
            rejected_run("orphan1", "2026-01-01T00:00:04Z"),
            rejected_run("orphan2", "2026-01-01T00:00:05Z"),
            run("qa", None, None),
        ];
        assert_eq!(
            history_of(&runs[0]),
            Some(History::Owned {
                uid: "uid-a".into(),
                name: "orders-api".into()
            })
        );
        assert_eq!(
            to_trim(&runs[2], &runs, 1),
            Some(vec!["a2".to_string(), "a1".to_string()]),
            "a rejected run counts, and trims"
        );
        assert_eq!(
            history_of(&runs[4]),
            Some(History::Unowned {
                branch_pipeline: "orders-api".into()
            })
        );
        assert_eq!(
            to_trim(&runs[5], &runs, 1),
            Some(vec!["orphan1".to_string()])
        );
        assert_eq!(history_of(&runs[6]), None, "not judged");
        assert_eq!(to_trim(&runs[6], &runs, 0), None);
    }

    #[test]
    fn a_branch_pipeline_deletes_the_runs_it_owns_and_the_ones_waiting_for_it() {
        let mut edited = owned(finished("a1", "t"), "uid-a");
        edited.spec.branch_pipeline = "other".into();
        assert!(belongs_to(&edited, "orders-api", "uid-a"));
        let mut moved_in = owned(finished("b1", "t"), "uid-b");
        moved_in.spec.branch_pipeline = "orders-api".into();
        assert!(!belongs_to(&moved_in, "orders-api", "uid-a"));
        assert!(belongs_to(&run("qa", None, None), "orders-api", "uid-a"));
        assert!(
            !belongs_to(&rejected_run("orphan", "t"), "orders-api", "uid-a"),
            "rejected before this BranchPipeline existed: not its run"
        );
    }
}
