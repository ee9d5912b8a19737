//! Running it in production: leader election, metrics and probes.

use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};

use crate::harness::Harness;
use crate::support::http;
use crate::support::process::free_port;
use crate::support::wait::{self, Check};

const NAME: &str = "orders-api";
const ACQUIRED: &str = "acquired the leader lease";

fn leader_args(h: &Harness, port: u16) -> Vec<String> {
    [
        "--leader-election",
        "--leader-election-namespace",
        &h.ns,
        "--lease-duration",
        "4s",
        "--resync-interval",
        "1s",
        "--metrics-addr",
        &format!("127.0.0.1:{port}"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn start(h: &mut Harness, args: &[String]) -> Result<usize> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    h.start_controller(&args)
}

async fn wait_leader(h: &Harness, candidates: &[usize], timeout: Duration) -> Result<usize> {
    wait::until("a leader", timeout, || async {
        let leaders: Vec<usize> = candidates
            .iter()
            .copied()
            .filter(|&i| h.controller_log_full(i).contains(ACQUIRED))
            .collect();
        match leaders.as_slice() {
            [one] => Ok(Check::Done(*one)),
            [] => Ok(Check::NotYet(format!(
                "none of {candidates:?} holds the lease"
            ))),
            many => bail!("several leaders at once: {many:?}"),
        }
    })
    .await
    .map_err(|e| anyhow!("{e:#}\n{}", h.logs()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leader_reconciles_and_a_standby_takes_over_after_a_crash() -> Result<()> {
    let mut h = Harness::new("leader").await?;
    let (args_a, args_b) = (leader_args(&h, free_port()?), leader_args(&h, free_port()?));
    let a = start(&mut h, &args_a)?;
    let b = start(&mut h, &args_b)?;
    let leader = wait_leader(&h, &[a, b], Duration::from_secs(20)).await?;
    let standby = if leader == a { b } else { a };
    h.apply(&h.example()).await?;
    h.wait_ready(NAME).await?;
    // The sleep is the point: two resync intervals (1s) in which a standby that reconciled
    // would log a plan.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !h.controller_log_full(standby).contains("planned"),
        "the standby reconciled\n{}",
        h.logs()
    );
    let writes_before = h.mutating_calls().await?;

    // SIGKILL: no chance to release the lease, so the standby must wait for it to expire.
    let pid = h.controller_pids()[leader];
    let killed_at = Instant::now();
    // SAFETY: kill(2) on a child process this test started.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    wait_leader(&h, &[standby], Duration::from_secs(20)).await?;
    let took = killed_at.elapsed();
    // Lease duration 4s, plus up to one renewal period for the standby to notice.
    assert!(took < Duration::from_secs(10), "takeover took {took:?}");
    eprintln!("standby took over {took:?} after the leader was killed");

    // The new leader resyncs and finds AWS in line: no duplicate writes.
    h.wait_log(standby, "planned writes=0", Duration::from_secs(20))
        .await?;
    assert_eq!(h.mutating_calls().await?, writes_before);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_probes_answer_after_a_reconcile() -> Result<()> {
    let mut h = Harness::new("metrics").await?;
    let port = free_port()?;
    let addr = format!("127.0.0.1:{port}");
    h.start_controller(&["--metrics-addr", &addr])?;
    h.apply(&h.example()).await?;
    h.wait_ready(NAME).await?;
    let base = format!("http://{addr}");
    let text = wait::until(
        "the managed pipelines gauge",
        Duration::from_secs(10),
        || async {
            let text = http::request(&base, "GET", "/metrics", &[], b"")
                .await?
                .text();
            Ok(if text.contains("branchpipeline_managed_pipelines 2") {
                Check::Done(text)
            } else {
                Check::NotYet(text)
            })
        },
    )
    .await?;
    for series in [
        "branchpipeline_reconciles_total{result=\"ok\"}",
        "branchpipeline_reconcile_duration_seconds_bucket",
        "branchpipeline_aws_requests_total{operation=\"CreatePipeline\",outcome=\"success\"} 2",
        "branchpipeline_aws_requests_total{operation=\"CreateProject\",outcome=\"success\"} 4",
        "branchpipeline_drift_repairs_total 0",
        "branchpipeline_managed_pipelines 2",
        "branchpipeline_managed_projects 4",
    ] {
        assert!(text.contains(series), "missing {series} in\n{text}");
    }
    assert_eq!(
        http::request(&base, "GET", "/healthz", &[], b"")
            .await?
            .status,
        200
    );
    let ready = http::request(&base, "GET", "/readyz", &[], b"").await?;
    assert_eq!(
        ready.status,
        200,
        "{}\n{}",
        ready.text(),
        h.controller_log_full(0)
            .lines()
            .filter(|l| !l.contains("DEBUG"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_loses_its_lease_stops_writing() -> Result<()> {
    use k8s_openapi::api::coordination::v1::Lease;
    use kube::api::{Api, Patch, PatchParams};

    let mut h = Harness::new("deposed").await?;
    let args = leader_args(&h, free_port()?);
    let i = start(&mut h, &args)?;
    wait_leader(&h, &[i], Duration::from_secs(20)).await?;
    let mut bp = h.example();
    h.apply(&bp).await?;
    h.wait_ready(NAME).await?;

    // Someone else takes the lease, for longer than this test runs.
    let leases: Api<Lease> = Api::namespaced(h.bed.client(), &h.ns);
    let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
        k8s_openapi::jiff::Timestamp::now(),
    );
    let steal = serde_json::json!({"spec": {"holderIdentity": "another-replica", "leaseDurationSeconds": 3600, "renewTime": now, "acquireTime": now}});
    leases
        .patch(
            "branchpipeline-controller",
            &PatchParams::default(),
            &Patch::Merge(&steal),
        )
        .await?;
    h.wait_log(i, "lost the leader lease", Duration::from_secs(15))
        .await?;

    // A spec change now must not reach AWS: this replica is no longer the leader.
    let before = h.mutating_calls().await?;
    bp.spec.stages[0].compute_type = Some(branchpipeline::api::ComputeType::General1Large);
    h.apply(&bp).await?;
    // The sleep is the point: four resync intervals (1s) in which a deposed leader that
    // still reconciled would write the change.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        h.mutating_calls().await?,
        before,
        "a deposed leader wrote to AWS\n{}",
        h.logs()
    );
    Ok(())
}

/// A gauge or counter value from a controller's /metrics text.
fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0)
}

/// Two shards split the resources: each is served by exactly one of them, and together they
/// serve all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_shards_split_the_resources_with_none_served_twice() -> Result<()> {
    const N: usize = 10;
    let mut h = Harness::new("shards").await?;
    let ports = [free_port()?, free_port()?];
    for (i, port) in ports.iter().enumerate() {
        let shard = format!("{i}/2");
        let addr = format!("127.0.0.1:{port}");
        h.start_controller(&["--shard", &shard, "--metrics-addr", &addr])?;
    }
    let example = h.example();
    for i in 0..N {
        let mut bp = example.clone();
        bp.metadata.name = Some(format!("bp-{i}"));
        h.apply(&bp).await?;
    }
    for i in 0..N {
        h.wait_ready(&format!("bp-{i}")).await?;
    }
    let managed = wait::until(
        "both shards to report what they manage",
        Duration::from_secs(30),
        || async {
            let mut counts = Vec::new();
            for port in ports {
                let text = http::request(
                    &format!("http://127.0.0.1:{port}"),
                    "GET",
                    "/metrics",
                    &[],
                    b"",
                )
                .await?
                .text();
                counts.push(metric(&text, "branchpipeline_managed_pipelines"));
            }
            let total: u64 = counts.iter().sum();
            Ok(if total == 2 * N as u64 {
                Check::Done(counts)
            } else {
                Check::NotYet(format!("{counts:?}"))
            })
        },
    )
    .await?;
    assert!(
        managed.iter().all(|&c| c > 0),
        "both shards serve some: {managed:?}"
    );
    println!("shards: {managed:?} pipelines of {N} resources");
    let creates = h.count("CreatePipeline").await?;
    assert_eq!(creates, 2 * N, "no pipeline was created twice");
    Ok(())
}
