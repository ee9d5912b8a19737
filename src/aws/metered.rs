//! An [`AwsApi`] decorator that counts every call by operation and outcome.

use std::sync::Arc;

use async_trait::async_trait;

use super::{AwsApi, AwsError, ObservedPipeline, ObservedProject, PipelineSummary, StartRun};
use crate::metrics::Metrics;
use crate::render::model::{PipelineDeclaration, Project, Tag};

pub struct Metered<A> {
    inner: A,
    metrics: Arc<Metrics>,
}

impl<A> Metered<A> {
    pub fn new(inner: A, metrics: Arc<Metrics>) -> Self {
        Self { inner, metrics }
    }

    fn record<T>(&self, operation: &str, result: &Result<T, AwsError>) {
        let outcome = match result {
            Ok(_) => "success",
            Err(e) if e.is_retryable() => "retryable_error",
            Err(_) => "terminal_error",
        };
        self.metrics.aws_request(operation, outcome);
    }
}

/// Forwards a call and records it under the operation name.
macro_rules! metered {
    ($self:ident, $op:literal, $call:expr) => {{
        let result = $call.await;
        $self.record($op, &result);
        result
    }};
}

#[async_trait]
impl<A: AwsApi> AwsApi for Metered<A> {
    async fn get_pipeline(&self, name: &str) -> Result<Option<ObservedPipeline>, AwsError> {
        metered!(self, "GetPipeline", self.inner.get_pipeline(name))
    }
    async fn create_pipeline(
        &self,
        pipeline: &PipelineDeclaration,
        tags: &[Tag],
    ) -> Result<String, AwsError> {
        metered!(
            self,
            "CreatePipeline",
            self.inner.create_pipeline(pipeline, tags)
        )
    }
    async fn update_pipeline(&self, pipeline: &PipelineDeclaration) -> Result<i32, AwsError> {
        metered!(self, "UpdatePipeline", self.inner.update_pipeline(pipeline))
    }
    async fn delete_pipeline(&self, name: &str) -> Result<(), AwsError> {
        metered!(self, "DeletePipeline", self.inner.delete_pipeline(name))
    }
    async fn tag_pipeline(&self, arn: &str, tags: &[Tag]) -> Result<(), AwsError> {
        metered!(self, "TagResource", self.inner.tag_pipeline(arn, tags))
    }
    async fn untag_pipeline(&self, arn: &str, keys: &[String]) -> Result<(), AwsError> {
        metered!(self, "UntagResource", self.inner.untag_pipeline(arn, keys))
    }
    async fn list_pipelines(&self) -> Result<Vec<PipelineSummary>, AwsError> {
        metered!(self, "ListPipelines", self.inner.list_pipelines())
    }
    async fn pipeline_tags(&self, name: &str) -> Result<Option<(String, Vec<Tag>)>, AwsError> {
        metered!(self, "ListTagsForResource", self.inner.pipeline_tags(name))
    }
    async fn get_projects(&self, names: &[String]) -> Result<Vec<ObservedProject>, AwsError> {
        metered!(self, "BatchGetProjects", self.inner.get_projects(names))
    }
    async fn create_project(&self, project: &Project) -> Result<(), AwsError> {
        metered!(self, "CreateProject", self.inner.create_project(project))
    }
    async fn update_project(&self, project: &Project) -> Result<(), AwsError> {
        metered!(self, "UpdateProject", self.inner.update_project(project))
    }
    async fn delete_project(&self, name: &str) -> Result<(), AwsError> {
        metered!(self, "DeleteProject", self.inner.delete_project(name))
    }
    async fn list_projects(&self) -> Result<Vec<String>, AwsError> {
        metered!(self, "ListProjects", self.inner.list_projects())
    }
    async fn start_execution(&self, run: &StartRun) -> Result<String, AwsError> {
        metered!(
            self,
            "StartPipelineExecution",
            self.inner.start_execution(run)
        )
    }
}
