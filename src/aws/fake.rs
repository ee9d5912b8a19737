//! An in-memory [`AwsApi`] for unit tests of the controller glue: it keeps pipelines and
//! projects, records every call, and fails the calls a test names (an operation's nth call, or
//! all of them). For what no server shows easily; the bed's moto stays the proof of record.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use super::executions::{ActionRun, Execution, ExecutionStatus, StageState};

use super::{
    AwsApi, AwsError, ObservedPipeline, ObservedProject, PipelineSummary, Retry, StartRun,
};
use crate::render::model::{PipelineDeclaration, Project, Tag};

#[derive(Default)]
pub struct FakeAws {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    pipelines: BTreeMap<String, ObservedPipeline>,
    projects: BTreeMap<String, ObservedProject>,
    calls: Vec<(&'static str, String)>,
    /// (operation, 1-based call number or None for every call) → error.
    failures: Vec<(&'static str, Option<usize>, AwsError)>,
    delays: BTreeMap<&'static str, Duration>,
    executions: Vec<StartRun>,
    /// What the read calls report for an execution id, set by the test.
    reports: BTreeMap<String, (Execution, Vec<ActionRun>)>,
    stage_states: BTreeMap<String, Vec<StageState>>,
}

impl FakeAws {
    /// Fails the `nth` call (1-based) of `operation`, or every call with `None`.
    pub fn fail(&self, operation: &'static str, nth: Option<usize>, code: &str, retry: Retry) {
        let error = AwsError {
            operation,
            resource: None,
            code: code.to_string(),
            message: "injected by the test".into(),
            retry,
        };
        self.lock().failures.push((operation, nth, error));
    }

    pub fn clear_failures(&self) {
        self.lock().failures.clear();
    }

    /// Makes every call of `operation` take `delay` first.
    pub fn delay(&self, operation: &'static str, delay: Duration) {
        self.lock().delays.insert(operation, delay);
    }

    /// `(operation, resource)` of every call so far, failed ones included.
    pub fn calls(&self) -> Vec<(&'static str, String)> {
        self.lock().calls.clone()
    }

    pub fn count(&self, operation: &str) -> usize {
        self.lock()
            .calls
            .iter()
            .filter(|(o, _)| *o == operation)
            .count()
    }

    pub fn pipeline_names(&self) -> Vec<String> {
        self.lock().pipelines.keys().cloned().collect()
    }

    pub fn project_names(&self) -> Vec<String> {
        self.lock().projects.keys().cloned().collect()
    }

    /// Changes a stored pipeline behind the controller's back.
    pub fn tamper_pipeline(&self, name: &str, change: impl FnOnce(&mut ObservedPipeline)) {
        if let Some(p) = self.lock().pipelines.get_mut(name) {
            change(p);
        }
    }

    pub fn executions(&self) -> Vec<StartRun> {
        self.lock().executions.clone()
    }

    /// What GetPipelineExecution and ListActionExecutions report for `execution.id`.
    pub fn report(&self, execution: Execution, actions: Vec<ActionRun>) {
        self.lock()
            .reports
            .insert(execution.id.clone(), (execution, actions));
    }

    /// What GetPipelineState reports for `pipeline`.
    pub fn set_stage_states(&self, pipeline: &str, states: Vec<StageState>) {
        self.lock()
            .stage_states
            .insert(pipeline.to_string(), states);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records the call and returns the injected failure for it, if any.
    async fn call(&self, operation: &'static str, resource: &str) -> Result<(), AwsError> {
        let (delay, failure) = {
            let mut state = self.lock();
            state.calls.push((operation, resource.to_string()));
            let n = state.calls.iter().filter(|(o, _)| *o == operation).count();
            let failure = state
                .failures
                .iter()
                .find(|(op, nth, _)| *op == operation && nth.is_none_or(|k| k == n))
                .map(|(_, _, e)| e.clone().on(resource));
            (state.delays.get(operation).copied(), failure)
        };
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        failure.map_or(Ok(()), Err)
    }
}

/// A create of a name that exists: refused with the code AWS documents for it (CreatePipeline
/// and CreateProject errors in the API references), which the client classes as retryable.
fn name_taken(operation: &'static str, code: &str, name: &str) -> AwsError {
    AwsError {
        operation,
        resource: Some(name.to_string()),
        code: code.to_string(),
        message: "already exists".into(),
        retry: super::error::classify(code, Some(400)),
    }
}

fn arn(name: &str) -> String {
    format!("arn:aws:codepipeline:us-east-1:123456789012:{name}")
}

#[async_trait]
impl AwsApi for FakeAws {
    async fn get_pipeline(&self, name: &str) -> Result<Option<ObservedPipeline>, AwsError> {
        self.call("GetPipeline", name).await?;
        if !self.lock().pipelines.contains_key(name) {
            return Ok(None);
        }
        self.call("ListTagsForResource", name).await?;
        Ok(self.lock().pipelines.get(name).cloned())
    }

    async fn get_pipeline_declaration(
        &self,
        name: &str,
    ) -> Result<Option<ObservedPipeline>, AwsError> {
        self.call("GetPipeline", name).await?;
        Ok(self
            .lock()
            .pipelines
            .get(name)
            .cloned()
            .map(|p| ObservedPipeline { tags: None, ..p }))
    }

    async fn create_pipeline(
        &self,
        pipeline: &PipelineDeclaration,
        tags: &[Tag],
    ) -> Result<String, AwsError> {
        self.call("CreatePipeline", &pipeline.name).await?;
        if self.lock().pipelines.contains_key(&pipeline.name) {
            return Err(name_taken(
                "CreatePipeline",
                "PipelineNameInUseException",
                &pipeline.name,
            ));
        }
        let mut declaration = pipeline.clone();
        declaration.version = Some(1);
        let mut tags = tags.to_vec();
        tags.sort();
        let observed = ObservedPipeline {
            declaration,
            unmanaged: Vec::new(),
            arn: arn(&pipeline.name),
            tags: Some(tags),
        };
        self.lock()
            .pipelines
            .insert(pipeline.name.clone(), observed);
        Ok(arn(&pipeline.name))
    }

    async fn update_pipeline(&self, pipeline: &PipelineDeclaration) -> Result<i32, AwsError> {
        self.call("UpdatePipeline", &pipeline.name).await?;
        let mut state = self.lock();
        let Some(stored) = state.pipelines.get_mut(&pipeline.name) else {
            return Err(AwsError {
                operation: "UpdatePipeline",
                resource: Some(pipeline.name.clone()),
                code: "PipelineNotFoundException".into(),
                message: String::new(),
                retry: Retry::Terminal,
            });
        };
        let version = stored.declaration.version.unwrap_or(0) + 1;
        stored.declaration = pipeline.clone();
        stored.declaration.version = Some(version);
        stored.unmanaged.clear();
        Ok(version)
    }

    async fn delete_pipeline(&self, name: &str) -> Result<(), AwsError> {
        self.call("DeletePipeline", name).await?;
        self.lock().pipelines.remove(name);
        Ok(())
    }

    async fn tag_pipeline(&self, arn: &str, tags: &[Tag]) -> Result<(), AwsError> {
        self.call("TagResource", arn).await?;
        let mut state = self.lock();
        if let Some(p) = state.pipelines.values_mut().find(|p| p.arn == arn) {
            let stored = p.tags.get_or_insert_with(Vec::new);
            for tag in tags {
                stored.retain(|t| t.key != tag.key);
                stored.push(tag.clone());
            }
            stored.sort();
        }
        Ok(())
    }

    async fn untag_pipeline(&self, arn: &str, keys: &[String]) -> Result<(), AwsError> {
        self.call("UntagResource", arn).await?;
        let mut state = self.lock();
        if let Some(p) = state.pipelines.values_mut().find(|p| p.arn == arn) {
            p.tags
                .get_or_insert_with(Vec::new)
                .retain(|t| !keys.contains(&t.key));
        }
        Ok(())
    }

    async fn list_pipelines(&self) -> Result<Vec<PipelineSummary>, AwsError> {
        self.call("ListPipelines", "").await?;
        Ok(self
            .pipeline_names()
            .into_iter()
            .map(|name| PipelineSummary { name })
            .collect())
    }

    async fn pipeline_tags(&self, name: &str) -> Result<Option<(String, Vec<Tag>)>, AwsError> {
        self.call("ListTagsForResource", name).await?;
        Ok(self
            .lock()
            .pipelines
            .get(name)
            .map(|p| (p.arn.clone(), p.tags.clone().unwrap_or_default())))
    }

    async fn get_projects(&self, names: &[String]) -> Result<Vec<ObservedProject>, AwsError> {
        self.call("BatchGetProjects", &names.join(",")).await?;
        let state = self.lock();
        Ok(names
            .iter()
            .filter_map(|n| state.projects.get(n).cloned())
            .collect())
    }

    async fn create_project(&self, project: &Project) -> Result<(), AwsError> {
        self.call("CreateProject", &project.name).await?;
        if self.lock().projects.contains_key(&project.name) {
            return Err(name_taken(
                "CreateProject",
                "ResourceAlreadyExistsException",
                &project.name,
            ));
        }
        let mut project = project.clone();
        project.tags.sort();
        self.lock().projects.insert(
            project.name.clone(),
            ObservedProject {
                project,
                unmanaged: Vec::new(),
            },
        );
        Ok(())
    }

    async fn update_project(&self, project: &Project) -> Result<(), AwsError> {
        self.call("UpdateProject", &project.name).await?;
        let mut project = project.clone();
        project.tags.sort();
        self.lock().projects.insert(
            project.name.clone(),
            ObservedProject {
                project,
                unmanaged: Vec::new(),
            },
        );
        Ok(())
    }

    async fn delete_project(&self, name: &str) -> Result<(), AwsError> {
        self.call("DeleteProject", name).await?;
        self.lock().projects.remove(name);
        Ok(())
    }

    async fn list_projects(&self) -> Result<Vec<String>, AwsError> {
        self.call("ListProjects", "").await?;
        Ok(self.project_names())
    }

    async fn start_execution(&self, run: &StartRun) -> Result<String, AwsError> {
        self.call("StartPipelineExecution", &run.pipeline).await?;
        let mut state = self.lock();
        let index = match state
            .executions
            .iter()
            .position(|e| e.client_request_token == run.client_request_token)
        {
            Some(i) => i,
            None => {
                state.executions.push(run.clone());
                state.executions.len() - 1
            }
        };
        Ok(format!("execution-{index}"))
    }

    async fn get_execution(
        &self,
        pipeline: &str,
        execution: &str,
    ) -> Result<Option<Execution>, AwsError> {
        self.call("GetPipelineExecution", pipeline).await?;
        let state = self.lock();
        if let Some((e, _)) = state.reports.get(execution) {
            return Ok(Some(e.clone()));
        }
        let started = state
            .executions
            .iter()
            .enumerate()
            .any(|(i, _)| format!("execution-{i}") == execution);
        Ok(started.then(|| Execution {
            id: execution.to_string(),
            status: ExecutionStatus::InProgress,
            ..Execution::default()
        }))
    }

    async fn action_executions(
        &self,
        pipeline: &str,
        execution: &str,
    ) -> Result<Vec<ActionRun>, AwsError> {
        self.call("ListActionExecutions", pipeline).await?;
        Ok(self
            .lock()
            .reports
            .get(execution)
            .map(|(_, a)| a.clone())
            .unwrap_or_default())
    }

    async fn list_executions(
        &self,
        pipeline: &str,
        stop_at: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Execution>, AwsError> {
        self.call("ListPipelineExecutions", pipeline).await?;
        let state = self.lock();
        let mut all: Vec<Execution> = state.reports.values().map(|(e, _)| e.clone()).collect();
        all.sort_by(|a, b| b.start_time.cmp(&a.start_time));
        Ok(all
            .into_iter()
            .take_while(|e| Some(e.id.as_str()) != stop_at)
            .take(limit)
            .collect())
    }

    async fn pipeline_state(&self, pipeline: &str) -> Result<Vec<StageState>, AwsError> {
        self.call("GetPipelineState", pipeline).await?;
        Ok(self
            .lock()
            .stage_states
            .get(pipeline)
            .cloned()
            .unwrap_or_default())
    }
}
