//! Follows every BranchPipeline's executions: observe (ListPipelineExecutions from the cursor,
//! then each new execution's actions) → decide ([`crate::reconcile::tracking`]) → carry out
//! (post commit statuses, write the tracker's part of the status).
//!
//! Each object is polled on its own schedule, kept in memory: every `--execution-poll-interval`,
//! and every `active_interval` while an execution is in flight. A settled pipeline costs one
//! ListPipelineExecutions per poll, which stops at the cursor on its first item.
//!
//! The tracker writes `status.environments`, `lastExecution`, `executionCursors` and the
//! `CommitStatuses` condition under its own field manager, and the reconcile never writes them,
//! so neither undoes the other.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Patch, PatchParams};
use kube::runtime::reflector::Store;
use kube::{Api, ResourceExt};
use serde_json::json;
use tokio::time::Instant;
use tracing::{Instrument, debug, info_span, warn};

use super::{Context, key, now};
use crate::api::{BranchPipeline, BranchPipelineStatus};
use crate::aws::AwsApi;
use crate::aws::error::AwsError;
use crate::github::Repo;
use crate::reconcile::executions::{ExecutionView, TrackedPipeline};
use crate::reconcile::tracking::{self, Executions, Reading, Reporting};

/// The field manager of the tracker's status fields.
pub const TRACKER_MANAGER: &str = "branchpipeline-controller-executions";
/// Executions read the first time a pipeline is seen (no cursor yet).
const FIRST_READ: usize = 10;
/// Executions read at most per poll after that.
const LATER_READ: usize = 100;
/// How often the schedule is checked.
const TICK: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct TrackerConfig {
    /// Between polls of a pipeline with nothing running (`--execution-poll-interval`).
    pub poll_interval: Duration,
    /// Between polls while an execution is in flight.
    pub active_interval: Duration,
    /// The AWS region, for console links.
    pub region: String,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(60),
            active_interval: Duration::from_secs(10),
            region: "us-east-1".into(),
        }
    }
}

/// Polls until `shutdown` completes. `stores` are the BranchPipeline watches' caches: the
/// tracker follows exactly what this process reconciles.
pub async fn run(
    ctx: Arc<Context>,
    stores: Vec<Store<BranchPipeline>>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let mut schedule = Schedule::default();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            () = tokio::time::sleep(TICK) => {}
        }
        let objects: Vec<Arc<BranchPipeline>> = stores
            .iter()
            .flat_map(Store::state)
            .filter(|bp| bp.metadata.deletion_timestamp.is_none())
            .collect();
        let due = schedule.due(&objects, ctx.config.tracker.poll_interval);
        let polled: Vec<(String, Polled)> = futures::stream::iter(due)
            .map(|(bp, previous)| {
                let ctx = ctx.clone();
                async move {
                    // A bug met polling one object must not end the tracker for all of them.
                    let polled = super::unpanicked(&ctx.metrics, poll(&ctx, &bp, previous))
                        .await
                        .unwrap_or(Polled {
                            after: ctx.config.tracker.poll_interval,
                            written: None,
                        });
                    (identity(&bp), polled)
                }
            })
            .buffer_unordered(usize::from(ctx.config.max_concurrent_reconciles))
            .collect()
            .await;
        for (id, polled) in polled {
            schedule.polled(id, polled);
        }
    }
}

/// An object's identity across renames of nothing: a deleted and re-created object is new.
fn identity(bp: &BranchPipeline) -> String {
    format!("{}#{}", key(bp), bp.uid().unwrap_or_default())
}

/// When each object is polled next, and the tracker's status as last written: the watch cache
/// may not show the tracker's own write yet. An object first seen waits for a slot spread over
/// the poll interval, so a restart does not poll every pipeline at once.
#[derive(Default)]
struct Schedule {
    next: HashMap<String, Instant>,
    written: HashMap<String, BranchPipelineStatus>,
}

impl Schedule {
    fn due(
        &mut self,
        objects: &[Arc<BranchPipeline>],
        interval: Duration,
    ) -> Vec<(Arc<BranchPipeline>, BranchPipelineStatus)> {
        let present: std::collections::HashSet<String> =
            objects.iter().map(|bp| identity(bp)).collect();
        self.next.retain(|k, _| present.contains(k));
        self.written.retain(|k, _| present.contains(k));
        let now = Instant::now();
        let mut due = Vec::new();
        for bp in objects {
            let id = identity(bp);
            let at = *self
                .next
                .entry(id.clone())
                .or_insert_with(|| now + first_delay(bp, interval));
            if at <= now {
                self.next.insert(id.clone(), now + interval);
                let previous = self.written.get(&id).cloned().unwrap_or_else(|| {
                    bp.status
                        .as_ref()
                        .map(BranchPipelineStatus::tracked)
                        .unwrap_or_default()
                });
                due.push((bp.clone(), previous));
            }
        }
        due
    }

    fn polled(&mut self, id: String, polled: Polled) {
        self.next.insert(id.clone(), Instant::now() + polled.after);
        match polled.written {
            Some(status) => self.written.insert(id, status),
            None => self.written.remove(&id),
        };
    }
}

/// What a poll leaves behind.
struct Polled {
    /// Until the next poll.
    after: Duration,
    /// The tracker's status as the API server now holds it; `None` when the write failed.
    written: Option<BranchPipelineStatus>,
}

fn first_delay(bp: &BranchPipeline, interval: Duration) -> Duration {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bp.uid().unwrap_or_else(|| key(bp)).hash(&mut h);
    crate::duration::fraction_of(
        interval,
        u16::try_from(h.finish() % 1000).unwrap_or(0),
        1000,
    )
    .unwrap_or_default()
}

/// One poll of one object.
async fn poll(ctx: &Context, bp: &BranchPipeline, previous: BranchPipelineStatus) -> Polled {
    let config = &ctx.config.tracker;
    let span =
        info_span!("track", namespace = %bp.namespace().unwrap_or_default(), name = %bp.name_any());
    async move {
        let pipelines = followed(ctx, bp);
        if pipelines.is_empty() {
            return Polled {
                after: config.poll_interval,
                written: Some(previous),
            };
        }
        let reporting = reporting(ctx, bp);
        let readings = observe(ctx.background_aws.as_ref(), pipelines, &previous).await;
        let decision = tracking::decide(&previous, &readings, &config.region, &reporting);
        let active = decision.active;
        let report = match (&reporting, ctx.reporter.as_ref()) {
            (Reporting::On(repo), Some(reporter)) if !decision.post.is_empty() => {
                Some(reporter.report(&Repo(repo.clone()), &decision.post).await)
            }
            _ => None,
        };
        let settled = tracking::settle(
            decision,
            &previous,
            &reporting,
            report.as_ref(),
            bp.metadata.generation,
            &now(),
        );
        let written = match write(ctx, bp, &previous, &settled.status).await {
            Ok(()) => Some(settled.status),
            Err(e) => {
                warn!(error = %e, "could not write execution status; trying again next poll");
                None
            }
        };
        let next = if active {
            config.active_interval
        } else {
            config.poll_interval
        };
        let after = settled.retry_after.map_or(next, |r| next.min(r.max(TICK)));
        Polled { after, written }
    }
    .instrument(span)
    .await
}

/// Reads each pipeline from its cursor; a pipeline that cannot be read is left as it was.
async fn observe(
    aws: &dyn AwsApi,
    pipelines: Vec<TrackedPipeline>,
    previous: &BranchPipelineStatus,
) -> Vec<Reading> {
    let mut readings = Vec::with_capacity(pipelines.len());
    for pipeline in pipelines {
        let cursor = cursor(previous, &pipeline.name);
        let executions = match read(aws, &pipeline.name, cursor.as_deref()).await {
            Ok(executions) => Some(executions),
            Err(e) => {
                warn!(pipeline = %pipeline.name, error = %e, "could not read executions; trying again next poll");
                None
            }
        };
        readings.push(Reading {
            pipeline,
            executions,
        });
    }
    readings
}

/// The pipelines to follow: those the spec renders that the reconcile has created (listed in
/// the status), with the resource's class. An invalid spec has none; the reconcile reports why.
fn followed(ctx: &Context, bp: &BranchPipeline) -> Vec<TrackedPipeline> {
    let Some(compiled) = super::classes::compile_cached(ctx, bp) else {
        return Vec::new();
    };
    let state = compiled.desired;
    let created: Vec<&str> = bp
        .status
        .as_ref()
        .map(|s| s.pipelines.iter().map(|p| p.name.as_str()).collect())
        .unwrap_or_default();
    state
        .pipelines
        .iter()
        .filter(|p| created.contains(&p.pipeline.name.as_str()))
        .map(TrackedPipeline::from_desired)
        .collect()
}

fn reporting(ctx: &Context, bp: &BranchPipeline) -> Reporting {
    let wanted = bp.spec.github.as_ref().is_some_and(|g| g.commit_statuses);
    match (wanted, ctx.reporter.is_some()) {
        (false, _) => Reporting::Off,
        (true, false) => Reporting::NoCredentials,
        (true, true) => Reporting::On(bp.spec.source.repository.clone()),
    }
}

fn cursor(status: &BranchPipelineStatus, pipeline: &str) -> Option<String> {
    status
        .execution_cursors
        .iter()
        .find(|c| c.pipeline == pipeline)
        .map(|c| c.execution_id.clone())
}

/// The executions since `cursor`, each with its actions. GetPipelineState gives the stages
/// (and which of them the newest execution skipped); GetPipelineExecution is read only for
/// manual starts, whose variables name the BranchPipelineRun and branch.
async fn read(
    aws: &dyn AwsApi,
    pipeline: &str,
    cursor: Option<&str>,
) -> Result<Executions, AwsError> {
    let limit = if cursor.is_some() {
        LATER_READ
    } else {
        FIRST_READ
    };
    let listed = aws.list_executions(pipeline, cursor, limit).await?;
    if listed.is_empty() {
        return Ok(Executions::default());
    }
    let states = aws.pipeline_state(pipeline).await?;
    let mut views = Vec::with_capacity(listed.len());
    for listed in listed.iter().rev() {
        let mut execution = listed.clone();
        if execution.trigger.as_deref() == Some("StartPipelineExecution")
            && let Some(full) = aws.get_execution(pipeline, &execution.id).await?
        {
            execution.variables = full.variables;
        }
        let actions = aws.action_executions(pipeline, &execution.id).await?;
        views.push(ExecutionView::new(execution, &actions, &states));
    }
    debug!(pipeline, new = listed.len(), "read executions");
    Ok(Executions { listed, views })
}

/// Applies the tracker's fields when they changed, under [`TRACKER_MANAGER`].
async fn write(
    ctx: &Context,
    bp: &BranchPipeline,
    previous: &BranchPipelineStatus,
    status: &BranchPipelineStatus,
) -> Result<(), kube::Error> {
    if previous == status {
        return Ok(());
    }
    let api: Api<BranchPipeline> =
        Api::namespaced(ctx.client.clone(), &bp.namespace().unwrap_or_default());
    let patch = json!({
        "apiVersion": crate::manifest::API_VERSION,
        "kind": crate::manifest::KIND,
        "status": status,
    });
    api.patch_status(
        &bp.name_any(),
        &PatchParams::apply(TRACKER_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map(|_| ())
}
