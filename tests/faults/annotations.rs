//! Tenant annotations built to break duration parsing: each is reported on its resource, and
//! the controller keeps running and serving another tenant.

use std::time::{Duration, Instant};

use anyhow::Result;
use branchpipeline::api::{CONDITION_ANNOTATIONS_VALID, ComputeType, annotations};

use crate::harness::{Harness, condition};
use crate::{NAME, events, message, until_compute_type, wait_warning};

/// Values that overflow u64 seconds or milliseconds, are out of range, repeat a unit, are
/// negative or empty.
const VALUES: &[&str] = &[
    "18446744073709551615s",
    "18446744073709551615s1s",
    "99999999999h",
    "1s1s1s",
    "-5m",
    "",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overflowing_annotations_are_reported_and_other_tenants_keep_being_served() -> Result<()> {
    let mut h = Harness::new("fault-annotations").await?;
    let tenant = Harness::new("fault-tenant").await?;
    // One controller for both namespaces.
    let i = h.start_controller(&["--namespace", &tenant.ns])?;
    let pid = h.controller_pids()[i];
    let mut other = tenant.example();
    h.apply(&h.example()).await?;
    tenant.apply(&other).await?;
    h.wait_ready(NAME).await?;
    tenant.wait_ready(NAME).await?;

    let want = Some(("False".to_string(), "InvalidAnnotation".to_string()));
    for value in VALUES {
        h.annotate(NAME, annotations::RESYNC_INTERVAL, value)
            .await?;
        // The message quotes the value, so it shows that this value was the one judged.
        let quoted = format!("{value:?}");
        let bp = h
            .wait_for(
                NAME,
                &format!("AnnotationsValid=False InvalidAnnotation for {quoted}"),
                |b| {
                    condition(b, CONDITION_ANNOTATIONS_VALID) == want
                        && message(b, CONDITION_ANNOTATIONS_VALID)
                            .is_some_and(|m| m.contains(&quoted))
                },
            )
            .await?;
        let text = message(&bp, CONDITION_ANNOTATIONS_VALID).unwrap_or_default();
        assert!(
            text.contains(annotations::RESYNC_INTERVAL),
            "the message names the annotation: {text}"
        );
        h.ensure_controller_running(i)?;
    }
    wait_warning(&h, "InvalidAnnotation", |note| {
        note.contains(annotations::RESYNC_INTERVAL)
    })
    .await?;

    // The other tenant is served as before: an edit reaches AWS within 10 s.
    other.spec.stages[1].compute_type = Some(ComputeType::General1Xlarge);
    let edited = Instant::now();
    tenant.apply(&other).await?;
    let project = format!("{}-orders-api-test", tenant.ns);
    let took = until_compute_type(
        &h,
        &project,
        "BUILD_GENERAL1_XLARGE",
        edited,
        Duration::from_secs(10),
    )
    .await?;
    println!(
        "fault: another tenant's edit applied {:.1}s after it was made, {} bad annotations later",
        took.as_secs_f64(),
        VALUES.len()
    );

    // Same process, never restarted, and no reconcile panicked.
    h.ensure_controller_running(i)?;
    assert_eq!(h.controller_pids(), [pid]);
    let log = h.controller_log_full(i);
    assert_eq!(
        log.matches("starting controller").count(),
        1,
        "{}",
        h.logs()
    );
    assert!(!log.contains("panicked"), "{}", h.logs());
    assert!(
        !events(&h)
            .await?
            .iter()
            .any(|e| e.reason == "ReconcilePanicked"),
        "a reconcile panicked\n{}",
        h.logs()
    );
    Ok(())
}

/// README, Operations: an invalid annotation is reported "naming the annotation and the
/// accepted form", also when the value is too large for the parser, not only when the bounds
/// refuse it ("99999999999h": "is out of range; use 10s to 24h").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overflowing_value_is_reported_with_the_accepted_form() -> Result<()> {
    let mut h = Harness::new("fault-overflow-form").await?;
    h.start_controller(&[])?;
    h.apply(&h.example()).await?;
    let value = "18446744073709551615s";
    h.annotate(NAME, annotations::RESYNC_INTERVAL, value)
        .await?;
    let quoted = format!("{value:?}");
    let bp = h
        .wait_for(NAME, "AnnotationsValid=False for the value", |b| {
            message(b, CONDITION_ANNOTATIONS_VALID).is_some_and(|m| m.contains(&quoted))
        })
        .await?;
    let text = message(&bp, CONDITION_ANNOTATIONS_VALID).unwrap_or_default();
    assert!(
        text.contains("10s to 24h"),
        "the message names the accepted form: {text}"
    );
    Ok(())
}
