//! Reads what AWS holds for one `BranchPipeline`: the resources it renders, and the ones owned
//! by it that it no longer renders. Read-only.
//!
//! A steady-state pass costs one GetPipeline per pipeline, one BatchGetProjects (which returns
//! project tags), and one ListTagsForResource: the tags of one pipeline the status already
//! names as this resource's, in turn, so tag drift is still found within a few passes. A
//! pipeline the status does not name has its tags read at once, since its owner is unknown.
//! Resources the status does not name are looked for in the shared [`Snapshot`] only when the
//! rendered names and the status disagree. A resource never synced reads nothing else before
//! its creates, unless the snapshot already holds one of its names: AWS refuses a create of a
//! name in use, so the snapshot being older than a create costs one retry, never a duplicate.

use std::collections::BTreeSet;

use super::diff::{Observed, Ownership, ownership};
use crate::aws::inventory::Snapshot;
use crate::aws::{AwsApi, AwsError};
use crate::naming;
use crate::render::model::DesiredState;

/// Executions most pipelines have in flight at once: more would wait at a stage's entry, and
/// they are listed newest first, so the first page holds every one that matters.
const IN_FLIGHT_READ: usize = 50;

/// The executions in flight (InProgress, Stopping: running, waiting at an approval or at a
/// stage's entry) of each of `pipelines`: one ListPipelineExecutions each, made only before an
/// update or deletion.
pub async fn in_flight(
    aws: &dyn AwsApi,
    pipelines: &[String],
) -> Result<super::deferral::InFlight, AwsError> {
    let mut out = super::deferral::InFlight::new();
    for pipeline in pipelines {
        let running: Vec<String> = aws
            .list_executions(pipeline, None, IN_FLIGHT_READ)
            .await?
            .into_iter()
            .filter(|e| !e.status.is_finished())
            .map(|e| e.id)
            .collect();
        if !running.is_empty() {
            out.insert(pipeline.clone(), running);
        }
    }
    Ok(out)
}

/// Names of resources owned by `namespace/name`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Owned {
    pub pipelines: Vec<String>,
    pub projects: Vec<String>,
}

/// Whose resources, and what is known about them before asking AWS.
pub struct Scope<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    /// What the last status listed as this resource's.
    pub known: &'a Owned,
    /// The shared listing, when this reconcile must discover what its status does not name.
    pub snapshot: Option<&'a Snapshot>,
    /// Counts this resource's reconciles: picks whose tags are read this time.
    pub pass: usize,
    /// The status names nothing and records no attempt: the resource has never been synced.
    /// Its rendered resources that the snapshot lacks are then taken as absent without a read.
    /// If one exists after all (created since the listing), its create fails as retryable,
    /// that failure is recorded in the status, and the next reconcile reads as usual. AWS
    /// documents the refusal: CodePipeline API Reference, CreatePipeline, Errors:
    /// `PipelineNameInUseException` ("The specified pipeline name is already in use");
    /// CodeBuild API Reference, CreateProject, Errors: `ResourceAlreadyExistsException`.
    pub first_sync: bool,
}

/// Whether the rendered names and the status disagree, so resources may exist that the status
/// does not name (a new spec, a renamed group, a crash before a status write).
pub fn needs_discovery(desired: &DesiredState, known: &Owned) -> bool {
    let rendered: BTreeSet<&String> = desired
        .pipelines
        .iter()
        .map(|p| &p.pipeline.name)
        .chain(desired.projects.iter().map(|p| &p.name))
        .collect();
    let listed: BTreeSet<&String> = known.pipelines.iter().chain(&known.projects).collect();
    rendered != listed
}

pub async fn observe(
    aws: &dyn AwsApi,
    desired: &DesiredState,
    scope: &Scope<'_>,
) -> Result<Observed, AwsError> {
    let mut observed = Observed::default();
    let audited = match desired.pipelines.len() {
        0 => None,
        n => Some(&desired.pipelines[scope.pass % n].pipeline.name),
    };
    let unlisted = |name: &String, listed: fn(&Snapshot) -> &BTreeSet<String>| {
        scope.first_sync && scope.snapshot.is_some_and(|s| !listed(s).contains(name))
    };
    for p in &desired.pipelines {
        let name = &p.pipeline.name;
        if unlisted(name, |s| &s.pipelines) {
            continue;
        }
        let known = scope.known.pipelines.contains(name);
        let seen = if known && Some(name) != audited {
            aws.get_pipeline_declaration(name).await?
        } else {
            aws.get_pipeline(name).await?
        };
        if let Some(seen) = seen {
            observed.pipelines.insert(name.clone(), seen);
        }
    }
    let rendered: BTreeSet<String> = desired
        .pipelines
        .iter()
        .map(|p| p.pipeline.name.clone())
        .chain(desired.projects.iter().map(|p| p.name.clone()))
        .collect();
    let candidates = candidates(scope, &rendered);
    let names: Vec<String> = desired
        .projects
        .iter()
        .filter(|p| !unlisted(&p.name, |s| &s.projects))
        .map(|p| p.name.clone())
        .chain(candidates.projects.iter().cloned())
        .collect();
    let seen = if names.is_empty() {
        Vec::new()
    } else {
        aws.get_projects(&names).await?
    };
    for seen in seen {
        let name = seen.project.name.clone();
        if rendered.contains(&name) {
            observed.projects.insert(name, seen);
        } else if ownership(&seen.project.tags, scope.namespace, scope.name) == Ownership::Ours {
            observed.stale_projects.push(name);
        }
    }
    observed.stale_projects.sort();
    observed.stale_pipelines = owned_pipelines(aws, scope, &candidates.pipelines).await?;
    Ok(observed)
}

/// Everything owned by `scope`'s resource: what its status names and what the snapshot holds
/// under its prefix, checked by tags. For cleanup.
pub async fn discover_owned(aws: &dyn AwsApi, scope: &Scope<'_>) -> Result<Owned, AwsError> {
    let candidates = candidates(scope, &BTreeSet::new());
    let mut owned = Owned {
        pipelines: owned_pipelines(aws, scope, &candidates.pipelines).await?,
        projects: Vec::new(),
    };
    if !candidates.projects.is_empty() {
        for seen in aws.get_projects(&candidates.projects).await? {
            if ownership(&seen.project.tags, scope.namespace, scope.name) == Ownership::Ours {
                owned.projects.push(seen.project.name);
            }
        }
    }
    owned.projects.sort();
    Ok(owned)
}

/// Names that may be this resource's and are not `rendered`: the status's, and under its
/// prefix in the snapshot when there is one.
fn candidates(scope: &Scope<'_>, rendered: &BTreeSet<String>) -> Owned {
    let mut pipelines: BTreeSet<String> = scope.known.pipelines.iter().cloned().collect();
    let mut projects: BTreeSet<String> = scope.known.projects.iter().cloned().collect();
    if let Some(snapshot) = scope.snapshot {
        let base = format!("{}-{}", scope.namespace, scope.name);
        let (p, j) = snapshot.with_prefix(&prefix(&base), &prefix(&naming::project_safe(&base)));
        pipelines.extend(p);
        projects.extend(j);
    }
    Owned {
        pipelines: pipelines
            .into_iter()
            .filter(|n| !rendered.contains(n))
            .collect(),
        projects: projects
            .into_iter()
            .filter(|n| !rendered.contains(n))
            .collect(),
    }
}

async fn owned_pipelines(
    aws: &dyn AwsApi,
    scope: &Scope<'_>,
    candidates: &[String],
) -> Result<Vec<String>, AwsError> {
    let mut owned = Vec::new();
    for candidate in candidates {
        if let Some((_, tags)) = aws.pipeline_tags(candidate).await?
            && ownership(&tags, scope.namespace, scope.name) == Ownership::Ours
        {
            owned.push(candidate.clone());
        }
    }
    Ok(owned)
}

/// A prefix every rendered name keeps, even after shortening: `naming::fit` keeps at least the
/// first 80 characters.
fn prefix(base: &str) -> String {
    base.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::fake::FakeAws;

    fn desired() -> DesiredState {
        crate::fixtures::example_desired()
    }

    async fn created(desired: &DesiredState) -> (FakeAws, Owned) {
        let aws = FakeAws::default();
        for p in &desired.projects {
            aws.create_project(p).await.expect("create");
        }
        for p in &desired.pipelines {
            aws.create_pipeline(&p.pipeline, &p.tags)
                .await
                .expect("create");
        }
        let known = Owned {
            pipelines: desired
                .pipelines
                .iter()
                .map(|p| p.pipeline.name.clone())
                .collect(),
            projects: desired.projects.iter().map(|p| p.name.clone()).collect(),
        };
        (aws, known)
    }

    #[tokio::test]
    async fn a_steady_state_pass_reads_each_pipeline_one_project_batch_and_one_tag_list() {
        let d = desired();
        let (aws, known) = created(&d).await;
        assert!(!needs_discovery(&d, &known));
        let before = aws.calls().len();
        for pass in 0..4 {
            let scope = Scope {
                namespace: "team-orders",
                name: "orders-api",
                known: &known,
                snapshot: None,
                pass,
                first_sync: false,
            };
            let observed = observe(&aws, &d, &scope).await.expect("observes");
            assert_eq!(observed.pipelines.len(), 2);
            assert!(observed.stale_pipelines.is_empty() && observed.stale_projects.is_empty());
        }
        let calls = &aws.calls()[before..];
        let count = |op: &str| calls.iter().filter(|(o, _)| *o == op).count();
        assert_eq!(count("GetPipeline"), 8);
        assert_eq!(count("BatchGetProjects"), 4);
        assert_eq!(count("ListTagsForResource"), 4, "one per pass, in turn");
        assert_eq!(count("ListPipelines") + count("ListProjects"), 0);
        let audited: BTreeSet<&String> = calls
            .iter()
            .filter(|(o, _)| *o == "ListTagsForResource")
            .map(|(_, r)| r)
            .collect();
        assert_eq!(audited.len(), 2, "every pipeline's tags are read in turn");
    }

    #[tokio::test]
    async fn an_unknown_pipeline_has_its_tags_read_at_once() {
        let d = desired();
        let (aws, _) = created(&d).await;
        let scope = Scope {
            namespace: "team-orders",
            name: "orders-api",
            known: &Owned::default(),
            snapshot: None,
            pass: 0,
            first_sync: false,
        };
        observe(&aws, &d, &scope).await.expect("observes");
        assert_eq!(aws.count("ListTagsForResource"), 2);
        assert!(needs_discovery(&d, &Owned::default()));
    }

    #[tokio::test]
    async fn names_the_status_drops_are_stale_when_they_are_ours() {
        let d = desired();
        let (aws, mut known) = created(&d).await;
        let mut old = d.projects[0].clone();
        old.name = "team-orders-orders-api-production-lint".into();
        aws.create_project(&old).await.expect("create");
        known.projects.push(old.name.clone());
        let scope = Scope {
            namespace: "team-orders",
            name: "orders-api",
            known: &known,
            snapshot: None,
            pass: 0,
            first_sync: false,
        };
        let observed = observe(&aws, &d, &scope).await.expect("observes");
        assert_eq!(observed.stale_projects, [old.name]);
        assert_eq!(
            aws.count("BatchGetProjects"),
            1,
            "one batch for rendered and stale"
        );
    }

    #[tokio::test]
    async fn the_snapshot_finds_what_no_status_names() {
        let d = desired();
        let (aws, known) = created(&d).await;
        let mut orphan = d.projects[0].clone();
        orphan.name = "team-orders-orders-api-old-lint".into();
        aws.create_project(&orphan).await.expect("create");
        let snapshot = Snapshot::new(aws.pipeline_names(), aws.project_names());
        let scope = Scope {
            namespace: "team-orders",
            name: "orders-api",
            known: &known,
            snapshot: Some(&snapshot),
            pass: 0,
            first_sync: false,
        };
        let observed = observe(&aws, &d, &scope).await.expect("observes");
        assert_eq!(observed.stale_projects, [orphan.name.clone()]);
        let owned = discover_owned(&aws, &scope).await.expect("discovers");
        assert_eq!(owned.pipelines.len(), 2);
        assert_eq!(owned.projects.len(), 5);
    }
}
