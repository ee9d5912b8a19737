//! The AWS operations the reconciler needs, behind a small trait so the reconcile steps can be
//! read (and tested) apart from the SDKs. The one production implementation is
//! [`super::sdk::SdkAws`]; tests run it against a real AWS-protocol server.

use async_trait::async_trait;

use super::error::AwsError;
use super::executions::{ActionRun, Execution, StageState};
use crate::render::model::{PipelineDeclaration, Project, Tag};

/// A pipeline as AWS holds it, normalized into the render model.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedPipeline {
    /// `version` is set; compare with it cleared.
    pub declaration: PipelineDeclaration,
    /// Fields set on the pipeline that the controller never sets (drift by definition).
    pub unmanaged: Vec<String>,
    pub arn: String,
    /// Sorted by key; `None` when they were not read (GetPipeline alone returns none).
    pub tags: Option<Vec<Tag>>,
}

/// A project as AWS holds it, normalized into the render model (tags sorted by key).
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedProject {
    pub project: Project,
    /// Settings someone added that the controller's UpdateProject removes (drift).
    pub unmanaged: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PipelineSummary {
    pub name: String,
}

/// Where to start a run from.
#[derive(Debug, Clone, PartialEq)]
pub struct StartRun {
    pub pipeline: String,
    /// Source action to override, with a `COMMIT_ID` revision.
    pub source_action: String,
    pub commit: Option<String>,
    /// Pipeline-level variables to set for this execution.
    pub variables: Vec<(String, String)>,
    /// Idempotency token: StartPipelineExecution's `clientRequestToken` is an idempotency
    /// token in the service model, so the same token never starts a second execution.
    pub client_request_token: String,
}

#[async_trait]
pub trait AwsApi: Send + Sync {
    /// GetPipeline plus ListTagsForResource. `Ok(None)` when the pipeline does not exist.
    async fn get_pipeline(&self, name: &str) -> Result<Option<ObservedPipeline>, AwsError>;
    /// GetPipeline alone: the declaration and ARN, `tags: None`. One request.
    async fn get_pipeline_declaration(
        &self,
        name: &str,
    ) -> Result<Option<ObservedPipeline>, AwsError>;
    /// CreatePipeline with tags. Returns the ARN.
    async fn create_pipeline(
        &self,
        pipeline: &PipelineDeclaration,
        tags: &[Tag],
    ) -> Result<String, AwsError>;
    /// UpdatePipeline with the full declaration (no metadata). Returns the new version.
    async fn update_pipeline(&self, pipeline: &PipelineDeclaration) -> Result<i32, AwsError>;
    /// DeletePipeline. Succeeds when the pipeline is already gone.
    async fn delete_pipeline(&self, name: &str) -> Result<(), AwsError>;
    async fn tag_pipeline(&self, arn: &str, tags: &[Tag]) -> Result<(), AwsError>;
    async fn untag_pipeline(&self, arn: &str, keys: &[String]) -> Result<(), AwsError>;
    /// ListPipelines, all pages.
    async fn list_pipelines(&self) -> Result<Vec<PipelineSummary>, AwsError>;
    /// Tags of a pipeline by name; `Ok(None)` when it does not exist.
    async fn pipeline_tags(&self, name: &str) -> Result<Option<(String, Vec<Tag>)>, AwsError>;

    /// BatchGetProjects in chunks of 100. Missing names are simply absent from the result.
    async fn get_projects(&self, names: &[String]) -> Result<Vec<ObservedProject>, AwsError>;
    async fn create_project(&self, project: &Project) -> Result<(), AwsError>;
    /// UpdateProject naming every managed field, tags included.
    async fn update_project(&self, project: &Project) -> Result<(), AwsError>;
    /// DeleteProject. Succeeds when the project is already gone.
    async fn delete_project(&self, name: &str) -> Result<(), AwsError>;
    /// ListProjects, all pages.
    async fn list_projects(&self) -> Result<Vec<String>, AwsError>;

    /// StartPipelineExecution. Returns the execution id.
    async fn start_execution(&self, run: &StartRun) -> Result<String, AwsError>;
    /// GetPipelineExecution; `Ok(None)` when the pipeline or execution does not exist.
    async fn get_execution(
        &self,
        pipeline: &str,
        execution: &str,
    ) -> Result<Option<Execution>, AwsError>;
    /// ListActionExecutions filtered by one execution, all pages.
    async fn action_executions(
        &self,
        pipeline: &str,
        execution: &str,
    ) -> Result<Vec<ActionRun>, AwsError>;
    /// ListPipelineExecutions, newest first: at most `limit`, stopping before `stop_at` (an
    /// execution already seen), so a poll reads only what is new.
    async fn list_executions(
        &self,
        pipeline: &str,
        stop_at: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Execution>, AwsError>;
    /// GetPipelineState: each stage's latest execution.
    async fn pipeline_state(&self, pipeline: &str) -> Result<Vec<StageState>, AwsError>;
}
