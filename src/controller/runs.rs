//! BranchPipelineRun: observe the run, its BranchPipeline and its execution; decide with
//! [`crate::reconcile::run`]; carry it out (start once, write status, publish events, keep the
//! history bounded).

use std::sync::Arc;
use std::time::Duration;

use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;
use tracing::{Instrument, info, info_span, warn};

use super::{Context, effects, now};
use crate::api::*;
use crate::aws::AwsApi;
use crate::reconcile::error::{Error, Step};
use crate::reconcile::events::EventSpec;
use crate::reconcile::run::{self, Accepted, Observed, Target};
use crate::reconcile::status::set_condition;
use crate::render::MANAGER;

pub async fn reconcile(run: Arc<BranchPipelineRun>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = run.namespace().ok_or(Error::MissingMetadata("namespace"))?;
    let span = info_span!("run", namespace = %namespace, name = %run.name_any());
    async move {
        let runs: Api<BranchPipelineRun> = Api::namespaced(ctx.client.clone(), &namespace);
        if !selected(&ctx, &run, &namespace).await? {
            return Ok(Action::await_change());
        }
        let status = run.status.clone().unwrap_or_default();
        ignore_spec_changes(&ctx, &runs, &run).await?;
        match (status.phase, status.execution_id.as_deref()) {
            (Some(phase), _) if phase.is_finished() => Ok(Action::await_change()),
            (_, Some(execution)) => follow(&ctx, &runs, &run, execution).await,
            _ => start(&ctx, &runs, &run, &namespace).await,
        }
    }
    .instrument(span)
    .await
}

/// With `--selector`, a run is this process's only if its BranchPipeline's labels match.
async fn selected(ctx: &Context, run: &BranchPipelineRun, namespace: &str) -> Result<bool, Error> {
    if ctx.config.scope.selector.is_none() {
        return Ok(true);
    }
    let bps: Api<BranchPipeline> = Api::namespaced(ctx.client.clone(), namespace);
    let bp = bps
        .get_opt(&run.spec.branch_pipeline)
        .await
        .map_err(Error::kube(Step::StartRun))?;
    // A run naming no BranchPipeline matches no selector: only a process without one rejects
    // it; when every process has a selector, such a run stays without a status.
    Ok(bp.is_some_and(|bp| ctx.config.scope.selects(bp.metadata.labels.as_ref())))
}

pub fn error_policy(run: Arc<BranchPipelineRun>, error: &Error, _ctx: Arc<Context>) -> Action {
    warn!(run = %run.name_any(), error = %error, step = error.step().as_str(), "run reconcile failed; retrying");
    if error.is_retryable() {
        Action::requeue(Duration::from_secs(5))
    } else {
        Action::requeue(Duration::from_secs(60))
    }
}

/// Observe the BranchPipeline → accept or reject → start at most once.
async fn start(
    ctx: &Context,
    runs: &Api<BranchPipelineRun>,
    run: &BranchPipelineRun,
    namespace: &str,
) -> Result<Action, Error> {
    let bps: Api<BranchPipeline> = Api::namespaced(ctx.client.clone(), namespace);
    let bp = bps
        .get_opt(&run.spec.branch_pipeline)
        .await
        .map_err(Error::kube(Step::StartRun))?;
    let rendered = match &bp {
        Some(bp) => super::classes::compile(ctx, bp).await?.ok(),
        None => None,
    };
    let target = bp.as_ref().map(|bp| Target {
        bp,
        rendered: rendered.as_ref().map(|c| (&c.spec, &c.desired)),
    });
    let mut status = run.status.clone().unwrap_or_default();
    let now = now();
    let generation = run.metadata.generation;
    let accepted = match run::accept(run, target) {
        Ok(accepted) => accepted,
        Err(rejection) => {
            info!(reason = %rejection, "run rejected");
            let event = run::rejected(&mut status, &rejection, generation, &now);
            effects::publish(ctx, run, &[event]).await;
            write_status(runs, run, &status).await?;
            return Ok(Action::await_change());
        }
    };
    if let Some(bp) = &bp {
        own(runs, run, bp).await?;
    }
    let execution = match start_execution(ctx.edit_aws.as_ref(), &accepted).await {
        Ok(execution) => execution,
        Err(e) => {
            status.phase = Some(RunPhase::Pending);
            status.message = Some(format!("could not start yet: {e}; retrying"));
            write_status(runs, run, &status).await?;
            return Err(e);
        }
    };
    info!(pipeline = %accepted.start.pipeline, execution = %execution, "run started");
    let event = run::started(&mut status, &accepted, &execution, generation, &now);
    write_status(runs, run, &status).await?;
    effects::publish(ctx, run, &[event]).await;
    Ok(Action::requeue(run::poll_interval(
        RunPhase::InProgress,
        Duration::ZERO,
    )))
}

async fn start_execution(aws: &dyn AwsApi, accepted: &Accepted) -> Result<String, Error> {
    aws.start_execution(&accepted.start)
        .await
        .map_err(Error::aws(Step::StartRun))
}

/// Observe the execution → decide its progress → write it; keep the history bounded at the end.
async fn follow(
    ctx: &Context,
    runs: &Api<BranchPipelineRun>,
    run: &BranchPipelineRun,
    execution: &str,
) -> Result<Action, Error> {
    let status = run.status.clone().unwrap_or_default();
    let pipeline = status.pipeline.clone().unwrap_or_default();
    let aws = ctx.aws.as_ref();
    let read = Error::aws(Step::FollowRun);
    let found = aws
        .get_execution(&pipeline, execution)
        .await
        .map_err(read)?;
    let (actions, stages) = match &found {
        Some(_) => (
            aws.action_executions(&pipeline, execution)
                .await
                .map_err(Error::aws(Step::FollowRun))?,
            aws.pipeline_state(&pipeline)
                .await
                .map_err(Error::aws(Step::FollowRun))?,
        ),
        None => (Vec::new(), Vec::new()),
    };
    let observed = Observed {
        execution: found.as_ref(),
        actions: &actions,
        stages: &stages,
    };
    let now = now();
    let age = age_of(status.start_time.as_deref(), &now);
    let (next, events, poll) = run::progress(run, &observed, age, &now);
    write_status(runs, run, &next).await?;
    effects::publish(ctx, run, &events).await;
    match poll {
        Some(after) => Ok(Action::requeue(after)),
        None => {
            trim_history(ctx, runs, run).await?;
            Ok(Action::await_change())
        }
    }
}

fn age_of(start: Option<&str>, now: &str) -> Duration {
    let parse = |t: &str| t.parse::<jiff::Timestamp>().ok();
    match (start.and_then(parse), parse(now)) {
        (Some(start), Some(now)) => now.duration_since(start).unsigned_abs(),
        _ => Duration::ZERO,
    }
}

/// The spec is immutable: a change made where the API server does not enforce that is ignored,
/// with one Warning per generation.
async fn ignore_spec_changes(
    ctx: &Context,
    runs: &Api<BranchPipelineRun>,
    run: &BranchPipelineRun,
) -> Result<(), Error> {
    const CONDITION: &str = "SpecChangeIgnored";
    let mut status = run.status.clone().unwrap_or_default();
    let (Some(accepted), Some(generation)) = (status.observed_generation, run.metadata.generation)
    else {
        return Ok(());
    };
    let reported = status
        .conditions
        .iter()
        .any(|c| c.type_ == CONDITION && c.observed_generation == Some(generation));
    if accepted == generation || reported {
        return Ok(());
    }
    let message = format!(
        "the spec changed after generation {accepted} was accepted; a BranchPipelineRun cannot change, so this one keeps what it started; create a new run instead"
    );
    set_condition(
        &mut status.conditions,
        CONDITION,
        true,
        "Immutable",
        &message,
        Some(generation),
        &now(),
    );
    write_status(runs, run, &status).await?;
    effects::publish(
        ctx,
        run,
        &[EventSpec::warning("SpecChangeIgnored", message)],
    )
    .await;
    Ok(())
}

/// An owner reference to the BranchPipeline, so a cluster's garbage collector removes the run
/// with it (the controller's cleanup also deletes them, for clusters without one).
async fn own(
    runs: &Api<BranchPipelineRun>,
    run: &BranchPipelineRun,
    bp: &BranchPipeline,
) -> Result<(), Error> {
    let Some(owner) = bp.controller_owner_ref(&()) else {
        return Ok(());
    };
    if run.owner_references().iter().any(|o| o.uid == owner.uid) {
        return Ok(());
    }
    let patch = json!({"metadata": {"ownerReferences": [owner]}});
    runs.patch(
        &run.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .map_err(Error::kube(Step::StartRun))?;
    Ok(())
}

/// Keeps the newest `runHistoryLimit` finished runs of the run's BranchPipeline.
async fn trim_history(
    ctx: &Context,
    runs: &Api<BranchPipelineRun>,
    run: &BranchPipelineRun,
) -> Result<(), Error> {
    let namespace = run.namespace().unwrap_or_default();
    let bps: Api<BranchPipeline> = Api::namespaced(ctx.client.clone(), &namespace);
    let limit = bps
        .get_opt(&run.spec.branch_pipeline)
        .await
        .map_err(Error::kube(Step::FollowRun))?
        .and_then(|bp| bp.spec.run_history_limit)
        .unwrap_or(DEFAULT_RUN_HISTORY_LIMIT);
    let finished: Vec<(String, String)> = runs
        .list(&ListParams::default())
        .await
        .map_err(Error::kube(Step::FollowRun))?
        .items
        .into_iter()
        .filter(|r| r.spec.branch_pipeline == run.spec.branch_pipeline)
        .filter_map(|r| {
            let status = r.status.as_ref()?;
            status.phase.filter(|p| p.is_finished())?;
            Some((r.name_any(), status.completion_time.clone()?))
        })
        .collect();
    let keep = usize::try_from(limit).unwrap_or(usize::MAX);
    for name in run::beyond_history(finished, keep) {
        info!(run = %name, limit, "deleting a run beyond the history limit");
        delete_run(runs, &name)
            .await
            .map_err(Error::kube(Step::FollowRun))?;
    }
    Ok(())
}

/// Deletes every run of `bp`: part of its cleanup.
pub(super) async fn delete_runs_of(ctx: &Context, bp: &BranchPipeline) -> Result<usize, Error> {
    let namespace = bp.namespace().unwrap_or_default();
    let runs: Api<BranchPipelineRun> = Api::namespaced(ctx.client.clone(), &namespace);
    let name = bp.name_any();
    let mine: Vec<String> = runs
        .list(&ListParams::default())
        .await
        .map_err(Error::kube(Step::Cleanup))?
        .items
        .into_iter()
        .filter(|r| r.spec.branch_pipeline == name)
        .map(|r| r.name_any())
        .collect();
    for run in &mine {
        delete_run(&runs, run)
            .await
            .map_err(Error::kube(Step::Cleanup))?;
    }
    Ok(mine.len())
}

/// Deletes a run; one already gone is fine.
async fn delete_run(runs: &Api<BranchPipelineRun>, name: &str) -> Result<(), kube::Error> {
    match runs.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

async fn write_status(
    runs: &Api<BranchPipelineRun>,
    run: &BranchPipelineRun,
    status: &BranchPipelineRunStatus,
) -> Result<(), Error> {
    if run.status.as_ref() == Some(status) {
        return Ok(());
    }
    let patch = json!({
        "apiVersion": BranchPipelineRun::api_version(&()),
        "kind": BranchPipelineRun::kind(&()),
        "status": status,
    });
    runs.patch_status(
        &run.name_any(),
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(Error::kube(Step::WriteStatus))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_is_measured_from_the_start() {
        assert_eq!(
            age_of(Some("2026-11-27T10:00:00Z"), "2026-11-27T10:01:30Z"),
            Duration::from_secs(90)
        );
        assert_eq!(age_of(None, "2026-11-27T10:01:30Z"), Duration::ZERO);
        assert_eq!(
            age_of(Some("garbage"), "2026-11-27T10:01:30Z"),
            Duration::ZERO
        );
    }
}
