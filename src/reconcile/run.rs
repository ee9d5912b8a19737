//! Manual runs from Git: `branchpipeline.dev/run: "<branch>[@<commit>]"` starts the pipeline
//! whose environments take that branch. Pure: [`decide`] says what to do, the controller does
//! the call, and [`started`] / [`rejected`] record the result.

use super::diff::Foreign;
use super::events::EventSpec;
use super::status::{self, reason};
use crate::api::{BranchPipelineStatus, LastRun};
use crate::aws::StartRun;
use crate::render::model::{DesiredPipeline, DesiredState};
use crate::render::{SOURCE_ACTION, branches};

/// What to do about the run annotation.
#[derive(Debug, Clone, PartialEq)]
pub enum RunDecision {
    /// No annotation, or its value was handled already.
    Nothing,
    Reject {
        reason: &'static str,
        message: String,
    },
    Start(StartRun),
}

/// The condition type recording the last run request.
pub const CONDITION_RUN: &str = "Run";

pub fn decide(
    value: Option<&str>,
    last: Option<&LastRun>,
    uid: &str,
    desired: &DesiredState,
    foreign: &[Foreign],
) -> RunDecision {
    let Some(value) = value else {
        return RunDecision::Nothing;
    };
    if last.is_some_and(|r| r.value == value) {
        return RunDecision::Nothing;
    }
    let request = match parse(value) {
        Ok(r) => r,
        Err(message) => {
            return RunDecision::Reject {
                reason: "InvalidRunRequest",
                message: format!("{}: {message}", crate::api::annotations::RUN),
            };
        }
    };
    let Some(pipeline) = pipeline_for(&desired.pipelines, &request.branch) else {
        return RunDecision::Reject {
            reason: "BranchNotCovered",
            message: format!(
                "no environment takes branch {:?}; add it to an environment's branches to run it",
                request.branch
            ),
        };
    };
    let name = &pipeline.pipeline.name;
    if foreign.iter().any(|f| &f.name == name) {
        return RunDecision::Reject {
            reason: reason::NOT_OWNED,
            message: format!("pipeline {name} is not owned by this resource"),
        };
    }
    RunDecision::Start(StartRun {
        pipeline: name.clone(),
        source_action: SOURCE_ACTION.to_string(),
        commit: request.commit,
        client_request_token: request_token(uid, value),
    })
}

/// Records a refused request so it is not retried, and the Warning to publish.
pub fn rejected(
    status: &mut BranchPipelineStatus,
    value: &str,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: &str,
) -> EventSpec {
    record(status, value, None, Some(message), now);
    status::set_condition(
        &mut status.conditions,
        CONDITION_RUN,
        false,
        reason,
        message,
        generation,
        now,
    );
    EventSpec::warning(reason, message)
}

/// Records a started run, and the event to publish.
pub fn started(
    status: &mut BranchPipelineStatus,
    value: &str,
    pipeline: &str,
    execution: &str,
    generation: Option<i64>,
    now: &str,
) -> EventSpec {
    let message = format!("started {pipeline} execution {execution} for {value}");
    record(status, value, Some((pipeline, execution)), None, now);
    status::set_condition(
        &mut status.conditions,
        CONDITION_RUN,
        true,
        "RunStarted",
        &message,
        generation,
        now,
    );
    EventSpec::normal("RunStarted", message)
}

fn record(
    status: &mut BranchPipelineStatus,
    value: &str,
    started: Option<(&str, &str)>,
    error: Option<&str>,
    now: &str,
) {
    status.last_run = Some(LastRun {
        value: value.to_string(),
        pipeline: started.map(|(p, _)| p.to_string()),
        execution_id: started.map(|(_, e)| e.to_string()),
        error: error.map(str::to_string),
        time: Some(now.to_string()),
    });
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRequest {
    pub branch: String,
    pub commit: Option<String>,
}

pub fn parse(value: &str) -> Result<RunRequest, String> {
    let value = value.trim();
    let (branch, commit) = match value.rsplit_once('@') {
        Some((branch, commit)) => (branch, Some(commit)),
        None => (value, None),
    };
    if branch.is_empty() || branch.contains(char::is_whitespace) {
        return Err(format!(
            "{value:?} is not <branch>[@<commit>]; name a branch, e.g. release/1.4@4f2a9c1"
        ));
    }
    if let Some(commit) = commit
        && (commit.len() < 7 || commit.len() > 40 || !commit.chars().all(|c| c.is_ascii_hexdigit()))
    {
        return Err(format!(
            "{commit:?} is not a commit id; use 7-40 hex digits after @"
        ));
    }
    Ok(RunRequest {
        branch: branch.to_string(),
        commit: commit.map(str::to_string),
    })
}

/// The first pipeline (in spec order) with an environment that takes `branch`.
pub fn pipeline_for<'a>(
    pipelines: &'a [DesiredPipeline],
    branch: &str,
) -> Option<&'a DesiredPipeline> {
    pipelines.iter().find(|p| {
        p.branches
            .iter()
            .any(|pattern| branches::glob_matches(pattern, branch))
    })
}

/// Stable per resource and request, so a retried start after a crash is deduplicated by AWS.
pub fn request_token(uid: &str, value: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(format!("{uid}/{value}").as_bytes()))[..32].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{manifest, render};

    #[test]
    fn parses_branch_and_commit() {
        assert_eq!(
            parse("main").expect("parses"),
            RunRequest {
                branch: "main".into(),
                commit: None
            }
        );
        assert_eq!(
            parse("release/1.4@4f2a9c1").expect("parses"),
            RunRequest {
                branch: "release/1.4".into(),
                commit: Some("4f2a9c1".into())
            }
        );
        assert!(parse("").is_err());
        assert!(parse("main@xyz").is_err());
        assert!(parse("my branch").is_err());
    }

    #[test]
    fn finds_the_pipeline_covering_a_branch() {
        let bp = manifest::parse_documents(include_str!("../../examples/orders-api.yaml"))
            .remove(0)
            .result
            .expect("the example parses");
        let state = render::compile(&bp).expect("the example renders");
        let name = |b: &str| pipeline_for(&state.pipelines, b).map(|p| p.pipeline.name.as_str());
        assert_eq!(name("feature/login"), Some("team-orders-orders-api"));
        assert_eq!(name("release/1.4"), Some("team-orders-orders-api"));
        assert_eq!(name("main"), Some("team-orders-orders-api-production"));
        assert_eq!(name("experiments/x"), None);
    }

    #[test]
    fn tokens_are_stable_and_distinct() {
        assert_eq!(request_token("u", "main"), request_token("u", "main"));
        assert_ne!(
            request_token("u", "main"),
            request_token("u", "main@abcdef1")
        );
        assert_eq!(request_token("u", "main").len(), 32);
    }

    fn desired() -> DesiredState {
        let bp = manifest::parse_documents(include_str!("../../examples/orders-api.yaml"))
            .remove(0)
            .result
            .expect("the example parses");
        render::compile(&bp).expect("the example renders")
    }

    #[test]
    fn no_annotation_or_a_handled_value_does_nothing() {
        let d = desired();
        assert_eq!(decide(None, None, "u", &d, &[]), RunDecision::Nothing);
        let last = LastRun {
            value: "main".into(),
            pipeline: None,
            execution_id: None,
            error: None,
            time: None,
        };
        assert_eq!(
            decide(Some("main"), Some(&last), "u", &d, &[]),
            RunDecision::Nothing
        );
    }

    #[test]
    fn bad_requests_are_rejected_with_a_reason() {
        let d = desired();
        let reason = |v: &str| match decide(Some(v), None, "u", &d, &[]) {
            RunDecision::Reject { reason, .. } => reason,
            other => panic!("{v}: {other:?}"),
        };
        assert_eq!(reason("main@xyz"), "InvalidRunRequest");
        assert_eq!(reason("experiments/x"), "BranchNotCovered");
        let foreign = [Foreign {
            kind: crate::reconcile::diff::Kind::Pipeline,
            name: "team-orders-orders-api-production".into(),
            owner: None,
        }];
        assert!(matches!(
            decide(Some("main"), None, "u", &d, &foreign),
            RunDecision::Reject {
                reason: "NotOwned",
                ..
            }
        ));
    }

    #[test]
    fn a_valid_request_starts_with_a_stable_token_and_the_commit() {
        let d = desired();
        let RunDecision::Start(start) = decide(Some("feature/x@abcdef1"), None, "uid-1", &d, &[])
        else {
            panic!("should start")
        };
        assert_eq!(start.pipeline, "team-orders-orders-api");
        assert_eq!(start.commit.as_deref(), Some("abcdef1"));
        assert_eq!(
            start.client_request_token,
            request_token("uid-1", "feature/x@abcdef1")
        );
    }

    #[test]
    fn results_are_recorded_so_a_value_is_handled_once() {
        let mut status = BranchPipelineStatus::default();
        let event = started(&mut status, "main", "p", "e-1", Some(1), "t");
        assert_eq!(event.reason, "RunStarted");
        let last = status.last_run.clone().expect("recorded");
        assert_eq!(
            (last.pipeline.as_deref(), last.execution_id.as_deref()),
            (Some("p"), Some("e-1"))
        );
        assert_eq!(
            decide(Some("main"), Some(&last), "u", &desired(), &[]),
            RunDecision::Nothing
        );
        let event = rejected(&mut status, "x@y", "InvalidRunRequest", "bad", Some(1), "t");
        assert!(event.warning);
        assert_eq!(
            status.last_run.expect("recorded").error.as_deref(),
            Some("bad")
        );
    }
}
