//! AWS refuses DeletePipeline: the resource stays (finalizer), says why, and goes away with
//! its AWS resources once the refusal is lifted.

use std::time::{Duration, Instant};

use anyhow::Result;
use branchpipeline::api::{CONDITION_READY, FINALIZER};

use crate::harness::Harness;
use crate::support::fault_proxy::{self, Plan};
use crate::{NAME, rendered_names, wait_warning};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_delete_blocks_deletion_until_it_is_allowed() -> Result<()> {
    let mut h = Harness::new("fault-deny-delete").await?;
    let proxy = fault_proxy::with_plan(h.bed.moto_url(), Plan::Pass).await;
    // A terminal error is retried at the next resync: 10 s keeps the test short.
    let i = h.start_controller_with_env(
        &["--resync-interval", "10s"],
        &[("AWS_ENDPOINT_URL", proxy.url.as_str())],
    )?;
    h.apply(&h.example()).await?;
    h.wait_ready(NAME).await?;

    proxy.set_plan(Plan::deny("DeletePipeline"));
    h.delete(NAME).await?;
    let message = h.wait_not_ready(NAME, "DeletionBlocked").await?;
    assert!(
        message.contains("DeletePipeline") && message.contains("AccessDeniedException"),
        "{message}"
    );
    wait_warning(&h, "DeletionBlocked", |note| {
        note.contains("DeletePipeline")
    })
    .await?;
    let held = h.api.get(NAME).await?;
    assert!(held.metadata.deletion_timestamp.is_some());
    assert!(
        held.metadata
            .finalizers
            .as_ref()
            .is_some_and(|f| f.iter().any(|f| f == FINALIZER)),
        "{:?}",
        held.metadata.finalizers
    );
    let ready = held
        .status
        .as_ref()
        .and_then(|s| s.condition(CONDITION_READY))
        .map(|c| (c.status.clone(), c.reason.clone()));
    assert_eq!(ready, Some(("False".into(), "DeletionBlocked".into())));
    // Nothing was deleted: pipelines go first, and the first one was refused.
    assert_eq!(h.aws_inventory().await?, rendered_names(&h));
    assert!(proxy.fault_counts().denied >= 1);

    proxy.set_plan(Plan::Pass);
    let lifted = Instant::now();
    h.wait_gone(NAME).await?;
    let took = lifted.elapsed();
    assert_eq!(h.aws_inventory().await?, (vec![], vec![]));
    // Retried at the resync interval (10 s), not at once and not never.
    assert!(took < Duration::from_secs(30), "{took:?}\n{}", h.logs());
    h.ensure_controller_running(i)?;
    println!(
        "fault: deletion completed {:.1}s after DeletePipeline was allowed again",
        took.as_secs_f64()
    );
    Ok(())
}
