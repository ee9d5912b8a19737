//! The Cleanup branch: what happens to AWS when a BranchPipeline is deleted. The finalizer is
//! removed only when this returns `Ok`.

use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action;
use tracing::info;

use super::{Context, effects, now};
use crate::api::*;
use crate::reconcile::apply;
use crate::reconcile::diff::Plan;
use crate::reconcile::error::Error;
use crate::reconcile::observe::{self, Owned};
use crate::reconcile::outcome::{self, CleanupPlan, Facts, Outcome};

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
    };
    let outcome = match outcome::cleanup_plan(&settings) {
        CleanupPlan::Retain => {
            info!("deletion policy Retain: leaving AWS resources in place");
            outcome::cleaned_up(&facts, &[])
        }
        CleanupPlan::Blocked(problem) => outcome::deletion_waits_for_annotation(&facts, &problem),
        CleanupPlan::Delete => delete_owned(bp, ctx, &facts).await,
    };
    effects::carry_out(ctx, api, bp, outcome).await
}

/// Observe everything tagged as this resource's, then delete it: pipelines before the projects
/// they run.
async fn delete_owned(bp: &BranchPipeline, ctx: &Context, facts: &Facts<'_>) -> Outcome {
    let hints = Owned {
        pipelines: facts
            .previous
            .pipelines
            .iter()
            .map(|p| p.name.clone())
            .collect(),
        projects: facts.previous.projects.clone(),
    };
    let owned = match observe::discover_owned(
        ctx.aws.as_ref(),
        &bp.namespace().unwrap_or_default(),
        &bp.name_any(),
        &Default::default(),
        &hints,
    )
    .await
    {
        Ok(owned) => owned,
        Err(e) => return outcome::deletion_failed(facts, e, &[]),
    };
    let plan = Plan {
        delete_pipelines: owned.pipelines,
        delete_projects: owned.projects,
        ..Plan::default()
    };
    let mut done = Vec::new();
    if let Err(e) = apply::apply(ctx.aws.as_ref(), &plan, &mut done).await {
        return outcome::deletion_failed(facts, e, &done);
    }
    info!(
        pipelines = plan.delete_pipelines.len(),
        projects = plan.delete_projects.len(),
        "cleaned up"
    );
    outcome::cleaned_up(facts, &done)
}
