//! `BranchPipeline` spec: what a platform team commits to describe one repository's delivery.
//!
//! Everything the OpenAPI schema can express (enums, patterns, lengths, ranges, defaults) is
//! declared here so the API server rejects bad manifests at admission. Cross-field rules live in
//! [`crate::validate`], which the controller and `render` run as well, because CEL rules are not
//! enforced by every API server version we support.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::status::BranchPipelineStatus;

/// DNS-label-like: stage, environment and pipeline group names end up inside AWS resource names.
pub const NAME_PATTERN: &str = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
pub const REPOSITORY_PATTERN: &str = r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$";
pub const CONNECTION_ARN_PATTERN: &str = r"^arn:aws[a-z-]*:(codestar-connections|codeconnections):[a-z0-9-]+:[0-9]{12}:connection/[A-Za-z0-9-]+$";
pub const ROLE_ARN_PATTERN: &str =
    r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$";
pub const SNS_ARN_PATTERN: &str = r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}$";
pub const BUCKET_PATTERN: &str = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$";
/// CodePipeline pipeline-level variable names (PipelineVariableDeclaration.name).
pub const VARIABLE_NAME_PATTERN: &str = r"^[A-Za-z0-9@_-]{1,128}$";
/// CodeBuild environment variable names: letters, digits and `_`, not starting with a digit.
pub const ENV_VAR_NAME_PATTERN: &str = r"^[A-Za-z_][A-Za-z0-9_]*$";

pub const DEFAULT_BUILDSPEC_DIR: &str = "cicd/buildspecs";
pub const DEFAULT_IMAGE: &str = "aws/codebuild/amazonlinux-x86_64-standard:5.0";
pub const DEFAULT_GROUP: &str = "main";
/// CodeBuild API Reference, CreateProject `timeoutInMinutes`: 5–2160 minutes.
pub const MIN_TIMEOUT_MINUTES: u32 = 5;
pub const MAX_TIMEOUT_MINUTES: u32 = 2160;

/// One repository's delivery: build stages run once per execution, then the commit is deployed
/// to the environments its branch feeds, with promotions and approvals in between.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "branchpipeline.dev",
    version = "v1alpha1",
    kind = "BranchPipeline",
    plural = "branchpipelines",
    shortname = "bpl",
    namespaced,
    status = "BranchPipelineStatus",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","priority":1,"jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Pipelines","type":"integer","jsonPath":".status.pipelineCount"}"#,
    printcolumn = r#"{"name":"Last Run","type":"string","jsonPath":".status.lastExecution.result"}"#,
    printcolumn = r#"{"name":"Branch","type":"string","priority":1,"jsonPath":".status.lastExecution.branch"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct BranchPipelineSpec {
    /// The BranchPipelineClass whose defaults, templates and guardrails apply. Omitted: the
    /// class annotated `branchpipeline.dev/is-default-class: "true"`, if there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub class_name: Option<String>,
    /// The repository every pipeline builds from, through a CodeConnections connection.
    pub source: SourceSpec,
    /// IAM role CodePipeline assumes (CreatePipeline `roleArn`). Required here or in the
    /// class's `defaults.pipelineRoleArn`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = ROLE_ARN_PATTERN))]
    pub pipeline_role_arn: Option<String>,
    /// IAM role CodeBuild projects run as (CreateProject `serviceRole`). Required here or in
    /// the class's `defaults.buildRoleArn`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = ROLE_ARN_PATTERN))]
    pub build_role_arn: Option<String>,
    /// The one S3 bucket every pipeline of this resource stores artifacts in. Required here or
    /// in the class's `defaults.artifactBucket`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = BUCKET_PATTERN))]
    pub artifact_bucket: Option<String>,
    /// Directory in the repository holding `<stage>.yml` buildspecs.
    #[serde(default = "default_buildspec_dir")]
    #[schemars(length(min = 1, max = 200))]
    pub buildspec_dir: String,
    /// How executions of one pipeline share it: QUEUED (one at a time, in order; the
    /// default), SUPERSEDED (a newer run overtakes one waiting at a stage) or PARALLEL.
    #[serde(default)]
    pub execution_mode: ExecutionMode,
    /// Roll an environment stage back to the last successful execution when it fails.
    /// Not available with `executionMode: PARALLEL`.
    #[serde(default)]
    pub rollback_on_failure: bool,
    /// Build settings every stage inherits; unset fields come from the class's
    /// `defaults.build`, then from the built-in defaults.
    #[serde(default, skip_serializing_if = "BuildDefaults::is_empty")]
    pub defaults: BuildDefaults,
    /// Build stages, in order. Each runs once per execution, whatever environments follow. At
    /// most 48: a pipeline takes 50 stages ("Quotas in AWS CodePipeline"), one of them the
    /// source and at least one a deploy.
    #[schemars(length(min = 1, max = 48))]
    pub stages: Vec<StageSpec>,
    /// The project that deploys to each environment. Defaults apply when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy: Option<DeploySpec>,
    /// Environments, in promotion order. Grouped into pipelines by `pipeline`; each pipeline's
    /// stages (source, build stages, one per environment) stay within AWS's 50, which the
    /// controller checks per pipeline.
    #[schemars(length(min = 1))]
    pub environments: Vec<EnvironmentSpec>,
    /// Pipeline-level variables (CodePipeline V2), overridable per execution. At most 47: a
    /// pipeline takes 50 and the controller declares BPL_TARGET, BPL_BRANCH and BPL_RUN.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 47))]
    pub variables: Vec<PipelineVariableSpec>,
    /// Extra tags on every pipeline and project.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// What happens to the AWS resources when this resource is deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,
    /// Build pull requests: lint, test and build a PR's head commit in a pipeline of their own
    /// (`<namespace>-<name>-pr`, PARALLEL, never deploying) and report it on GitHub.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_requests: Option<PullRequestSpec>,
    /// Report runs back to GitHub.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub github: Option<GithubSpec>,
    /// Finished BranchPipelineRuns to keep for this resource, newest first; older ones are
    /// deleted. Defaults to 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 1000))]
    pub run_history_limit: Option<u32>,
    /// What a pipeline update does while executions run. UpdatePipeline cancels a pipeline's
    /// executions in flight (approvals waiting included), so by default it waits for them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_policy: Option<UpdatePolicy>,
}

/// When a pipeline update may cancel running executions.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdatePolicy {
    /// `Wait` (the default): an update waits until none of the pipeline's executions runs or
    /// awaits approval, at most `maxWait`. `Proceed`: update at once, cancelling them.
    #[serde(default)]
    pub when_running: WhenRunning,
    /// The longest an update waits, e.g. `1h` (the default) or `30m`; from 10s to 7d. After it
    /// the update proceeds and cancels what still runs, with a Warning event naming it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_wait: Option<String>,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum WhenRunning {
    #[default]
    Wait,
    Proceed,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PullRequestSpec {
    /// Destination branch patterns: pull requests into these are built.
    #[schemars(length(min = 1, max = 8), inner(length(min = 1, max = 255)))]
    pub branches: Vec<String>,
    /// Which pull-request events start a build: OPEN and UPDATED. CLOSED is accepted and
    /// ignored: a closed pull request builds nothing.
    #[serde(default = "default_pr_events")]
    pub events: Vec<PullRequestEvent>,
    /// The build stages a pull request runs, by name; all of them when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<String>,
}

fn default_pr_events() -> Vec<PullRequestEvent> {
    vec![PullRequestEvent::Open, PullRequestEvent::Updated]
}

/// CodePipeline's pull-request events (GitPullRequestFilter `events`,
/// <https://docs.aws.amazon.com/codepipeline/latest/APIReference/API_GitPullRequestFilter.html>).
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum PullRequestEvent {
    #[serde(rename = "OPEN")]
    Open,
    #[serde(rename = "UPDATED")]
    Updated,
    /// Accepted and ignored: the render never triggers on it, since a closed pull request has
    /// nothing left to check.
    #[serde(rename = "CLOSED")]
    Closed,
}

impl PullRequestEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "OPEN",
            Self::Updated => "UPDATED",
            Self::Closed => "CLOSED",
        }
    }
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GithubSpec {
    /// Post a commit status per environment (`branchpipeline/<environment>`), one for the
    /// build stages (`branchpipeline/build`) and one for pull requests (`branchpipeline/pr`).
    /// Needs the controller's GitHub credentials.
    #[serde(default)]
    pub commit_statuses: bool,
}

/// Finished runs kept per BranchPipeline when `runHistoryLimit` is not set.
pub const DEFAULT_RUN_HISTORY_LIMIT: u32 = 10;

fn default_buildspec_dir() -> String {
    DEFAULT_BUILDSPEC_DIR.to_string()
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SourceSpec {
    /// CodeConnections (or CodeStar Connections) connection ARN. Required here or in the
    /// class's `defaults.connectionArn`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = CONNECTION_ARN_PATTERN))]
    pub connection_arn: Option<String>,
    /// `owner/name` of the repository.
    #[schemars(regex(pattern = REPOSITORY_PATTERN), length(min = 3, max = 200))]
    pub repository: String,
    /// Branch a manual "Release change" builds.
    #[serde(default = "default_branch")]
    #[schemars(length(min = 1, max = 255))]
    pub default_branch: String,
    /// Only pushes touching these paths start a pipeline (V2 trigger file-path filter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_paths: Option<PatternFilter>,
}

fn default_branch() -> String {
    "main".to_string()
}

/// Glob include/exclude lists, as CodePipeline V2 trigger filters take them.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PatternFilter {
    /// Glob patterns to include (`*`, `**`, `?`); at most 8.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8), inner(length(min = 1, max = 255)))]
    pub includes: Vec<String>,
    /// Glob patterns to exclude; excludes win over includes. At most 8.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8), inner(length(min = 1, max = 255)))]
    pub excludes: Vec<String>,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum ExecutionMode {
    #[default]
    #[serde(rename = "QUEUED")]
    Queued,
    #[serde(rename = "SUPERSEDED")]
    Superseded,
    #[serde(rename = "PARALLEL")]
    Parallel,
}

impl ExecutionMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "QUEUED",
            Self::Superseded => "SUPERSEDED",
            Self::Parallel => "PARALLEL",
        }
    }
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum DeletionPolicy {
    Delete,
    Retain,
}

/// Build settings every stage inherits unless it overrides them. Each unset field comes from
/// the class's `defaults.build`, else from the built-in default: image
/// `aws/codebuild/amazonlinux-x86_64-standard:5.0`, `BUILD_GENERAL1_SMALL`, `LINUX_CONTAINER`,
/// not privileged, 60 minutes. No schema defaults: the API server would fill them in and a
/// class could then never provide them.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BuildDefaults {
    /// CodeBuild image every stage uses unless it sets its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub image: Option<String>,
    /// CodeBuild compute type every stage uses unless it sets its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_type: Option<ComputeType>,
    /// CodeBuild environment type every stage uses unless it sets its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment_type: Option<EnvironmentType>,
    /// Run builds in privileged mode (Docker-in-Docker).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privileged: Option<bool>,
    /// Build timeout in minutes, 5-2160 (CodeBuild limits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 5, max = 2160))]
    pub timeout_minutes: Option<u32>,
}

impl BuildDefaults {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The same settings as overrides, for field-by-field layering.
    pub fn as_overrides(&self) -> BuildOverrides {
        BuildOverrides {
            image: self.image.clone(),
            compute_type: self.compute_type,
            environment_type: self.environment_type,
            privileged: self.privileged,
            timeout_minutes: self.timeout_minutes,
        }
    }
}

/// CodeBuild's own default build timeout (CreateProject `timeoutInMinutes`).
pub const DEFAULT_TIMEOUT_MINUTES: u32 = 60;

/// Declares a struct holding the build settings a stage, the deploy project or an environment
/// may override, plus its own fields. The override fields are written out in each struct rather
/// than `#[serde(flatten)]`ed, because flattening loses the field path of a parse error.
macro_rules! with_build_overrides {
    ($(#[$meta:meta])* pub struct $name:ident { $($(#[$fmeta:meta])* pub $field:ident: $ty:ty,)* }) => {
        $(#[$meta])*
        #[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Default, JsonSchema)]
        #[serde(rename_all = "camelCase")]
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty,)*
            /// CodeBuild image; inherits `spec.defaults.image`.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[schemars(length(min = 1, max = 255))]
            pub image: Option<String>,
            /// Inherits `spec.defaults.computeType`.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub compute_type: Option<ComputeType>,
            /// Inherits `spec.defaults.environmentType`.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub environment_type: Option<EnvironmentType>,
            /// Docker-in-Docker; inherits `spec.defaults.privileged`.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub privileged: Option<bool>,
            /// Inherits `spec.defaults.timeoutMinutes`.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[schemars(range(min = 5, max = 2160))]
            pub timeout_minutes: Option<u32>,
        }

        impl $name {
            /// Just the build settings this struct overrides.
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
    };
}

with_build_overrides! {
    /// Build settings that override [`BuildDefaults`]. Unset fields inherit.
    pub struct BuildOverrides {}
}

with_build_overrides! {
    /// A build stage: one CodeBuild project, run once per pipeline execution.
    pub struct StageSpec {
        /// Names the CodePipeline stage and action (at most 100 characters, the
        /// StageDeclaration limit; see `validate::limits`) and the CodeBuild project.
        #[schemars(regex(pattern = NAME_PATTERN), length(min = 1, max = 100))]
        pub name: String,
        /// Buildspec path in the repository; defaults to the template's inline buildspec, else
        /// `<buildspecDir>/<name>.yml`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(min = 1, max = 255))]
        pub buildspec: Option<String>,
        /// A stage template of the class's catalog (`spec.templates[].name`): its inline
        /// buildspec and build settings apply where this stage sets none.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(regex(pattern = NAME_PATTERN), length(min = 1, max = 63))]
        pub template: Option<String>,
    }
}

with_build_overrides! {
    /// The deploy project every environment runs, unless it overrides deploy compute.
    pub struct DeploySpec {
        /// Buildspec path in the repository; defaults to the template's inline buildspec, else
        /// `<buildspecDir>/deploy.yml`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(min = 1, max = 255))]
        pub buildspec: Option<String>,
        /// A stage template of the class's catalog for the deploy project: its inline buildspec
        /// and build settings apply where this sets none.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(regex(pattern = NAME_PATTERN), length(min = 1, max = 63))]
        pub template: Option<String>,
    }
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Trigger {
    /// A push to one of the environment's branches starts the pipeline.
    #[default]
    Automatic,
    /// Only a BranchPipelineRun that targets the environment deploys it; pushes never do.
    Manual,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentSpec {
    /// Names the stage `deploy-<name>`, so at most 93 characters (a stage name takes 100;
    /// see `validate::limits`).
    #[schemars(regex(pattern = NAME_PATTERN), length(min = 1, max = 93))]
    pub name: String,
    /// Pipeline group; each group becomes one CodePipeline. Defaults to `main`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = NAME_PATTERN), length(min = 1, max = 100))]
    pub pipeline: Option<String>,
    /// Branch glob patterns that deploy here. Exactly one of `branches` and `promoteFrom`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 8), inner(length(min = 1, max = 255)))]
    pub branches: Option<Vec<String>>,
    /// An earlier environment of the same pipeline whose build is promoted here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = NAME_PATTERN), length(min = 1, max = 93))]
    pub promote_from: Option<String>,
    /// `automatic`: a push to one of the branches deploys here. `manual`: only a
    /// release asked for by hand does.
    #[serde(default)]
    pub trigger: Trigger,
    /// A manual approval gates the deploy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalSpec>,
    /// Extra plaintext environment variables for the deploy action.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variables: BTreeMap<String, String>,
    /// Deploy compute for this environment only; gives it its own deploy project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy: Option<BuildOverrides>,
}

impl EnvironmentSpec {
    pub fn group(&self) -> &str {
        self.pipeline.as_deref().unwrap_or(DEFAULT_GROUP)
    }
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalSpec {
    /// SNS topic notified when approval is needed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = SNS_ARN_PATTERN))]
    pub notification_arn: Option<String>,
    /// Text shown to the approver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1000))]
    pub custom_data: Option<String>,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PipelineVariableSpec {
    /// Variable name; pipelines and runs refer to it as `#{variables.<name>}`.
    #[schemars(regex(pattern = VARIABLE_NAME_PATTERN))]
    pub name: String,
    /// Value used when a run does not set one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1000))]
    pub default_value: Option<String>,
    /// Shown in the CodePipeline console.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 200))]
    pub description: Option<String>,
}

/// CodeBuild compute types (CodeBuild API Reference, ProjectEnvironment.computeType).
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum ComputeType {
    #[default]
    #[serde(rename = "BUILD_GENERAL1_SMALL")]
    General1Small,
    #[serde(rename = "BUILD_GENERAL1_MEDIUM")]
    General1Medium,
    #[serde(rename = "BUILD_GENERAL1_LARGE")]
    General1Large,
    #[serde(rename = "BUILD_GENERAL1_XLARGE")]
    General1Xlarge,
    #[serde(rename = "BUILD_GENERAL1_2XLARGE")]
    General1TwoXlarge,
    #[serde(rename = "BUILD_LAMBDA_1GB")]
    Lambda1Gb,
    #[serde(rename = "BUILD_LAMBDA_2GB")]
    Lambda2Gb,
    #[serde(rename = "BUILD_LAMBDA_4GB")]
    Lambda4Gb,
    #[serde(rename = "BUILD_LAMBDA_8GB")]
    Lambda8Gb,
    #[serde(rename = "BUILD_LAMBDA_10GB")]
    Lambda10Gb,
}

impl ComputeType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::General1Small => "BUILD_GENERAL1_SMALL",
            Self::General1Medium => "BUILD_GENERAL1_MEDIUM",
            Self::General1Large => "BUILD_GENERAL1_LARGE",
            Self::General1Xlarge => "BUILD_GENERAL1_XLARGE",
            Self::General1TwoXlarge => "BUILD_GENERAL1_2XLARGE",
            Self::Lambda1Gb => "BUILD_LAMBDA_1GB",
            Self::Lambda2Gb => "BUILD_LAMBDA_2GB",
            Self::Lambda4Gb => "BUILD_LAMBDA_4GB",
            Self::Lambda8Gb => "BUILD_LAMBDA_8GB",
            Self::Lambda10Gb => "BUILD_LAMBDA_10GB",
        }
    }

    pub fn is_lambda(self) -> bool {
        self.as_str().starts_with("BUILD_LAMBDA_")
    }
}

/// CodeBuild environment types (CodeBuild API Reference, ProjectEnvironment.type).
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum EnvironmentType {
    #[default]
    #[serde(rename = "LINUX_CONTAINER")]
    LinuxContainer,
    #[serde(rename = "LINUX_GPU_CONTAINER")]
    LinuxGpuContainer,
    #[serde(rename = "ARM_CONTAINER")]
    ArmContainer,
    #[serde(rename = "WINDOWS_SERVER_2019_CONTAINER")]
    WindowsServer2019Container,
    #[serde(rename = "WINDOWS_SERVER_2022_CONTAINER")]
    WindowsServer2022Container,
    #[serde(rename = "LINUX_LAMBDA_CONTAINER")]
    LinuxLambdaContainer,
    #[serde(rename = "ARM_LAMBDA_CONTAINER")]
    ArmLambdaContainer,
}

impl EnvironmentType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LinuxContainer => "LINUX_CONTAINER",
            Self::LinuxGpuContainer => "LINUX_GPU_CONTAINER",
            Self::ArmContainer => "ARM_CONTAINER",
            Self::WindowsServer2019Container => "WINDOWS_SERVER_2019_CONTAINER",
            Self::WindowsServer2022Container => "WINDOWS_SERVER_2022_CONTAINER",
            Self::LinuxLambdaContainer => "LINUX_LAMBDA_CONTAINER",
            Self::ArmLambdaContainer => "ARM_LAMBDA_CONTAINER",
        }
    }

    pub fn is_lambda(self) -> bool {
        matches!(self, Self::LinuxLambdaContainer | Self::ArmLambdaContainer)
    }
}
