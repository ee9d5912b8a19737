//! SIGKILL in the middle of the first sync: the next controller finishes the job from what AWS
//! holds, creating nothing twice and leaving nothing behind.

use std::time::Duration;

use anyhow::Result;

use crate::harness::Harness;
use crate::support::fault_proxy::{self, Plan};
use crate::support::wait::{self, Check};
use crate::{NAME, rendered_names};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_between_creates_leaves_no_duplicates_and_no_orphans() -> Result<()> {
    let mut h = Harness::new("fault-sigkill").await?;
    // moto carries every create out at once, but the first controller hears back only after
    // a delay: the window in which it is killed, after AWS did the work and before the
    // controller knew.
    let proxy = fault_proxy::with_plan(
        h.bed.moto_url(),
        Plan::SlowResponses {
            operations: vec!["CreateProject".into(), "CreatePipeline".into()],
            delay: Duration::from_millis(500),
        },
    )
    .await;
    let first = h.start_controller_with_env(&[], &[("AWS_ENDPOINT_URL", proxy.url.as_str())])?;
    h.apply(&h.example()).await?;

    let creates = || async {
        Ok::<_, anyhow::Error>(h.count("CreateProject").await? + h.count("CreatePipeline").await?)
    };
    wait::until(
        "the first create in moto's request log",
        Duration::from_secs(60),
        || async {
            let n = creates().await?;
            Ok(Check::passed(n > 0, || "no create yet".into()))
        },
    )
    .await?;
    let pid = h.controller_pids()[first];
    // SAFETY: kill(2) on a child process this test started and has not reaped.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) }, 0);
    // Reaps it (no grace period for a process that has already exited).
    h.stop_controller(first);
    let (rendered_pipelines, rendered_projects) = rendered_names(&h);
    let all_creates = rendered_pipelines.len() + rendered_projects.len();
    let at_kill = creates().await?;
    assert!(
        (1..all_creates).contains(&at_kill),
        "killed mid-create: {at_kill} of {all_creates} creates done\n{}",
        h.logs()
    );
    assert!(
        !h.controller_log_full(first).contains("controller stopped"),
        "the first controller was killed, not stopped"
    );

    let second = h.start_controller(&[])?;
    h.wait_ready(NAME).await?;
    let (pipelines, projects) = h.aws_inventory().await?;
    assert_eq!(
        (pipelines, projects),
        rendered_names(&h),
        "AWS holds exactly what the example renders"
    );
    let create_project = h.count("CreateProject").await?;
    let create_pipeline = h.count("CreatePipeline").await?;
    assert_eq!(
        (create_project, create_pipeline),
        (rendered_projects.len(), rendered_pipelines.len()),
        "one create per resource, none repeated\n{:?}\n{}",
        h.mutating_calls().await?,
        h.logs()
    );
    assert_eq!(
        h.count("DeleteProject").await? + h.count("DeletePipeline").await?,
        0
    );
    h.ensure_controller_running(second)?;
    println!(
        "fault: SIGKILL after {at_kill} of {all_creates} creates; after the restart CreateProject={create_project} CreatePipeline={create_pipeline}, 0 duplicates, 0 orphans"
    );
    Ok(())
}
