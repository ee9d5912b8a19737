//! The Apply branch: observe AWS, decide, carry out.

use std::time::Duration;

use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action;
use tracing::info;

use super::{Context, classes, effects, now};
use crate::api::*;
use crate::aws::AwsApi;
use crate::aws::inventory::Inventory;
use crate::metrics::Metrics;
use crate::reconcile::apply;
use crate::reconcile::diff::{self, Owner};
use crate::reconcile::error::{Error, Step};
use crate::reconcile::observe::{self, Owned, Scope};
use crate::reconcile::outcome::{self, Facts, Outcome};
use crate::reconcile::refusal;
use crate::render::DesiredState;

pub(super) async fn sync(
    bp: &BranchPipeline,
    ctx: &Context,
    api: &Api<BranchPipeline>,
) -> Result<Action, Error> {
    let settings = ctx.settings(bp);
    let previous = bp.status.clone().unwrap_or_default();
    let now = now();
    let facts = Facts {
        generation: bp.metadata.generation,
        previous: &previous,
        settings: &settings,
        now: &now,
        next_resync: ctx.next_resync(bp, settings.resync_interval),
    };
    let outcome = match classes::compile(ctx, bp).await? {
        Err(blocked) => refusal::blocked(&facts, blocked),
        Ok(compiled) => sync_aws(bp, &ctx.reads(bp), &facts, &compiled.desired).await,
    };
    effects::carry_out(ctx, api, bp, outcome).await
}

/// How the AWS half of a reconcile reads: the client, the shared listing (consulted only to
/// discover what the status does not name, and listed again when older than `max_age`), and
/// this object's pass number.
pub(super) struct Reads<'a> {
    pub aws: &'a dyn AwsApi,
    pub inventory: &'a Inventory,
    pub pass: usize,
    pub max_age: Duration,
    pub quotas: outcome::Quotas,
    /// Where the account's counts from a listing go, for the quota gauges.
    pub metrics: Option<&'a Metrics>,
}

/// Observe → plan → apply → decide.
async fn sync_aws(
    bp: &BranchPipeline,
    reads: &Reads<'_>,
    facts: &Facts<'_>,
    desired: &DesiredState,
) -> Outcome {
    let aws = reads.aws;
    let namespace = bp.namespace().unwrap_or_default();
    let name = bp.name_any();
    let known = known(facts.previous);
    let snapshot = if observe::needs_discovery(desired, &known) {
        match reads.inventory.snapshot(aws, reads.max_age).await {
            Ok(snapshot) => Some(snapshot),
            Err(e) => return outcome::aws_failed(facts, Step::Observe, e, &[]),
        }
    } else {
        None
    };
    let scope = Scope {
        namespace: &namespace,
        name: &name,
        known: &known,
        snapshot: snapshot.as_deref(),
        pass: reads.pass,
    };
    let observed = match observe::observe(aws, desired, &scope).await {
        Ok(observed) => observed,
        Err(e) => return outcome::aws_failed(facts, Step::Observe, e, &[]),
    };
    let owner = Owner {
        namespace: &namespace,
        name: &name,
        adopt: facts.settings.adopt,
    };
    let plan = diff::plan(desired, &observed, &owner);
    if let Some(snapshot) = &snapshot {
        let account = (snapshot.pipelines.len(), snapshot.projects.len());
        if let Some(metrics) = reads.metrics {
            metrics.set_account(account.0, account.1);
        }
        if let Some(message) = outcome::over_quota(&plan, account, reads.quotas) {
            return outcome::quota_exceeded(facts, &message);
        }
    }
    info!(
        writes = plan.writes(),
        foreign = plan.foreign.len(),
        "planned"
    );
    let mut done = Vec::new();
    if let Err(e) = apply::apply(aws, &plan, &mut done).await {
        return outcome::aws_failed(facts, Step::Apply, e, &done);
    }
    outcome::synced(facts, desired, &observed, &plan, &done)
}

/// What the last status named as this resource's.
pub(super) fn known(status: &BranchPipelineStatus) -> Owned {
    Owned {
        pipelines: status.pipelines.iter().map(|p| p.name.clone()).collect(),
        projects: status.projects.clone(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::aws::Retry;
    use crate::aws::fake::FakeAws;
    use crate::reconcile::outcome::Next;
    use crate::reconcile::policy::{Defaults, Settings, settings};
    use crate::{manifest, render};

    fn example() -> BranchPipeline {
        let mut bp = manifest::parse_documents(include_str!("../../examples/orders-api.yaml"))
            .remove(0)
            .result
            .expect("the example parses");
        bp.metadata.generation = Some(1);
        bp
    }

    fn settings_of(bp: &BranchPipeline) -> Settings {
        settings(
            bp,
            Defaults {
                resync_interval: Duration::from_secs(600),
                deletion_policy: None,
            },
        )
    }

    /// One reconcile's AWS half against the fake, from `previous`.
    async fn sync_once(
        aws: &FakeAws,
        bp: &BranchPipeline,
        previous: &BranchPipelineStatus,
    ) -> Outcome {
        let s = settings_of(bp);
        let facts = Facts {
            generation: bp.metadata.generation,
            previous,
            settings: &s,
            now: "t",
            next_resync: Duration::from_secs(600),
        };
        let desired = render::compile(bp).expect("renders");
        let inventory = Inventory::default();
        let reads = Reads {
            aws,
            inventory: &inventory,
            pass: 0,
            max_age: Duration::from_secs(600),
            quotas: crate::reconcile::outcome::Quotas {
                pipelines: 1000,
                projects: 5000,
            },
            metrics: None,
        };
        sync_aws(bp, &reads, &facts, &desired).await
    }

    fn reasons(out: &Outcome) -> Vec<&str> {
        out.events.iter().map(|e| e.reason.as_str()).collect()
    }

    #[tokio::test]
    async fn a_fresh_resource_creates_everything_once() {
        let aws = FakeAws::default();
        let bp = example();
        let out = sync_once(&aws, &bp, &BranchPipelineStatus::default()).await;
        assert!(matches!(out.next, Next::Requeue(_)));
        assert_eq!(aws.count("CreateProject"), 4, "shared by both pipelines");
        assert_eq!(aws.count("CreatePipeline"), 2);
        assert_eq!(reasons(&out).iter().filter(|r| **r == "Created").count(), 6);
        let again = sync_once(&aws, &bp, &out.status).await;
        assert!(again.events.is_empty());
        assert_eq!(
            aws.count("CreateProject"),
            4,
            "an in-sync resource writes nothing"
        );
    }

    #[tokio::test]
    async fn a_failure_on_exactly_the_third_create_resumes_without_duplicates() {
        let aws = FakeAws::default();
        aws.fail(
            "CreateProject",
            Some(3),
            "ThrottlingException",
            Retry::Retryable,
        );
        let bp = example();
        let first = sync_once(&aws, &bp, &BranchPipelineStatus::default()).await;
        assert_eq!(reasons(&first), ["Created", "Created"]);
        assert!(matches!(&first.next, Next::Fail(e) if e.is_retryable()));
        let synced = first.status.condition(CONDITION_SYNCED).expect("Synced");
        assert_eq!(synced.reason, "AWSError");
        assert!(
            synced
                .message
                .contains("CreateProject team-orders-orders-api-build"),
            "{}",
            synced.message
        );

        let second = sync_once(&aws, &bp, &first.status).await;
        assert!(matches!(second.next, Next::Requeue(_)));
        assert_eq!(aws.project_names().len(), 4);
        assert_eq!(
            aws.count("CreateProject"),
            5,
            "4 projects, one of them tried twice"
        );
        assert_eq!(aws.count("CreatePipeline"), 2);
    }

    #[tokio::test]
    async fn tampering_is_repaired_and_reported_as_drift() {
        let aws = FakeAws::default();
        let bp = example();
        let first = sync_once(&aws, &bp, &BranchPipelineStatus::default()).await;
        aws.tamper_pipeline("team-orders-orders-api", |p| {
            p.declaration.execution_mode = "PARALLEL".into();
        });
        let second = sync_once(&aws, &bp, &first.status).await;
        assert_eq!(reasons(&second), ["DriftRepaired"]);
        assert_eq!(second.drift_repairs, 1);
        assert_eq!(aws.count("UpdatePipeline"), 1);
    }

    #[tokio::test]
    async fn a_terminal_failure_stops_before_the_pipelines() {
        let aws = FakeAws::default();
        aws.fail(
            "CreateProject",
            None,
            "AccessDeniedException",
            Retry::Terminal,
        );
        let bp = example();
        let out = sync_once(&aws, &bp, &BranchPipelineStatus::default()).await;
        assert_eq!(aws.count("CreatePipeline"), 0);
        assert_eq!(reasons(&out), ["AWSTerminalError"]);
        assert!(matches!(&out.next, Next::Fail(e) if !e.is_retryable()));
    }

    #[tokio::test]
    async fn a_slow_aws_delays_but_does_not_change_the_outcome() {
        let aws = FakeAws::default();
        aws.delay("GetPipeline", Duration::from_millis(20));
        let bp = example();
        let started = std::time::Instant::now();
        let out = sync_once(&aws, &bp, &BranchPipelineStatus::default()).await;
        assert!(
            started.elapsed() >= Duration::from_millis(40),
            "two GetPipeline calls"
        );
        assert!(matches!(out.next, Next::Requeue(_)));
    }
}
