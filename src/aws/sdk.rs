//! The production [`AwsApi`]: the AWS SDK clients for CodePipeline and CodeBuild.
//!
//! Every call logs at `debug` with the operation and the pipeline or project it concerns (never
//! configuration contents), and every failure becomes a classified [`AwsError`].

use std::error::Error as StdError;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_codebuild as cb;
use aws_sdk_codepipeline as cp;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_smithy_types::error::operation::BuildError;
use cp::config::http::HttpResponse;
use cp::error::SdkError;
use tracing::debug;

use super::api::{AwsApi, ObservedPipeline, ObservedProject, PipelineSummary, StartRun};
use super::convert;
use super::error::{AwsError, Retry, classify};
use super::executions::{self, ActionRun, Execution, StageState};
use super::limiter::{Lane, Limited, TokenBucket};
use super::metering::MeterRequests;
use crate::metrics::Metrics;
use crate::render::model::{PipelineDeclaration, Project, Tag};
use aws_smithy_runtime_api::client::stalled_stream_protection::StalledStreamProtectionConfig;

/// BatchGetProjects accepts at most 100 names per call (CodeBuild API Reference).
const BATCH_GET_PROJECTS_MAX: usize = 100;

/// Error codes meaning "the resource does not exist".
const PIPELINE_NOT_FOUND: &str = "PipelineNotFoundException";
const RESOURCE_NOT_FOUND: &str = "ResourceNotFoundException";
const EXECUTION_NOT_FOUND: &str = "PipelineExecutionNotFoundException";

/// [`AwsApi`] over the AWS SDK clients.
#[derive(Debug, Clone)]
pub struct SdkAws {
    codepipeline: cp::Client,
    codebuild: cb::Client,
}

/// One client per lane of the rate limiter, sharing its buckets (see [`super::limiter`]).
pub struct Lanes {
    /// For reconciles of a spec AWS does not have yet, and run starts.
    pub edit: SdkAws,
    /// For other reconciles, following runs, and cleanup.
    pub reconcile: SdkAws,
    /// For the execution tracker's polls.
    pub background: SdkAws,
}

impl SdkAws {
    /// Clients for CodePipeline and CodeBuild sharing one SDK configuration.
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self {
            codepipeline: cp::Client::new(config),
            codebuild: cb::Client::new(config),
        }
    }

    /// Like [`SdkAws::new`], counting every request the SDK sends in `metrics` and sending at
    /// most `max_tps` a second to each service (see [`super::limiter`]): two clients, one per
    /// lane of the same buckets.
    pub fn metered(config: &aws_config::SdkConfig, metrics: Arc<Metrics>, max_tps: u32) -> Lanes {
        let buckets = [(); 2].map(|_| Arc::new(TokenBucket::new(max_tps, max_tps)));
        let http = default_https_client();
        // The limiter waits inside the HTTP client, under the SDK's stalled-stream protection.
        // In the N=100 benchmark, 60 background polls that waited long for their slot failed
        // with its upload check ("minimum throughput ... 0 B/s", DispatchFailure); with upload
        // protection off, none did (one run each). The bodies sent are small JSON documents, so
        // the upload check has nothing to protect here; a stalled response is still caught.
        let stall = StalledStreamProtectionConfig::enabled()
            .upload_enabled(false)
            .build();
        let client = |lane: Lane| {
            let meter = MeterRequests::new(metrics.clone());
            let limited = |bucket: &Arc<TokenBucket>, service: &'static str| {
                Limited::new(
                    http.clone(),
                    bucket.clone(),
                    lane,
                    service,
                    Some(metrics.clone()),
                )
            };
            let codepipeline = cp::config::Builder::from(config)
                .interceptor(meter.clone())
                .stalled_stream_protection(stall.clone())
                .http_client(limited(&buckets[0], "codepipeline"))
                .build();
            let codebuild = cb::config::Builder::from(config)
                .interceptor(meter)
                .stalled_stream_protection(stall.clone())
                .http_client(limited(&buckets[1], "codebuild"))
                .build();
            Self {
                codepipeline: cp::Client::from_conf(codepipeline),
                codebuild: cb::Client::from_conf(codebuild),
            }
        };
        Lanes {
            edit: client(Lane::Edit),
            reconcile: client(Lane::Reconcile),
            background: client(Lane::Background),
        }
    }

    /// The standard AWS configuration chain: environment (including `AWS_ENDPOINT_URL`),
    /// shared config and credentials files, SSO, web identity, container and instance metadata.
    /// Retries use the SDK's standard mode (3 attempts, exponential backoff with jitter). Its
    /// adaptive mode, which also slows every later request after throttling, was measured to
    /// make convergence through transient throttling six times slower (8 s against 50 s in the
    /// throttling test), on top of the rate limit the controller already keeps: not used.
    pub async fn from_env(metrics: Arc<Metrics>, max_tps: u32) -> Lanes {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .retry_config(aws_config::retry::RetryConfig::standard())
            .load()
            .await;
        Self::metered(&config, metrics, max_tps)
    }

    /// The region the SDK resolved, if any.
    pub fn region(&self) -> Option<&str> {
        self.codepipeline.config().region().map(|r| r.as_ref())
    }

    /// GetPipeline: the declaration and its ARN, `None` when the pipeline does not exist.
    async fn fetch_pipeline(&self, name: &str) -> Result<Option<FetchedPipeline>, AwsError> {
        const OP: &str = "GetPipeline";
        debug!(operation = OP, pipeline = name, "calling AWS");
        let out = match self.codepipeline.get_pipeline().name(name).send().await {
            Ok(out) => out,
            Err(e) => {
                let e = from_sdk_error(OP, e).on(name);
                if e.code == PIPELINE_NOT_FOUND {
                    debug!(operation = OP, pipeline = name, "pipeline not found");
                    return Ok(None);
                }
                return Err(e);
            }
        };
        let Some(declaration) = out.pipeline else {
            return Err(invalid_response(OP, "response has no pipeline").on(name));
        };
        let (arn, arn_from_metadata) = match out.metadata.and_then(|m| m.pipeline_arn) {
            Some(arn) => (arn, true),
            None => {
                let arn = derive_pipeline_arn(self.region(), &declaration.role_arn, name)
                    .ok_or_else(|| invalid_response(OP, "response has no pipeline ARN").on(name))?;
                debug!(operation = OP, pipeline = name, arn = %arn, "no pipelineArn in metadata; using the derived ARN");
                (arn, false)
            }
        };
        Ok(Some(FetchedPipeline {
            declaration,
            arn,
            arn_from_metadata,
        }))
    }

    /// ListTagsForResource, all pages, sorted. `None` when the resource does not exist.
    async fn list_pipeline_tags(
        &self,
        name: &str,
        arn: &str,
    ) -> Result<Option<Vec<Tag>>, AwsError> {
        const OP: &str = "ListTagsForResource";
        debug!(operation = OP, pipeline = name, "calling AWS");
        // The SDK's paginators follow nextToken and stop if a server repeats one.
        let pages = self
            .codepipeline
            .list_tags_for_resource()
            .resource_arn(arn)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await;
        match pages {
            Ok(sdk_tags) => Ok(Some(convert::tags_from_pipeline_sdk(&sdk_tags))),
            Err(e) => {
                let e = from_sdk_error(OP, e).on(name);
                if is_not_found(&e) { Ok(None) } else { Err(e) }
            }
        }
    }
}

struct FetchedPipeline {
    declaration: cp::types::PipelineDeclaration,
    arn: String,
    /// False when the ARN was derived because GetPipeline returned none.
    arn_from_metadata: bool,
}

#[async_trait]
impl AwsApi for SdkAws {
    async fn get_pipeline(&self, name: &str) -> Result<Option<ObservedPipeline>, AwsError> {
        let Some(fetched) = self.fetch_pipeline(name).await? else {
            return Ok(None);
        };
        let tags = match self.list_pipeline_tags(name, &fetched.arn).await? {
            Some(tags) => tags,
            // Deleted between the two calls. With a derived ARN, "not found" may instead mean
            // the derivation was wrong, so that is reported rather than guessed away.
            None if fetched.arn_from_metadata => return Ok(None),
            None => return Err(derived_arn_not_found(&fetched.arn)),
        };
        let (declaration, unmanaged) = convert::pipeline_from_sdk(&fetched.declaration);
        Ok(Some(ObservedPipeline {
            declaration,
            unmanaged,
            arn: fetched.arn,
            tags: Some(tags),
        }))
    }

    async fn get_pipeline_declaration(
        &self,
        name: &str,
    ) -> Result<Option<ObservedPipeline>, AwsError> {
        let Some(fetched) = self.fetch_pipeline(name).await? else {
            return Ok(None);
        };
        let (declaration, unmanaged) = convert::pipeline_from_sdk(&fetched.declaration);
        Ok(Some(ObservedPipeline {
            declaration,
            unmanaged,
            arn: fetched.arn,
            tags: None,
        }))
    }

    async fn create_pipeline(
        &self,
        pipeline: &PipelineDeclaration,
        tags: &[Tag],
    ) -> Result<String, AwsError> {
        const OP: &str = "CreatePipeline";
        let mut declaration = convert::pipeline_to_sdk(pipeline)
            .map_err(|e| from_build_error(OP, e).on(&pipeline.name))?;
        // A new pipeline always starts at version 1; AWS assigns it.
        declaration.version = None;
        let sdk_tags = convert::tags_to_pipeline_sdk(tags)
            .map_err(|e| from_build_error(OP, e).on(&pipeline.name))?;
        debug!(operation = OP, pipeline = %pipeline.name, tags = tags.len(), "calling AWS");
        self.codepipeline
            .create_pipeline()
            .pipeline(declaration)
            .set_tags((!sdk_tags.is_empty()).then_some(sdk_tags))
            .send()
            .await
            .map_err(|e| from_sdk_error(OP, e).on(&pipeline.name))?;
        // CreatePipeline returns no ARN. Its format is documented (Service Authorization
        // Reference, CodePipeline resource type `pipeline`), so derive it instead of a GetPipeline
        // per create (a third of a cold start's CodePipeline requests). It only feeds
        // status.pipelines[].arn: tags are always changed through the ARN a GetPipeline
        // returned, and the next reconcile's read replaces a derived one that differs.
        if let Some(arn) = derive_pipeline_arn(self.region(), &pipeline.role_arn, &pipeline.name) {
            return Ok(arn);
        }
        match self.fetch_pipeline(&pipeline.name).await? {
            Some(f) => Ok(f.arn),
            None => Err(invalid_response(
                "GetPipeline",
                "pipeline not found right after CreatePipeline",
            )
            .on(&pipeline.name)),
        }
    }

    async fn update_pipeline(&self, pipeline: &PipelineDeclaration) -> Result<i32, AwsError> {
        const OP: &str = "UpdatePipeline";
        let declaration = convert::pipeline_to_sdk(pipeline)
            .map_err(|e| from_build_error(OP, e).on(&pipeline.name))?;
        debug!(operation = OP, pipeline = %pipeline.name, "calling AWS");
        let out = self
            .codepipeline
            .update_pipeline()
            .pipeline(declaration)
            .send()
            .await
            .map_err(|e| from_sdk_error(OP, e).on(&pipeline.name))?;
        let version = out.pipeline.and_then(|p| p.version).ok_or_else(|| {
            invalid_response(OP, "response has no pipeline version").on(&pipeline.name)
        })?;
        debug!(operation = OP, pipeline = %pipeline.name, version, "pipeline updated");
        Ok(version)
    }

    async fn delete_pipeline(&self, name: &str) -> Result<(), AwsError> {
        const OP: &str = "DeletePipeline";
        debug!(operation = OP, pipeline = name, "calling AWS");
        match self.codepipeline.delete_pipeline().name(name).send().await {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = from_sdk_error(OP, e).on(name);
                if is_not_found(&e) {
                    debug!(operation = OP, pipeline = name, "pipeline already gone");
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }

    async fn tag_pipeline(&self, arn: &str, tags: &[Tag]) -> Result<(), AwsError> {
        const OP: &str = "TagResource";
        if tags.is_empty() {
            return Ok(());
        }
        let sdk_tags =
            convert::tags_to_pipeline_sdk(tags).map_err(|e| from_build_error(OP, e).on(arn))?;
        debug!(
            operation = OP,
            pipeline = arn,
            tags = tags.len(),
            "calling AWS"
        );
        self.codepipeline
            .tag_resource()
            .resource_arn(arn)
            .set_tags(Some(sdk_tags))
            .send()
            .await
            .map_err(|e| from_sdk_error(OP, e).on(arn))?;
        Ok(())
    }

    async fn untag_pipeline(&self, arn: &str, keys: &[String]) -> Result<(), AwsError> {
        const OP: &str = "UntagResource";
        if keys.is_empty() {
            return Ok(());
        }
        debug!(
            operation = OP,
            pipeline = arn,
            keys = keys.len(),
            "calling AWS"
        );
        self.codepipeline
            .untag_resource()
            .resource_arn(arn)
            .set_tag_keys(Some(keys.to_vec()))
            .send()
            .await
            .map_err(|e| from_sdk_error(OP, e).on(arn))?;
        Ok(())
    }

    async fn list_pipelines(&self) -> Result<Vec<PipelineSummary>, AwsError> {
        const OP: &str = "ListPipelines";
        debug!(operation = OP, "calling AWS");
        // Names only, page by page: an account's summaries (timestamps, types, versions) are
        // never held all at once.
        let mut pipelines = Vec::new();
        let mut pages = self.codepipeline.list_pipelines().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| from_sdk_error(OP, e))?;
            pipelines.extend(
                page.pipelines
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|p| p.name.map(|name| PipelineSummary { name })),
            );
        }
        debug!(operation = OP, count = pipelines.len(), "listed pipelines");
        Ok(pipelines)
    }

    async fn pipeline_tags(&self, name: &str) -> Result<Option<(String, Vec<Tag>)>, AwsError> {
        let Some(fetched) = self.fetch_pipeline(name).await? else {
            return Ok(None);
        };
        match self.list_pipeline_tags(name, &fetched.arn).await? {
            Some(tags) => Ok(Some((fetched.arn, tags))),
            None if fetched.arn_from_metadata => Ok(None),
            None => Err(derived_arn_not_found(&fetched.arn)),
        }
    }

    async fn get_projects(&self, names: &[String]) -> Result<Vec<ObservedProject>, AwsError> {
        const OP: &str = "BatchGetProjects";
        let mut observed = Vec::with_capacity(names.len());
        for chunk in names.chunks(BATCH_GET_PROJECTS_MAX) {
            debug!(operation = OP, projects = ?chunk, "calling AWS");
            let out = self
                .codebuild
                .batch_get_projects()
                .set_names(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| from_sdk_error(OP, e).on(chunk.join(",")))?;
            if !out.projects_not_found().is_empty() {
                debug!(operation = OP, not_found = ?out.projects_not_found(), "projects not found");
            }
            observed.extend(out.projects().iter().map(|p| ObservedProject {
                project: convert::project_from_sdk(p),
                unmanaged: convert::project_unmanaged(p),
            }));
        }
        Ok(observed)
    }

    async fn create_project(&self, project: &Project) -> Result<(), AwsError> {
        const OP: &str = "CreateProject";
        let input = convert::create_project_input(project)
            .map_err(|e| from_build_error(OP, e).on(&project.name))?;
        debug!(operation = OP, project = %project.name, "calling AWS");
        input
            .send_with(&self.codebuild)
            .await
            .map_err(|e| from_sdk_error(OP, e).on(&project.name))?;
        Ok(())
    }

    async fn update_project(&self, project: &Project) -> Result<(), AwsError> {
        const OP: &str = "UpdateProject";
        let input = convert::update_project_input(project)
            .map_err(|e| from_build_error(OP, e).on(&project.name))?;
        debug!(operation = OP, project = %project.name, "calling AWS");
        input
            .send_with(&self.codebuild)
            .await
            .map_err(|e| from_sdk_error(OP, e).on(&project.name))?;
        Ok(())
    }

    async fn delete_project(&self, name: &str) -> Result<(), AwsError> {
        const OP: &str = "DeleteProject";
        debug!(operation = OP, project = name, "calling AWS");
        match self.codebuild.delete_project().name(name).send().await {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = from_sdk_error(OP, e).on(name);
                if is_not_found(&e) {
                    debug!(operation = OP, project = name, "project already gone");
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }

    async fn list_projects(&self) -> Result<Vec<String>, AwsError> {
        const OP: &str = "ListProjects";
        debug!(operation = OP, "calling AWS");
        let projects: Vec<String> = self
            .codebuild
            .list_projects()
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| from_sdk_error(OP, e))?;
        debug!(operation = OP, count = projects.len(), "listed projects");
        Ok(projects)
    }

    async fn start_execution(&self, run: &StartRun) -> Result<String, AwsError> {
        const OP: &str = "StartPipelineExecution";
        let mut request = self
            .codepipeline
            .start_pipeline_execution()
            .name(&run.pipeline)
            .client_request_token(&run.client_request_token);
        for (name, value) in &run.variables {
            let variable = cp::types::PipelineVariable::builder()
                .name(name)
                .value(value)
                .build()
                .map_err(|e| from_build_error(OP, e).on(&run.pipeline))?;
            request = request.variables(variable);
        }
        if let Some(commit) = &run.commit {
            let revision = cp::types::SourceRevisionOverride::builder()
                .action_name(&run.source_action)
                .revision_type(cp::types::SourceRevisionType::CommitId)
                .revision_value(commit)
                .build()
                .map_err(|e| from_build_error(OP, e).on(&run.pipeline))?;
            request = request.source_revisions(revision);
        }
        debug!(
            operation = OP,
            pipeline = %run.pipeline,
            source_action = %run.source_action,
            commit = run.commit.as_deref(),
            "calling AWS"
        );
        let out = request
            .send()
            .await
            .map_err(|e| from_sdk_error(OP, e).on(&run.pipeline))?;
        let id = out.pipeline_execution_id.ok_or_else(|| {
            invalid_response(OP, "response has no pipelineExecutionId").on(&run.pipeline)
        })?;
        debug!(operation = OP, pipeline = %run.pipeline, execution = %id, "execution started");
        Ok(id)
    }

    async fn get_execution(
        &self,
        pipeline: &str,
        execution: &str,
    ) -> Result<Option<Execution>, AwsError> {
        const OP: &str = "GetPipelineExecution";
        debug!(operation = OP, pipeline, execution, "calling AWS");
        let out = self
            .codepipeline
            .get_pipeline_execution()
            .pipeline_name(pipeline)
            .pipeline_execution_id(execution)
            .send()
            .await;
        match out {
            Ok(out) => Ok(out.pipeline_execution().map(executions::execution_from_sdk)),
            Err(e) => {
                let e = from_sdk_error(OP, e).on(pipeline);
                if is_not_found(&e) || e.code == EXECUTION_NOT_FOUND {
                    Ok(None)
                } else {
                    Err(e)
                }
            }
        }
    }

    async fn action_executions(
        &self,
        pipeline: &str,
        execution: &str,
    ) -> Result<Vec<ActionRun>, AwsError> {
        const OP: &str = "ListActionExecutions";
        debug!(operation = OP, pipeline, execution, "calling AWS");
        let filter = cp::types::ActionExecutionFilter::builder()
            .pipeline_execution_id(execution)
            .build();
        let details = self
            .codepipeline
            .list_action_executions()
            .pipeline_name(pipeline)
            .filter(filter)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| from_sdk_error(OP, e).on(pipeline))?;
        Ok(details.iter().map(executions::action_from_sdk).collect())
    }

    async fn list_executions(
        &self,
        pipeline: &str,
        stop_at: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Execution>, AwsError> {
        const OP: &str = "ListPipelineExecutions";
        debug!(operation = OP, pipeline, stop_at, limit, "calling AWS");
        let mut pages = self
            .codepipeline
            .list_pipeline_executions()
            .pipeline_name(pipeline)
            .max_results(i32::try_from(limit.clamp(1, 100)).unwrap_or(100))
            .into_paginator()
            .send();
        let mut found = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| from_sdk_error(OP, e).on(pipeline))?;
            for summary in page.pipeline_execution_summaries() {
                let execution = executions::summary_from_sdk(summary);
                if Some(execution.id.as_str()) == stop_at || found.len() >= limit {
                    return Ok(found);
                }
                found.push(execution);
            }
        }
        Ok(found)
    }

    async fn pipeline_state(&self, pipeline: &str) -> Result<Vec<StageState>, AwsError> {
        const OP: &str = "GetPipelineState";
        debug!(operation = OP, pipeline, "calling AWS");
        let out = self
            .codepipeline
            .get_pipeline_state()
            .name(pipeline)
            .send()
            .await
            .map_err(|e| from_sdk_error(OP, e).on(pipeline))?;
        Ok(out
            .stage_states()
            .iter()
            .map(executions::stage_from_sdk)
            .collect())
    }
}

/// The SDK's own default HTTPS client (hyper 1 with rustls and aws-lc, proxy settings from the
/// environment), built here so the rate limiter (and the bench's request capture) can sit in
/// front of it.
pub fn default_https_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::proxy::ProxyConfig;
    use aws_smithy_http_client::{Builder, ConnectorBuilder, tls};
    Builder::new().build_with_connector_fn(|settings, components| {
        let mut connector = ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ));
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    })
}

/// Classifies an SDK failure. Service errors keep AWS's code and message and are classified
/// by code and HTTP status; transport failures are retryable; a request that could not be
/// constructed is not.
pub fn from_sdk_error<E>(operation: &'static str, err: SdkError<E, HttpResponse>) -> AwsError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    let transport = |code: &str, retry: Retry| AwsError {
        operation,
        resource: None,
        code: code.to_string(),
        message: DisplayErrorContext(&err).to_string(),
        retry,
    };
    let mapped = match &err {
        SdkError::ServiceError(ctx) => {
            let service = ctx.err();
            let status = ctx.raw().status().as_u16();
            let code = service.code().unwrap_or("Unknown").to_string();
            let message = match service.message() {
                Some(m) => m.to_string(),
                None => DisplayErrorContext(service).to_string(),
            };
            let retry = classify(&code, Some(status));
            AwsError {
                operation,
                resource: None,
                code,
                message,
                retry,
            }
        }
        SdkError::TimeoutError(_) => transport("Timeout", Retry::Retryable),
        SdkError::DispatchFailure(_) => transport("DispatchFailure", Retry::Retryable),
        SdkError::ResponseError(_) => transport("ResponseError", Retry::Retryable),
        SdkError::ConstructionFailure(_) => transport("ConstructionFailure", Retry::Terminal),
        _ => transport("SdkError", Retry::Terminal),
    };
    debug!(
        operation,
        code = %mapped.code,
        retryable = mapped.is_retryable(),
        status = err.raw_response().map(|r| r.status().as_u16()),
        "AWS call failed"
    );
    mapped
}

/// A request the SDK builders refused: retrying cannot help.
pub fn from_build_error(operation: &'static str, err: BuildError) -> AwsError {
    AwsError {
        operation,
        resource: None,
        code: "InvalidInput".into(),
        message: DisplayErrorContext(&err).to_string(),
        retry: Retry::Terminal,
    }
}

/// A successful response missing a member AWS always returns.
fn invalid_response(operation: &'static str, message: &str) -> AwsError {
    AwsError {
        operation,
        resource: None,
        code: "InvalidResponse".into(),
        message: message.into(),
        retry: Retry::Retryable,
    }
}

/// ListTagsForResource found nothing at an ARN derived rather than returned by GetPipeline:
/// the derivation may be wrong, so this is not taken to mean the pipeline is gone.
fn derived_arn_not_found(arn: &str) -> AwsError {
    AwsError {
        operation: "ListTagsForResource",
        resource: Some(arn.to_string()),
        code: RESOURCE_NOT_FOUND.into(),
        message: format!("no resource {arn} (ARN derived, not returned by GetPipeline)"),
        retry: Retry::Terminal,
    }
}

fn is_not_found(e: &AwsError) -> bool {
    e.code == PIPELINE_NOT_FOUND || e.code == RESOURCE_NOT_FOUND
}

/// `arn:<partition>:codepipeline:<region>:<account>:<name>`, with partition and account taken
/// from the pipeline's service role (a pipeline's role lives in the pipeline's account).
pub fn derive_pipeline_arn(region: Option<&str>, role_arn: &str, name: &str) -> Option<String> {
    let region = region.filter(|r| !r.is_empty())?;
    let mut parts = role_arn.splitn(6, ':');
    let (Some("arn"), Some(partition), Some("iam"), Some(_), Some(account)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    if partition.is_empty() || account.is_empty() {
        return None;
    }
    Some(format!(
        "arn:{partition}:codepipeline:{region}:{account}:{name}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;
    use cp::error::ConnectorError;
    use cp::operation::get_pipeline::GetPipelineError;

    fn response(status: u16) -> HttpResponse {
        HttpResponse::new(
            status.try_into().expect("test input is valid"),
            SdkBody::empty(),
        )
    }

    fn service(code: &str, message: &str, status: u16) -> SdkError<GetPipelineError, HttpResponse> {
        let meta = ErrorMetadata::builder().code(code).message(message).build();
        SdkError::service_error(GetPipelineError::generic(meta), response(status))
    }

    #[test]
    fn service_errors_keep_code_and_message() {
        let e = from_sdk_error(
            "GetPipeline",
            service("ValidationException", "bad name", 400),
        );
        assert_eq!(
            e,
            AwsError {
                operation: "GetPipeline",
                resource: None,
                code: "ValidationException".into(),
                message: "bad name".into(),
                retry: Retry::Terminal,
            }
        );
    }

    #[test]
    fn throttling_and_server_errors_are_retryable() {
        let e = from_sdk_error(
            "GetPipeline",
            service("ThrottlingException", "slow down", 400),
        );
        assert_eq!(e.retry, Retry::Retryable);
        let e = from_sdk_error("GetPipeline", service("SomethingOdd", "", 503));
        assert_eq!(
            (e.code.as_str(), e.retry),
            ("SomethingOdd", Retry::Retryable)
        );
    }

    #[test]
    fn modeled_not_found_is_recognized() {
        let modeled = cp::types::error::PipelineNotFoundException::builder()
            .message("no such pipeline")
            .meta(
                ErrorMetadata::builder()
                    .code(PIPELINE_NOT_FOUND)
                    .message("no such pipeline")
                    .build(),
            )
            .build();
        let err = SdkError::service_error(
            GetPipelineError::PipelineNotFoundException(modeled),
            response(400),
        );
        let e = from_sdk_error("GetPipeline", err);
        assert_eq!(e.code, PIPELINE_NOT_FOUND);
        assert_eq!(e.retry, Retry::Terminal);
        assert!(is_not_found(&e));
    }

    #[test]
    fn missing_code_is_unknown_and_classified_by_status() {
        let meta = ErrorMetadata::builder().build();
        let err: SdkError<GetPipelineError, HttpResponse> =
            SdkError::service_error(GetPipelineError::generic(meta), response(500));
        let e = from_sdk_error("GetPipeline", err);
        assert_eq!((e.code.as_str(), e.retry), ("Unknown", Retry::Retryable));
    }

    #[test]
    fn transport_failures_are_retryable() {
        let timeout: SdkError<GetPipelineError, HttpResponse> =
            SdkError::timeout_error("took too long");
        let e = from_sdk_error("GetPipeline", timeout);
        assert_eq!((e.code.as_str(), e.retry), ("Timeout", Retry::Retryable));
        assert!(e.message.contains("took too long"), "{}", e.message);

        let dispatch: SdkError<GetPipelineError, HttpResponse> =
            SdkError::dispatch_failure(ConnectorError::io("connection refused".into()));
        let e = from_sdk_error("GetPipeline", dispatch);
        assert_eq!(
            (e.code.as_str(), e.retry),
            ("DispatchFailure", Retry::Retryable)
        );

        let garbled: SdkError<GetPipelineError, HttpResponse> =
            SdkError::response_error("truncated body", response(200));
        let e = from_sdk_error("GetPipeline", garbled);
        assert_eq!(
            (e.code.as_str(), e.retry),
            ("ResponseError", Retry::Retryable)
        );
    }

    #[test]
    fn construction_failures_are_terminal() {
        let err: SdkError<GetPipelineError, HttpResponse> =
            SdkError::construction_failure("no region");
        let e = from_sdk_error("GetPipeline", err);
        assert_eq!(
            (e.code.as_str(), e.retry),
            ("ConstructionFailure", Retry::Terminal)
        );
    }

    #[test]
    fn build_errors_are_terminal_invalid_input() {
        let err = cp::types::SourceRevisionOverride::builder()
            .build()
            .unwrap_err();
        let e = from_build_error("StartPipelineExecution", err);
        assert_eq!(e.operation, "StartPipelineExecution");
        assert_eq!(
            (e.code.as_str(), e.retry),
            ("InvalidInput", Retry::Terminal)
        );
        assert!(e.message.contains("action_name"), "{}", e.message);
    }

    #[test]
    fn fallback_arn_uses_role_partition_and_account() {
        assert_eq!(
            derive_pipeline_arn(Some("eu-west-1"), "arn:aws:iam::111122223333:role/x", "p")
                .as_deref(),
            Some("arn:aws:codepipeline:eu-west-1:111122223333:p")
        );
        assert_eq!(
            derive_pipeline_arn(
                Some("cn-north-1"),
                "arn:aws-cn:iam::111122223333:role/a/b",
                "p"
            )
            .as_deref(),
            Some("arn:aws-cn:codepipeline:cn-north-1:111122223333:p")
        );
        assert_eq!(
            derive_pipeline_arn(None, "arn:aws:iam::1:role/x", "p"),
            None
        );
        assert_eq!(
            derive_pipeline_arn(Some("us-east-1"), "not-an-arn", "p"),
            None
        );
        assert_eq!(
            derive_pipeline_arn(Some("us-east-1"), "arn:aws:iam:::role/x", "p"),
            None
        );
    }
}
