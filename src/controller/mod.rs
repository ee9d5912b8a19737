//! Wires the reconcile steps to Kubernetes: the watch, the finalizer, status, events, backoff.
//!
//! Each path reads as observe → decide → carry out: [`sync`] and [`cleanup`] gather facts from
//! AWS, the pure functions in [`crate::reconcile::outcome`] decide, and [`effects`] writes the
//! status, publishes the events and moves the metrics.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::{Api, Client, ResourceExt};
use tracing::{Instrument, debug, error, info_span, warn};

use crate::api::*;
use crate::aws::AwsApi;
use crate::aws::inventory::Inventory;
use crate::metrics::Metrics;
use crate::reconcile::error::Error;
use crate::reconcile::events::EventSpec;
use crate::reconcile::outcome;
use crate::reconcile::policy::{self, Defaults, Settings};
use crate::render::MANAGER;

mod busy;
mod classes;
mod cleanup;
mod effects;
pub mod recorder;
mod runs;
mod sync;
mod tracker;
mod watch;

pub use tracker::{TRACKER_MANAGER, TrackerConfig};

pub use watch::run;

/// Controller-wide settings from flags.
#[derive(Debug, Clone)]
pub struct Config {
    pub resync_interval: Duration,
    pub deletion_policy: Option<DeletionPolicy>,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// Reconciles in flight at once, per controller (BranchPipelines, runs).
    pub max_concurrent_reconciles: u16,
    /// Which BranchPipelines this process serves (`--shard`, `--selector`).
    pub scope: crate::shard::Scope,
    /// Per-region quotas a plan must stay within.
    pub quotas: outcome::Quotas,
    /// How executions are followed.
    pub tracker: TrackerConfig,
    /// `--require-class`: a BranchPipeline with no class (none named, no default) is refused.
    pub require_class: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            resync_interval: Duration::from_secs(600),
            deletion_policy: None,
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(300),
            max_concurrent_reconciles: 16,
            scope: crate::shard::Scope::default(),
            quotas: outcome::Quotas {
                pipelines: 1000,
                projects: 5000,
            },
            tracker: TrackerConfig::default(),
            require_class: false,
        }
    }
}

pub struct Context {
    pub client: Client,
    pub aws: Arc<dyn AwsApi>,
    /// The rate limiter's edit lane: reconciles of a spec AWS does not have yet, and run
    /// starts, go ahead of resyncs. The same client as `aws` unless set.
    pub edit_aws: Arc<dyn AwsApi>,
    /// For the execution tracker: the rate limiter's background lane, so polls never queue
    /// ahead of a reconcile. The same client as `aws` unless set.
    pub background_aws: Arc<dyn AwsApi>,
    pub recorder: recorder::Recorder,
    pub config: Config,
    pub metrics: Arc<Metrics>,
    /// Consecutive failures per object, for backoff; cleared on success.
    failures: Mutex<HashMap<String, u32>>,
    /// The account's pipelines and projects, listed at most once per resync interval.
    pub inventory: Inventory,
    /// Reconciles per object, so each pass reads a different pipeline's tags.
    passes: Mutex<HashMap<String, usize>>,
    /// Objects this process has seen: the first reconcile of a settled one waits for its slot.
    seen: Mutex<HashSet<String>>,
    /// Posts commit statuses; `None` when the controller has no GitHub credentials.
    pub reporter: Option<Arc<crate::github::reporter::Reporter>>,
    /// The BranchPipelineClasses, as the class watch caches them.
    classes: classes::Classes,
    /// BranchPipeline reconciles running now: a class's roll-out leaves room for edits.
    busy: Arc<busy::Busy>,
}

impl Context {
    pub fn new(
        client: Client,
        aws: Arc<dyn AwsApi>,
        config: Config,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            recorder: recorder::Recorder::new(
                client.clone(),
                MANAGER,
                std::env::var("POD_NAME").ok(),
            ),
            client,
            edit_aws: aws.clone(),
            background_aws: aws.clone(),
            aws,
            config,
            metrics,
            failures: Mutex::default(),
            inventory: Inventory::default(),
            passes: Mutex::default(),
            seen: Mutex::default(),
            reporter: None,
            classes: classes::Classes::default(),
            busy: Arc::default(),
        }
    }

    /// Posts commit statuses through `reporter`.
    /// The rate limiter's other lanes (see [`crate::aws::limiter`]).
    pub fn with_lanes(mut self, edit: Arc<dyn AwsApi>, background: Arc<dyn AwsApi>) -> Self {
        self.edit_aws = edit;
        self.background_aws = background;
        self
    }

    pub fn with_reporter(mut self, reporter: Arc<crate::github::reporter::Reporter>) -> Self {
        self.reporter = Some(reporter);
        self
    }

    /// On an object's first reconcile in this process, if it is settled (see
    /// [`outcome::is_settled`]) with the class it uses now, how long until its resync slot; it
    /// is counted as managed from its status meanwhile.
    async fn defer_first(&self, bp: &BranchPipeline) -> Option<Duration> {
        let key = key(bp);
        let first = self
            .seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.clone());
        if !first {
            return None;
        }
        let settings = self.settings(bp);
        let class = classes::current(self, bp).await?;
        if !outcome::is_settled(bp, &settings, class.as_ref()) {
            return None;
        }
        let status = bp.status.as_ref()?;
        self.metrics
            .set_managed(&key, Some((status.pipelines.len(), status.projects.len())));
        Some(self.next_resync(bp, settings.resync_interval))
    }

    /// Until `bp`'s next resync slot: a fixed phase of the interval per object.
    fn next_resync(&self, bp: &BranchPipeline, interval: Duration) -> Duration {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        bp.uid().unwrap_or_else(|| key(bp)).hash(&mut h);
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        crate::duration::slot_delay(h.finish(), interval, since_epoch)
    }

    /// This object's pass number, counting up.
    fn next_pass(&self, key: &str) -> usize {
        let mut passes = self.passes.lock().unwrap_or_else(|e| e.into_inner());
        let n = passes.entry(key.to_string()).or_insert(0);
        *n = n.wrapping_add(1);
        *n
    }

    /// Drops what is kept in memory about an object that is gone.
    fn forget(&self, key: &str) {
        self.passes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }

    /// What the AWS half of a reconcile reads with.
    fn reads(&self, bp: &BranchPipeline) -> sync::Reads<'_> {
        sync::Reads {
            aws: if is_edit(bp, &self.settings(bp)) {
                self.edit_aws.as_ref()
            } else {
                self.aws.as_ref()
            },
            inventory: &self.inventory,
            pass: self.next_pass(&key(bp)),
            max_age: self.config.resync_interval,
            quotas: self.config.quotas,
            metrics: Some(self.metrics.as_ref()),
            poll: self.config.tracker.poll_interval,
        }
    }

    /// What the choice of `bp`'s class depends on.
    fn choice<'a>(&self, bp: &'a BranchPipeline) -> crate::class::Choice<'a> {
        crate::class::Choice::of(bp, self.config.require_class)
    }

    fn settings(&self, bp: &BranchPipeline) -> Settings {
        policy::settings(
            bp,
            Defaults {
                resync_interval: self.config.resync_interval,
                deletion_policy: self.config.deletion_policy,
            },
        )
    }
}

/// Whether someone waits on this reconcile: a spec AWS does not have yet, or a new
/// `update-now` value. Those take the rate limiter's edit lane; resyncs (and a class's roll-out
/// to its users) can wait behind them.
fn is_edit(bp: &BranchPipeline, settings: &Settings) -> bool {
    let status = bp.status.as_ref();
    let new_update_now = settings.update_now.is_some()
        && settings.update_now.as_ref() != status.and_then(|s| s.update_now.as_ref());
    bp.metadata.generation != status.and_then(|s| s.observed_generation) || new_update_now
}

fn key(bp: &BranchPipeline) -> String {
    format!("{}/{}", bp.namespace().unwrap_or_default(), bp.name_any())
}

pub async fn reconcile(bp: Arc<BranchPipeline>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = bp.namespace().ok_or(Error::MissingMetadata("namespace"))?;
    let span = info_span!("reconcile", namespace = %namespace, name = %bp.name_any(), generation = bp.metadata.generation);
    async move {
        let _running = ctx.busy.start();
        if let Some(slot) = ctx.defer_first(&bp).await {
            debug!(
                in_s = slot.as_secs(),
                "settled at start; resyncing at its slot"
            );
            return Ok(Action::requeue(slot));
        }
        let started = std::time::Instant::now();
        let result = guarded(&bp, &ctx, &namespace).await;
        match &result {
            Ok(_) => {
                // A success ends the backoff streak.
                ctx.failures
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&key(&bp));
            }
            Err(e) => ctx.metrics.reconcile_failed(e.step().as_str(), e.class()),
        }
        ctx.metrics.reconciled(result.is_ok(), started.elapsed());
        result
    }
    .instrument(span)
    .await
}

/// Runs the finalizer-wrapped reconcile, turning a panic into a retryable error for this object
/// alone: one resource must never take the controller down for every other.
async fn guarded(
    bp: &Arc<BranchPipeline>,
    ctx: &Arc<Context>,
    namespace: &str,
) -> Result<Action, Error> {
    let api: Api<BranchPipeline> = Api::namespaced(ctx.client.clone(), namespace);
    let work = finalizer(&api, FINALIZER, bp.clone(), |event| async {
        match event {
            FinalizerEvent::Apply(bp) => sync::sync(&bp, ctx, &api).await,
            FinalizerEvent::Cleanup(bp) => cleanup::cleanup(&bp, ctx, &api).await,
        }
    });
    match unpanicked(&ctx.metrics, work).await {
        Ok(result) => result.map_err(|e| Error::Finalizer(Box::new(e))),
        Err(message) => Err(panicked(ctx, bp.as_ref(), message).await),
    }
}

/// Runs `work`, turning a panic into its message, logged and counted: the reconciles run inside
/// kube-runtime's stream, where an uncaught panic would end the process for every object.
pub(super) async fn unpanicked<T>(
    metrics: &Metrics,
    work: impl std::future::Future<Output = T>,
) -> Result<T, String> {
    match std::panic::AssertUnwindSafe(work).catch_unwind().await {
        Ok(value) => Ok(value),
        Err(panic) => {
            let message = panic_message(panic.as_ref());
            error!(panic = %message, "reconcile panicked; retrying this object with backoff");
            metrics.reconcile_panicked();
            Err(message)
        }
    }
}

/// The Warning Event on the object whose reconcile panicked, and the retryable error.
pub(super) async fn panicked<K>(ctx: &Context, object: &K, message: String) -> Error
where
    K: kube::Resource<DynamicType = ()>,
{
    let event = EventSpec::warning(
        "ReconcilePanicked",
        format!(
            "the controller hit a bug reconciling this resource ({message}); it retries with backoff and keeps serving the others"
        ),
    );
    effects::publish(ctx, object, &[event]).await;
    Error::Panicked(message)
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_string()
    }
}

pub fn error_policy(bp: Arc<BranchPipeline>, error: &Error, ctx: Arc<Context>) -> Action {
    let key = key(&bp);
    let failures = {
        let mut map = ctx.failures.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(key.clone()).or_insert(0);
        *n = n.saturating_add(1);
        *n
    };
    if error.is_retryable() {
        let delay = policy::backoff(
            failures - 1,
            ctx.config.backoff_base,
            ctx.config.backoff_cap,
        );
        warn!(resource = %key, error = %error, step = error.step().as_str(), failures, retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX), "reconcile failed; retrying");
        Action::requeue(delay)
    } else {
        let resync = ctx.settings(&bp).resync_interval;
        warn!(resource = %key, error = %error, step = error.step().as_str(), "reconcile failed; waiting for a change or the next resync");
        Action::requeue(resync)
    }
}

fn now() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .unwrap_or_else(|_| jiff::Timestamp::now())
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_payloads_become_messages() {
        let s: Box<dyn std::any::Any + Send> = Box::new("boom");
        assert_eq!(panic_message(s.as_ref()), "boom");
        let s: Box<dyn std::any::Any + Send> = Box::new(String::from("bang"));
        assert_eq!(panic_message(s.as_ref()), "bang");
        let s: Box<dyn std::any::Any + Send> = Box::new(7u8);
        assert_eq!(panic_message(s.as_ref()), "panic with a non-string payload");
    }

    #[test]
    fn spec_edits_and_new_update_now_values_are_edits() {
        let mut bp = crate::fixtures::example();
        bp.metadata.generation = Some(2);
        let settings_of = |bp: &BranchPipeline| {
            policy::settings(
                bp,
                Defaults {
                    resync_interval: Duration::from_secs(600),
                    deletion_policy: None,
                },
            )
        };
        assert!(is_edit(&bp, &settings_of(&bp)), "never observed");
        bp.status = Some(BranchPipelineStatus {
            observed_generation: Some(2),
            ..Default::default()
        });
        assert!(!is_edit(&bp, &settings_of(&bp)), "a resync");
        bp.metadata.annotations =
            Some([(annotations::UPDATE_NOW.to_string(), "t1".to_string())].into());
        assert!(is_edit(&bp, &settings_of(&bp)), "a new update-now value");
        if let Some(status) = bp.status.as_mut() {
            status.update_now = Some("t1".into());
        }
        assert!(!is_edit(&bp, &settings_of(&bp)), "acted on already");
    }

    #[tokio::test]
    async fn a_panic_in_one_reconcile_is_an_error_for_it_alone_and_is_counted() {
        let metrics = Metrics::new();
        let panicking = async {
            tokio::task::yield_now().await;
            let index: usize = "9".parse().expect("a number");
            [0u8; 2][index]
        };
        let err = unpanicked(&metrics, panicking)
            .await
            .expect_err("the panic is caught");
        assert!(err.contains("index out of bounds"), "{err}");
        assert!(Error::Panicked(err).is_retryable());
        assert_eq!(unpanicked(&metrics, async { 7 }).await, Ok(7));
        let text = metrics.encode();
        assert!(
            text.contains("branchpipeline_reconcile_panics_total 1\n"),
            "{text}"
        );
    }
}
