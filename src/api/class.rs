//! `BranchPipelineClass`: the platform team's catalog, as StorageClass and IngressClass are.
//! Cluster-scoped and referenced by `spec.className` (or chosen as the default class), it gives
//! BranchPipelines the settings they may omit, a catalog of stage templates with inline
//! buildspecs, and guardrails the controller enforces before any AWS call.
//!
//! The guardrails are not CEL rules: kube-apiserver 1.20 does not enforce
//! `x-kubernetes-validations`, so the controller checks them (see [`crate::class`]).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::spec::*;

/// `"true"` on a class makes it the class of every BranchPipeline that names none. Two classes
/// marked so is an error for those BranchPipelines, as for StorageClasses.
pub const DEFAULT_CLASS_ANNOTATION: &str = "branchpipeline.dev/is-default-class";
/// Inline buildspecs are stored in the class and sent in every CreateProject; 32 KiB keeps a
/// class of many templates well within etcd's object size (ours; CodeBuild documents no
/// maximum for `source.buildspec`).
pub const MAX_INLINE_BUILDSPEC: usize = 32 * 1024;

/// Shared defaults, a buildspec catalog and guardrails for the BranchPipelines of a platform.
/// Each BranchPipeline field wins over the class's, field by field, except where a guardrail
/// forbids its value.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[kube(
    group = "branchpipeline.dev",
    version = "v1alpha1",
    kind = "BranchPipelineClass",
    plural = "branchpipelineclasses",
    shortname = "bplclass",
    printcolumn = r#"{"name":"Default","type":"string","jsonPath":".metadata.annotations.branchpipeline\\.dev/is-default-class"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct BranchPipelineClassSpec {
    /// Settings a BranchPipeline of this class may omit. Its own values win, field by field.
    #[serde(default, skip_serializing_if = "ClassDefaults::is_empty")]
    pub defaults: ClassDefaults,
    /// The buildspec catalog: stage templates a BranchPipeline's stage (or deploy) names with
    /// `template`, each an inline buildspec with build settings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub templates: Vec<StageTemplate>,
    /// Rules every BranchPipeline of this class must follow, after the merge. A violation is
    /// `Ready=False` reason `PolicyViolation`, and nothing is created or changed in AWS.
    #[serde(default, skip_serializing_if = "Guardrails::is_empty")]
    pub guardrails: Guardrails,
}

/// What a BranchPipeline of the class may omit.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClassDefaults {
    /// The BranchPipeline's `spec.source.connectionArn` when it sets none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = CONNECTION_ARN_PATTERN))]
    pub connection_arn: Option<String>,
    /// The BranchPipeline's `spec.pipelineRoleArn` when it sets none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = ROLE_ARN_PATTERN))]
    pub pipeline_role_arn: Option<String>,
    /// The BranchPipeline's `spec.buildRoleArn` when it sets none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = ROLE_ARN_PATTERN))]
    pub build_role_arn: Option<String>,
    /// The BranchPipeline's `spec.artifactBucket` when it sets none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = BUCKET_PATTERN))]
    pub artifact_bucket: Option<String>,
    /// The BranchPipeline's `spec.defaults`, field by field.
    #[serde(default, skip_serializing_if = "BuildDefaults::is_empty")]
    pub build: BuildDefaults,
    /// The BranchPipeline's `spec.deploy`, field by field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy: Option<DeploySpec>,
    /// Tags on every pipeline and project; the BranchPipeline's `spec.tags` win key by key.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// Approval settings by environment name: the first entry whose pattern matches an
    /// environment gives it an approval (or fills in the fields its approval leaves unset).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 40))]
    pub approvals: Vec<ClassApproval>,
}

impl ClassDefaults {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// An approval every environment whose name matches gets.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClassApproval {
    /// Environment name pattern: `*` matches any characters (`prod`, `prod-*`, `*`).
    #[schemars(length(min = 1, max = 93))]
    pub environment: String,
    /// SNS topic notified when approval is needed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = SNS_ARN_PATTERN))]
    pub notification_arn: Option<String>,
    /// Text shown to the approver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1000))]
    pub custom_data: Option<String>,
}

/// A named stage of the catalog. Its fields apply where the stage naming it sets none.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StageTemplate {
    /// What stages name in `template`.
    #[schemars(regex(pattern = NAME_PATTERN), length(min = 1, max = 63))]
    pub name: String,
    /// An inline buildspec (YAML with a `version`), rendered as the CodeBuild project's
    /// `source.buildspec`: one definition for every repository, no file to copy. Omitted: the
    /// stage reads its buildspec from the repository as usual.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 32768))]
    pub buildspec: Option<String>,
    /// CodeBuild image for the stages using this template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub image: Option<String>,
    /// Compute type for the stages using this template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_type: Option<ComputeType>,
    /// Environment type for the stages using this template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment_type: Option<EnvironmentType>,
    /// Docker-in-Docker for the stages using this template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privileged: Option<bool>,
    /// Build timeout for the stages using this template, 5-2160 minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 5, max = 2160))]
    pub timeout_minutes: Option<u32>,
}

impl StageTemplate {
    /// The template's build settings, as overrides.
    pub fn overrides(&self) -> BuildOverrides {
        BuildOverrides {
            image: self.image.clone(),
            compute_type: self.compute_type,
            environment_type: self.environment_type,
            privileged: self.privileged,
            timeout_minutes: self.timeout_minutes,
        }
    }
}

/// What a BranchPipeline of the class may do. An omitted rule allows everything; a list that
/// is present must not be empty. Patterns use `*` for any characters.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Guardrails {
    /// IAM roles the pipelines and projects may run as (`spec.pipelineRoleArn`,
    /// `spec.buildRoleArn`), e.g. `arn:aws:iam::111122223333:role/branchpipeline/*`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 50), inner(length(min = 1, max = 2048)))]
    pub allowed_role_arns: Option<Vec<String>>,
    /// CodeConnections connections the source may use (`spec.source.connectionArn`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 50), inner(length(min = 1, max = 2048)))]
    pub allowed_connection_arns: Option<Vec<String>>,
    /// S3 buckets the pipelines may store artifacts in (`spec.artifactBucket`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 50), inner(length(min = 1, max = 63)))]
    pub allowed_artifact_buckets: Option<Vec<String>>,
    /// Compute types any stage or deploy project may use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 20))]
    pub allowed_compute_types: Option<Vec<ComputeType>>,
    /// The longest build timeout any stage or deploy project may set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 5, max = 2160))]
    pub max_timeout_minutes: Option<u32>,
    /// `false`: no stage or deploy project may run privileged (Docker-in-Docker).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privileged_allowed: Option<bool>,
    /// Environment name patterns (e.g. `prod*`) that must have an approval, their own or the
    /// class's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 40), inner(length(min = 1, max = 93)))]
    pub require_approval: Option<Vec<String>>,
    /// Namespaces whose BranchPipelines may use this class, by their labels. Omitted: every
    /// namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_namespaces: Option<LabelSelector>,
}

impl Guardrails {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl BranchPipelineClass {
    /// Whether the class is marked as the default class.
    pub fn is_default(&self) -> bool {
        self.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(DEFAULT_CLASS_ANNOTATION))
            .is_some_and(|v| v == "true")
    }

    pub fn template(&self, name: &str) -> Option<&StageTemplate> {
        self.spec.templates.iter().find(|t| t.name == name)
    }
}
