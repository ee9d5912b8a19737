//! The Cleanup branch: what happens to AWS when a BranchPipeline is deleted. The finalizer is
//! removed only when this returns `Ok`.

use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action;
use tracing::info;

use super::sync::{Reads, known};
use super::{Context, effects, now};
use crate::api::*;
use crate::reconcile::diff::Plan;
use crate::reconcile::error::Error;
use crate::reconcile::observe::{self, Scope};
use crate::reconcile::outcome::{self, CleanupPlan, Facts, Outcome};
use crate::reconcile::{apply, deferral};

pub(super) async fn cleanup(
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
        class: None,
    };
    let outcome = match outcome::cleanup_plan(&settings) {
        CleanupPlan::Retain => {
            info!("deletion policy Retain: leaving AWS resources in place");
            outcome::cleaned_up(&facts, &[])
        }
        CleanupPlan::Blocked(problem) => outcome::deletion_waits_for_annotation(&facts, &problem),
        CleanupPlan::Delete => delete_owned(bp, &ctx.reads(bp), &facts).await,
    };
    if matches!(outcome.managed, outcome::Managed::Gone) {
        // Runs belong to their BranchPipeline; clusters whose garbage collector follows owner
        // references would remove them anyway.
        let deleted = super::runs::delete_runs_of(ctx, bp).await?;
        info!(runs = deleted, "deleted the resource's BranchPipelineRuns");
        ctx.forget(&super::key(bp));
    }
    effects::carry_out(ctx, api, bp, outcome).await
}

/// Observe everything tagged as this resource's, then delete it: pipelines before the projects
/// they run.
async fn delete_owned(bp: &BranchPipeline, reads: &Reads<'_>, facts: &Facts<'_>) -> Outcome {
    let aws = reads.aws;
    let snapshot = match reads.inventory.snapshot(aws, reads.max_age).await {
        Ok(snapshot) => snapshot,
        Err(e) => return outcome::deletion_failed(facts, e, &[]),
    };
    let (namespace, name) = (bp.namespace().unwrap_or_default(), bp.name_any());
    let known = known(facts.previous);
    let scope = Scope {
        namespace: &namespace,
        name: &name,
        known: &known,
        snapshot: Some(&snapshot),
        pass: reads.pass,
        first_sync: false,
    };
    let owned = match observe::discover_owned(aws, &scope).await {
        Ok(owned) => owned,
        Err(e) => return outcome::deletion_failed(facts, e, &[]),
    };
    let plan = Plan {
        delete_pipelines: owned.pipelines,
        delete_projects: owned.projects,
        ..Plan::default()
    };
    // Deletion is what was asked for, so it never waits; the executions it stops are named.
    let in_flight = match observe::in_flight(aws, &plan.delete_pipelines).await {
        Ok(in_flight) => in_flight,
        Err(e) => return outcome::deletion_failed(facts, e, &[]),
    };
    let stopping = deferral::decide(
        &plan,
        &in_flight,
        deferral::Policy::default(),
        facts.previous,
        None,
        facts.now,
    );
    let mut done = Vec::new();
    let mut out = match apply::apply(aws, &plan, &mut done).await {
        Ok(()) => outcome::cleaned_up(facts, &done),
        Err(e) => outcome::deletion_failed(facts, e, &done),
    };
    deferral::report_cancelled(&mut out, &stopping, &done);
    info!(
        pipelines = plan.delete_pipelines.len(),
        projects = plan.delete_projects.len(),
        done = done.len(),
        "cleanup pass"
    );
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::aws::fake::FakeAws;
    use crate::aws::{AwsApi, Retry};
    use crate::reconcile::outcome::{Managed, Next};
    use crate::reconcile::policy::{Defaults, settings};
    use crate::render;

    async fn seeded() -> (FakeAws, BranchPipeline, BranchPipelineStatus) {
        let bp = crate::fixtures::example();
        let aws = FakeAws::default();
        let desired = render::compile(&bp).expect("renders");
        let mut status = BranchPipelineStatus::default();
        for p in &desired.projects {
            aws.create_project(p).await.expect("fake create");
            status.projects.push(p.name.clone());
        }
        for p in &desired.pipelines {
            aws.create_pipeline(&p.pipeline, &p.tags)
                .await
                .expect("fake create");
        }
        (aws, bp, status)
    }

    async fn cleanup_once(
        aws: &FakeAws,
        bp: &BranchPipeline,
        previous: &BranchPipelineStatus,
    ) -> Outcome {
        let s = settings(
            bp,
            Defaults {
                resync_interval: Duration::from_secs(600),
                deletion_policy: None,
            },
        );
        let facts = Facts {
            generation: Some(1),
            previous,
            settings: &s,
            now: "t",
            next_resync: Duration::from_secs(600),
            class: None,
        };
        let inventory = crate::aws::inventory::Inventory::default();
        let reads = Reads::for_tests(aws, &inventory);
        delete_owned(bp, &reads, &facts).await
    }

    #[tokio::test]
    async fn deletes_pipelines_then_projects() {
        let (aws, bp, status) = seeded().await;
        let out = cleanup_once(&aws, &bp, &status).await;
        assert_eq!(out.managed, Managed::Gone);
        assert!(aws.pipeline_names().is_empty() && aws.project_names().is_empty());
        let deletes: Vec<&str> = aws
            .calls()
            .iter()
            .map(|(op, _)| *op)
            .filter(|op| op.starts_with("Delete"))
            .collect();
        assert_eq!(deletes[..2], ["DeletePipeline", "DeletePipeline"]);
    }

    #[tokio::test]
    async fn a_denied_delete_keeps_the_projects_and_says_why() {
        let (aws, bp, status) = seeded().await;
        aws.fail(
            "DeletePipeline",
            Some(2),
            "AccessDeniedException",
            Retry::Terminal,
        );
        let out = cleanup_once(&aws, &bp, &status).await;
        assert_eq!(aws.pipeline_names().len(), 1);
        assert_eq!(
            aws.project_names().len(),
            4,
            "projects outlive the pipeline that runs them"
        );
        let reasons: Vec<&str> = out.events.iter().map(|e| e.reason.as_str()).collect();
        assert_eq!(reasons, ["Deleted", "DeletionBlocked"]);
        assert!(matches!(&out.next, Next::Fail(e) if !e.is_retryable()));
        assert_eq!(out.managed, Managed::Unchanged);

        aws.clear_failures();
        let done = cleanup_once(&aws, &bp, &out.status).await;
        assert_eq!(done.managed, Managed::Gone);
        assert!(aws.project_names().is_empty());
    }
}
