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
use crate::aws::AwsApi;
use crate::metrics::Metrics;
use crate::reconcile::diff;
use crate::reconcile::error::Error;
use crate::reconcile::policy;
use crate::render::MANAGER;
use crate::server::Health;

mod cleanup;
mod manual_run;
mod sync;

use cleanup::cleanup;
use sync::sync;

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
