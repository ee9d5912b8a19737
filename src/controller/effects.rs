//! Carries an [`Outcome`] out: events, metrics, status, and the next action. No decisions.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;
use tracing::{info, warn};

use super::{Context, key};
use crate::api::*;
use crate::reconcile::diff::Kind;
use crate::reconcile::error::{Error, Step};
use crate::reconcile::events::EventSpec;
use crate::reconcile::outcome::{Managed, Next, Outcome};
use crate::render::MANAGER;

pub(super) async fn carry_out(
    ctx: &Context,
    api: &Api<BranchPipeline>,
    bp: &BranchPipeline,
    outcome: Outcome,
) -> Result<Action, Error> {
    publish(ctx, bp, &outcome.events).await;
    for _ in 0..outcome.drift_repairs {
        ctx.metrics.drift_repaired();
    }
    ctx.metrics.record_updates(&key(bp), &outcome.updates);
    write_status(api, bp, &outcome.status).await?;
    match outcome.managed {
        Managed::Unchanged => {}
        Managed::Counts {
            pipelines,
            projects,
        } => ctx
            .metrics
            .set_managed(&key(bp), Some((pipelines, projects))),
        Managed::Gone => ctx.metrics.set_managed(&key(bp), None),
    }
    match outcome.next {
        Next::Requeue(after) => Ok(Action::requeue(after)),
        Next::AwaitChange => Ok(Action::await_change()),
        Next::Fail(error) => Err(error),
    }
}

pub(super) async fn publish<K>(ctx: &Context, object: &K, events: &[EventSpec])
where
    K: Resource<DynamicType = ()>,
{
    let reference: ObjectReference = object.object_ref(&());
    for spec in events {
        if spec.warning {
            warn!(reason = %spec.reason, note = %spec.note, "event");
        } else {
            info!(reason = %spec.reason, note = %spec.note, "event");
        }
        let related = spec
            .related
            .as_ref()
            .map(|(kind, name)| aws_reference(*kind, name));
        if let Err(e) = ctx.recorder.publish(&reference, spec, related).await {
            warn!(error = %e, reason = %spec.reason, "could not publish event");
        }
    }
}

/// An object reference naming an AWS resource, for events.
fn aws_reference(kind: Kind, name: &str) -> ObjectReference {
    let (api_version, kind) = match kind {
        Kind::Pipeline => ("codepipeline.amazonaws.com/v1", "Pipeline"),
        Kind::Project => ("codebuild.amazonaws.com/v1", "Project"),
    };
    ObjectReference {
        api_version: Some(api_version.to_string()),
        kind: Some(kind.to_string()),
        name: Some(name.to_string()),
        ..ObjectReference::default()
    }
}

/// Server-side apply of the status subresource; skipped when nothing changed.
async fn write_status(
    api: &Api<BranchPipeline>,
    bp: &BranchPipeline,
    status: &BranchPipelineStatus,
) -> Result<(), Error> {
    // The execution tracker's fields are its own (a separate field manager): applying them here
    // would put back what it has since moved on from.
    let status = status.without_tracked();
    if bp
        .status
        .as_ref()
        .map(BranchPipelineStatus::without_tracked)
        == Some(status.clone())
    {
        return Ok(());
    }
    let patch = json!({
        "apiVersion": crate::manifest::API_VERSION,
        "kind": crate::manifest::KIND,
        "status": &status,
    });
    api.patch_status(
        &bp.name_any(),
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(Error::kube(Step::WriteStatus))?;
    Ok(())
}
