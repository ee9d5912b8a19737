//! `BranchPipeline` status, written only through the status subresource so GitOps tools see no
//! spec drift.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub const CONDITION_READY: &str = "Ready";
pub const CONDITION_SYNCED: &str = "Synced";
/// Present, with status `False`, while a `branchpipeline.dev/` annotation is invalid.
pub const CONDITION_ANNOTATIONS_VALID: &str = "AnnotationsValid";
/// Present while `spec.github.commitStatuses` is on: whether statuses reach GitHub, and if
/// not, why. Written by the execution tracker.
pub const CONDITION_COMMIT_STATUSES: &str = "CommitStatuses";
/// Present while a pipeline update waits for executions in flight (`spec.updatePolicy`).
pub const CONDITION_UPDATE_PENDING: &str = "UpdatePending";

/// What the controller found and did: conditions, the AWS resources it owns, the last sync.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BranchPipelineStatus {
    /// The generation the controller last acted on, successfully or not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The generation AWS was last brought in line with. A change to AWS while the spec is
    /// still at this generation is drift.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synced_generation: Option<i64>,
    /// The BranchPipelineClass (name and generation) AWS was last brought in line with, when one
    /// applies: a class edited while the controller was not running is seen when it starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synced_class: Option<ClassRef>,
    /// `Ready` and `Synced`, `AnnotationsValid` while an annotation is invalid, and
    /// `CommitStatuses` while commit statuses are on. Keyed by type, so the two writers of this
    /// status (reconcile and execution tracker) each own their own conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The pipelines this resource renders and owns.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pipelines: Vec<PipelineStatus>,
    /// Number of pipelines, for the printer column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline_count: Option<i32>,
    /// The CodeBuild projects this resource renders and owns.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub projects: Vec<String>,
    /// Pipeline updates waiting for executions to end (see `spec.updatePolicy`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_updates: Vec<PendingUpdate>,
    /// The last `branchpipeline.dev/update-now` value acted on: a new value forces the waiting
    /// updates once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_now: Option<String>,
    /// What runs where: one entry per environment, with its pipeline, its last run and what it
    /// has deployed (an environment that never ran has neither). Written by the execution
    /// tracker, apart from the rest of the status.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environments: Vec<EnvironmentStatus>,
    /// The newest execution of any of the pipelines, for `kubectl get`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_execution: Option<ExecutionRecord>,
    /// Per pipeline, the newest execution before which all have been read and reported: the
    /// tracker's next ListPipelineExecutions stops there, after a restart too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub execution_cursors: Vec<ExecutionCursor>,
}

/// A BranchPipelineClass as a resource was compiled with it.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClassRef {
    /// The class's name.
    pub name: String,
    /// Its `metadata.generation`, which each change to its spec raises.
    pub generation: i64,
}

impl ClassRef {
    pub fn of(class: &crate::api::BranchPipelineClass) -> Self {
        Self {
            name: class.metadata.name.clone().unwrap_or_default(),
            generation: class.metadata.generation.unwrap_or_default(),
        }
    }
}

/// An UpdatePipeline held back because executions would be cancelled.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PendingUpdate {
    /// The CodePipeline pipeline name.
    pub pipeline: String,
    /// RFC 3339 time the update was first held back.
    pub since: String,
    /// The executions in flight holding it, as last read.
    pub executions: Vec<String>,
}

/// Where reading a pipeline's executions resumes.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionCursor {
    /// The CodePipeline pipeline name.
    pub pipeline: String,
    /// The newest execution read and reported with every older one.
    pub execution_id: String,
}

/// One environment: where it is deployed from, and its latest run.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentStatus {
    /// The environment's name.
    pub name: String,
    /// The pipeline that deploys it.
    pub pipeline: String,
    /// The newest execution that reached it (or a run that targeted it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<ExecutionRecord>,
    /// The last successful deploy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployed: Option<Deployed>,
}

/// One CodePipeline execution, as it concerns an environment (or the whole pipeline).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionRecord {
    /// The CodePipeline execution id.
    pub execution_id: String,
    /// The pipeline it ran in (on `lastExecution`; an environment names its own pipeline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<String>,
    /// `push`, `pull-request`, the BranchPipelineRun's name, or `console` for a start by hand.
    pub trigger: String,
    /// The branch built, as its source action reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// The commit built.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// InProgress, AwaitingApproval, Succeeded, Failed, Skipped, Stopped or Cancelled.
    pub result: String,
    /// RFC 3339 time the execution started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// RFC 3339 time it ended, once it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
}

/// What an environment runs.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Deployed {
    /// The commit deployed.
    pub commit: String,
    /// Its branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// RFC 3339 time the deploy finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// The execution that deployed it.
    pub execution_id: String,
}

impl BranchPipelineStatus {
    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.type_ == type_)
    }

    /// The status without what the execution tracker writes: what a reconcile applies.
    pub fn without_tracked(&self) -> Self {
        let mut out = self.clone();
        out.environments.clear();
        out.last_execution = None;
        out.execution_cursors.clear();
        out.conditions
            .retain(|c| c.type_ != CONDITION_COMMIT_STATUSES);
        out
    }

    /// Only what the execution tracker writes.
    pub fn tracked(&self) -> Self {
        Self {
            environments: self.environments.clone(),
            last_execution: self.last_execution.clone(),
            execution_cursors: self.execution_cursors.clone(),
            conditions: self
                .conditions
                .iter()
                .filter(|c| c.type_ == CONDITION_COMMIT_STATUSES)
                .cloned()
                .collect(),
            ..Self::default()
        }
    }
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// `Ready`, `Synced`, `AnnotationsValid`, ...
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// A CamelCase word for programs, e.g. `Synced`, `InvalidSpec`, `AWSError`.
    pub reason: String,
    /// What happened, for people: the field and the fix, or the AWS error.
    #[serde(default)]
    pub message: String,
    /// RFC 3339 time the status last changed.
    pub last_transition_time: String,
    /// The generation this condition was set for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PipelineStatus {
    /// The CodePipeline pipeline name.
    pub name: String,
    /// The pipeline's ARN, as CodePipeline reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    /// The pipeline's version in CodePipeline; it grows with every update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i32>,
    /// The environments it deploys, in order.
    #[serde(default)]
    pub environments: Vec<String>,
}
