//! Specs at the edges of what the API server takes: a 1 MiB BranchPipeline, and one with so
//! many invalid fields that their list does not fit an Event note.

use std::collections::BTreeMap;

use anyhow::Result;
use branchpipeline::api::CONDITION_READY;

use crate::harness::Harness;
use crate::{NAME, message, wait_warning};

const MIB: usize = 1 << 20;
/// events.k8s.io/v1 Event `note`: at most 1 kB.
const NOTE_MAX: usize = 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_1mib_spec_is_refused_without_any_aws_call() -> Result<()> {
    let mut h = Harness::new("fault-1mib").await?;
    h.start_controller(&[])?;
    let mut bp = h.example();
    // About a thousand deploy variables of 1,000 characters each: the API server stores the
    // object (it takes up to ~1.5 MiB), and the deploy action's configuration would exceed
    // CodePipeline's 1,000 characters a thousand times over.
    let value = "v".repeat(1000);
    let count = MIB / value.len() + 1;
    bp.spec.environments[0].variables = (0..count)
        .map(|i| (format!("DEPLOY_VAR_{i:04}"), value.clone()))
        .collect::<BTreeMap<_, _>>();
    h.apply(&bp).await?;
    let stored = h.api.get(NAME).await?;
    let size = serde_json::to_vec(&stored)?.len();
    assert!(size >= MIB, "the object has {size} bytes");

    let message = h.wait_not_ready(NAME, "InvalidSpec").await?;
    assert!(
        message.contains("spec.environments[0].variables"),
        "the message names the field: {}",
        &message[..message.len().min(2000)]
    );
    assert_eq!(
        h.calls_naming_us().await?,
        0,
        "no AWS call names the resource's pipelines or projects"
    );
    println!(
        "fault: a {size}-byte ({:.2} MiB) BranchPipeline refused as InvalidSpec with 0 AWS calls",
        size as f64 / MIB as f64
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_spec_list_too_long_for_an_event_is_shortened_there_and_whole_in_status()
-> Result<()> {
    let mut h = Harness::new("fault-long-note").await?;
    h.start_controller(&[])?;
    let mut bp = h.example();
    // 60 tags: too many, and each with a character AWS refuses in both key and value.
    let keys: Vec<String> = (0..60).map(|i| format!("bad#tag-{i:02}")).collect();
    bp.spec.tags = keys
        .iter()
        .map(|k| (k.clone(), format!("{k}#value")))
        .collect();
    h.apply(&bp).await?;
    h.wait_not_ready(NAME, "InvalidSpec").await?;
    let stored = h.api.get(NAME).await?;
    let full = message(&stored, CONDITION_READY).unwrap_or_default();
    for key in &keys {
        assert!(
            full.contains(&format!("spec.tags.{key}")),
            "the status names every invalid tag; {key} is missing: {full}"
        );
    }
    assert!(full.contains("has 60 tags"), "{full}");
    assert!(full.len() > NOTE_MAX);

    let event = wait_warning(&h, "InvalidSpec", |_| true).await?;
    assert!(
        event.note.len() <= NOTE_MAX,
        "{} bytes: {}",
        event.note.len(),
        event.note
    );
    assert!(event.note.ends_with("more; see status"), "{}", event.note);
    assert!(
        event.note.starts_with("spec.tags"),
        "the note begins with the list: {}",
        event.note
    );
    assert_eq!(h.calls_naming_us().await?, 0);
    println!(
        "fault: InvalidSpec event note {} bytes, status message {} bytes",
        event.note.len(),
        full.len()
    );
    Ok(())
}
