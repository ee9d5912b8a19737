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
use crate::reconcile::run::{self, Accepted, History, Observed, Target};
use crate::render::MANAGER;

pub async fn reconcile(run: Arc<BranchPipelineRun>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = run.namespace().ok_or(Error::MissingMetadata("namespace"))?;
    let span = info_span!("run", namespace = %namespace, name = %run.name_any());
    async move {
        let runs: Api<BranchPipelineRun> = Api::namespaced(ctx.client.clone(), &namespace);
        if !selected(&ctx, &run, &namespace).await? {
            return Ok(Action::await_change());
        }
        let run = note_spec_change(&ctx, &runs, &run).await?;
        let status = run.status.clone().unwrap_or_default();
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
        .get_opt(run::branch_pipeline_of(run))
        .await
        .map_err(Error::kube(run::step_of(run)))?;
    // A run naming no BranchPipeline matches no selector: only a process without one rejects
    // it; when every process has a selector, such a run stays without a status.
    Ok(bp.is_some_and(|bp| ctx.config.scope.selects(bp.metadata.labels.as_ref())))
}

/// Backs off, and counts the failure by step and class as the BranchPipeline controller does
/// (`branchpipeline_reconcile_failures_total`).
pub fn error_policy(run: Arc<BranchPipelineRun>, error: &Error, ctx: Arc<Context>) -> Action {
    let step = error.step().as_str();
    ctx.metrics.reconcile_failed(step, error.class());
    warn!(run = %run.name_any(), error = %error, step, "run reconcile failed; retrying");
    if error.is_retryable() {
        Action::requeue(Duration::from_secs(5))
    } else {
        Action::requeue(Duration::from_secs(60))
    }
}

/// A spec edited after the verdict: report it (decided by [`run::spec_change`]) and go on with
/// the status as written, so that later writes keep the condition.
async fn note_spec_change(
    ctx: &Context,
    runs: &Api<BranchPipelineRun>,
    run: &BranchPipelineRun,
) -> Result<BranchPipelineRun, Error> {
    let Some((status, event)) = run::spec_change(run, &now()) else {
        return Ok(run.clone());
    };
    write_status(runs, run, &status).await?;
    effects::publish(ctx, run, &[event]).await;
    Ok(with_status(run, status))
}

fn with_status(run: &BranchPipelineRun, status: BranchPipelineRunStatus) -> BranchPipelineRun {
    let mut next = run.clone();
    next.status = Some(status);
    next
}

/// Accept (or resume what was accepted) → start at most once → record it.
async fn start(
    ctx: &Context,
    runs: &Api<BranchPipelineRun>,
    run: &BranchPipelineRun,
    namespace: &str,
) -> Result<Action, Error> {
    let accepted = match run::accepted_before(run) {
        Some(accepted) => accepted,
        None => match judge(ctx, runs, run, namespace).await? {
            Some(accepted) => accepted,
            None => return Ok(Action::await_change()),
        },
    };
    let now = now();
    let execution = match start_execution(ctx.edit_aws.as_ref(), &accepted).await {
        Ok(execution) => execution,
        Err(e) => {
            let (status, events) = run::start_failed(run, &accepted, &e.to_string(), &now);
            write_status(runs, run, &status).await?;
            effects::publish(ctx, run, &events).await;
            return Err(e);
        }
    };
    info!(pipeline = %accepted.start.pipeline, execution = %execution, "run started");
    let (status, event) = run::started(run, &accepted, &execution, &now);
    write_status(runs, run, &status).await?;
    effects::publish(ctx, run, &[event]).await;
    Ok(Action::requeue(run::poll_interval(
        RunPhase::InProgress,
        Duration::ZERO,
    )))
}

/// Observe the BranchPipeline → accept or reject. The BranchPipeline, if it exists, owns the
/// run either way, so it holds the run's history and its deletion deletes the run. A rejection
/// is final: it is written, and the history trimmed, here; `None` then.
async fn judge(
    ctx: &Context,
    runs: &Api<BranchPipelineRun>,
    run: &BranchPipelineRun,
    namespace: &str,
) -> Result<Option<Accepted>, Error> {
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
    let verdict = run::accept(run, target);
    let run = match &bp {
        Some(bp) => own(runs, run, bp).await?,
        None => run.clone(),
    };
    let rejection = match verdict {
        Ok(accepted) => return Ok(Some(accepted)),
        Err(rejection) => rejection,
    };
    info!(reason = %rejection, "run rejected");
    let (status, event) = run::rejected(&run, &rejection, &now());
    write_status(runs, &run, &status).await?;
    effects::publish(ctx, &run, &[event]).await;
    trim_history(ctx, runs, &with_status(&run, status)).await?;
    Ok(None)
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
            trim_history(ctx, runs, &with_status(run, next)).await?;
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

/// An owner reference to the BranchPipeline, so a cluster's garbage collector removes the run
/// with it (the controller's cleanup also deletes them, for clusters without one). Returns the
/// run with it.
async fn own(
    runs: &Api<BranchPipelineRun>,
    run: &BranchPipelineRun,
    bp: &BranchPipeline,
) -> Result<BranchPipelineRun, Error> {
    let Some(owner) = bp.controller_owner_ref(&()) else {
        return Ok(run.clone());
    };
    if run::owned_by(run, &owner.uid) {
        return Ok(run.clone());
    }
    let patch = json!({"metadata": {"ownerReferences": [owner]}});
    let patched = runs
        .patch(
            &run.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .map_err(Error::kube(Step::StartRun))?;
    let mut run = run.clone();
    run.metadata.owner_references = patched.metadata.owner_references;
    Ok(run)
}

/// Keeps the newest `runHistoryLimit` finished runs of the finished `run`'s history (see
/// [`History`]). Called whenever a run finishes, rejected ones included; a trim that fails is
/// caught up by the next run of the same history to finish, as each trim covers all of it.
async fn trim_history(
    ctx: &Context,
    runs: &Api<BranchPipelineRun>,
    run: &BranchPipelineRun,
) -> Result<(), Error> {
    let Some(history) = run::history_of(run) else {
        return Ok(());
    };
    let limit = match history {
        History::Owned { uid, name } => {
            let bps: Api<BranchPipeline> =
                Api::namespaced(ctx.client.clone(), &run.namespace().unwrap_or_default());
            bps.get_opt(&name)
                .await
                .map_err(Error::kube(Step::Cleanup))?
                .filter(|bp| bp.uid() == Some(uid.clone()))
                .and_then(|bp| bp.spec.run_history_limit)
                .unwrap_or(DEFAULT_RUN_HISTORY_LIMIT)
        }
        History::Unowned { .. } => DEFAULT_RUN_HISTORY_LIMIT,
    };
    let all = runs
        .list(&ListParams::default())
        .await
        .map_err(Error::kube(Step::Cleanup))?
        .items;
    let keep = usize::try_from(limit).unwrap_or(usize::MAX);
    for name in run::to_trim(run, &all, keep).unwrap_or_default() {
        info!(run = %name, limit, "deleting a run beyond the history limit");
        delete_run(runs, &name)
            .await
            .map_err(Error::kube(Step::Cleanup))?;
    }
    Ok(())
}

/// Deletes every run of `bp` (see [`run::belongs_to`]): part of its cleanup.
pub(super) async fn delete_runs_of(ctx: &Context, bp: &BranchPipeline) -> Result<usize, Error> {
    let namespace = bp.namespace().unwrap_or_default();
    let runs: Api<BranchPipelineRun> = Api::namespaced(ctx.client.clone(), &namespace);
    let (name, uid) = (bp.name_any(), bp.uid().unwrap_or_default());
    let mine: Vec<String> = runs
        .list(&ListParams::default())
        .await
        .map_err(Error::kube(Step::Cleanup))?
        .items
        .into_iter()
        .filter(|r| run::belongs_to(r, &name, &uid))
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
    use crate::aws::fake::FakeAws;
    use crate::aws::{AwsError, Retry};
    use crate::metrics::Metrics;
    use crate::shard::LabelSelector;

    /// A context whose Kubernetes client points at a port nothing listens on: every API call
    /// fails at once, as when the API server is unreachable.
    fn unreachable(selector: Option<&str>) -> Arc<Context> {
        // As `main` does: kube's client needs a process-wide TLS provider, even for http.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let uri = "http://127.0.0.1:1".parse().expect("a URI");
        let client = kube::Client::try_from(kube::Config::new(uri)).expect("a client");
        let mut config = super::super::Config::default();
        config.scope.selector = selector.map(|s| LabelSelector::parse(s).expect("a selector"));
        let aws = Arc::new(FakeAws::default());
        Arc::new(Context::new(client, aws, config, Arc::new(Metrics::new())))
    }

    fn a_run(following: bool) -> Arc<BranchPipelineRun> {
        let mut run = BranchPipelineRun::new(
            "prod-1",
            BranchPipelineRunSpec {
                branch_pipeline: "orders-api".into(),
                environment: "prod".into(),
                branch: None,
                commit: None,
            },
        );
        run.metadata.namespace = Some("team-orders".into());
        if following {
            run.status = Some(BranchPipelineRunStatus {
                phase: Some(RunPhase::InProgress),
                execution_id: Some("e1".into()),
                ..BranchPipelineRunStatus::default()
            });
        }
        Arc::new(run)
    }

    fn failures(ctx: &Context) -> Vec<String> {
        ctx.metrics
            .encode()
            .lines()
            .filter(|l| l.starts_with("branchpipeline_reconcile_failures_total{"))
            .map(str::to_string)
            .collect()
    }

    #[tokio::test]
    async fn a_run_failure_is_counted_by_step_and_class() {
        let ctx = unreachable(None);
        let denied = Error::aws(Step::StartRun)(AwsError {
            operation: "StartPipelineExecution",
            resource: Some("team-orders-orders-api".into()),
            code: "AccessDeniedException".into(),
            message: "not allowed".into(),
            retry: Retry::Terminal,
        });
        error_policy(a_run(false), &denied, ctx.clone());
        assert_eq!(
            failures(&ctx),
            [r#"branchpipeline_reconcile_failures_total{step="start run",class="terminal"} 1"#]
        );
    }

    /// With `--selector`, every reconcile first reads the run's BranchPipeline. Its failure
    /// belongs to the step the run is in: a followed run's is not a failure to start it.
    #[tokio::test]
    async fn a_failed_read_is_labelled_with_the_step_the_run_is_in() {
        for (following, step) in [(false, "start run"), (true, "follow run")] {
            let ctx = unreachable(Some("team=orders"));
            let run = a_run(following);
            let error = reconcile(run.clone(), ctx.clone())
                .await
                .expect_err("the API server is unreachable");
            assert!(matches!(error, Error::Kube { .. }), "{error}");
            error_policy(run, &error, ctx.clone());
            assert_eq!(
                failures(&ctx),
                [format!(
                    r#"branchpipeline_reconcile_failures_total{{step="{step}",class="retryable"}} 1"#
                )]
            );
        }
    }

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
