//! `branchpipeline.dev/run`: starting a pipeline from Git, once per annotation value.

use kube::ResourceExt;
use kube::runtime::events::EventType;
use tracing::info;

use super::{Context, now};
use crate::api::*;
use crate::aws::{AwsError, StartRun};
use crate::reconcile::diff::Plan;
use crate::reconcile::run;
use crate::reconcile::status::{self, reason};
use crate::render::{DesiredState, SOURCE_ACTION};

/// Handles `branchpipeline.dev/run` once per distinct value.
pub(super) async fn manual_run(
    bp: &BranchPipeline,
    ctx: &Context,
    desired: &DesiredState,
    plan: &Plan,
    status: &mut BranchPipelineStatus,
) -> Result<(), AwsError> {
    let Some(value) = bp.annotations().get(annotations::RUN).cloned() else {
        return Ok(());
    };
    if status.last_run.as_ref().is_some_and(|r| r.value == value) {
        return Ok(());
    }
    let generation = bp.metadata.generation;
    let now = now();
    let reject = |status: &mut BranchPipelineStatus, reason: &str, message: String| {
        status.last_run = Some(LastRun {
            value: value.clone(),
            pipeline: None,
            execution_id: None,
            error: Some(message.clone()),
            time: Some(now.clone()),
        });
        status::set_condition(
            &mut status.conditions,
            "Run",
            false,
            reason,
            &message,
            generation,
            &now,
        );
        message
    };
    let request = match run::parse(&value) {
        Ok(r) => r,
        Err(message) => {
            let message = reject(
                status,
                "InvalidRunRequest",
                format!("{}: {message}", annotations::RUN),
            );
            ctx.event(bp, EventType::Warning, "InvalidRunRequest", message)
                .await;
            return Ok(());
        }
    };
    let Some(pipeline) = run::pipeline_for(&desired.pipelines, &request.branch) else {
        let message = reject(
            status,
            "BranchNotCovered",
            format!(
                "no environment takes branch {:?}; add it to an environment's branches to run it",
                request.branch
            ),
        );
        ctx.event(bp, EventType::Warning, "BranchNotCovered", message)
            .await;
        return Ok(());
    };
    let name = pipeline.pipeline.name.clone();
    if plan.foreign.iter().any(|f| f.name == name) {
        let message = reject(
            status,
            reason::NOT_OWNED,
            format!("pipeline {name} is not owned by this resource"),
        );
        ctx.event(bp, EventType::Warning, reason::NOT_OWNED, message)
            .await;
        return Ok(());
    }
    let uid = bp.uid().unwrap_or_default();
    let execution = ctx
        .aws
        .start_execution(&StartRun {
            pipeline: name.clone(),
            source_action: SOURCE_ACTION.to_string(),
            commit: request.commit.clone(),
            client_request_token: run::request_token(&uid, &value),
        })
        .await?;
    info!(pipeline = %name, execution = %execution, branch = %request.branch, "manual run started");
    let message = format!("started {name} execution {execution} for {value}");
    status.last_run = Some(LastRun {
        value: value.clone(),
        pipeline: Some(name),
        execution_id: Some(execution),
        error: None,
        time: Some(now.clone()),
    });
    status::set_condition(
        &mut status.conditions,
        "Run",
        true,
        "RunStarted",
        &message,
        generation,
        &now,
    );
    ctx.event(bp, EventType::Normal, "RunStarted", message)
        .await;
    Ok(())
}
