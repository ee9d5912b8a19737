//! Pipeline executions as the controller reads them, and their conversion from the SDK types.
//!
//! The calls and what each reports (CodePipeline API Reference):
//! - GetPipelineExecution: status, summary, artifact revisions (the commit) and the resolved
//!   pipeline-level variables, but no times.
//! - ListPipelineExecutions: newest first, with start and update times, `sourceRevisions` and
//!   `trigger`, but no branch and no variables.
//! - ListActionExecutions, filtered by `pipelineExecutionId`: one entry per action that ran,
//!   with its status, summary and output variables (the source action's `BranchName` and
//!   `CommitId`, "Variables reference"). A skipped stage has none.
//! - GetPipelineState: each stage's latest execution, `Skipped` included, and a waiting
//!   approval's token.

use std::collections::BTreeMap;

use aws_sdk_codepipeline as cp;
use aws_smithy_types::date_time::Format;

/// PipelineExecutionStatus (API Reference, PipelineExecution `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExecutionStatus {
    #[default]
    InProgress,
    Stopping,
    Stopped,
    Succeeded,
    Superseded,
    Failed,
    /// "The pipeline's definition was updated before the pipeline execution could be
    /// completed."
    Cancelled,
    Unknown,
}

impl ExecutionStatus {
    pub fn parse(s: &str) -> Self {
        match s {
            "InProgress" => Self::InProgress,
            "Stopping" => Self::Stopping,
            "Stopped" => Self::Stopped,
            "Succeeded" => Self::Succeeded,
            "Superseded" => Self::Superseded,
            "Failed" => Self::Failed,
            "Cancelled" => Self::Cancelled,
            _ => Self::Unknown,
        }
    }

    pub fn is_finished(self) -> bool {
        !matches!(self, Self::InProgress | Self::Stopping | Self::Unknown)
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Execution {
    pub id: String,
    pub status: ExecutionStatus,
    pub summary: Option<String>,
    /// The source revision: the commit, for a CodeStarSourceConnection source.
    pub commit: Option<String>,
    /// Resolved pipeline-level variables (GetPipelineExecution only).
    pub variables: BTreeMap<String, String>,
    /// `trigger.triggerType`, e.g. `WebhookV2` or `StartPipelineExecution`.
    pub trigger: Option<String>,
    /// RFC 3339 (ListPipelineExecutions only).
    pub start_time: Option<String>,
    pub last_update_time: Option<String>,
}

/// ActionExecutionStatus (API Reference, ActionExecution `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionStatus {
    InProgress,
    Abandoned,
    Succeeded,
    Failed,
    Unknown,
}

impl ActionStatus {
    pub fn parse(s: &str) -> Self {
        match s {
            "InProgress" => Self::InProgress,
            "Abandoned" => Self::Abandoned,
            "Succeeded" => Self::Succeeded,
            "Failed" => Self::Failed,
            _ => Self::Unknown,
        }
    }
}

/// One action that ran in an execution.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionRun {
    pub stage: String,
    pub action: String,
    pub status: ActionStatus,
    pub summary: Option<String>,
    pub start_time: Option<String>,
    pub last_update_time: Option<String>,
    pub output_variables: BTreeMap<String, String>,
}

/// A stage's latest execution, as GetPipelineState reports it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StageState {
    pub name: String,
    /// `(pipelineExecutionId, status)`; the status includes `Skipped`.
    pub latest: Option<(String, String)>,
}

fn time(t: Option<&aws_smithy_types::DateTime>) -> Option<String> {
    t.and_then(|t| t.fmt(Format::DateTime).ok())
}

pub(super) fn execution_from_sdk(e: &cp::types::PipelineExecution) -> Execution {
    Execution {
        id: e.pipeline_execution_id().unwrap_or_default().to_string(),
        status: e.status().map_or(ExecutionStatus::Unknown, |s| {
            ExecutionStatus::parse(s.as_str())
        }),
        summary: e.status_summary().map(str::to_string),
        commit: e
            .artifact_revisions()
            .first()
            .and_then(|r| r.revision_id())
            .map(str::to_string),
        variables: e
            .variables()
            .iter()
            .filter_map(|v| Some((v.name()?.to_string(), v.resolved_value()?.to_string())))
            .collect(),
        trigger: e
            .trigger()
            .and_then(|t| t.trigger_type())
            .map(|t| t.as_str().to_string()),
        start_time: None,
        last_update_time: None,
    }
}

pub(super) fn summary_from_sdk(e: &cp::types::PipelineExecutionSummary) -> Execution {
    Execution {
        id: e.pipeline_execution_id().unwrap_or_default().to_string(),
        status: e.status().map_or(ExecutionStatus::Unknown, |s| {
            ExecutionStatus::parse(s.as_str())
        }),
        summary: e.status_summary().map(str::to_string),
        commit: e
            .source_revisions()
            .first()
            .and_then(|r| r.revision_id())
            .map(str::to_string),
        variables: BTreeMap::new(),
        trigger: e
            .trigger()
            .and_then(|t| t.trigger_type())
            .map(|t| t.as_str().to_string()),
        start_time: time(e.start_time()),
        last_update_time: time(e.last_update_time()),
    }
}

pub(super) fn action_from_sdk(a: &cp::types::ActionExecutionDetail) -> ActionRun {
    let output = a.output();
    ActionRun {
        stage: a.stage_name().unwrap_or_default().to_string(),
        action: a.action_name().unwrap_or_default().to_string(),
        status: a
            .status()
            .map_or(ActionStatus::Unknown, |s| ActionStatus::parse(s.as_str())),
        summary: output
            .and_then(|o| o.execution_result())
            .and_then(|r| r.external_execution_summary())
            .map(str::to_string),
        start_time: time(a.start_time()),
        last_update_time: time(a.last_update_time()),
        output_variables: output
            .and_then(|o| o.output_variables())
            .map(|vars| vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
    }
}

pub(super) fn stage_from_sdk(s: &cp::types::StageState) -> StageState {
    StageState {
        name: s.stage_name().unwrap_or_default().to_string(),
        latest: s.latest_execution().map(|l| {
            (
                l.pipeline_execution_id().to_string(),
                l.status().as_str().to_string(),
            )
        }),
    }
}
