//! Pipeline updates never cancel a release by accident: a spec edit or a drift repair that
//! would UpdatePipeline while an execution runs (here: a prod release waiting at its approval)
//! waits for it, under `spec.updatePolicy`. The bed's engine cancels in-flight executions on
//! UpdatePipeline, as AWS documents, so a premature update shows as a Cancelled run.

#[path = "../support/mod.rs"]
mod support;

#[path = "../reconciler/harness.rs"]
#[allow(dead_code)]
mod harness;

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use branchpipeline::api::*;
use branchpipeline::aws::AwsApi;
use kube::api::{Api, PostParams};

use harness::{Harness, condition};
use support::wait::{self, Check};

const NAME: &str = "orders-api";
const TIMEOUT: Duration = Duration::from_secs(90);
const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:prod-approvals-v2";
/// Long enough for several polls and resyncs of the controller below.
const HOLD: Duration = Duration::from_secs(8);

const FLAGS: &[&str] = &[
    "--execution-poll-interval",
    "2s",
    "--execution-active-poll-interval",
    "1s",
    "--resync-interval",
    "3s",
];

async fn world(prefix: &str) -> Result<Harness> {
    let mut h = Harness::new(prefix).await?;
    h.start_controller(FLAGS)?;
    Ok(h)
}

/// The example, with a repository of this test's own.
fn example(h: &Harness) -> BranchPipeline {
    let mut bp = h.example();
    bp.spec.source.repository = format!("acme/{}", h.ns);
    bp
}

fn production(h: &Harness) -> String {
    format!("{}-{NAME}-production", h.ns)
}

/// The example with prod's approval notifying another topic: an UpdatePipeline of the
/// production pipeline only.
fn with_new_topic(mut bp: BranchPipeline) -> BranchPipeline {
    for env in bp.spec.environments.iter_mut().filter(|e| e.name == "prod") {
        if let Some(approval) = env.approval.as_mut() {
            approval.notification_arn = Some(TOPIC.into());
        }
    }
    bp
}

fn runs(h: &Harness) -> Api<BranchPipelineRun> {
    Api::namespaced(h.bed.client(), &h.ns)
}

/// Releases main to prod and waits until the execution waits at prod's approval; returns the
/// execution id.
async fn prod_release_waiting(h: &Harness, name: &str) -> Result<String> {
    let run = BranchPipelineRun::new(
        name,
        BranchPipelineRunSpec {
            branch_pipeline: NAME.into(),
            environment: "prod".into(),
            branch: Some("main".into()),
            commit: None,
        },
    );
    runs(h).create(&PostParams::default(), &run).await?;
    let run = wait_phase(h, name, RunPhase::AwaitingApproval).await?;
    run.status
        .and_then(|s| s.execution_id)
        .context("the run's execution")
}

async fn wait_phase(h: &Harness, name: &str, phase: RunPhase) -> Result<BranchPipelineRun> {
    let api = runs(h);
    let waited = wait::until(&format!("run {name} {phase:?}"), TIMEOUT, || async {
        let run = api.get(name).await?;
        match run.status.as_ref().and_then(|s| s.phase) {
            Some(p) if p == phase => Ok(Check::Done(run)),
            Some(p) if p.is_finished() => bail!("run {name} ended {p:?}: {:?}", run.status),
            _ => Ok(Check::NotYet(format!("{:?}", run.status))),
        }
    })
    .await;
    waited.map_err(|e| anyhow::anyhow!("{e:#}\n{}", h.logs()))
}

async fn phase_of(h: &Harness, name: &str) -> Result<Option<RunPhase>> {
    Ok(runs(h).get(name).await?.status.and_then(|s| s.phase))
}

async fn updates_of(h: &Harness, pipeline: &str) -> Result<usize> {
    h.bed.aws_call_count("UpdatePipeline", Some(pipeline)).await
}

fn pending(bp: &BranchPipeline) -> bool {
    condition(bp, CONDITION_UPDATE_PENDING).is_some_and(|(status, _)| status == "True")
}

async fn apply_and_wait_pending(h: &Harness, bp: &BranchPipeline) -> Result<BranchPipeline> {
    h.apply(bp).await?;
    h.wait_for(NAME, "UpdatePending on the status", pending)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spec_edit_waits_for_a_release_at_its_approval() -> Result<()> {
    let h = world("upd-wait").await?;
    h.apply(&example(&h)).await?;
    h.wait_ready(NAME).await?;
    let execution = prod_release_waiting(&h, "prod-1").await?;
    let before = updates_of(&h, &production(&h)).await?;

    let bp = apply_and_wait_pending(&h, &with_new_topic(example(&h))).await?;
    let status = bp.status.clone().unwrap_or_default();
    let message = &status
        .condition(CONDITION_UPDATE_PENDING)
        .context("UpdatePending")?
        .message;
    assert!(message.contains(&execution), "{message}");
    assert_eq!(status.pending_updates.len(), 1, "{status:?}");
    tokio::time::sleep(HOLD).await;
    assert_eq!(
        updates_of(&h, &production(&h)).await?,
        before,
        "no UpdatePipeline while it waits"
    );
    assert_eq!(
        phase_of(&h, "prod-1").await?,
        Some(RunPhase::AwaitingApproval)
    );
    let events = h.events().await?;
    let held: Vec<_> = events
        .iter()
        .filter(|(r, _)| r == "UpdatePending")
        .collect();
    assert_eq!(held.len(), 1, "one event, however many passes: {events:?}");

    h.bed.approve(&production(&h), "deploy-prod").await?;
    wait_phase(&h, "prod-1", RunPhase::Succeeded).await?;
    h.wait_for(NAME, "the held update applied", |bp| {
        !pending(bp)
            && bp
                .status
                .as_ref()
                .is_some_and(|s| s.pending_updates.is_empty())
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        updates_of(&h, &production(&h)).await?,
        before + 1,
        "exactly one UpdatePipeline"
    );
    let seen = h
        .aws
        .get_pipeline(&production(&h))
        .await?
        .context("production")?;
    assert!(format!("{:?}", seen.declaration).contains(TOPIC));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proceed_updates_at_once_and_names_the_cancelled_run() -> Result<()> {
    let h = world("upd-proceed").await?;
    h.apply(&example(&h)).await?;
    h.wait_ready(NAME).await?;
    let execution = prod_release_waiting(&h, "prod-1").await?;
    let before = updates_of(&h, &production(&h)).await?;
    let mut bp = with_new_topic(example(&h));
    bp.spec.update_policy = Some(UpdatePolicy {
        when_running: WhenRunning::Proceed,
        max_wait: None,
    });
    h.apply(&bp).await?;
    wait_phase(&h, "prod-1", RunPhase::Cancelled).await?;
    assert_eq!(updates_of(&h, &production(&h)).await?, before + 1);
    let events = h.events().await?;
    let cancelled: Vec<&(String, String)> = events
        .iter()
        .filter(|(reason, _)| reason == "ExecutionsCancelled")
        .collect();
    assert_eq!(cancelled.len(), 1, "{events:?}");
    assert!(cancelled[0].1.contains(&execution), "{}", cancelled[0].1);
    assert!(cancelled[0].1.contains("Proceed"), "{}", cancelled[0].1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_wait_ends_the_wait() -> Result<()> {
    let h = world("upd-maxwait").await?;
    h.apply(&example(&h)).await?;
    h.wait_ready(NAME).await?;
    let execution = prod_release_waiting(&h, "prod-1").await?;
    let before = updates_of(&h, &production(&h)).await?;
    let mut bp = with_new_topic(example(&h));
    bp.spec.update_policy = Some(UpdatePolicy {
        when_running: WhenRunning::Wait,
        max_wait: Some("1m".into()),
    });
    let edited = Instant::now();
    apply_and_wait_pending(&h, &bp).await?;
    let waited = wait::until(
        "the update after maxWait",
        Duration::from_secs(100),
        || async {
            let n = updates_of(&h, &production(&h)).await?;
            Ok(Check::passed(n > before, || format!("{n} updates")))
        },
    )
    .await;
    h.with_logs(waited)?;
    let took = edited.elapsed();
    assert!(
        took >= Duration::from_secs(58) && took <= Duration::from_secs(75),
        "proceeded after {took:?}, not about a minute"
    );
    wait_phase(&h, "prod-1", RunPhase::Cancelled).await?;
    let events = h.events().await?;
    let cancelled = events
        .iter()
        .find(|(reason, _)| reason == "ExecutionsCancelled")
        .context("an ExecutionsCancelled event")?;
    assert!(
        cancelled.1.contains(&execution) && cancelled.1.contains("maxWait"),
        "{}",
        cancelled.1
    );
    eprintln!("maxWait 1m: the update proceeded {took:?} after the edit");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compute_only_edit_updates_its_project_at_once() -> Result<()> {
    let h = world("upd-compute").await?;
    h.apply(&example(&h)).await?;
    h.wait_ready(NAME).await?;
    prod_release_waiting(&h, "prod-1").await?;
    let (updates_before, projects_before) = (
        h.count("UpdatePipeline").await?,
        h.count("UpdateProject").await?,
    );
    let mut bp = example(&h);
    bp.spec.stages[1].compute_type = Some(ComputeType::General1Large);
    h.apply(&bp).await?;
    h.eventually("one UpdateProject", || async {
        Ok(h.count("UpdateProject").await? > projects_before)
    })
    .await?;
    tokio::time::sleep(HOLD).await;
    assert_eq!(h.count("UpdateProject").await?, projects_before + 1);
    assert_eq!(
        h.count("UpdatePipeline").await?,
        updates_before,
        "no pipeline changed"
    );
    assert_eq!(
        phase_of(&h, "prod-1").await?,
        Some(RunPhase::AwaitingApproval),
        "nothing cancelled"
    );
    let bp = h.api.get(NAME).await?;
    assert!(!pending(&bp), "{:?}", bp.status);
    Ok(())
}

/// Drift found while an execution runs waits like an edit. The drift is made while the
/// controller is stopped and before the execution starts: a direct UpdatePipeline would
/// itself cancel a running execution.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drift_repair_during_a_run_waits() -> Result<()> {
    let mut h = world("upd-drift").await?;
    h.apply(&example(&h)).await?;
    h.wait_ready(NAME).await?;
    h.stop_controller(0);
    let production = production(&h);
    let mut declaration = h
        .aws
        .get_pipeline(&production)
        .await?
        .context("production")?
        .declaration;
    // A hand edit of the approval's text: the repair is an UpdatePipeline like any other.
    let approve = declaration
        .stages
        .iter_mut()
        .flat_map(|s| s.actions.iter_mut())
        .find(|a| a.name == "approve")
        .context("prod's approval action")?;
    approve
        .configuration
        .insert("CustomData".into(), "edited by hand".into());
    h.aws.update_pipeline(&declaration).await?;
    let started = h
        .bed
        .push(
            &format!("acme/{}", h.ns),
            "main",
            &"ab".repeat(20),
            &["src/main.rs"],
        )
        .await?;
    let execution = started
        .iter()
        .find(|(p, _)| *p == production)
        .map(|(_, id)| id.clone())
        .with_context(|| format!("the push of main started {started:?}"))?;
    // Waiting at prod's approval.
    let state_waiting = wait::until("the push at prod's approval", TIMEOUT, || async {
        let results = h.bed.stage_results(&production, &execution).await?;
        let at = results.get("deploy-prod").cloned().unwrap_or_default();
        Ok(Check::passed(at == "InProgress", || format!("{results:?}")))
    })
    .await;
    h.with_logs(state_waiting)?;
    let before = updates_of(&h, &production).await?;

    h.start_controller(FLAGS)?;
    let bp = h
        .wait_for(NAME, "UpdatePending for the drift", pending)
        .await?;
    let message = bp
        .status
        .as_ref()
        .and_then(|s| s.condition(CONDITION_UPDATE_PENDING))
        .map(|c| c.message.clone())
        .unwrap_or_default();
    assert!(message.contains(&execution), "{message}");
    tokio::time::sleep(HOLD).await;
    assert_eq!(
        updates_of(&h, &production).await?,
        before,
        "the repair waits"
    );
    assert_eq!(
        h.bed.execution_status(&production, &execution).await?,
        "InProgress"
    );

    h.bed.approve(&production, "deploy-prod").await?;
    h.bed
        .wait_execution(&production, &execution, &["Succeeded"])
        .await?;
    h.wait_for(NAME, "the repair applied", |bp| !pending(bp))
        .await?;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(updates_of(&h, &production).await?, before + 1);
    let seen = h
        .aws
        .get_pipeline(&production)
        .await?
        .context("production")?;
    assert!(
        !format!("{:?}", seen.declaration).contains("edited by hand"),
        "repaired"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_now_forces_a_held_update_once() -> Result<()> {
    let h = world("upd-now").await?;
    h.apply(&example(&h)).await?;
    h.wait_ready(NAME).await?;
    let execution = prod_release_waiting(&h, "prod-1").await?;
    let before = updates_of(&h, &production(&h)).await?;
    apply_and_wait_pending(&h, &with_new_topic(example(&h))).await?;
    h.annotate(NAME, annotations::UPDATE_NOW, "2026-11-27T10:00Z")
        .await?;
    wait_phase(&h, "prod-1", RunPhase::Cancelled).await?;
    let bp = h
        .wait_for(NAME, "the annotation recorded", |bp| {
            bp.status.as_ref().and_then(|s| s.update_now.as_deref()) == Some("2026-11-27T10:00Z")
        })
        .await?;
    assert!(!pending(&bp), "{:?}", bp.status);
    assert_eq!(updates_of(&h, &production(&h)).await?, before + 1);
    let events = h.events().await?;
    assert!(
        events.iter().any(|(r, n)| r == "ExecutionsCancelled"
            && n.contains(&execution)
            && n.contains(annotations::UPDATE_NOW)),
        "{events:?}"
    );

    // The same value does not act again: the next held update waits.
    let execution = prod_release_waiting(&h, "prod-2").await?;
    let mut bp = example(&h);
    for env in bp.spec.environments.iter_mut().filter(|e| e.name == "prod") {
        if let Some(approval) = env.approval.as_mut() {
            approval.custom_data = Some("release notes: see the ticket".into());
        }
    }
    let held = apply_and_wait_pending(&h, &bp).await?;
    let message = held
        .status
        .as_ref()
        .and_then(|s| s.condition(CONDITION_UPDATE_PENDING))
        .map(|c| c.message.clone())
        .unwrap_or_default();
    assert!(message.contains(&execution), "{message}");
    tokio::time::sleep(HOLD).await;
    assert_eq!(updates_of(&h, &production(&h)).await?, before + 1);
    assert_eq!(
        phase_of(&h, "prod-2").await?,
        Some(RunPhase::AwaitingApproval)
    );
    Ok(())
}

/// The projects `bp` renders whose name holds `part`.
fn projects_named(bp: &BranchPipeline, part: &str) -> Result<Vec<String>> {
    let desired = branchpipeline::render::compile(bp).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    Ok(desired
        .projects
        .into_iter()
        .map(|p| p.name)
        .filter(|n| n.contains(part))
        .collect())
}

/// Dropping prod's own deploy settings moves the production pipeline to the shared deploy
/// project, an update held while a release waits at prod's approval. Prod's own project is
/// what that release runs after the approval: it stays until the held update is applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_update_keeps_the_project_its_release_still_runs() -> Result<()> {
    let h = world("upd-keep").await?;
    let mut bp = example(&h);
    for env in bp.spec.environments.iter_mut().filter(|e| e.name == "prod") {
        env.deploy = Some(serde_json::from_value(
            serde_json::json!({"computeType": "BUILD_GENERAL1_MEDIUM"}),
        )?);
    }
    let own = projects_named(&bp, "deploy-prod")?;
    ensure!(own.len() == 1, "{own:?}");
    h.apply(&bp).await?;
    h.wait_ready(NAME).await?;
    let exists = || async { Ok::<_, anyhow::Error>(!h.aws.get_projects(&own).await?.is_empty()) };
    ensure!(exists().await?, "prod's own deploy project");
    prod_release_waiting(&h, "prod-1").await?;

    for env in bp.spec.environments.iter_mut().filter(|e| e.name == "prod") {
        env.deploy = None;
    }
    ensure!(projects_named(&bp, "deploy-prod")?.is_empty());
    apply_and_wait_pending(&h, &bp).await?;
    tokio::time::sleep(HOLD).await;
    ensure!(
        exists().await?,
        "deleted while the release that runs it waits:\n{}",
        h.logs()
    );

    h.bed.approve(&production(&h), "deploy-prod").await?;
    wait_phase(&h, "prod-1", RunPhase::Succeeded).await?;
    wait::until(
        "prod's own project deleted with the update",
        TIMEOUT,
        || async { Ok(Check::passed(!exists().await?, || own.join(", "))) },
    )
    .await?;
    let bp = h.api.get(NAME).await?;
    ensure!(!pending(&bp), "{:?}", bp.status);
    Ok(())
}
