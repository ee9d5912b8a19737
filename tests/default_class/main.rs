//! The default BranchPipelineClass end to end, in a bed of its own: a default class is every
//! class-less BranchPipeline's class, so it cannot share an API server with the other class
//! tests (see `tests/classes/`).
//!
//! With `--require-class`, a BranchPipeline that uses no class is refused before any AWS call;
//! marking a class default carries it to AWS; deleting that default class leaves AWS as it was
//! (`ClassNotFound`, as for a named class) instead of re-rendering the resource without the
//! class's defaults and guardrails.

#[path = "../support/mod.rs"]
mod support;

#[path = "../reconciler/harness.rs"]
#[allow(dead_code)]
mod harness;

#[path = "../classes/fixtures.rs"]
#[allow(dead_code)]
mod fixtures;

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use branchpipeline::api::*;
use kube::api::DeleteParams;
use serde_json::json;

use fixtures::{
    classes, create_class, platform_class, restore_changes_nothing, tenant, writes_since,
};
use harness::Harness;
use support::unique_name;

/// Several resyncs of two seconds, and the class watch's latency.
const QUIET: Duration = Duration::from_secs(6);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_default_class_is_required_carried_and_its_deletion_changes_nothing() -> Result<()> {
    let mut h = Harness::new("default-class").await?;
    h.start_controller(&["--resync-interval", "2s", "--require-class"])?;
    let class_name = unique_name("platform");
    // The tenant names no class: it is complete only with the default class's defaults.
    let mut bp = tenant(&h, "orders-api", &class_name)?;
    bp.spec.class_name = None;
    h.apply(&bp).await?;
    let message = h.wait_not_ready("orders-api", "ClassNotFound").await?;
    ensure!(message.contains("--require-class"), "{message}");
    ensure!(
        h.aws_inventory().await?.0.is_empty(),
        "refused before any AWS call"
    );

    let mut class = platform_class(&class_name, &h.example(), json!({}))?;
    class
        .metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(DEFAULT_CLASS_ANNOTATION.into(), "true".into());
    create_class(&h, &class).await?;
    let synced = h.wait_ready("orders-api").await?.status.context("status")?;
    ensure!(
        synced.synced_class.as_ref().map(|c| c.name.as_str()) == Some(class_name.as_str()),
        "{:?}",
        synced.synced_class
    );
    let inventory = h.aws_inventory().await?;
    ensure!(inventory.0.len() == 2, "{inventory:?}");
    tokio::time::sleep(QUIET).await;
    let before = h.mutating_calls().await?;

    classes(&h)
        .delete(&class_name, &DeleteParams::default())
        .await?;
    let message = h.wait_not_ready("orders-api", "ClassNotFound").await?;
    ensure!(
        message.contains(&class_name) && message.contains("no longer"),
        "{message}"
    );
    tokio::time::sleep(QUIET).await;
    pretty_assertions::assert_eq!(
        writes_since(&h, before.len()).await?,
        Vec::<(String, String)>::new(),
        "no AWS write once the default class is gone"
    );
    pretty_assertions::assert_eq!(h.aws_inventory().await?, inventory);
    restore_changes_nothing(&h, &class, before.len()).await
}
