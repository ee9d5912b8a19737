//! The controller's Event recorder against a real API server: a repeat becomes a series on
//! the first Event, and a different note is an Event of its own.

mod support;

use branchpipeline::controller::recorder::Recorder;
use branchpipeline::reconcile::events::EventSpec;
use k8s_openapi::api::core::v1::{ConfigMap, ObjectReference};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams, PostParams};
use kube::{Resource, ResourceExt};
use support::TestBed;

#[tokio::test]
async fn repeats_count_up_a_series_and_new_notes_make_new_events() -> anyhow::Result<()> {
    let bed = TestBed::shared().await;
    let namespace = bed.unique_namespace("events").await?;
    let client = bed.client();
    let configmaps = Api::<ConfigMap>::namespaced(client.clone(), &namespace);
    let mut object = ConfigMap::default();
    object.metadata.name = Some("subject".into());
    let object = configmaps.create(&PostParams::default(), &object).await?;
    let regarding: ObjectReference = object.object_ref(&());

    let recorder = Recorder::new(client.clone(), "branchpipeline-controller", None);
    let failed = EventSpec::warning("AWSError", "CreatePipeline a: ThrottlingException");
    for _ in 0..3 {
        recorder.publish(&regarding, &failed, None).await?;
    }
    let other = EventSpec::warning("AWSError", "CreatePipeline a: AccessDeniedException");
    recorder.publish(&regarding, &other, None).await?;

    let events = Api::<Event>::namespaced(client, &namespace)
        .list(&ListParams::default())
        .await?
        .items;
    let mut seen: Vec<(String, Option<i32>)> = events
        .iter()
        .map(|e| {
            (
                e.note.clone().unwrap_or_default(),
                e.series.as_ref().map(|s| s.count),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [(other.note.clone(), None), (failed.note.clone(), Some(3)),],
        "{events:?}"
    );
    for e in &events {
        assert_eq!(
            e.regarding.as_ref().and_then(|r| r.name.as_deref()),
            Some("subject")
        );
        assert_eq!(e.type_.as_deref(), Some("Warning"));
        assert_eq!(
            e.reporting_controller.as_deref(),
            Some("branchpipeline-controller")
        );
        assert!(e.name_any().starts_with("subject."), "{}", e.name_any());
    }
    Ok(())
}
