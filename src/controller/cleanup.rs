//! The Cleanup branch: what happens to AWS when a BranchPipeline is deleted.

use kube::ResourceExt;
use kube::runtime::controller::Action;
use tracing::info;

use super::sync::report_changes;
use super::{Context, key};
use crate::api::*;
use crate::reconcile::apply;
use crate::reconcile::diff::Plan;
use crate::reconcile::error::Error;
use crate::reconcile::observe::{self, Owned};
use crate::reconcile::policy;

/// The Cleanup branch: delete (or retain) everything tagged as this resource's.
pub(super) async fn cleanup(bp: &BranchPipeline, ctx: &Context) -> Result<Action, Error> {
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
