//! The Apply branch: validate and render, observe AWS, apply the difference, write status.

use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use tracing::{info, warn};

use super::manual_run::manual_run;
use super::{Context, key, now, write_status};
use crate::api::*;
use crate::aws::AwsError;
use crate::reconcile::apply::{self, Change, Verb};
use crate::reconcile::diff::{self, Foreign, Owner};
use crate::reconcile::error::Error;
use crate::reconcile::observe::{self, Owned};
use crate::reconcile::policy;
use crate::reconcile::status::{self, reason};
use crate::render::{self, DesiredState};

/// The Apply branch: bring AWS in line with the spec.
pub(super) async fn sync(
    bp: &BranchPipeline,
    ctx: &Context,
    api: &Api<BranchPipeline>,
) -> Result<Action, Error> {
    let namespace = bp.namespace().unwrap_or_default();
    let name = bp.name_any();
    let generation = bp.metadata.generation;
    let mut status = bp.status.clone().unwrap_or_default();

    let desired = match render::render(bp) {
        Ok(desired) => desired,
        Err(errors) => return invalid_spec(bp, ctx, api, status, &errors).await,
    };
    let owner = Owner {
        namespace: &namespace,
        name: &name,
        adopt: policy::adopt(bp),
    };
    let hints = Owned {
        pipelines: status.pipelines.iter().map(|p| p.name.clone()).collect(),
        projects: status.projects.clone(),
    };

    let observed =
        match observe::observe(ctx.aws.as_ref(), &desired, &namespace, &name, &hints).await {
            Ok(observed) => observed,
            Err(e) => return aws_failed(bp, ctx, api, status, e).await,
        };
    let plan = diff::plan(&desired, &observed, &owner);
    let drift =
        plan.changes_existing() && status.observed_generation == generation && generation.is_some();
    info!(
        writes = plan.writes(),
        foreign = plan.foreign.len(),
        drift,
        "planned"
    );

    let mut done = Vec::new();
    let applied = apply::apply(ctx.aws.as_ref(), &plan, &mut done).await;
    report_changes(bp, ctx, &done, drift).await;
    if let Err(e) = applied {
        return aws_failed(bp, ctx, api, status, e).await;
    }
    for foreign in &plan.foreign {
        warn!(resource = %foreign.name, owner = foreign.owner.as_deref().unwrap_or("untagged"), "not owned; left alone");
        ctx.event_about(
            bp,
            EventType::Warning,
            reason::NOT_OWNED,
            foreign.to_string(),
            Some((foreign.kind, &foreign.name)),
        )
        .await;
    }

    if let Err(e) = manual_run(bp, ctx, &desired, &plan, &mut status).await {
        return aws_failed(bp, ctx, api, status, e).await;
    }
    fill_inventory(&mut status, &desired, &observed, &done, &plan.foreign);
    let now = now();
    if plan.foreign.is_empty() {
        status::set_ready_synced(
            &mut status,
            true,
            reason::SYNCED,
            "AWS matches the spec",
            generation,
            &now,
        );
    } else {
        let message = plan
            .foreign
            .iter()
            .map(Foreign::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        status::set_ready_synced(
            &mut status,
            false,
            reason::NOT_OWNED,
            &message,
            generation,
            &now,
        );
    }
    status.last_sync_time = Some(now);
    write_status(api, bp, &status).await?;
    ctx.metrics.set_managed(
        &key(bp),
        Some((status.pipelines.len(), status.projects.len())),
    );
    Ok(Action::requeue(crate::duration::jittered(
        policy::resync_interval(bp, ctx.config.resync_interval),
    )))
}

async fn invalid_spec(
    bp: &BranchPipeline,
    ctx: &Context,
    api: &Api<BranchPipeline>,
    mut status: BranchPipelineStatus,
    errors: &[crate::validate::FieldError],
) -> Result<Action, Error> {
    let message = errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    let already = status.condition(CONDITION_READY).is_some_and(|c| {
        c.reason == reason::INVALID_SPEC
            && c.observed_generation == bp.metadata.generation
            && c.message == message
    });
    warn!(errors = %message, "invalid spec; no AWS calls until it changes");
    if !already {
        ctx.event(
            bp,
            EventType::Warning,
            reason::INVALID_SPEC,
            message.clone(),
        )
        .await;
    }
    status::set_ready_synced(
        &mut status,
        false,
        reason::INVALID_SPEC,
        &message,
        bp.metadata.generation,
        &now(),
    );
    write_status(api, bp, &status).await?;
    Ok(Action::await_change())
}

/// Records an AWS failure on the status. Retryable failures return the error so the error
/// policy backs off; terminal ones wait for the next resync or a spec change.
pub(super) async fn aws_failed(
    bp: &BranchPipeline,
    ctx: &Context,
    api: &Api<BranchPipeline>,
    mut status: BranchPipelineStatus,
    error: AwsError,
) -> Result<Action, Error> {
    let generation = bp.metadata.generation;
    let message = error.to_string();
    if error.is_retryable() {
        status::set_retrying(&mut status, &message, generation, &now());
        write_status(api, bp, &status).await?;
        return Err(Error::Aws(error));
    }
    warn!(operation = error.operation, code = %error.code, "AWS refused a call; not retrying until the next resync");
    ctx.event(
        bp,
        EventType::Warning,
        reason::AWS_TERMINAL_ERROR,
        message.clone(),
    )
    .await;
    status::set_ready_synced(
        &mut status,
        false,
        reason::AWS_TERMINAL_ERROR,
        &message,
        generation,
        &now(),
    );
    write_status(api, bp, &status).await?;
    Ok(Action::requeue(policy::resync_interval(
        bp,
        ctx.config.resync_interval,
    )))
}

pub(super) async fn report_changes(
    bp: &BranchPipeline,
    ctx: &Context,
    done: &[Change],
    drift: bool,
) {
    for change in done {
        let repaired = drift && matches!(change.verb, Verb::Updated | Verb::Retagged);
        let reason = if repaired {
            ctx.metrics.drift_repaired();
            "DriftRepaired"
        } else if change.verb == Verb::Retagged {
            "Updated"
        } else {
            change.verb.as_str()
        };
        let note = format!(
            "{} {} {}",
            change.verb.as_str(),
            change.kind.as_str(),
            change.name
        );
        if repaired {
            warn!(resource = %change.name, kind = change.kind.as_str(), "drift repaired");
        } else {
            info!(resource = %change.name, kind = change.kind.as_str(), verb = change.verb.as_str(), "applied");
        }
        ctx.event_about(
            bp,
            EventType::Normal,
            reason,
            note,
            Some((change.kind, &change.name)),
        )
        .await;
    }
}

/// What status lists: each rendered pipeline with its ARN and version, and the projects.
fn fill_inventory(
    status: &mut BranchPipelineStatus,
    desired: &DesiredState,
    observed: &diff::Observed,
    done: &[Change],
    foreign: &[Foreign],
) {
    let is_foreign = |name: &str| foreign.iter().any(|f| f.name == name);
    status.pipelines = desired
        .pipelines
        .iter()
        .filter(|p| !is_foreign(&p.pipeline.name))
        .map(|p| {
            let name = &p.pipeline.name;
            let seen = observed.pipelines.get(name);
            let changed = done
                .iter()
                .filter(|c| &c.name == name && c.kind == diff::Kind::Pipeline);
            let arn = changed
                .clone()
                .find_map(|c| c.arn.clone())
                .or_else(|| seen.map(|s| s.arn.clone()));
            let version = changed
                .rev()
                .find_map(|c| c.version)
                .or_else(|| seen.and_then(|s| s.declaration.version));
            PipelineStatus {
                name: name.clone(),
                arn,
                version,
                environments: p.environments.clone(),
            }
        })
        .collect();
    status.pipeline_count = Some(status.pipelines.len() as i32);
    status.projects = desired
        .projects
        .iter()
        .map(|p| p.name.clone())
        .filter(|n| !is_foreign(n))
        .collect();
}
