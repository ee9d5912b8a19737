//! The Apply branch: observe AWS, decide, carry out.

use std::time::Duration;

use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action;
use tracing::info;

use super::{Context, classes, effects, now};
use crate::api::*;
use crate::aws::AwsApi;
use crate::aws::inventory::{Delta, Inventory};
use crate::metrics::Metrics;
use crate::reconcile::apply::Verb;
use crate::reconcile::diff::{self, Kind, Observed, Owner, Plan};
use crate::reconcile::error::{Error, Step};
use crate::reconcile::observe::{self, Owned, Scope};
use crate::reconcile::outcome::{self, Facts, Outcome};
use crate::reconcile::{apply, deferral, refusal};
use crate::render::DesiredState;

pub(super) async fn sync(
    bp: &BranchPipeline,
    ctx: &Context,
    api: &Api<BranchPipeline>,
) -> Result<Action, Error> {
    let settings = ctx.settings(bp);
    let previous = bp.status.clone().unwrap_or_default();
    let now = now();
    let compiled = classes::compile(ctx, bp).await?;
    let class = compiled.as_ref().ok().and_then(|c| c.class.clone());
    let facts = Facts {
        generation: bp.metadata.generation,
        previous: &previous,
        settings: &settings,
        now: &now,
        next_resync: ctx.next_resync(bp, settings.resync_interval),
        class: class.as_ref(),
    };
    let outcome = match compiled {
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
    /// The execution poll interval: how soon an update held back is looked at again.
    pub poll: Duration,
}

#[cfg(test)]
impl<'a> Reads<'a> {
    /// A reconcile's reads for unit tests: first pass, nothing listed yet, AWS's default quotas.
    pub(super) fn for_tests(aws: &'a dyn AwsApi, inventory: &'a Inventory) -> Self {
        Self {
            aws,
            inventory,
            pass: 0,
            max_age: Duration::from_secs(600),
            quotas: outcome::Quotas {
                pipelines: 1000,
                projects: 5000,
            },
            metrics: None,
            poll: Duration::from_secs(60),
        }
    }
}

/// Observe → plan → hold back what would cancel executions → apply → decide.
async fn sync_aws(
    bp: &BranchPipeline,
    reads: &Reads<'_>,
    facts: &Facts<'_>,
    desired: &DesiredState,
) -> Outcome {
    match observe_and_plan(bp, reads, facts, desired).await {
        Ok((observed, plan)) => apply_plan(bp, reads, facts, desired, &observed, &plan).await,
        Err(outcome) => outcome,
    }
}

async fn observe_and_plan(
    bp: &BranchPipeline,
    reads: &Reads<'_>,
    facts: &Facts<'_>,
    desired: &DesiredState,
) -> Result<(Observed, Plan), Outcome> {
    let aws = reads.aws;
    let namespace = bp.namespace().unwrap_or_default();
    let name = bp.name_any();
    let known = known(facts.previous);
    let snapshot = if observe::needs_discovery(desired, &known) {
        let snapshot = reads.inventory.snapshot(aws, reads.max_age).await;
        Some(snapshot.map_err(|e| outcome::aws_failed(facts, Step::Observe, e, &[]))?)
    } else {
        None
    };
    let scope = Scope {
        namespace: &namespace,
        name: &name,
        known: &known,
        snapshot: snapshot.as_deref(),
        pass: reads.pass,
        first_sync: never_synced(facts.previous),
    };
    let observed = observe::observe(aws, desired, &scope)
        .await
        .map_err(|e| outcome::aws_failed(facts, Step::Observe, e, &[]))?;
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
            return Err(outcome::quota_exceeded(facts, &message));
        }
    }
    Ok((observed, plan))
}

/// Reads the executions in flight of the pipelines the plan updates or deletes, holds back the
/// updates `spec.updatePolicy` says must wait, applies the rest and decides.
async fn apply_plan(
    bp: &BranchPipeline,
    reads: &Reads<'_>,
    facts: &Facts<'_>,
    desired: &DesiredState,
    observed: &Observed,
    plan: &Plan,
) -> Outcome {
    let aws = reads.aws;
    let touched: Vec<String> = plan
        .update_pipelines
        .iter()
        .map(|p| p.name.clone())
        .chain(plan.delete_pipelines.iter().cloned())
        .collect();
    let in_flight = match observe::in_flight(aws, &touched).await {
        Ok(in_flight) => in_flight,
        Err(e) => return outcome::aws_failed(facts, Step::Observe, e, &[]),
    };
    let deferral = deferral::decide(
        plan,
        &in_flight,
        deferral::Policy::of(&bp.spec),
        facts.previous,
        facts.settings.update_now.as_deref(),
        facts.now,
    );
    let plan = deferral::without_deferred(plan, &deferral, observed);
    info!(
        writes = plan.writes(),
        foreign = plan.foreign.len(),
        deferred = deferral.deferred.len(),
        "planned"
    );
    let mut done = Vec::new();
    let applied = apply::apply(aws, &plan, &mut done).await;
    record(reads, &done).await;
    let mut out = match applied {
        Ok(()) => outcome::synced(facts, desired, observed, &plan, &done),
        Err(e) => outcome::aws_failed(facts, Step::Apply, e, &done),
    };
    deferral::report(&mut out, facts, &deferral, &done, reads.poll);
    out
}

/// This reconcile's creates and deletes into the shared listing, and the account gauges.
async fn record(reads: &Reads<'_>, done: &[apply::Change]) {
    let delta = |kind: Kind| Delta {
        created: names(done, kind, Verb::Created),
        deleted: names(done, kind, Verb::Deleted),
    };
    let counts = reads
        .inventory
        .record(&delta(Kind::Pipeline), &delta(Kind::Project))
        .await;
    if let (Some((pipelines, projects)), Some(metrics)) = (counts, reads.metrics) {
        metrics.set_account(pipelines, projects);
    }
}

fn names(done: &[apply::Change], kind: Kind, verb: Verb) -> Vec<&str> {
    done.iter()
        .filter(|c| c.kind == kind && c.verb == verb)
        .map(|c| c.name.as_str())
        .collect()
}

/// Nothing in the status: no resource named, no condition from an attempt.
fn never_synced(status: &BranchPipelineStatus) -> bool {
    status.conditions.is_empty() && status.pipelines.is_empty() && status.projects.is_empty()
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
    use crate::render;

    fn example() -> BranchPipeline {
        let mut bp = crate::fixtures::example();
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
        sync_listed(aws, bp, previous, &Inventory::default()).await
    }

    /// The same with a shared listing, which may be older than what AWS now holds.
    async fn sync_listed(
        aws: &FakeAws,
        bp: &BranchPipeline,
        previous: &BranchPipelineStatus,
        inventory: &Inventory,
    ) -> Outcome {
        let s = settings_of(bp);
        let facts = Facts {
            generation: bp.metadata.generation,
            previous,
            settings: &s,
            now: "t",
            next_resync: Duration::from_secs(600),
            class: None,
        };
        let desired = render::compile(bp).expect("renders");
        let reads = Reads::for_tests(aws, inventory);
        sync_aws(bp, &reads, &facts, &desired).await
    }

    fn assert_retryable(out: &Outcome) {
        assert!(
            matches!(&out.next, Next::Fail(e) if e.is_retryable()),
            "{:?}",
            out.next
        );
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
        assert_eq!(
            reasons(&out),
            ["Created"],
            "one Event for everything created"
        );
        for name in aws.pipeline_names().iter().chain(&aws.project_names()) {
            assert!(out.events[0].note.contains(name.as_str()), "{name}");
        }
        let again = sync_once(&aws, &bp, &out.status).await;
        assert!(again.events.is_empty());
        assert_eq!(
            aws.count("CreateProject"),
            4,
            "an in-sync resource writes nothing"
        );
    }

    /// The shared listing is taken once; the second resource's quota check still counts the
    /// first one's pipelines, created since.
    #[tokio::test]
    async fn the_quota_check_counts_creates_made_since_the_listing() {
        let aws = FakeAws::default();
        let inventory = Inventory::default();
        let reconcile = |name: &str| {
            let mut bp = example();
            bp.metadata.name = Some(name.into());
            bp
        };
        let run = |bp: BranchPipeline| {
            let (aws, inventory) = (&aws, &inventory);
            async move {
                let s = settings_of(&bp);
                let previous = BranchPipelineStatus::default();
                let facts = Facts {
                    generation: bp.metadata.generation,
                    previous: &previous,
                    settings: &s,
                    now: "t",
                    next_resync: Duration::from_secs(600),
                    class: None,
                };
                let desired = render::compile(&bp).expect("renders");
                let reads = Reads {
                    quotas: outcome::Quotas {
                        pipelines: 3,
                        projects: 5000,
                    },
                    ..Reads::for_tests(aws, inventory)
                };
                sync_aws(&bp, &reads, &facts, &desired).await
            }
        };
        let first = run(reconcile("first")).await;
        assert_eq!(reasons(&first), ["Created"]);
        let second = run(reconcile("second")).await;
        assert_eq!(aws.count("ListPipelines"), 1, "one listing for both");
        assert_eq!(aws.count("CreatePipeline"), 2, "the second creates nothing");
        let ready = second.status.condition(CONDITION_READY).expect("Ready");
        assert_eq!(ready.reason, "QuotaExceeded", "{}", ready.message);
        assert!(ready.message.contains("would make 4"), "{}", ready.message);
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
        assert_eq!(reasons(&first), ["Created"]);
        assert_eq!(
            first.events[0]
                .note
                .matches("Created CodeBuild project")
                .count(),
            2,
            "the two projects created before the failure: {}",
            first.events[0].note
        );
        assert_retryable(&first);
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
    async fn drift_during_a_run_waits_and_projects_do_not() {
        use crate::aws::executions::{Execution, ExecutionStatus};
        let aws = FakeAws::default();
        let bp = example();
        let first = sync_once(&aws, &bp, &BranchPipelineStatus::default()).await;
        aws.tamper_pipeline("team-orders-orders-api", |p| {
            p.declaration.execution_mode = "PARALLEL".into();
        });
        aws.report(
            Execution {
                id: "running-1".into(),
                status: ExecutionStatus::InProgress,
                ..Execution::default()
            },
            Vec::new(),
        );
        let mut edited = bp.clone();
        edited.metadata.generation = Some(2);
        edited.spec.stages[1].compute_type = Some(ComputeType::General1Large);
        let held = sync_once(&aws, &edited, &first.status).await;
        assert_eq!(
            aws.count("UpdatePipeline"),
            0,
            "the repair waits for the run"
        );
        assert_eq!(
            aws.count("UpdateProject"),
            1,
            "a project update does not wait"
        );
        assert_eq!(held.status.pending_updates.len(), 1);
        assert_eq!(held.drift_repairs, 0);
        assert!(reasons(&held).contains(&"UpdatePending"));
        aws.report(
            Execution {
                id: "running-1".into(),
                status: ExecutionStatus::Succeeded,
                ..Execution::default()
            },
            Vec::new(),
        );
        let done = sync_once(&aws, &edited, &held.status).await;
        assert_eq!(
            aws.count("UpdatePipeline"),
            1,
            "repaired once the run ended"
        );
        assert!(done.status.pending_updates.is_empty());
        assert!(done.status.condition(CONDITION_UPDATE_PENDING).is_none());
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
    async fn a_never_synced_resource_reads_only_the_listing_before_creating() {
        let aws = FakeAws::default();
        let bp = example();
        let out = sync_once(&aws, &bp, &BranchPipelineStatus::default()).await;
        assert!(matches!(out.next, Next::Requeue(_)));
        assert_eq!(aws.count("GetPipeline"), 0);
        assert_eq!(aws.count("BatchGetProjects"), 0);
        assert_eq!(aws.count("ListPipelines") + aws.count("ListProjects"), 2);
        assert_eq!(aws.count("CreatePipeline") + aws.count("CreateProject"), 6);
        // Once synced, the next reconcile reads its own resources by name and lists nothing.
        let again = sync_once(&aws, &bp, &out.status).await;
        assert!(again.events.is_empty());
        assert_eq!(aws.count("GetPipeline"), 2);
        assert_eq!(aws.count("BatchGetProjects"), 1);
        assert_eq!(aws.count("ListPipelines"), 1);
    }

    #[tokio::test]
    async fn a_listed_name_is_read_before_the_first_create() {
        // Another tenant's project holds one of the rendered names: it is read, not created.
        let aws = FakeAws::default();
        let bp = example();
        let mut foreign = render::compile(&bp).expect("renders").projects[0].clone();
        foreign.tags.clear();
        aws.create_project(&foreign).await.expect("create");
        let out = sync_once(&aws, &bp, &BranchPipelineStatus::default()).await;
        assert_eq!(aws.count("BatchGetProjects"), 1);
        assert_eq!(
            aws.count("CreateProject"),
            4,
            "the foreign one is not created again"
        );
        assert!(reasons(&out).contains(&"NotOwned"), "{:?}", reasons(&out));
    }

    #[tokio::test]
    async fn a_resource_created_since_the_listing_costs_one_retry() {
        // A crash after a create, before the status write: the listing predates the create.
        let aws = FakeAws::default();
        let bp = example();
        let inventory = Inventory::default();
        inventory
            .snapshot(&aws, Duration::from_secs(600))
            .await
            .expect("lists");
        let ours = render::compile(&bp).expect("renders").projects[1].clone();
        aws.create_project(&ours).await.expect("create");
        let first = sync_listed(&aws, &bp, &BranchPipelineStatus::default(), &inventory).await;
        assert_retryable(&first);
        let synced = first.status.condition(CONDITION_SYNCED).expect("Synced");
        assert_eq!(synced.status, "False");
        // The failure is in the status, so the retry reads by name and converges.
        let second = sync_listed(&aws, &bp, &first.status, &inventory).await;
        assert!(matches!(second.next, Next::Requeue(_)), "{:?}", second.next);
        assert_eq!(aws.project_names().len(), 4);
        assert_eq!(aws.pipeline_names().len(), 2);
    }

    #[tokio::test]
    async fn a_slow_aws_delays_but_does_not_change_the_outcome() {
        let aws = FakeAws::default();
        aws.delay("CreatePipeline", Duration::from_millis(20));
        let bp = example();
        let started = std::time::Instant::now();
        let out = sync_once(&aws, &bp, &BranchPipelineStatus::default()).await;
        assert!(
            started.elapsed() >= Duration::from_millis(40),
            "two CreatePipeline calls"
        );
        assert!(matches!(out.next, Next::Requeue(_)));
    }
}
