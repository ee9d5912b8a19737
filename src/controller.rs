//! Wires the reconcile steps to Kubernetes: the watch, the finalizer, status, events, backoff.
//!
//! One reconcile is: validate+render → observe → diff → apply → (manual run) → status.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::json;
use tracing::{Instrument, info, info_span, warn};

use crate::api::*;
use crate::aws::{AwsApi, AwsError, StartRun};
use crate::metrics::Metrics;
use crate::reconcile::apply::{self, Change, Verb};
use crate::reconcile::diff::{self, Foreign, Owner, Plan};
use crate::reconcile::error::Error;
use crate::reconcile::observe::{self, Owned};
use crate::reconcile::status::{self, reason};
use crate::reconcile::{policy, run};
use crate::render::{self, DesiredState, MANAGER, SOURCE_ACTION};
use crate::server::Health;

/// Controller-wide settings from flags.
#[derive(Debug, Clone)]
pub struct Config {
    pub resync_interval: Duration,
    pub deletion_policy: Option<DeletionPolicy>,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            resync_interval: Duration::from_secs(600),
            deletion_policy: None,
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(300),
        }
    }
}

pub struct Context {
    pub client: Client,
    pub aws: Arc<dyn AwsApi>,
    pub recorder: Recorder,
    pub config: Config,
    pub metrics: Arc<Metrics>,
    /// Consecutive failures per object, for backoff; cleared on success.
    failures: Mutex<HashMap<String, u32>>,
}

impl Context {
    pub fn new(
        client: Client,
        aws: Arc<dyn AwsApi>,
        config: Config,
        metrics: Arc<Metrics>,
    ) -> Self {
        let reporter = Reporter {
            controller: MANAGER.to_string(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            aws,
            config,
            metrics,
            failures: Mutex::default(),
        }
    }

    async fn event(&self, bp: &BranchPipeline, type_: EventType, reason: &str, note: String) {
        self.event_about(bp, type_, reason, note, None).await;
    }

    /// An event about one AWS resource. The resource goes in `related`: the recorder folds
    /// events with the same reason and related object into one series, so without it every
    /// project created in one reconcile would collapse into a single event.
    async fn event_about(
        &self,
        bp: &BranchPipeline,
        type_: EventType,
        reason: &str,
        note: String,
        resource: Option<(diff::Kind, &str)>,
    ) {
        let event = Event {
            type_,
            reason: reason.to_string(),
            note: Some(note),
            action: reason.to_string(),
            secondary: resource.map(|(kind, name)| aws_reference(kind, name)),
        };
        let reference: ObjectReference = bp.object_ref(&());
        if let Err(e) = self.recorder.publish(&event, &reference).await {
            warn!(error = %e, reason, "could not publish event");
        }
    }
}

/// Runs the controller until `shutdown` completes (in-flight reconciles finish first).
/// `namespaces` empty means all of them; otherwise one watch per listed namespace, so the
/// controller needs permissions only there.
pub async fn run(
    ctx: Arc<Context>,
    namespaces: Vec<String>,
    health: Arc<Health>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let apis: Vec<Api<BranchPipeline>> = if namespaces.is_empty() {
        vec![Api::all(ctx.client.clone())]
    } else {
        namespaces
            .iter()
            .map(|ns| Api::namespaced(ctx.client.clone(), ns))
            .collect()
    };
    let shutdown = futures::FutureExt::shared(Box::pin(shutdown));
    let synced = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let watches = apis.len();
    let controllers = apis.into_iter().map(|api| {
        let (ctx, health, synced, shutdown) = (
            ctx.clone(),
            health.clone(),
            synced.clone(),
            shutdown.clone(),
        );
        async move {
            let on_synced = move || {
                // Ready once every watch has listed its namespace completely.
                if synced.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == watches {
                    health.set_watch_synced(true);
                    info!("watch synced");
                }
            };
            run_one(api, ctx, on_synced, shutdown).await
        }
    });
    futures::future::join_all(controllers).await;
    info!("controller stopped");
}

async fn run_one(
    api: Api<BranchPipeline>,
    ctx: Arc<Context>,
    on_synced: impl Fn() + Send + Sync + 'static,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    // Status writes must not trigger reconciles (each would write lastSyncTime again): react to
    // spec, annotation, finalizer and deletion changes only.
    let (reader, writer) = kube::runtime::reflector::store();
    let mut first_list = Some(on_synced);
    let stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .inspect_ok(move |event| {
            if matches!(event, watcher::Event::InitDone)
                && let Some(on_synced) = first_list.take()
            {
                on_synced();
            }
        })
        .applied_objects()
        .predicate_filter(reconcile_relevant, Default::default());
    Controller::for_stream(stream, reader)
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "reconcile loop reported an error");
            }
        })
        .await;
}

/// Hashes what should trigger a reconcile: the spec (via generation), annotations (run, adopt,
/// policies), finalizers and deletion.
fn reconcile_relevant(bp: &BranchPipeline) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bp.metadata.generation.hash(&mut h);
    bp.metadata.annotations.hash(&mut h);
    bp.metadata.finalizers.hash(&mut h);
    bp.metadata.deletion_timestamp.is_some().hash(&mut h);
    Some(h.finish())
}

/// An object reference naming an AWS resource, for events.
fn aws_reference(kind: diff::Kind, name: &str) -> ObjectReference {
    let (api_version, kind) = match kind {
        diff::Kind::Pipeline => ("codepipeline.amazonaws.com/v1", "Pipeline"),
        diff::Kind::Project => ("codebuild.amazonaws.com/v1", "Project"),
    };
    ObjectReference {
        api_version: Some(api_version.to_string()),
        kind: Some(kind.to_string()),
        name: Some(name.to_string()),
        ..ObjectReference::default()
    }
}

fn key(bp: &BranchPipeline) -> String {
    format!("{}/{}", bp.namespace().unwrap_or_default(), bp.name_any())
}

pub async fn reconcile(bp: Arc<BranchPipeline>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = bp.namespace().ok_or(Error::MissingMetadata("namespace"))?;
    let span = info_span!("reconcile", namespace = %namespace, name = %bp.name_any(), generation = bp.metadata.generation);
    async move {
        let started = std::time::Instant::now();
        let api: Api<BranchPipeline> = Api::namespaced(ctx.client.clone(), &namespace);
        let result = finalizer(&api, FINALIZER, bp.clone(), |event| async {
            match event {
                FinalizerEvent::Apply(bp) => sync(&bp, &ctx, &api).await,
                FinalizerEvent::Cleanup(bp) => cleanup(&bp, &ctx).await,
            }
        })
        .await
        .map_err(|e| Error::Finalizer(Box::new(e)));
        if result.is_ok() {
            // A success ends the backoff streak.
            ctx.failures
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&key(&bp));
        }
        ctx.metrics.reconciled(result.is_ok(), started.elapsed());
        result
    }
    .instrument(span)
    .await
}

pub fn error_policy(bp: Arc<BranchPipeline>, error: &Error, ctx: Arc<Context>) -> Action {
    let key = key(&bp);
    let failures = {
        let mut map = ctx.failures.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(key.clone()).or_insert(0);
        *n += 1;
        *n
    };
    if error.is_retryable() {
        let delay = policy::backoff(
            failures - 1,
            ctx.config.backoff_base,
            ctx.config.backoff_cap,
        );
        warn!(resource = %key, error = %error, failures, retry_in_ms = delay.as_millis() as u64, "reconcile failed; retrying");
        Action::requeue(delay)
    } else {
        warn!(resource = %key, error = %error, "reconcile failed; waiting for a change or the next resync");
        Action::requeue(policy::resync_interval(&bp, ctx.config.resync_interval))
    }
}

fn now() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .unwrap_or_else(|_| jiff::Timestamp::now())
        .to_string()
}

async fn write_status(
    api: &Api<BranchPipeline>,
    bp: &BranchPipeline,
    status: &BranchPipelineStatus,
) -> Result<(), Error> {
    if bp.status.as_ref() == Some(status) {
        return Ok(());
    }
    let patch = json!({
        "apiVersion": crate::manifest::API_VERSION,
        "kind": crate::manifest::KIND,
        "status": status,
    });
    api.patch_status(
        &bp.name_any(),
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(())
}

/// The Apply branch: bring AWS in line with the spec.
async fn sync(
    bp: &BranchPipeline,
    ctx: &Context,
    api: &Api<BranchPipeline>,
) -> Result<Action, Error> {
    let namespace = bp.namespace().unwrap_or_default();
    let name = bp.name_any();
    let generation = bp.metadata.generation;
    let mut status = bp.status.clone().unwrap_or_default();

    let desired = match render::render(bp) {
        Ok(desired) => desired,
        Err(errors) => return invalid_spec(bp, ctx, api, status, &errors).await,
    };
    let owner = Owner {
        namespace: &namespace,
        name: &name,
        adopt: policy::adopt(bp),
    };
    let hints = Owned {
        pipelines: status.pipelines.iter().map(|p| p.name.clone()).collect(),
        projects: status.projects.clone(),
    };

    let observed =
        match observe::observe(ctx.aws.as_ref(), &desired, &namespace, &name, &hints).await {
            Ok(observed) => observed,
            Err(e) => return aws_failed(bp, ctx, api, status, e).await,
        };
    let plan = diff::plan(&desired, &observed, &owner);
    let drift =
        plan.changes_existing() && status.observed_generation == generation && generation.is_some();
    info!(
        writes = plan.writes(),
        foreign = plan.foreign.len(),
        drift,
        "planned"
    );

    let mut done = Vec::new();
    let applied = apply::apply(ctx.aws.as_ref(), &plan, &mut done).await;
    report_changes(bp, ctx, &done, drift).await;
    if let Err(e) = applied {
        return aws_failed(bp, ctx, api, status, e).await;
    }
    for foreign in &plan.foreign {
        warn!(resource = %foreign.name, owner = foreign.owner.as_deref().unwrap_or("untagged"), "not owned; left alone");
        ctx.event_about(
            bp,
            EventType::Warning,
            reason::NOT_OWNED,
            foreign.to_string(),
            Some((foreign.kind, &foreign.name)),
        )
        .await;
    }

    if let Err(e) = manual_run(bp, ctx, &desired, &plan, &mut status).await {
        return aws_failed(bp, ctx, api, status, e).await;
    }
    fill_inventory(&mut status, &desired, &observed, &done, &plan.foreign);
    let now = now();
    if plan.foreign.is_empty() {
        status::set_ready_synced(
            &mut status,
            true,
            reason::SYNCED,
            "AWS matches the spec",
            generation,
            &now,
        );
    } else {
        let message = plan
            .foreign
            .iter()
            .map(Foreign::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        status::set_ready_synced(
            &mut status,
            false,
            reason::NOT_OWNED,
            &message,
            generation,
            &now,
        );
    }
    status.last_sync_time = Some(now);
    write_status(api, bp, &status).await?;
    ctx.metrics.set_managed(
        &key(bp),
        Some((status.pipelines.len(), status.projects.len())),
    );
    Ok(Action::requeue(crate::duration::jittered(
        policy::resync_interval(bp, ctx.config.resync_interval),
    )))
}

async fn invalid_spec(
    bp: &BranchPipeline,
    ctx: &Context,
    api: &Api<BranchPipeline>,
    mut status: BranchPipelineStatus,
    errors: &[crate::validate::FieldError],
) -> Result<Action, Error> {
    let message = errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    let already = status.condition(CONDITION_READY).is_some_and(|c| {
        c.reason == reason::INVALID_SPEC
            && c.observed_generation == bp.metadata.generation
            && c.message == message
    });
    warn!(errors = %message, "invalid spec; no AWS calls until it changes");
    if !already {
        ctx.event(
            bp,
            EventType::Warning,
            reason::INVALID_SPEC,
            message.clone(),
        )
        .await;
    }
    status::set_ready_synced(
        &mut status,
        false,
        reason::INVALID_SPEC,
        &message,
        bp.metadata.generation,
        &now(),
    );
    write_status(api, bp, &status).await?;
    Ok(Action::await_change())
}

/// Records an AWS failure on the status. Retryable failures return the error so the error
/// policy backs off; terminal ones wait for the next resync or a spec change.
async fn aws_failed(
    bp: &BranchPipeline,
    ctx: &Context,
    api: &Api<BranchPipeline>,
    mut status: BranchPipelineStatus,
    error: AwsError,
) -> Result<Action, Error> {
    let generation = bp.metadata.generation;
    let message = error.to_string();
    if error.is_retryable() {
        status::set_retrying(&mut status, &message, generation, &now());
        write_status(api, bp, &status).await?;
        return Err(Error::Aws(error));
    }
    warn!(operation = error.operation, code = %error.code, "AWS refused a call; not retrying until the next resync");
    ctx.event(
        bp,
        EventType::Warning,
        reason::AWS_TERMINAL_ERROR,
        message.clone(),
    )
    .await;
    status::set_ready_synced(
        &mut status,
        false,
        reason::AWS_TERMINAL_ERROR,
        &message,
        generation,
        &now(),
    );
    write_status(api, bp, &status).await?;
    Ok(Action::requeue(policy::resync_interval(
        bp,
        ctx.config.resync_interval,
    )))
}

async fn report_changes(bp: &BranchPipeline, ctx: &Context, done: &[Change], drift: bool) {
    for change in done {
        let repaired = drift && matches!(change.verb, Verb::Updated | Verb::Retagged);
        let reason = if repaired {
            ctx.metrics.drift_repaired();
            "DriftRepaired"
        } else if change.verb == Verb::Retagged {
            "Updated"
        } else {
            change.verb.as_str()
        };
        let note = format!(
            "{} {} {}",
            change.verb.as_str(),
            change.kind.as_str(),
            change.name
        );
        if repaired {
            warn!(resource = %change.name, kind = change.kind.as_str(), "drift repaired");
        } else {
            info!(resource = %change.name, kind = change.kind.as_str(), verb = change.verb.as_str(), "applied");
        }
        ctx.event_about(
            bp,
            EventType::Normal,
            reason,
            note,
            Some((change.kind, &change.name)),
        )
        .await;
    }
}

/// What status lists: each rendered pipeline with its ARN and version, and the projects.
fn fill_inventory(
    status: &mut BranchPipelineStatus,
    desired: &DesiredState,
    observed: &diff::Observed,
    done: &[Change],
    foreign: &[Foreign],
) {
    let is_foreign = |name: &str| foreign.iter().any(|f| f.name == name);
    status.pipelines = desired
        .pipelines
        .iter()
        .filter(|p| !is_foreign(&p.pipeline.name))
        .map(|p| {
            let name = &p.pipeline.name;
            let seen = observed.pipelines.get(name);
            let changed = done
                .iter()
                .filter(|c| &c.name == name && c.kind == diff::Kind::Pipeline);
            let arn = changed
                .clone()
                .find_map(|c| c.arn.clone())
                .or_else(|| seen.map(|s| s.arn.clone()));
            let version = changed
                .rev()
                .find_map(|c| c.version)
                .or_else(|| seen.and_then(|s| s.declaration.version));
            PipelineStatus {
                name: name.clone(),
                arn,
                version,
                environments: p.environments.clone(),
            }
        })
        .collect();
    status.pipeline_count = Some(status.pipelines.len() as i32);
    status.projects = desired
        .projects
        .iter()
        .map(|p| p.name.clone())
        .filter(|n| !is_foreign(n))
        .collect();
}

/// Handles `branchpipeline.dev/run` once per distinct value.
async fn manual_run(
    bp: &BranchPipeline,
    ctx: &Context,
    desired: &DesiredState,
    plan: &Plan,
    status: &mut BranchPipelineStatus,
) -> Result<(), AwsError> {
    let Some(value) = bp.annotations().get(annotations::RUN).cloned() else {
        return Ok(());
    };
    if status.last_run.as_ref().is_some_and(|r| r.value == value) {
        return Ok(());
    }
    let generation = bp.metadata.generation;
    let now = now();
    let reject = |status: &mut BranchPipelineStatus, reason: &str, message: String| {
        status.last_run = Some(LastRun {
            value: value.clone(),
            pipeline: None,
            execution_id: None,
            error: Some(message.clone()),
            time: Some(now.clone()),
        });
        status::set_condition(
            &mut status.conditions,
            "Run",
            false,
            reason,
            &message,
            generation,
            &now,
        );
        message
    };
    let request = match run::parse(&value) {
        Ok(r) => r,
        Err(message) => {
            let message = reject(
                status,
                "InvalidRunRequest",
                format!("{}: {message}", annotations::RUN),
            );
            ctx.event(bp, EventType::Warning, "InvalidRunRequest", message)
                .await;
            return Ok(());
        }
    };
    let Some(pipeline) = run::pipeline_for(&desired.pipelines, &request.branch) else {
        let message = reject(
            status,
            "BranchNotCovered",
            format!(
                "no environment takes branch {:?}; add it to an environment's branches to run it",
                request.branch
            ),
        );
        ctx.event(bp, EventType::Warning, "BranchNotCovered", message)
            .await;
        return Ok(());
    };
    let name = pipeline.pipeline.name.clone();
    if plan.foreign.iter().any(|f| f.name == name) {
        let message = reject(
            status,
            reason::NOT_OWNED,
            format!("pipeline {name} is not owned by this resource"),
        );
        ctx.event(bp, EventType::Warning, reason::NOT_OWNED, message)
            .await;
        return Ok(());
    }
    let uid = bp.uid().unwrap_or_default();
    let execution = ctx
        .aws
        .start_execution(&StartRun {
            pipeline: name.clone(),
            source_action: SOURCE_ACTION.to_string(),
            commit: request.commit.clone(),
            client_request_token: run::request_token(&uid, &value),
        })
        .await?;
    info!(pipeline = %name, execution = %execution, branch = %request.branch, "manual run started");
    let message = format!("started {name} execution {execution} for {value}");
    status.last_run = Some(LastRun {
        value: value.clone(),
        pipeline: Some(name),
        execution_id: Some(execution),
        error: None,
        time: Some(now.clone()),
    });
    status::set_condition(
        &mut status.conditions,
        "Run",
        true,
        "RunStarted",
        &message,
        generation,
        &now,
    );
    ctx.event(bp, EventType::Normal, "RunStarted", message)
        .await;
    Ok(())
}

/// The Cleanup branch: delete (or retain) everything tagged as this resource's.
async fn cleanup(bp: &BranchPipeline, ctx: &Context) -> Result<Action, Error> {
    let namespace = bp.namespace().unwrap_or_default();
    let name = bp.name_any();
    let policy = policy::deletion_policy(bp, ctx.config.deletion_policy);
    ctx.metrics.set_managed(&key(bp), None);
    if policy == DeletionPolicy::Retain {
        info!("deletion policy Retain: leaving AWS resources in place");
        return Ok(Action::await_change());
    }
    let status = bp.status.clone().unwrap_or_default();
    let hints = Owned {
        pipelines: status.pipelines.iter().map(|p| p.name.clone()).collect(),
        projects: status.projects.clone(),
    };
    let owned = observe::discover_owned(
        ctx.aws.as_ref(),
        &namespace,
        &name,
        &Default::default(),
        &hints,
    )
    .await?;
    let plan = Plan {
        delete_pipelines: owned.pipelines,
        delete_projects: owned.projects,
        ..Plan::default()
    };
    let mut done = Vec::new();
    let result = apply::apply(ctx.aws.as_ref(), &plan, &mut done).await;
    report_changes(bp, ctx, &done, false).await;
    result?;
    info!(
        pipelines = plan.delete_pipelines.len(),
        projects = plan.delete_projects.len(),
        "cleaned up"
    );
    Ok(Action::await_change())
}
