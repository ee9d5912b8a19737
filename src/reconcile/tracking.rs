//! The execution tracker's decisions. From what one poll read: the tracker's part of the
//! status (environments, last execution, cursors) and the commit statuses GitHub should show.
//! From what posting achieved: where reading resumes, and the `CommitStatuses` condition.
//! Pure: the tracker reads, calls these, and carries out what they return.

use std::collections::BTreeMap;
use std::time::Duration;

use super::executions::{self, ExecutionView, TrackedPipeline};
use super::status::set_condition;
use crate::api::{
    BranchPipelineStatus, CONDITION_COMMIT_STATUSES, ExecutionCursor, ExecutionRecord,
};
use crate::aws::executions::Execution;
use crate::github::CommitStatus;
use crate::github::reporter::Report;

pub mod reason {
    pub const POSTING: &str = "Posting";
    pub const RATE_LIMITED: &str = "RateLimited";
    pub const NO_CREDENTIALS: &str = "NoCredentials";
    pub const GITHUB_ERROR: &str = "GitHubError";
}

/// What one poll read of one pipeline.
#[derive(Debug, Clone)]
pub struct Reading {
    pub pipeline: TrackedPipeline,
    /// `None` when reading failed: what the status says of this pipeline stays as it was.
    pub executions: Option<Executions>,
}

#[derive(Debug, Clone, Default)]
pub struct Executions {
    /// What ListPipelineExecutions returned since the cursor, newest first.
    pub listed: Vec<Execution>,
    /// The same executions read in full, oldest first.
    pub views: Vec<ExecutionView>,
}

/// Whether commit statuses are posted for a BranchPipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reporting {
    /// `spec.github.commitStatuses` is off.
    Off,
    /// On, but the controller was started without GitHub credentials.
    NoCredentials,
    /// On: post to this `owner/name`.
    On(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The tracker's fields only, with every cursor moved past what was read.
    pub status: BranchPipelineStatus,
    /// The statuses to post, one per commit and context (the newest execution's).
    pub post: Vec<CommitStatus>,
    /// An execution is still running or awaiting approval: poll again soon.
    pub active: bool,
}

/// The tracker's status after a poll, and what to post.
pub fn decide(
    previous: &BranchPipelineStatus,
    readings: &[Reading],
    region: &str,
    reporting: &Reporting,
) -> Decision {
    let previous = previous.tracked();
    let mut status = BranchPipelineStatus {
        conditions: previous.conditions.clone(),
        ..BranchPipelineStatus::default()
    };
    let mut post = Vec::new();
    let mut active = false;
    let mut newest = previous.last_execution.clone();
    for reading in readings {
        let name = &reading.pipeline.name;
        let old_cursor = cursor_of(&previous, name);
        // One entry per environment, as issue 12 asks: one that never ran is listed with its
        // pipeline and no run, so `status.environments` answers "what runs where" for every
        // environment. A pipeline that could not be read keeps what the status said.
        let views = reading
            .executions
            .as_ref()
            .map_or(&[][..], |r| &r.views[..]);
        for env in &reading.pipeline.environments {
            let before = previous.environments.iter().find(|e| &e.name == env);
            status
                .environments
                .push(executions::environment(before, name, env, views));
        }
        let Some(read) = &reading.executions else {
            push_cursor(&mut status, name, old_cursor.map(str::to_string));
            continue;
        };
        push_cursor(
            &mut status,
            name,
            executions::cursor(old_cursor, &read.listed),
        );
        active |= read.listed.iter().any(|e| !e.status.is_finished());
        for view in &read.views {
            newest = newer(newest, last_record(name, view));
            if matches!(reporting, Reporting::On(_)) {
                let url = executions::console_url(region, name, &view.execution.id);
                post.extend(executions::commit_statuses(
                    &reading.pipeline,
                    view,
                    Some(url),
                ));
            }
        }
    }
    status.last_execution = newest;
    Decision {
        status,
        post: latest_per_context(post),
        active,
    }
}

fn cursor_of<'a>(status: &'a BranchPipelineStatus, pipeline: &str) -> Option<&'a str> {
    status
        .execution_cursors
        .iter()
        .find(|c| c.pipeline == pipeline)
        .map(|c| c.execution_id.as_str())
}

fn push_cursor(status: &mut BranchPipelineStatus, pipeline: &str, cursor: Option<String>) {
    if let Some(execution_id) = cursor {
        status.execution_cursors.push(ExecutionCursor {
            pipeline: pipeline.to_string(),
            execution_id,
        });
    }
}

fn last_record(pipeline: &str, view: &ExecutionView) -> ExecutionRecord {
    ExecutionRecord {
        pipeline: Some(pipeline.to_string()),
        ..view.record(&view.result())
    }
}

/// The later-started of two records; the same execution read again replaces itself.
fn newer(current: Option<ExecutionRecord>, candidate: ExecutionRecord) -> Option<ExecutionRecord> {
    match current {
        Some(current)
            if current.execution_id != candidate.execution_id
                && current.start_time > candidate.start_time =>
        {
            Some(current)
        }
        _ => Some(candidate),
    }
}

/// One status per commit and context, the last one given (the newest execution's), in the
/// order first seen.
fn latest_per_context(statuses: Vec<CommitStatus>) -> Vec<CommitStatus> {
    let mut order: Vec<(String, String)> = Vec::new();
    let mut latest: BTreeMap<(String, String), CommitStatus> = BTreeMap::new();
    for status in statuses {
        let key = (status.sha.clone(), status.context.clone());
        if !latest.contains_key(&key) {
            order.push(key.clone());
        }
        latest.insert(key, status);
    }
    order
        .into_iter()
        .filter_map(|key| latest.remove(&key))
        .collect()
}

/// The tracker's status once posting is done, and when to try again what GitHub held back.
#[derive(Debug, Clone, PartialEq)]
pub struct Settled {
    pub status: BranchPipelineStatus,
    pub retry_after: Option<Duration>,
}

/// Holds the cursors where they were while any status waits (a rate limit, a failure worth
/// retrying), so the next poll reads those executions again and nothing is lost, across a
/// restart too. Sets `CommitStatuses` to say whether statuses reach GitHub.
pub fn settle(
    decision: Decision,
    previous: &BranchPipelineStatus,
    reporting: &Reporting,
    report: Option<&Report>,
    generation: Option<i64>,
    now: &str,
) -> Settled {
    let mut status = decision.status;
    let waiting = report.map_or(0, |r| r.waiting);
    if waiting > 0 {
        status.execution_cursors = previous.execution_cursors.clone();
    }
    let condition = match reporting {
        Reporting::Off => None,
        Reporting::NoCredentials => Some((
            false,
            reason::NO_CREDENTIALS,
            "spec.github.commitStatuses is on, but the controller has no GitHub credentials, so nothing is posted: give it a GitHub App (chart value github.app) or a token (github.tokenSecret)".to_string(),
        )),
        Reporting::On(repo) => Some(posting_condition(repo, report)),
    };
    match condition {
        None => status
            .conditions
            .retain(|c| c.type_ != CONDITION_COMMIT_STATUSES),
        Some((ok, reason, message)) => set_condition(
            &mut status.conditions,
            CONDITION_COMMIT_STATUSES,
            ok,
            reason,
            &message,
            generation,
            now,
        ),
    }
    Settled {
        status,
        retry_after: report.and_then(|r| r.retry_after),
    }
}

fn posting_condition(repo: &str, report: Option<&Report>) -> (bool, &'static str, String) {
    let error = report.and_then(|r| r.error.as_ref());
    match (error, report.map_or(0, |r| r.waiting)) {
        (Some(e), _) if !e.is_retryable() => (
            false,
            reason::GITHUB_ERROR,
            format!("commit statuses for {repo} are not posted: {e}"),
        ),
        (_, waiting) if waiting > 0 => (
            true,
            reason::RATE_LIMITED,
            format!(
                "GitHub is holding back commit statuses for {repo} (rate limit or a passing failure); they are posted when it lets them through"
            ),
        ),
        _ => (
            true,
            reason::POSTING,
            format!("commit statuses are posted to {repo}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{CONDITION_READY, EnvironmentStatus};
    use crate::aws::executions::{ActionRun, ActionStatus, ExecutionStatus, StageState};
    use crate::github::{GithubError, State};
    use crate::render::SOURCE_STAGE;

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    fn tracked() -> TrackedPipeline {
        TrackedPipeline {
            name: "team-app".into(),
            environments: vec!["dev".into(), "qa".into()],
            build_stages: vec!["build".into()],
            pull_request: false,
        }
    }

    fn execution(id: &str, status: ExecutionStatus, start: &str) -> Execution {
        Execution {
            id: id.into(),
            status,
            trigger: Some("WebhookV2".into()),
            start_time: Some(start.into()),
            ..Execution::default()
        }
    }

    fn action(stage: &str, status: ActionStatus) -> ActionRun {
        ActionRun {
            stage: stage.into(),
            action: stage.into(),
            status,
            summary: None,
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

    /// A develop push: built, dev deploying (or deployed), qa skipped.
    fn view(e: &Execution, dev: ActionStatus) -> ExecutionView {
        let actions = [
            action(SOURCE_STAGE, ActionStatus::Succeeded),
            action("build", ActionStatus::Succeeded),
            action("deploy-dev", dev),
        ];
        let states: Vec<StageState> = [SOURCE_STAGE, "build", "deploy-dev", "deploy-qa"]
            .iter()
            .map(|name| StageState {
                name: name.to_string(),
                latest: (*name == "deploy-qa").then(|| (e.id.clone(), "Skipped".to_string())),
            })
            .collect();
        ExecutionView::new(e.clone(), &actions, &states)
    }

    fn reading(executions: &[(Execution, ActionStatus)]) -> Reading {
        Reading {
            pipeline: tracked(),
            executions: Some(Executions {
                listed: executions.iter().rev().map(|(e, _)| e.clone()).collect(),
                views: executions.iter().map(|(e, dev)| view(e, *dev)).collect(),
            }),
        }
    }

    fn on() -> Reporting {
        Reporting::On("acme/app".into())
    }

    #[test]
    fn a_running_push_is_active_and_its_cursor_waits() {
        let e1 = execution("e1", ExecutionStatus::InProgress, "t1");
        let d = decide(
            &BranchPipelineStatus::default(),
            &[reading(&[(e1, ActionStatus::InProgress)])],
            "eu-west-1",
            &on(),
        );
        assert!(d.active);
        assert!(d.status.execution_cursors.is_empty());
        let contexts: Vec<(&str, State)> = d
            .post
            .iter()
            .map(|s| (s.context.as_str(), s.state))
            .collect();
        assert_eq!(
            contexts,
            [
                ("branchpipeline/build", State::Success),
                ("branchpipeline/dev", State::Pending)
            ]
        );
        assert!(
            d.post[0]
                .target_url
                .as_deref()
                .is_some_and(|u| u.contains("eu-west-1") && u.contains("/e1/"))
        );
        let dev = &d.status.environments[0];
        assert_eq!(
            dev.last_run.as_ref().map(|r| r.result.as_str()),
            Some("InProgress")
        );
        let qa = &d.status.environments[1];
        assert_eq!(
            (qa.name.as_str(), qa.pipeline.as_str()),
            ("qa", "team-app"),
            "qa was skipped and has never run: an entry without a run"
        );
        assert_eq!((&qa.last_run, &qa.deployed), (&None, &None));
        assert_eq!(d.status.environments.len(), 2, "one entry per environment");
        let last = d.status.last_execution.expect("a last execution");
        assert_eq!(last.pipeline.as_deref(), Some("team-app"));
    }

    fn bare(name: &str) -> EnvironmentStatus {
        EnvironmentStatus {
            name: name.into(),
            pipeline: "team-app".into(),
            last_run: None,
            deployed: None,
        }
    }

    #[test]
    fn a_pipeline_that_never_ran_lists_its_environments_without_runs() {
        let d = decide(
            &BranchPipelineStatus::default(),
            &[reading(&[])],
            "eu-west-1",
            &on(),
        );
        assert_eq!(d.status.environments, [bare("dev"), bare("qa")]);
        assert_eq!(d.status.last_execution, None);
        assert!(d.status.execution_cursors.is_empty());
        assert!(d.post.is_empty() && !d.active);
        let again = decide(&d.status, &[reading(&[])], "eu-west-1", &on());
        assert_eq!(again.status, d.status, "nothing new: nothing to write");
    }

    #[test]
    fn a_pipeline_never_read_still_lists_its_environments() {
        let failed = Reading {
            pipeline: tracked(),
            executions: None,
        };
        let d = decide(&BranchPipelineStatus::default(), &[failed], "r", &on());
        assert_eq!(d.status.environments, [bare("dev"), bare("qa")]);
    }

    #[test]
    fn a_finished_push_moves_the_cursor_and_records_the_deploy() {
        let e1 = execution("e1", ExecutionStatus::Succeeded, "t1");
        let d = decide(
            &BranchPipelineStatus::default(),
            &[reading(&[(e1, ActionStatus::Succeeded)])],
            "eu-west-1",
            &Reporting::Off,
        );
        assert!(!d.active);
        assert!(d.post.is_empty(), "reporting is off");
        assert_eq!(d.status.execution_cursors[0].execution_id, "e1");
        let deployed = d.status.environments[0].deployed.clone().expect("deployed");
        assert_eq!(deployed.commit, SHA);
    }

    #[test]
    fn the_newest_execution_of_a_commit_decides_its_status() {
        let old = execution("e1", ExecutionStatus::Failed, "t1");
        let new = execution("e2", ExecutionStatus::Succeeded, "t2");
        let d = decide(
            &BranchPipelineStatus::default(),
            &[reading(&[
                (old, ActionStatus::Failed),
                (new, ActionStatus::Succeeded),
            ])],
            "eu-west-1",
            &on(),
        );
        let dev: Vec<&CommitStatus> = d
            .post
            .iter()
            .filter(|s| s.context == "branchpipeline/dev")
            .collect();
        assert_eq!(dev.len(), 1);
        assert_eq!(dev[0].state, State::Success);
        assert_eq!(
            d.status.last_execution.map(|r| r.execution_id),
            Some("e2".to_string())
        );
    }

    #[test]
    fn a_pipeline_not_read_keeps_what_the_status_said() {
        let e1 = execution("e1", ExecutionStatus::Succeeded, "t1");
        let first = decide(
            &BranchPipelineStatus::default(),
            &[reading(&[(e1, ActionStatus::Succeeded)])],
            "r",
            &Reporting::Off,
        );
        let failed = Reading {
            pipeline: tracked(),
            executions: None,
        };
        let again = decide(&first.status, &[failed], "r", &Reporting::Off);
        assert_eq!(again.status, first.status);
    }

    #[test]
    fn held_statuses_hold_the_cursor_and_say_so() {
        let e1 = execution("e1", ExecutionStatus::Succeeded, "t1");
        let d = decide(
            &BranchPipelineStatus::default(),
            &[reading(&[(e1, ActionStatus::Succeeded)])],
            "r",
            &on(),
        );
        let held = Report {
            posted: 0,
            waiting: 2,
            retry_after: Some(Duration::from_secs(3)),
            error: None,
        };
        let previous = BranchPipelineStatus::default();
        let s = settle(d.clone(), &previous, &on(), Some(&held), Some(1), "now");
        assert!(
            s.status.execution_cursors.is_empty(),
            "read again next time"
        );
        assert_eq!(s.retry_after, Some(Duration::from_secs(3)));
        let c = s
            .status
            .condition(CONDITION_COMMIT_STATUSES)
            .expect("condition");
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("True", reason::RATE_LIMITED)
        );
        let done = settle(
            d,
            &previous,
            &on(),
            Some(&Report::default()),
            Some(1),
            "now",
        );
        assert_eq!(done.status.execution_cursors.len(), 1);
    }

    #[test]
    fn the_condition_says_why_nothing_is_posted() {
        let d = decide(
            &BranchPipelineStatus::default(),
            &[],
            "r",
            &Reporting::NoCredentials,
        );
        let s = settle(
            d.clone(),
            &BranchPipelineStatus::default(),
            &Reporting::NoCredentials,
            None,
            None,
            "now",
        );
        let c = s
            .status
            .condition(CONDITION_COMMIT_STATUSES)
            .expect("condition");
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", reason::NO_CREDENTIALS)
        );
        assert!(c.message.contains("spec.github.commitStatuses"));
        let refused = Report {
            error: Some(GithubError::NoInstallation("acme/app".into())),
            ..Report::default()
        };
        let s = settle(d.clone(), &s.status, &on(), Some(&refused), None, "now");
        let c = s
            .status
            .condition(CONDITION_COMMIT_STATUSES)
            .expect("condition");
        assert_eq!(c.reason, reason::GITHUB_ERROR);
        assert!(c.message.contains("install it"), "{}", c.message);
        let off = settle(d, &s.status, &Reporting::Off, None, None, "now");
        assert!(off.status.conditions.is_empty(), "off: no condition");
    }

    #[test]
    fn only_tracked_fields_come_out() {
        let mut previous = BranchPipelineStatus::default();
        crate::reconcile::status::set_condition(
            &mut previous.conditions,
            CONDITION_READY,
            true,
            "Synced",
            "ok",
            None,
            "t",
        );
        previous.projects = vec!["p".into()];
        let d = decide(&previous, &[], "r", &Reporting::Off);
        assert_eq!(d.status, BranchPipelineStatus::default());
    }
}
