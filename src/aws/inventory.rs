//! One listing of the account's pipelines and projects, shared by every reconcile.
//!
//! Listing costs a call per 100 resources (ListPipelines, ListProjects pages; CodePipeline and
//! CodeBuild API Reference), so a listing per reconcile costs O(N) calls each and O(N²) per
//! resync pass. Reconciles read their own resources by name instead, and consult this snapshot
//! only to discover resources their status does not name (a crash before a status write, a
//! renamed pipeline group). The snapshot is refreshed at most once per `max_age`, by one
//! caller at a time (single flight): the others wait for its result.

use std::collections::BTreeSet;
use std::ops::Bound;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use super::{AwsApi, AwsError};

#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub pipelines: BTreeSet<String>,
    pub projects: BTreeSet<String>,
}

impl Snapshot {
    pub fn new(
        pipelines: impl IntoIterator<Item = String>,
        projects: impl IntoIterator<Item = String>,
    ) -> Self {
        Self {
            pipelines: pipelines.into_iter().collect(),
            projects: projects.into_iter().collect(),
        }
    }

    /// Names starting with `prefix`, as `(pipelines, projects)`: a range of each sorted set,
    /// so a thousand reconciles each looking up their prefix do not scan the account.
    pub fn with_prefix(
        &self,
        pipeline_prefix: &str,
        project_prefix: &str,
    ) -> (Vec<String>, Vec<String>) {
        let pick = |names: &BTreeSet<String>, prefix: &str| {
            names
                .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
                .take_while(|n| n.starts_with(prefix))
                .cloned()
                .collect()
        };
        (
            pick(&self.pipelines, pipeline_prefix),
            pick(&self.projects, project_prefix),
        )
    }
}

/// Names one reconcile created and deleted, of one service.
#[derive(Debug, Default)]
pub struct Delta<'a> {
    pub created: Vec<&'a str>,
    pub deleted: Vec<&'a str>,
}

impl Delta<'_> {
    fn is_empty(&self) -> bool {
        self.created.is_empty() && self.deleted.is_empty()
    }

    fn apply_to(&self, names: &mut BTreeSet<String>) {
        names.extend(self.created.iter().map(|n| n.to_string()));
        for name in &self.deleted {
            names.remove(*name);
        }
    }
}

#[derive(Default)]
pub struct Inventory {
    latest: Mutex<Option<(Instant, Arc<Snapshot>)>>,
}

impl Inventory {
    /// The snapshot, listing the account again if it is older than `max_age`.
    pub async fn snapshot(
        &self,
        aws: &dyn AwsApi,
        max_age: Duration,
    ) -> Result<Arc<Snapshot>, AwsError> {
        // Held across the listing: concurrent callers wait for this one's result.
        let mut latest = self.latest.lock().await;
        if let Some((at, snapshot)) = latest.as_ref()
            && at.elapsed() < max_age
        {
            return Ok(snapshot.clone());
        }
        // Two services, two independent chains of pages: side by side, the listing takes as
        // long as the longer one.
        let (pipelines, projects) = tokio::try_join!(aws.list_pipelines(), aws.list_projects())?;
        let pipelines = pipelines.into_iter().map(|p| p.name);
        let snapshot = Arc::new(Snapshot::new(pipelines, projects));
        *latest = Some((Instant::now(), snapshot.clone()));
        Ok(snapshot)
    }

    /// Brings the snapshot in line with this process's own creates and deletes, so the quota
    /// check and gauges between two listings count them; returns the new counts, `None` when
    /// nothing changed or before the first listing. Another process's (or a person's) changes still wait for the next listing,
    /// and reconciles in flight at once may each pass the check before either has created: AWS
    /// enforces the quota itself (LimitExceededException), this check only refuses early.
    pub async fn record(
        &self,
        pipelines: &Delta<'_>,
        projects: &Delta<'_>,
    ) -> Option<(usize, usize)> {
        // Most reconciles create and delete nothing: they must not queue behind a listing in
        // flight, which holds the lock.
        if pipelines.is_empty() && projects.is_empty() {
            return None;
        }
        let mut latest = self.latest.lock().await;
        let (_, snapshot) = latest.as_mut()?;
        let s = Arc::make_mut(snapshot);
        pipelines.apply_to(&mut s.pipelines);
        projects.apply_to(&mut s.projects);
        Some((s.pipelines.len(), s.projects.len()))
    }

    /// The last snapshot's counts, for the quota metrics; `None` before the first listing.
    pub async fn counts(&self) -> Option<(usize, usize)> {
        self.latest
            .lock()
            .await
            .as_ref()
            .map(|(_, s)| (s.pipelines.len(), s.projects.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::fake::FakeAws;

    #[tokio::test]
    async fn concurrent_callers_share_one_listing_until_it_is_old() {
        let aws = Arc::new(FakeAws::default());
        let inventory = Arc::new(Inventory::default());
        let callers: Vec<_> = (0..8)
            .map(|_| {
                let (aws, inventory) = (aws.clone(), inventory.clone());
                tokio::spawn(async move {
                    inventory
                        .snapshot(aws.as_ref(), Duration::from_secs(60))
                        .await
                        .map(|s| s.pipelines.len())
                })
            })
            .collect();
        for caller in callers {
            caller.await.expect("joins").expect("lists");
        }
        assert_eq!(aws.count("ListPipelines"), 1);
        assert_eq!(aws.count("ListProjects"), 1);
        inventory
            .snapshot(aws.as_ref(), Duration::ZERO)
            .await
            .expect("lists");
        assert_eq!(
            aws.count("ListPipelines"),
            2,
            "an old snapshot is listed again"
        );
    }

    #[tokio::test]
    async fn own_creates_and_deletes_count_until_the_next_listing() {
        let aws = FakeAws::default();
        let inventory = Inventory::default();
        let none = Delta::default();
        let early = Delta {
            created: vec!["p0"],
            deleted: vec![],
        };
        assert_eq!(
            inventory.record(&early, &none).await,
            None,
            "nothing listed yet"
        );
        inventory
            .snapshot(&aws, Duration::from_secs(60))
            .await
            .expect("lists");
        let created = Delta {
            created: vec!["p1", "p2"],
            deleted: vec![],
        };
        let projects = Delta {
            created: vec!["j1"],
            deleted: vec!["absent"],
        };
        assert_eq!(inventory.record(&created, &projects).await, Some((2, 1)));
        let snapshot = inventory
            .snapshot(&aws, Duration::from_secs(60))
            .await
            .expect("cached");
        assert!(
            snapshot.pipelines.contains("p2"),
            "a later quota check sees them"
        );
        let deleted = Delta {
            created: vec![],
            deleted: vec!["p1"],
        };
        assert_eq!(inventory.record(&deleted, &none).await, Some((1, 1)));
        assert_eq!(
            inventory.record(&none, &none).await,
            None,
            "no change: the lock is not taken"
        );
        assert_eq!(aws.count("ListPipelines"), 1, "recording lists nothing");
    }

    #[test]
    fn prefixes_pick_a_resources_names() {
        let s = Snapshot::new(
            ["ns-b", "ns-a-production", "ns-a", "ns-", "ns-a0"].map(String::from),
            ["other", "ns-a-lint", "a"].map(String::from),
        );
        let (p, j) = s.with_prefix("ns-a", "ns-a");
        assert_eq!(p, ["ns-a", "ns-a-production", "ns-a0"]);
        assert_eq!(j, ["ns-a-lint"]);
        assert_eq!(s.with_prefix("zz", "").1, ["a", "ns-a-lint", "other"]);
        assert!(s.with_prefix("zz", "zz").0.is_empty());
    }
}
