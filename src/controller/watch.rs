//! The watch that feeds the controller, and its one backoff layer.
//!
//! kube-runtime's `Controller` already backs off its trigger stream on errors
//! (`trigger_backoff`), so the watcher itself gets none: two layers stacked delays after an
//! API-server outage. The one layer here is capped at [`WATCH_BACKOFF_MAX`] so the controller
//! is reconciling again within seconds of the API server's return. A "410 Gone" (the watch's
//! resource version expired) is not an outage: the watcher relists at once, so that error is
//! dropped before it can trigger a backoff.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::utils::Backoff;
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Api, ResourceExt};
use tracing::{debug, info};

use super::{Context, classes, error_policy, reconcile, runs, tracker};
use crate::api::{BranchPipeline, BranchPipelineRun};
use crate::reconcile::error::Error;
use crate::server::Health;

type Cache = (
    kube::runtime::reflector::Store<BranchPipeline>,
    kube::runtime::reflector::store::Writer<BranchPipeline>,
);

pub const WATCH_BACKOFF_MIN: Duration = Duration::from_millis(250);
pub const WATCH_BACKOFF_MAX: Duration = Duration::from_secs(8);

/// Runs the controller until `shutdown` completes (in-flight reconciles finish first).
/// `namespaces` empty means all of them; otherwise one watch per listed namespace, so the
/// controller needs permissions only there.
pub async fn run(
    ctx: Arc<Context>,
    namespaces: Vec<String>,
    health: Arc<Health>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let apis: Vec<Api<BranchPipeline>> = scoped(&ctx, &namespaces);
    let run_apis: Vec<Api<BranchPipelineRun>> = scoped(&ctx, &namespaces);
    let shutdown = futures::FutureExt::shared(Box::pin(shutdown));
    let synced = Arc::new(AtomicUsize::new(0));
    let watches = apis.len();
    // Created here so the execution tracker follows exactly the objects the watches cache.
    let caches: Vec<Cache> = apis
        .iter()
        .map(|_| kube::runtime::reflector::store::<BranchPipeline>())
        .collect();
    let stores = caches.iter().map(|(reader, _)| reader.clone()).collect();
    // Classes are cluster-scoped: one watch, whose changes go to every controller.
    let (class_senders, class_changes): (Vec<_>, Vec<_>) = caches
        .iter()
        .map(|_| futures::channel::mpsc::unbounded())
        .unzip();
    let class_watch = classes::watch(
        Api::all(ctx.client.clone()),
        ctx.classes.start(),
        class_senders,
        shutdown.clone(),
    );
    let controllers = apis.into_iter().zip(caches).zip(class_changes);
    let controllers = controllers.map(|((api, cache), class_changes)| {
        let (ctx, health, synced, shutdown) = (
            ctx.clone(),
            health.clone(),
            synced.clone(),
            shutdown.clone(),
        );
        let class_users = classes::users_of(class_changes, cache.0.clone(), &ctx);
        async move {
            let on_synced = move || {
                // Ready once every watch has listed its namespace completely.
                if synced.fetch_add(1, Ordering::SeqCst) + 1 == watches {
                    health.set_watch_synced(true);
                    info!("watch synced");
                }
            };
            run_one(api, cache, class_users, ctx, on_synced, shutdown).await
        }
    });
    let run_controllers = run_apis
        .into_iter()
        .map(|api| run_runs(api, ctx.clone(), shutdown.clone()));
    futures::future::join4(
        futures::future::join_all(controllers),
        futures::future::join_all(run_controllers),
        tracker::run(ctx.clone(), stores, shutdown.clone()),
        class_watch,
    )
    .await;
    info!("controller stopped");
}

/// One Api per watched namespace, or one for the whole cluster.
fn scoped<K>(ctx: &Context, namespaces: &[String]) -> Vec<Api<K>>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    if namespaces.is_empty() {
        vec![Api::all(ctx.client.clone())]
    } else {
        namespaces
            .iter()
            .map(|ns| Api::namespaced(ctx.client.clone(), ns))
            .collect()
    }
}

/// The BranchPipelineRun controller: every run change, and its own requeues while it follows
/// an execution.
async fn run_runs(
    api: Api<BranchPipelineRun>,
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    // Like the BranchPipeline watch: trimmed, and blind to the controller's own status writes
    // (a run in progress is polled by requeue, not by its status changing).
    let (reader, writer) = kube::runtime::reflector::store();
    let scope = ctx.config.scope.clone();
    let stream = watcher(api, watcher::Config::default())
        .filter(|event| futures::future::ready(!is_gone(event)))
        .filter(move |event| {
            let owned = in_scope(event, |run: &BranchPipelineRun| {
                scope.owns(
                    &run.namespace().unwrap_or_default(),
                    crate::reconcile::run::branch_pipeline_of(run),
                )
            });
            futures::future::ready(owned)
        })
        .modify(trim)
        .reflect(writer)
        .applied_objects()
        .predicate_filter(run_relevant, Default::default());
    Controller::for_stream(stream, reader)
        .with_config(controller_config(&ctx))
        .trigger_backoff(WatchBackoff::default())
        .graceful_shutdown_on(shutdown)
        .run(reconcile_run, runs::error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                debug!(error = %e, "run reconcile loop reported an error");
            }
        })
        .await;
}

/// A run's reconcile, with a panic turned into a retryable error for that run alone.
async fn reconcile_run(run: Arc<BranchPipelineRun>, ctx: Arc<Context>) -> Result<Action, Error> {
    match super::unpanicked(&ctx.metrics, runs::reconcile(run.clone(), ctx.clone())).await {
        Ok(result) => result,
        Err(message) => Err(super::panicked(&ctx, run.as_ref(), message).await),
    }
}

async fn run_one(
    api: Api<BranchPipeline>,
    (reader, writer): Cache,
    class_users: impl futures::Stream<Item = ObjectRef<BranchPipeline>> + Send + 'static,
    ctx: Arc<Context>,
    on_synced: impl Fn() + Send + Sync + 'static,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    // Status writes must not trigger reconciles (the controller's own writes would loop): react to
    // spec, annotation, finalizer and deletion changes only.
    let mut first_list = Some(on_synced);
    let scope = ctx.config.scope.clone();
    let stream = watcher(api, watch_config(&ctx))
        .filter(|event| futures::future::ready(!is_gone(event)))
        .filter(move |event| {
            let owned = in_scope(event, |bp: &BranchPipeline| {
                scope.owns(&bp.namespace().unwrap_or_default(), &bp.name_any())
            });
            futures::future::ready(owned)
        })
        .modify(trim)
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
        .with_config(controller_config(&ctx))
        .trigger_backoff(WatchBackoff::default())
        // A class edit reaches exactly the resources using it (see classes::users_of).
        .reconcile_on(class_users)
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                debug!(error = %e, "reconcile loop reported an error");
            }
        })
        .await;
}

/// The BranchPipeline watch: filtered by `--selector` at the API server.
fn watch_config(ctx: &Context) -> watcher::Config {
    let config = watcher::Config::default();
    match &ctx.config.scope.selector {
        Some(selector) => config.labels(&selector.text),
        None => config,
    }
}

/// Whether a watch event is about an object `owns` accepts (markers of a relist always are).
fn in_scope<K>(
    event: &Result<watcher::Event<K>, watcher::Error>,
    owns: impl Fn(&K) -> bool,
) -> bool {
    match event {
        Ok(watcher::Event::Apply(o) | watcher::Event::Delete(o) | watcher::Event::InitApply(o)) => {
            owns(o)
        }
        _ => true,
    }
}

fn controller_config(ctx: &Context) -> kube::runtime::controller::Config {
    kube::runtime::controller::Config::default().concurrency(ctx.config.max_concurrent_reconciles)
}

/// What the cache keeps of each object: no managedFields and no client-side apply copy, which
/// can be as large as the object itself and which no reconcile reads.
pub(super) fn trim<K: kube::Resource>(object: &mut K) {
    let meta = object.meta_mut();
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
}

/// A watch error meaning "relist", which the watcher does on its next poll.
fn is_gone<K>(event: &Result<watcher::Event<K>, watcher::Error>) -> bool {
    match event {
        Err(watcher::Error::WatchError(status)) if status.code == 410 => {
            debug!("watch resource version expired; relisting");
            true
        }
        _ => false,
    }
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

fn run_relevant(run: &BranchPipelineRun) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    run.metadata.generation.hash(&mut h);
    run.metadata.deletion_timestamp.is_some().hash(&mut h);
    Some(h.finish())
}

/// Doubling delays from [`WATCH_BACKOFF_MIN`] to [`WATCH_BACKOFF_MAX`], jittered between half
/// and the full delay; reset by the controller whenever the stream yields an event again.
#[derive(Debug, Clone)]
pub struct WatchBackoff {
    next: Duration,
}

impl Default for WatchBackoff {
    fn default() -> Self {
        Self {
            next: WATCH_BACKOFF_MIN,
        }
    }
}

impl Iterator for WatchBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let delay = self.next;
        self.next = self.next.saturating_mul(2).min(WATCH_BACKOFF_MAX);
        let half = delay / 2;
        let jitter =
            crate::duration::fraction_of(half, rand::random::<u16>() % 1001, 1000).unwrap_or(half);
        Some(half + jitter)
    }
}

impl Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.next = WATCH_BACKOFF_MIN;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watch_backoff_doubles_caps_and_resets() {
        let mut b = WatchBackoff::default();
        let first = b.next().expect("a delay");
        assert!(first <= WATCH_BACKOFF_MIN && first >= WATCH_BACKOFF_MIN / 2);
        let delays: Vec<Duration> = (0..20).map(|_| b.next().expect("a delay")).collect();
        assert!(delays.iter().all(|d| *d <= WATCH_BACKOFF_MAX));
        assert!(delays[19] >= WATCH_BACKOFF_MAX / 2);
        // Within 15 s of a return, even after a long outage: one capped delay plus a relist.
        assert!(WATCH_BACKOFF_MAX < Duration::from_secs(10));
        b.reset();
        assert!(b.next().expect("a delay") <= WATCH_BACKOFF_MIN);
    }

    #[test]
    fn only_gone_is_dropped() {
        let gone = kube::core::Status {
            code: 410,
            ..Default::default()
        };
        assert!(is_gone::<BranchPipeline>(&Err(watcher::Error::WatchError(
            Box::new(gone)
        ))));
        let other = kube::core::Status {
            code: 500,
            ..Default::default()
        };
        assert!(!is_gone::<BranchPipeline>(&Err(
            watcher::Error::WatchError(Box::new(other))
        )));
        assert!(!is_gone::<BranchPipeline>(&Ok(watcher::Event::InitDone)));
    }
}
