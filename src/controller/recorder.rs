//! Publishes events.k8s.io/v1 Events, folding a repeat of the same event into a series.
//!
//! kube-runtime's `Recorder` folds repeats too, but it keeps every Event it published for six
//! minutes and scans them all on each publish. At a thousand objects that is thousands of
//! cached Event objects (megabytes of the controller's memory) and a quadratic scan during a
//! cold start. It also recognises a repeat without its note, so a second event with the same
//! reason and a different note is shown with the first one's text. Here a repeat is recognised
//! by a digest of everything the reader sees, note included, and the cache keeps only that
//! digest, the Event's name and its count.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

use crate::reconcile::events::EventSpec;

/// How long a published Event takes repeats into its series: the window client-go's and
/// kube-runtime's recorders use (six minutes: client-go `tools/events` `finishTime`,
/// kube-runtime `CACHE_TTL`). A repeat after it starts a new Event.
const SERIES_WINDOW: Duration = Duration::from_secs(6 * 60);

pub struct Recorder {
    client: Client,
    controller: String,
    instance: String,
    recent: Mutex<Recent>,
}

#[derive(Default)]
struct Recent {
    entries: HashMap<u64, Entry>,
    swept: Option<Instant>,
}

#[derive(Debug, Clone, PartialEq)]
struct Entry {
    name: String,
    count: i32,
    last: Instant,
}

/// What to send for one event.
#[derive(Debug, PartialEq)]
enum Send {
    Create,
    /// The same event again within the window: bump the series of the Event named.
    Repeat {
        name: String,
        count: i32,
    },
}

/// Pure: a new Event, or a repeat of the one published within the window.
fn decide(previous: Option<&Entry>, now: Instant) -> Send {
    match previous {
        Some(e) if now.saturating_duration_since(e.last) < SERIES_WINDOW => Send::Repeat {
            name: e.name.clone(),
            count: e.count + 1,
        },
        _ => Send::Create,
    }
}

/// Everything that makes two events the same to a reader.
fn digest(regarding: &ObjectReference, spec: &EventSpec, related: Option<&ObjectReference>) -> u64 {
    let mut h = DefaultHasher::new();
    (&regarding.namespace, &regarding.name, &regarding.uid).hash(&mut h);
    (spec.warning, &spec.reason, &spec.note).hash(&mut h);
    related.map(|r| (&r.kind, &r.name)).hash(&mut h);
    h.finish()
}

impl Recent {
    /// Drops entries past the window, at most once a window, so a publish costs O(1) on average
    /// and the cache holds at most two windows of events.
    fn sweep(&mut self, now: Instant) {
        if self
            .swept
            .is_some_and(|at| now.saturating_duration_since(at) < SERIES_WINDOW)
        {
            return;
        }
        self.swept = Some(now);
        self.entries
            .retain(|_, e| now.saturating_duration_since(e.last) < SERIES_WINDOW);
    }
}

impl Recorder {
    pub fn new(client: Client, controller: &str, instance: Option<String>) -> Self {
        Self {
            client,
            controller: controller.to_string(),
            instance: instance.unwrap_or_else(|| controller.to_string()),
            recent: Mutex::default(),
        }
    }

    pub async fn publish(
        &self,
        regarding: &ObjectReference,
        spec: &EventSpec,
        related: Option<ObjectReference>,
    ) -> Result<(), kube::Error> {
        let key = digest(regarding, spec, related.as_ref());
        let now = Instant::now();
        let send = {
            let mut recent = self.recent.lock().expect("recorder cache");
            recent.sweep(now);
            decide(recent.entries.get(&key), now)
        };
        let namespace = regarding.namespace.as_deref().unwrap_or("default");
        let api: Api<Event> = Api::namespaced(self.client.clone(), namespace);
        let (name, count) = match send {
            Send::Repeat { name, count } => match bump(&api, &name, count).await {
                Ok(()) => (name, count),
                // The API server expired or someone deleted it: start a new one.
                Err(kube::Error::Api(s)) if s.code == 404 => {
                    (self.create(&api, regarding, spec, related).await?, 1)
                }
                Err(e) => return Err(e),
            },
            Send::Create => (self.create(&api, regarding, spec, related).await?, 1),
        };
        let entry = Entry {
            name,
            count,
            last: now,
        };
        self.recent
            .lock()
            .expect("recorder cache")
            .entries
            .insert(key, entry);
        Ok(())
    }

    async fn create(
        &self,
        api: &Api<Event>,
        regarding: &ObjectReference,
        spec: &EventSpec,
        related: Option<ObjectReference>,
    ) -> Result<String, kube::Error> {
        let event = self.event(regarding, spec, related);
        let created = api.create(&PostParams::default(), &event).await?;
        Ok(created.metadata.name.unwrap_or_default())
    }

    fn event(
        &self,
        regarding: &ObjectReference,
        spec: &EventSpec,
        related: Option<ObjectReference>,
    ) -> Event {
        let now = Timestamp::now();
        let base = regarding.name.as_deref().unwrap_or(&self.controller);
        Event {
            metadata: ObjectMeta {
                namespace: regarding.namespace.clone(),
                // The format client-go and kube-runtime use: unique per object and instant.
                name: Some(format!("{base}.{:x}", now.as_nanosecond())),
                ..ObjectMeta::default()
            },
            action: Some(spec.reason.clone()),
            reason: Some(spec.reason.clone()),
            note: Some(spec.note.clone()),
            type_: Some(if spec.warning { "Warning" } else { "Normal" }.to_string()),
            event_time: Some(MicroTime(now)),
            regarding: Some(regarding.clone()),
            related,
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            ..Event::default()
        }
    }
}

async fn bump(api: &Api<Event>, name: &str, count: i32) -> Result<(), kube::Error> {
    let series = EventSeries {
        count,
        last_observed_time: MicroTime(Timestamp::now()),
    };
    let patch = json!({ "series": series });
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(name: &str) -> ObjectReference {
        ObjectReference {
            namespace: Some("team".into()),
            name: Some(name.into()),
            uid: Some(format!("uid-{name}")),
            ..ObjectReference::default()
        }
    }

    #[test]
    fn a_repeat_within_the_window_bumps_the_series() {
        let now = Instant::now();
        assert_eq!(decide(None, now), Send::Create);
        let first = Entry {
            name: "bp.1".into(),
            count: 1,
            last: now,
        };
        let soon = now + Duration::from_secs(60);
        assert_eq!(
            decide(Some(&first), soon),
            Send::Repeat {
                name: "bp.1".into(),
                count: 2
            }
        );
        assert_eq!(decide(Some(&first), now + SERIES_WINDOW), Send::Create);
    }

    #[test]
    fn events_differing_in_what_a_reader_sees_are_not_folded() {
        let bp = reference("orders");
        let created = EventSpec::normal("Created", "Created pipeline a");
        let same = digest(&bp, &created, None);
        assert_eq!(same, digest(&bp, &created.clone(), None));
        let other_note = EventSpec::normal("Created", "Created pipeline b");
        let warning = EventSpec::warning("Created", "Created pipeline a");
        let related = ObjectReference {
            kind: Some("Pipeline".into()),
            name: Some("a".into()),
            ..ObjectReference::default()
        };
        for different in [
            digest(&bp, &other_note, None),
            digest(&bp, &warning, None),
            digest(&bp, &created, Some(&related)),
            digest(&reference("billing"), &created, None),
        ] {
            assert_ne!(same, different);
        }
    }

    #[test]
    fn the_cache_keeps_at_most_two_windows_of_events() {
        let start = Instant::now();
        let mut recent = Recent::default();
        let entry = |last| Entry {
            name: "e".into(),
            count: 1,
            last,
        };
        recent.sweep(start);
        recent.entries.insert(1, entry(start));
        recent.entries.insert(2, entry(start + SERIES_WINDOW / 2));
        // Swept at most once a window: nothing changes before it.
        recent.sweep(start + SERIES_WINDOW / 2);
        assert_eq!(recent.entries.len(), 2);
        recent.sweep(start + SERIES_WINDOW + Duration::from_secs(1));
        assert_eq!(recent.entries.keys().collect::<Vec<_>>(), [&2]);
        recent.sweep(start + SERIES_WINDOW * 2 + Duration::from_secs(2));
        assert!(recent.entries.is_empty());
    }
}
