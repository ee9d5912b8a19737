//! `BranchPipeline` status, written only through the status subresource so GitOps tools see no
//! spec drift.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub const CONDITION_READY: &str = "Ready";
pub const CONDITION_SYNCED: &str = "Synced";
/// Present, with status `False`, while a `branchpipeline.dev/` annotation is invalid.
pub const CONDITION_ANNOTATIONS_VALID: &str = "AnnotationsValid";

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
    /// `Ready` and `Synced`, and `AnnotationsValid` while an annotation is invalid.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
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
}

impl BranchPipelineStatus {
    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.type_ == type_)
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
