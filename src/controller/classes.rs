//! BranchPipelineClasses in the controller: the class watch (a cache the reconciles read, and
//! the changes that re-reconcile a class's users), and the observation a compile needs (the
//! resource's class and, for a class kept for some namespaces, its namespace's labels). The
//! decisions are [`crate::class`]'s and [`crate::reconcile::refusal`]'s.
//!
//! One cache feeds both the reads and the triggers, and it is updated before a change is sent:
//! a reconcile woken by a class edit always reads that edit, never the class before it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::channel::mpsc::{UnboundedReceiver, UnboundedSender};
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Namespace;
use kube::runtime::reflector::{self, ObjectRef, Store, store::Writer};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};
use tracing::{debug, info, warn};

use super::Context;
use super::busy::Busy;
use crate::api::{BranchPipeline, BranchPipelineClass, ClassRef};
use crate::class::{self, ClassChange, Compiled, Seen};
use crate::reconcile::error::{Error, Step};
use crate::reconcile::refusal::Blocked;

/// How long a reconcile waits for the first class listing before it backs off.
const CACHE_WAIT: Duration = Duration::from_secs(30);

/// The class cache of the running watch, and the namespace labels last read.
#[derive(Default)]
pub(super) struct Classes {
    /// Replaced by each run of the controller (a new leadership term starts a new watch).
    store: Mutex<Option<Store<BranchPipelineClass>>>,
    /// Labels of the namespaces whose class restricts namespaces, as the reconcile last read
    /// them: the tracker, which polls far more often, does not read them again.
    labels: Mutex<HashMap<String, BTreeMap<String, String>>>,
}

impl Classes {
    /// A new, empty cache for a run of the controller, and the writer its watch fills.
    pub(super) fn start(&self) -> Writer<BranchPipelineClass> {
        let (reader, writer) = reflector::store();
        *self.store.lock().unwrap_or_else(|e| e.into_inner()) = Some(reader);
        writer
    }

    fn store(&self) -> Option<Store<BranchPipelineClass>> {
        self.store.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn labels(&self, namespace: &str) -> Option<BTreeMap<String, String>> {
        let labels = self.labels.lock().unwrap_or_else(|e| e.into_inner());
        labels.get(namespace).cloned()
    }

    fn remember(&self, namespace: &str, labels: BTreeMap<String, String>) {
        self.labels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(namespace.to_string(), labels);
    }
}

/// What a resource's compile reads besides the resource.
struct View {
    class: Option<Arc<BranchPipelineClass>>,
    labels: BTreeMap<String, String>,
}

/// Observe (the class cache, and the namespace when the class restricts namespaces), then the
/// pure compile. The outer error is the observation failing (retried with backoff); the inner
/// one is the resource blocked by its class, which no retry fixes.
pub(super) async fn compile(
    ctx: &Context,
    bp: &BranchPipeline,
) -> Result<Result<Compiled, Blocked>, Error> {
    let store = ready_store(ctx).await?;
    let view = match observe(ctx, bp, &store).await? {
        Ok(view) => view,
        Err(e) => return Ok(Err(Blocked::Select(e))),
    };
    Ok(class::compile(bp, view.class.as_deref(), &view.labels).map_err(Blocked::Refused))
}

/// The compile from what is already in memory, without waiting or reading the API: for the
/// execution tracker, which follows only what a reconcile has created. `None` when the
/// resource does not compile (yet).
pub(super) fn compile_cached(ctx: &Context, bp: &BranchPipeline) -> Option<Compiled> {
    let store = ctx.classes.store()?;
    let classes = store.state();
    let class = class::select(&ctx.choice(bp), &classes).ok()?;
    let labels = ctx
        .classes
        .labels(&bp.namespace().unwrap_or_default())
        .unwrap_or_default();
    class::compile(bp, class.map(AsRef::as_ref), &labels).ok()
}

/// The class `bp` uses now, as the cache holds it (waiting for its first listing), for the
/// first reconcile's "settled?" check. `None` when that cannot be told (no listing in time, or
/// no class can be chosen): the reconcile then runs at once and reports why.
pub(super) async fn current(ctx: &Context, bp: &BranchPipeline) -> Option<Option<ClassRef>> {
    let store = ready_store(ctx).await.ok()?;
    let classes = store.state();
    let class = class::select(&ctx.choice(bp), &classes).ok()?;
    Some(class.map(|c| ClassRef::of(c)))
}

async fn ready_store(ctx: &Context) -> Result<Store<BranchPipelineClass>, Error> {
    let store = ctx.classes.store().ok_or(Error::ClassesNotSynced)?;
    match tokio::time::timeout(CACHE_WAIT, store.wait_until_ready()).await {
        Ok(Ok(())) => Ok(store),
        _ => Err(Error::ClassesNotSynced),
    }
}

async fn observe(
    ctx: &Context,
    bp: &BranchPipeline,
    store: &Store<BranchPipelineClass>,
) -> Result<Result<View, class::SelectError>, Error> {
    let classes = store.state();
    let class = match class::select(&ctx.choice(bp), &classes) {
        Ok(class) => class.cloned(),
        Err(e) => return Ok(Err(e)),
    };
    let restricted = class
        .as_ref()
        .is_some_and(|c| c.spec.guardrails.allowed_namespaces.is_some());
    let labels = if restricted {
        namespace_labels(ctx, &bp.namespace().unwrap_or_default()).await?
    } else {
        BTreeMap::new()
    };
    Ok(Ok(View { class, labels }))
}

async fn namespace_labels(
    ctx: &Context,
    namespace: &str,
) -> Result<BTreeMap<String, String>, Error> {
    let ns = Api::<Namespace>::all(ctx.client.clone())
        .get(namespace)
        .await
        .map_err(Error::kube(Step::Observe))?;
    let labels = ns.metadata.labels.unwrap_or_default();
    ctx.classes.remember(namespace, labels.clone());
    Ok(labels)
}

/// Watches every class into `writer` until `shutdown`, sending each change to every
/// controller after the cache holds it.
pub(super) async fn watch(
    api: Api<BranchPipelineClass>,
    writer: Writer<BranchPipelineClass>,
    subscribers: Vec<UnboundedSender<ClassChange>>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let mut seen = Seen::default();
    // The same single, capped backoff as the BranchPipeline watches: a class edit made after an
    // API server outage reaches its users within seconds of the server's return.
    let events = watcher(api, watcher::Config::default())
        .backoff(super::watch::WatchBackoff::default())
        .modify(super::watch::trim)
        .reflect(writer);
    let changes = events.filter_map(move |event| {
        let changes = match event {
            Ok(event) => changes(&mut seen, &event),
            Err(e) => {
                warn!(error = %e, "class watch failed; retrying");
                Vec::new()
            }
        };
        futures::future::ready(Some(changes))
    });
    tokio::pin!(changes);
    tokio::pin!(shutdown);
    loop {
        let batch = tokio::select! {
            () = &mut shutdown => break,
            batch = changes.next() => match batch {
                Some(batch) => batch,
                None => break,
            },
        };
        for change in batch {
            info!(class = %change.name, default = change.default_before_or_now, "class changed; reconciling its users");
            for subscriber in &subscribers {
                // A closed channel is a controller that has stopped: nothing to wake.
                let _ = subscriber.unbounded_send(change.clone());
            }
        }
    }
    debug!("class watch stopped");
}

fn changes(seen: &mut Seen, event: &watcher::Event<BranchPipelineClass>) -> Vec<ClassChange> {
    match event {
        watcher::Event::Init => {
            seen.relist_started();
            Vec::new()
        }
        watcher::Event::InitApply(class) => seen.applied(class, true).into_iter().collect(),
        watcher::Event::InitDone => seen.relist_done(),
        watcher::Event::Apply(class) => seen.applied(class, false).into_iter().collect(),
        watcher::Event::Delete(class) => vec![seen.deleted(class)],
    }
}

/// The resources of `reader` each change concerns, as reconcile requests, fed in only while
/// slots are left for edits (see [`super::busy`]).
pub(super) fn users_of(
    changes: UnboundedReceiver<ClassChange>,
    reader: Store<BranchPipeline>,
    ctx: &Context,
) -> impl Stream<Item = ObjectRef<BranchPipeline>> + Send + use<> {
    let busy: Arc<Busy> = ctx.busy.clone();
    let limit = super::busy::rollout_limit(ctx.config.max_concurrent_reconciles);
    changes
        .flat_map(move |change| {
            let resources = reader.state();
            let refs: Vec<ObjectRef<BranchPipeline>> = class::users(&change, &resources)
                .map(|bp| ObjectRef::from_obj(bp.as_ref()))
                .collect();
            debug!(class = %change.name, users = refs.len(), "class users");
            futures::stream::iter(refs)
        })
        .then(move |user| {
            let busy = busy.clone();
            async move {
                busy.room(limit).await;
                user
            }
        })
}
