//! The limits validation enforces, each with the document it comes from. A limit that is ours,
//! not AWS's, says so.

/// CodePipeline API Reference, StageDeclaration / StageContext `name`: 1–100 characters of
/// `[A-Za-z0-9.@\-_]+`. A build stage's name is used as-is.
pub const STAGE_NAME_MAX: usize = 100;
/// Same document, ActionDeclaration `name`: 1–100 characters. Build actions take the stage name.
pub const ACTION_NAME_MAX: usize = 100;
/// An environment becomes the stage `deploy-<environment>`, so its name leaves room for the
/// prefix within [`STAGE_NAME_MAX`].
pub const ENVIRONMENT_NAME_MAX: usize = STAGE_NAME_MAX - crate::render::DEPLOY_STAGE_PREFIX.len();
/// A pipeline group only ever appears inside a pipeline name, which `naming::fit` shortens with
/// a hash; 100 keeps it readable in the console (ours).
pub const GROUP_NAME_MAX: usize = 100;

/// CodePipeline quotas ("Quotas in AWS CodePipeline"): stages per pipeline.
pub const MAX_STAGES_PER_PIPELINE: usize = 50;
/// Same page: actions per stage.
pub const MAX_ACTIONS_PER_STAGE: usize = 50;
/// Same page: action configuration values are at most 1000 characters.
pub const MAX_CONFIG_VALUE: usize = 1000;
/// CodePipeline API Reference, GitBranchFilterCriteria / GitFilePathFilterCriteria: `includes`
/// and `excludes` hold at most 8 patterns of 1–255 characters.
pub const MAX_PATTERNS: usize = 8;
pub const MAX_PATTERN_LEN: usize = 255;

/// CodePipeline API Reference, PipelineDeclaration `variables`: at most 50 per pipeline;
/// PipelineVariableDeclaration `defaultValue`: 1–1000 characters; `description`: 0–200.
pub const MAX_PIPELINE_VARIABLES: usize = 50;
pub const MAX_VARIABLE_VALUE: usize = 1000;

/// Tags per resource: CodeBuild CreateProject `tags` and CodePipeline CreatePipeline `tags`
/// take at most 50.
pub const MAX_TAGS: usize = 50;
/// CodeBuild API Reference, Tag: keys 1–127 characters, values 0–255, both of
/// `[\p{L}\p{Z}\p{N}_.:/=@+\-]`. CodePipeline's Tag allows 128 and 256; every tag goes to both
/// services, so the stricter CodeBuild limits apply. Counted in characters, not bytes.
pub const TAG_KEY_MAX: usize = 127;
pub const TAG_VALUE_MAX: usize = 255;
pub const TAG_CHARACTERS: &str = r"^[\p{L}\p{Z}\p{N}_.:/=@+\-]*$";

/// CodePipeline API Reference, ApprovalConfiguration `CustomData` (action configuration):
/// at most 1000 characters, like every configuration value.
pub const MAX_APPROVAL_TEXT: usize = MAX_CONFIG_VALUE;
