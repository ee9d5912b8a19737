//! Manual releases end to end: BranchPipelineRuns and pushes against the real controller,
//! kube-apiserver and the bed's CodePipeline execution engine, which evaluates the stage
//! conditions the controller renders. The routing table in the README is checked under both
//! readings of what AWS leaves undocumented (the branch a manual start with a commit reports).

#[path = "../support/mod.rs"]
mod support;

#[path = "../reconciler/harness.rs"]
#[allow(dead_code)]
mod harness;

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use branchpipeline::api::*;
use branchpipeline::aws::AwsApi;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use harness::Harness;
use support::engine::{ManualStartBranch, StageResults};
use support::fault_proxy::{self, Plan};
use support::wait::{self, Check};

const NAME: &str = "orders-api";
const TIMEOUT: Duration = Duration::from_secs(90);

/// A test's world: the harness, with the example aimed at a repository of its own so that its
/// pushes start only its pipelines.
async fn world(prefix: &str) -> Result<Harness> {
    let mut h = Harness::new(prefix).await?;
    h.start_controller(&[])?;
    Ok(h)
}

fn repository(h: &Harness) -> String {
    format!("acme/{}", h.ns)
}

fn example(h: &Harness) -> BranchPipeline {
    let mut bp = h.example();
    bp.spec.source.repository = repository(h);
    bp
}

fn main_pipeline(h: &Harness) -> String {
    format!("{}-{NAME}", h.ns)
}

fn production_pipeline(h: &Harness) -> String {
    format!("{}-{NAME}-production", h.ns)
}

/// A deterministic 40-hex commit id for `label`.
fn sha(label: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(label.as_bytes()))[..40].to_string()
}

fn runs(h: &Harness) -> Api<BranchPipelineRun> {
    Api::namespaced(h.bed.client(), &h.ns)
}

async fn create_run(
    h: &Harness,
    name: &str,
    environment: &str,
    branch: Option<&str>,
    commit: Option<&str>,
) -> Result<()> {
    create_run_for(h, name, NAME, environment, branch, commit).await
}

async fn create_run_for(
    h: &Harness,
    name: &str,
    branch_pipeline: &str,
    environment: &str,
    branch: Option<&str>,
    commit: Option<&str>,
) -> Result<()> {
    let run = BranchPipelineRun::new(
        name,
        BranchPipelineRunSpec {
            branch_pipeline: branch_pipeline.into(),
            environment: environment.into(),
            branch: branch.map(str::to_string),
            commit: commit.map(str::to_string),
        },
    );
    runs(h).create(&PostParams::default(), &run).await?;
    Ok(())
}

/// Waits until the run's phase is one of `phases`; fails at once on a phase that is final
/// and not awaited.
async fn wait_phase(h: &Harness, name: &str, phases: &[RunPhase]) -> Result<BranchPipelineRun> {
    let api = runs(h);
    let waited = wait::until(
        &format!("run {name} to reach {phases:?}"),
        TIMEOUT,
        || async {
            let run = api.get(name).await?;
            let phase = run.status.as_ref().and_then(|s| s.phase);
            match phase {
                Some(p) if phases.contains(&p) => Ok(Check::Done(run)),
                Some(p) if p.is_finished() => bail!("run {name} ended {p:?}: {:?}", run.status),
                _ => Ok(Check::NotYet(format!("{:?}", run.status))),
            }
        },
    )
    .await;
    waited.map_err(|e| anyhow::anyhow!("{e:#}\n{}", h.logs()))
}

fn stages_of(run: &BranchPipelineRun) -> BTreeMap<String, String> {
    run.status
        .iter()
        .flat_map(|s| &s.stages)
        .map(|s| (s.name.clone(), s.result.clone()))
        .collect()
}

/// The deploy stages that ran: what a routing check is about.
fn deployed(results: &StageResults) -> Vec<String> {
    results
        .iter()
        .filter(|(stage, result)| stage.starts_with("deploy-") && *result == "Succeeded")
        .map(|(stage, _)| stage.trim_start_matches("deploy-").to_string())
        .collect()
}

/// Pushes `branch` and returns the one execution it started in `pipeline`.
async fn push(h: &Harness, branch: &str, pipeline: &str) -> Result<String> {
    let started = h
        .bed
        .push(&repository(h), branch, &sha(branch), &["src/main.rs"])
        .await?;
    let ids: Vec<&String> = started
        .iter()
        .filter(|(p, _)| p == pipeline)
        .map(|(_, id)| id)
        .collect();
    match ids.as_slice() {
        [id] => Ok((*id).clone()),
        _ => bail!("push of {branch} started {started:?}, not one execution of {pipeline}"),
    }
}

async fn routing_of_the_example(h: &Harness, reading: ManualStartBranch) -> Result<()> {
    let (main, production) = (main_pipeline(h), production_pipeline(h));
    let bed = h.bed;

    // A push of develop deploys dev, and nothing else.
    let id = push(h, "develop", &main).await?;
    bed.wait_execution(&main, &id, &["Succeeded"]).await?;
    let results = bed.stage_results(&main, &id).await?;
    assert_eq!(deployed(&results), ["dev"], "{reading:?}: {results:?}");
    for skipped in ["deploy-qa", "deploy-stage", "deploy-perf"] {
        assert_eq!(results[skipped], "Skipped", "{reading:?}: {results:?}");
    }

    // A push of release/1.4 deploys stage, then perf waits for its approval.
    let id = push(h, "release/1.4", &main).await?;
    waiting_at_approval(h, &main, &id, "deploy-perf", "perf").await?;
    let results = bed.stage_results(&main, &id).await?;
    assert_eq!(deployed(&results), ["stage"], "{reading:?}: {results:?}");
    assert_eq!(
        results["deploy-perf"], "InProgress",
        "{reading:?}: {results:?}"
    );
    bed.approve(&main, "deploy-perf").await?;
    bed.wait_execution(&main, &id, &["Succeeded"]).await?;
    let results = bed.stage_results(&main, &id).await?;
    assert_eq!(
        deployed(&results),
        ["perf", "stage"],
        "{reading:?}: {results:?}"
    );

    // A push of a manual environment's branch starts nothing: feature/* is in no trigger.
    let none = bed
        .push(
            &repository(h),
            "feature/login",
            &sha("feature/login"),
            &["src/main.rs"],
        )
        .await?;
    assert!(none.is_empty(), "{none:?}");

    // A run for qa deploys qa only, built from the commit asked for.
    let commit = sha("feature/login");
    let run_name = format!("qa-{}", reading.as_str());
    create_run(h, &run_name, "qa", Some("feature/login"), Some(&commit)).await?;
    let run = wait_phase(h, &run_name, &[RunPhase::Succeeded]).await?;
    let status = run.status.clone().context("status")?;
    let execution = status.execution_id.clone().context("execution id")?;
    assert_eq!(
        status.commit.as_deref(),
        Some(commit.as_str()),
        "{status:?}"
    );
    let results = bed.stage_results(&main, &execution).await?;
    assert_eq!(deployed(&results), ["qa"], "{reading:?}: {results:?}");
    assert_eq!(stages_of(&run)["deploy-dev"], "Skipped");
    assert_eq!(stages_of(&run)["deploy-qa"], "Succeeded");

    // A run for prod goes through the production pipeline's approval.
    let run_name = format!("prod-{}", reading.as_str());
    create_run(h, &run_name, "prod", Some("main"), None).await?;
    wait_phase(h, &run_name, &[RunPhase::AwaitingApproval]).await?;
    bed.approve(&production, "deploy-prod").await?;
    let run = wait_phase(h, &run_name, &[RunPhase::Succeeded]).await?;
    assert_eq!(stages_of(&run)["deploy-prod"], "Succeeded");
    Ok(())
}

/// Waits until execution `id` of `pipeline` waits at `stage`'s approval: the execution is
/// InProgress, the approval action runs (GetPipelineState gives its token) and the deploy after
/// it has not started. Then the controller reports it: `env`'s last run, on the
/// BranchPipeline, is that execution, AwaitingApproval.
async fn waiting_at_approval(
    h: &Harness,
    pipeline: &str,
    id: &str,
    stage: &str,
    env: &str,
) -> Result<()> {
    let client = h.bed.codepipeline().await;
    wait::until(
        &format!("{pipeline}/{stage} to wait for its approval"),
        TIMEOUT,
        || async {
            let state = client.get_pipeline_state().name(pipeline).send().await?;
            let stage_state = state
                .stage_states()
                .iter()
                .find(|s| s.stage_name() == Some(stage))
                .context("no such stage")?;
            let latest = stage_state.latest_execution();
            let approval = stage_state
                .action_states()
                .iter()
                .find(|a| a.action_name() == Some("approve"))
                .and_then(|a| a.latest_execution());
            let waiting = latest.is_some_and(|l| l.pipeline_execution_id() == id)
                && approval.is_some_and(|a| {
                    a.status().map(|s| s.as_str()) == Some("InProgress") && a.token().is_some()
                });
            Ok(Check::passed(waiting, || format!("{stage_state:?}")))
        },
    )
    .await?;
    assert_eq!(h.bed.execution_status(pipeline, id).await?, "InProgress");
    let actions = h.bed.action_executions(pipeline, id).await?;
    let ran: Vec<(&str, &str)> = actions
        .action_execution_details()
        .iter()
        .filter(|a| a.stage_name() == Some(stage))
        .map(|a| {
            (
                a.action_name().unwrap_or_default(),
                a.status().map(|s| s.as_str()).unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(ran, [("approve", "InProgress")], "the deploy waits");
    h.with_logs(
        wait::until(
            &format!("{env}'s last run to await approval"),
            TIMEOUT,
            || async {
                let bp = h.api.get(NAME).await?;
                let last = bp
                    .status
                    .iter()
                    .flat_map(|s| &s.environments)
                    .find(|e| e.name == env)
                    .and_then(|e| e.last_run.clone());
                let awaiting = last
                    .as_ref()
                    .is_some_and(|r| r.execution_id == id && r.result == "AwaitingApproval");
                Ok(Check::passed(awaiting, || format!("{last:?}")))
            },
        )
        .await,
    )
}

/// Two manual environments and a promotion from one of them.
fn two_manual_environments(h: &Harness) -> Result<BranchPipeline> {
    let mut value = serde_json::to_value(example(h))?;
    value["metadata"]["name"] = json!("two-manual");
    value["spec"]["environments"] = json!([
        {"name": "dev", "branches": ["develop"]},
        {"name": "qa", "branches": ["feature/*"], "trigger": "manual"},
        {"name": "uat", "branches": ["release/*"], "trigger": "manual"},
        {"name": "perf", "promoteFrom": "uat", "approval": {}},
    ]);
    Ok(serde_json::from_value(value)?)
}

async fn routing_of_two_manual_environments(h: &Harness, reading: ManualStartBranch) -> Result<()> {
    let pipeline = format!("{}-two-manual", h.ns);
    let bed = h.bed;
    let id = push(h, "develop", &pipeline).await?;
    bed.wait_execution(&pipeline, &id, &["Succeeded"]).await?;
    assert_eq!(deployed(&bed.stage_results(&pipeline, &id).await?), ["dev"]);

    // uat is manual: a push of its branch starts nothing; a run deploys uat, then perf after
    // its approval, and nothing else.
    let none = bed
        .push(&repository(h), "release/2.0", &sha("release/2.0"), &[])
        .await?;
    assert!(none.iter().all(|(p, _)| p != &pipeline), "{none:?}");
    let run_name = format!("uat-{}", reading.as_str());
    create_run_for(
        h,
        &run_name,
        "two-manual",
        "uat",
        Some("release/2.0"),
        Some(&sha("release/2.0")),
    )
    .await?;
    wait_phase(h, &run_name, &[RunPhase::AwaitingApproval]).await?;
    bed.approve(&pipeline, "deploy-perf").await?;
    let run = wait_phase(h, &run_name, &[RunPhase::Succeeded]).await?;
    let execution = run
        .status
        .and_then(|s| s.execution_id)
        .context("execution")?;
    let results = bed.stage_results(&pipeline, &execution).await?;
    assert_eq!(
        deployed(&results),
        ["perf", "uat"],
        "{reading:?}: {results:?}"
    );

    let run_name = format!("qa2-{}", reading.as_str());
    create_run_for(
        h,
        &run_name,
        "two-manual",
        "qa",
        Some("feature/x"),
        Some(&sha("feature/x")),
    )
    .await?;
    let run = wait_phase(h, &run_name, &[RunPhase::Succeeded]).await?;
    let execution = run
        .status
        .and_then(|s| s.execution_id)
        .context("execution")?;
    let results = bed.stage_results(&pipeline, &execution).await?;
    assert_eq!(deployed(&results), ["qa"], "{reading:?}: {results:?}");
    Ok(())
}

/// The README's routing table, for the example and for a spec with two manual environments and
/// a promotion, under both readings of the branch a manual start with a commit reports. The
/// reading is a switch of the whole bed: the other tests in this binary hold under both, which
/// is the point.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_routing_table_holds_under_both_readings() -> Result<()> {
    for reading in [ManualStartBranch::Configured, ManualStartBranch::Commit] {
        let h = world(&format!("routing-{}", reading.as_str())).await?;
        h.bed.manual_start_branch(reading).await?;
        h.apply(&example(&h)).await?;
        h.apply(&two_manual_environments(&h)?).await?;
        h.wait_ready(NAME).await?;
        h.wait_ready("two-manual").await?;
        routing_of_the_example(&h, reading).await?;
        routing_of_two_manual_environments(&h, reading).await?;
        println!(
            "routing: the table holds with manualStartBranch={}",
            reading.as_str()
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_that_cannot_reach_their_environment_are_rejected_without_an_aws_call() -> Result<()> {
    let h = world("reject").await?;
    h.apply(&example(&h)).await?;
    h.wait_ready(NAME).await?;
    let sha = sha("x");
    let cases = [
        ("wrong-branch", "qa", Some("release/1.4"), "spec.branch"),
        ("unknown-env", "staging", None, "spec.environment"),
        ("promoted-env", "perf", None, "spec.environment"),
        ("no-commit", "qa", Some("feature/login"), "spec.commit"),
    ];
    for (name, env, branch, field) in cases {
        let commit = (name != "no-commit").then_some(sha.as_str());
        create_run(&h, name, env, branch, commit).await?;
        let run = wait_phase(&h, name, &[RunPhase::Rejected]).await?;
        assert_eq!(owner_of(&run), Some(NAME), "{name}: judged, so owned");
        let status = run.status.unwrap_or_default();
        let message = status.message.clone().unwrap_or_default();
        assert!(message.starts_with(field), "{name}: {message}");
        // What was asked is recorded: `kubectl get` shows it.
        assert_eq!(status.branch_pipeline.as_deref(), Some(NAME), "{name}");
        assert_eq!(status.environment.as_deref(), Some(env), "{name}");
        assert_eq!(status.branch.as_deref(), branch, "{name}");
    }
    // A run naming a BranchPipeline that does not exist: nothing can own it.
    create_run_for(&h, "no-such-bp", "nowhere", "dev", None, None).await?;
    let run = wait_phase(&h, "no-such-bp", &[RunPhase::Rejected]).await?;
    assert_eq!(owner_of(&run), None);
    let status = run.status.unwrap_or_default();
    assert!(
        status
            .message
            .as_deref()
            .is_some_and(|m| m.starts_with("spec.branchPipeline")),
        "{status:?}"
    );
    assert_eq!(status.branch_pipeline.as_deref(), Some("nowhere"));
    // A BranchPipeline that is not Ready: its spec is invalid.
    let mut broken = example(&h);
    broken.metadata.name = Some("broken".into());
    broken.spec.environments[3].promote_from = Some("nowhere".into());
    h.apply(&broken).await?;
    h.wait_not_ready("broken", "InvalidSpec").await?;
    create_run_for(&h, "not-ready", "broken", "dev", None, None).await?;
    let run = wait_phase(&h, "not-ready", &[RunPhase::Rejected]).await?;
    assert!(
        run.status
            .and_then(|s| s.message)
            .unwrap_or_default()
            .contains("not Ready")
    );

    assert_eq!(h.count("StartPipelineExecution").await?, 0);
    let events = h.events().await?;
    assert_eq!(
        events.iter().filter(|(r, _)| r == "RunRejected").count(),
        6,
        "{events:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_build_fails_the_run_and_names_the_stage() -> Result<()> {
    let h = world("fail").await?;
    h.apply(&example(&h)).await?;
    h.wait_ready(NAME).await?;
    h.bed
        .action_outcome(&json!({"pipelineName": main_pipeline(&h), "stageName": "test", "status": "Failed", "summary": "3 tests failed"}))
        .await?;
    create_run(&h, "dev-fails", "dev", None, None).await?;
    let run = wait_phase(&h, "dev-fails", &[RunPhase::Failed]).await?;
    let status = run.status.clone().context("status")?;
    assert_eq!(
        status.message.as_deref(),
        Some("stage test failed: 3 tests failed")
    );
    assert_eq!(stages_of(&run)["test"], "Failed");
    assert_eq!(stages_of(&run)["deploy-dev"], "NotRun");
    assert!(h.events().await?.iter().any(|(r, _)| r == "RunFailed"));
    Ok(())
}

/// A restart between StartPipelineExecution and the status write finds the same execution:
/// the run's UID is the idempotency token (`clientRequestToken`, "the system-generated unique
/// ID used to identify a unique execution request", API reference StartPipelineExecution,
/// <https://docs.aws.amazon.com/codepipeline/latest/APIReference/API_StartPipelineExecution.html>;
/// an `idempotencyToken` in the botocore model).
///
/// The first controller reaches AWS through the fault proxy, which forwards
/// StartPipelineExecution at once but holds its answer back: AWS has started the execution and
/// the controller does not know its id. It is killed in that window, every time: moto's
/// request log has the call, the run's status has no executionId. The second controller
/// therefore starts the run again. Only the token makes that second call return the first
/// execution instead of starting another, so the test fails with a token that is not a
/// function of the run (the bed honours the token as AWS does; `tests/moto_ext/README.md`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_killed_right_after_starting_a_run_starts_nothing_twice() -> Result<()> {
    let mut h = Harness::new("restart").await?;
    let proxy = fault_proxy::with_plan(
        h.bed.moto_url(),
        Plan::SlowResponses {
            operations: vec!["StartPipelineExecution".into()],
            // Longer than the test: the first controller never hears back.
            delay: Duration::from_secs(3600),
        },
    )
    .await;
    let first = h.start_controller_with_env(&[], &[("AWS_ENDPOINT_URL", proxy.url.as_str())])?;
    h.apply(&example(&h)).await?;
    h.wait_ready(NAME).await?;
    let production = production_pipeline(&h);
    create_run(&h, "prod-once", "prod", None, None).await?;
    h.with_logs(
        wait::until("AWS to receive StartPipelineExecution", TIMEOUT, || async {
            let n = h.count("StartPipelineExecution").await?;
            Ok(Check::passed(n >= 1, || "none yet".into()))
        })
        .await,
    )?;
    let pid = h.controller_pids()[first];
    // SAFETY: kill(2) on a child process this test started and has not reaped.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) }, 0);
    h.stop_controller(first);
    let started_before = started_by_hand(&h, &production).await?;
    assert_eq!(started_before.len(), 1, "AWS started the execution");
    let at_kill = runs(&h).get("prod-once").await?.status;
    assert_eq!(
        at_kill.as_ref().and_then(|s| s.execution_id.as_ref()),
        None,
        "killed before the controller recorded the execution: {at_kill:?}"
    );
    assert_eq!(h.count("StartPipelineExecution").await?, 1);

    h.start_controller(&[])?;
    let following = [RunPhase::InProgress, RunPhase::AwaitingApproval];
    let run = wait_phase(&h, "prod-once", &following).await?;
    let execution = run
        .status
        .and_then(|s| s.execution_id)
        .context("execution")?;
    let calls = h.count("StartPipelineExecution").await?;
    assert_eq!(calls, 2, "the second controller asked again");
    assert_eq!(
        started_by_hand(&h, &production).await?,
        std::slice::from_ref(&execution),
        "one execution, the first one, and the run follows it"
    );
    assert_eq!(started_before, std::slice::from_ref(&execution));
    wait_phase(&h, "prod-once", &[RunPhase::AwaitingApproval]).await?;
    h.bed.approve(&production, "deploy-prod").await?;
    let run = wait_phase(&h, "prod-once", &[RunPhase::Succeeded]).await?;
    assert_eq!(
        run.status.and_then(|s| s.execution_id),
        Some(execution),
        "followed to its end"
    );
    println!(
        "restart: killed between the start and its record; {calls} StartPipelineExecution calls, 1 execution"
    );
    Ok(())
}

/// The executions of `pipeline` started by StartPipelineExecution (not by a push).
async fn started_by_hand(h: &Harness, pipeline: &str) -> Result<Vec<String>> {
    Ok(h.aws
        .list_executions(pipeline, None, 100)
        .await?
        .into_iter()
        .filter(|e| e.trigger.as_deref() == Some("StartPipelineExecution"))
        .map(|e| e.id)
        .collect())
}

/// The name of the BranchPipeline owning `run`.
fn owner_of(run: &BranchPipelineRun) -> Option<&str> {
    run.metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.kind == "BranchPipeline")
        .map(|o| o.name.as_str())
}

/// `kubectl get bplrun NAME`'s columns (but Name and Age), through the API server's Table
/// rendering of the CRD's printer columns.
async fn columns(h: &Harness, name: &str) -> Result<Vec<(String, String)>> {
    let path = format!(
        "/apis/branchpipeline.dev/v1alpha1/namespaces/{}/branchpipelineruns/{name}",
        h.ns
    );
    let request = ::http::Request::get(path)
        .header("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
        .body(Vec::new())?;
    let table: serde_json::Value =
        serde_json::from_str(&h.bed.client().request_text(request).await?)?;
    let names = table["columnDefinitions"]
        .as_array()
        .context("columnDefinitions")?
        .iter()
        .map(|c| c["name"].as_str().unwrap_or_default().to_string());
    let cells = table["rows"][0]["cells"]
        .as_array()
        .context("cells")?
        .iter()
        .map(|c| c.as_str().map_or_else(|| c.to_string(), str::to_string));
    Ok(names
        .zip(cells)
        .filter(|(n, _)| n != "Name" && n != "Age")
        .collect())
}

fn row(cells: [&str; 4]) -> Vec<(String, String)> {
    ["BranchPipeline", "Environment", "Branch", "Phase"]
        .into_iter()
        .zip(cells)
        .map(|(n, c)| (n.to_string(), c.to_string()))
        .collect()
}

/// Edits a run's spec as nothing at admission forbids, and waits for the controller to report
/// that it ignores the edit.
async fn edit_and_wait_ignored(h: &Harness, name: &str, spec: serde_json::Value) -> Result<()> {
    runs(h)
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": spec})),
        )
        .await?;
    wait::until("SpecChangeIgnored", TIMEOUT, || async {
        let run = runs(h).get(name).await?;
        let ignored = run.status.iter().flat_map(|s| &s.conditions).any(|c| {
            c.type_ == "SpecChangeIgnored" && c.observed_generation == run.metadata.generation
        });
        Ok(Check::passed(ignored, || format!("{:?}", run.status)))
    })
    .await
}

/// Retention and cleanup follow the owner reference and what the controller recorded, never
/// the spec, which can be edited after the verdict; any finished run, a rejected one included,
/// trims the history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_belong_to_their_branch_pipeline_and_are_kept_within_the_history_limit() -> Result<()>
{
    let h = world("history").await?;
    let mut bp = example(&h);
    bp.spec.run_history_limit = Some(1);
    h.apply(&bp).await?;
    h.wait_ready(NAME).await?;
    create_run(&h, "first", "dev", None, None).await?;
    let first = wait_phase(&h, "first", &[RunPhase::Succeeded]).await?;
    assert_eq!(owner_of(&first), Some(NAME));
    create_run(&h, "second", "dev", None, None).await?;
    wait_phase(&h, "second", &[RunPhase::Succeeded]).await?;
    wait::until_gone(&runs(&h), "first", TIMEOUT).await?;

    // An edit of a run's spec is ignored and reported; `kubectl get` shows what ran.
    edit_and_wait_ignored(
        &h,
        "second",
        json!({"branchPipeline": "elsewhere", "environment": "qa"}),
    )
    .await?;
    assert_eq!(
        columns(&h, "second").await?,
        row([NAME, "dev", "develop", "Succeeded"])
    );

    // A rejected run is judged against the BranchPipeline, owned by it, and finishing it trims
    // the history: the edited run goes.
    create_run(&h, "rejected", "qa", Some("release/1.4"), Some(&sha("x"))).await?;
    let rejected = wait_phase(&h, "rejected", &[RunPhase::Rejected]).await?;
    assert_eq!(owner_of(&rejected), Some(NAME));
    assert_eq!(
        columns(&h, "rejected").await?,
        row([NAME, "qa", "release/1.4", "Rejected"])
    );
    wait::until_gone(&runs(&h), "second", TIMEOUT).await?;

    // Deleting the BranchPipeline deletes its runs, one whose spec now names another included.
    create_run(&h, "third", "dev", None, None).await?;
    wait_phase(&h, "third", &[RunPhase::Succeeded]).await?;
    wait::until_gone(&runs(&h), "rejected", TIMEOUT).await?;
    edit_and_wait_ignored(&h, "third", json!({"branchPipeline": "elsewhere"})).await?;
    h.delete(NAME).await?;
    h.wait_gone(NAME).await?;
    wait::until("no runs left", TIMEOUT, || async {
        let left = runs(&h).list(&ListParams::default()).await?.items.len();
        Ok(Check::passed(left == 0, || format!("{left} runs")))
    })
    .await?;
    Ok(())
}
