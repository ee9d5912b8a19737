//! `BranchPipelineRun`: a request to release one environment of a BranchPipeline, as a Job or a
//! Tekton PipelineRun is. It starts at most one CodePipeline execution and follows it to its end.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::status::Condition;

/// A full commit SHA: a run pins exactly what it deploys.
pub const COMMIT_PATTERN: &str = "^[0-9a-f]{40}$";

/// Deploy one environment of a BranchPipeline from a branch (and commit). The API server lets
/// the spec be edited, but the run does not change once the controller has accepted or
/// rejected it: the controller records what it judged in status (`branchPipeline`,
/// `environment`, `branch`, `observedGeneration`), acts only on that, and reports a later edit
/// with a Warning event and a `SpecChangeIgnored` condition, because the execution it started
/// cannot change.
// No CEL rule enforces immutability at admission: kube-apiserver before 1.25 refuses
// `x-kubernetes-validations` under server-side apply, which would make the CRD uninstallable
// there. So the printer columns, retention and cleanup read the recorded status and the owner
// reference, never the spec.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "branchpipeline.dev",
    version = "v1alpha1",
    kind = "BranchPipelineRun",
    plural = "branchpipelineruns",
    shortname = "bplrun",
    namespaced,
    status = "BranchPipelineRunStatus",
    printcolumn = r#"{"name":"BranchPipeline","type":"string","jsonPath":".status.branchPipeline"}"#,
    printcolumn = r#"{"name":"Environment","type":"string","jsonPath":".status.environment"}"#,
    printcolumn = r#"{"name":"Branch","type":"string","jsonPath":".status.branch"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct BranchPipelineRunSpec {
    /// The BranchPipeline, in this namespace, whose pipeline runs.
    #[schemars(length(min = 1, max = 253))]
    pub branch_pipeline: String,
    /// The environment to deploy. Promoted environments follow their source: run the source.
    #[schemars(length(min = 1, max = 93))]
    pub environment: String,
    /// The branch to build. Defaults to the environment's only branch when it names exactly one,
    /// else to the branch the pipeline builds without a commit (its source branch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub branch: Option<String>,
    /// The full 40-character commit SHA to build. Required for any branch other than the one the
    /// pipeline builds by default, because CodePipeline cannot choose a branch per execution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = COMMIT_PATTERN))]
    pub commit: Option<String>,
}

/// Where a run is.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum RunPhase {
    /// Accepted, not started yet: StartPipelineExecution failed and is retried.
    Pending,
    /// Refused before any AWS call; the message names the field.
    Rejected,
    InProgress,
    /// Waiting for a manual approval.
    AwaitingApproval,
    Succeeded,
    Failed,
    Stopped,
    /// A newer execution took its place (SUPERSEDED execution mode).
    Superseded,
    /// The pipeline was updated while it ran.
    Cancelled,
}

impl RunPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Rejected => "Rejected",
            Self::InProgress => "InProgress",
            Self::AwaitingApproval => "AwaitingApproval",
            Self::Succeeded => "Succeeded",
            Self::Failed => "Failed",
            Self::Stopped => "Stopped",
            Self::Superseded => "Superseded",
            Self::Cancelled => "Cancelled",
        }
    }

    /// Whether the run has ended and will not change again.
    pub fn is_finished(self) -> bool {
        !matches!(
            self,
            Self::Pending | Self::InProgress | Self::AwaitingApproval
        )
    }
}

/// What the run did.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BranchPipelineRunStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<RunPhase>,
    /// Why the run is where it is: the rejected field and the fix, or the failed stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The BranchPipeline the controller judged the run against, recorded with its verdict:
    /// later edits of `spec.branchPipeline` change nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch_pipeline: Option<String>,
    /// The environment the controller judged the run for, recorded likewise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// The CodePipeline pipeline started (or to start, while Pending).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<String>,
    /// The CodePipeline execution started; there is never more than one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_id: Option<String>,
    /// The branch built (the spec's, or its default); on a rejected run, the branch asked for
    /// when one was given or resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// The commit built, as the execution's source revision reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// RFC 3339 time the execution started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// RFC 3339 time the run finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<String>,
    /// Every stage of the pipeline with its result in this execution, skipped ones included.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<RunStage>,
    /// `Accepted` and `Succeeded` (Unknown while it runs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The generation the controller accepted or rejected; later spec changes are ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// One stage of the execution.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunStage {
    /// The stage name, e.g. `lint` or `deploy-qa`.
    pub name: String,
    /// Pending, InProgress, AwaitingApproval, Succeeded, Failed, Skipped, Stopped, Cancelled
    /// or NotRun (the execution ended before reaching it).
    pub result: String,
    /// What the failed action reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[cfg(test)]
mod tests {
    use kube::CustomResourceExt;

    use super::*;

    /// The spec can be edited after the verdict (nothing enforces immutability at admission),
    /// so `kubectl get bplrun` must show what the controller recorded, not the spec.
    #[test]
    fn printer_columns_read_what_was_judged_not_the_editable_spec() {
        let crd = BranchPipelineRun::crd();
        let columns: Vec<(String, String)> = crd.spec.versions[0]
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| (c.name.clone(), c.json_path.clone()))
            .collect();
        let expected = [
            ("BranchPipeline", ".status.branchPipeline"),
            ("Environment", ".status.environment"),
            ("Branch", ".status.branch"),
            ("Phase", ".status.phase"),
            ("Age", ".metadata.creationTimestamp"),
        ]
        .map(|(n, p)| (n.to_string(), p.to_string()));
        assert_eq!(columns, expected);
    }
}
