//! The kube-apiserver goes away (etcd stays) and comes back on the same port: the controller
//! reconciles again within seconds of its return. Each test runs on a private bed, since
//! stopping the shared apiserver would fail every other test.

use std::time::{Duration, Instant};

use anyhow::Result;
use branchpipeline::api::ComputeType;

use crate::harness::Harness;
use crate::support::TestBed;
use crate::support::wait::{self, Check};
use crate::{NAME, until_compute_type};

/// The edit must reach AWS within this long of the API server's return: one capped watch
/// backoff (8 s), a relist and a reconcile.
const WITHIN: Duration = Duration::from_secs(15);

const LOG_FILTER: &str = "info,branchpipeline=debug,kube_runtime=debug";

/// The controller's watch retries, backoffs, relists and plans.
fn timeline(log: &str) -> String {
    log.lines()
        .filter(|l| {
            [
                "stream_backoff",
                "watcher",
                "planned",
                "relisting",
                "kube_client",
            ]
            .iter()
            .any(|n| l.contains(n))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A private bed, stopped when the test ends. The harness wants a `&'static` bed (the shared
/// one is), so the bed is leaked; its processes and directory are not.
struct PrivateBed(&'static TestBed);

impl PrivateBed {
    async fn start() -> Result<Self> {
        Ok(Self(Box::leak(Box::new(TestBed::start().await?))))
    }
}

impl Drop for PrivateBed {
    fn drop(&mut self) {
        self.0.shutdown();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_10s_apiserver_outage() -> Result<()> {
    let took = outage(Duration::from_secs(10)).await?;
    println!(
        "fault: after a 10s API server outage, an edit applied {:.1}s after the API server returned",
        took.as_secs_f64()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_30s_apiserver_outage() -> Result<()> {
    let took = outage(Duration::from_secs(30)).await?;
    println!(
        "fault: after a 30s API server outage, an edit applied {:.1}s after the API server returned",
        took.as_secs_f64()
    );
    Ok(())
}

/// Stops the apiserver for `length`, starts it again, edits the spec at once and returns how
/// long after the return AWS had the edit.
async fn outage(length: Duration) -> Result<Duration> {
    let bed = PrivateBed::start().await?;
    let mut h = Harness::on(bed.0, "fault-outage").await?;
    // kube-runtime's debug lines show each watch retry and its backoff: the timeline a slow
    // return is judged by.
    let i = h.start_controller_with_env(&[], &[("RUST_LOG", LOG_FILTER)])?;
    let mut bp = h.example();
    h.apply(&bp).await?;
    h.wait_ready(NAME).await?;

    bed.0.stop_apiserver();
    // The quiet period is the point: the outage itself.
    tokio::time::sleep(length).await;
    bed.0.start_apiserver().await?;
    let back = Instant::now();

    bp.spec.stages[1].compute_type = Some(ComputeType::General1Xlarge);
    // The test's own client may hold connections to the old process: retry until the API
    // server takes the edit.
    wait::until(
        "the restarted API server to take the edit",
        Duration::from_secs(30),
        || async {
            Ok(match h.apply(&bp).await {
                Ok(_) => Check::Done(()),
                Err(e) => Check::NotYet(format!("{e:#}")),
            })
        },
    )
    .await?;
    let project = format!("{}-orders-api-test", h.ns);
    let took = until_compute_type(
        &h,
        &project,
        "BUILD_GENERAL1_XLARGE",
        back,
        Duration::from_secs(60),
    )
    .await?;
    assert!(
        took < WITHIN,
        "the edit reached AWS {took:?} after the API server returned (at {}); want under {WITHIN:?}\n{}",
        jiff::Timestamp::now() - jiff::SignedDuration::try_from(back.elapsed())?,
        timeline(&h.controller_log_full(i))
    );
    h.ensure_controller_running(i)?;
    h.wait_ready(NAME).await?;
    Ok(took)
}
