//! Compares desired with observed state and plans the fewest AWS writes that converge them.
//! Pure: the plan is data, applied elsewhere.

use std::collections::BTreeMap;

use crate::aws::{ObservedPipeline, ObservedProject};
use crate::render::model::{DesiredPipeline, DesiredState, PipelineDeclaration, Project, Tag};
use crate::render::{MANAGER, TAG_MANAGED_BY, TAG_NAME, TAG_NAMESPACE};

/// Who an AWS resource belongs to, judged by its tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ownership {
    Ours,
    /// Tagged for another `namespace/name`.
    Other(String),
    /// No ownership tags: someone made it by hand, or another tool.
    Untagged,
}

pub fn ownership(tags: &[Tag], namespace: &str, name: &str) -> Ownership {
    let get = |key: &str| tags.iter().find(|t| t.key == key).map(|t| t.value.as_str());
    match (get(TAG_MANAGED_BY), get(TAG_NAMESPACE), get(TAG_NAME)) {
        (Some(MANAGER), Some(ns), Some(n)) if ns == namespace && n == name => Ownership::Ours,
        (Some(MANAGER), Some(ns), Some(n)) => Ownership::Other(format!("{ns}/{n}")),
        _ => Ownership::Untagged,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Pipeline,
    Project,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Pipeline => "pipeline",
            Kind::Project => "CodeBuild project",
        }
    }
}

/// A resource with a rendered name that the controller must not touch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Foreign {
    pub kind: Kind,
    pub name: String,
    /// `namespace/name` of the owner, when tagged for another resource.
    pub owner: Option<String>,
}

impl std::fmt::Display for Foreign {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.owner {
            Some(owner) => write!(f, "{} {} belongs to {owner}", self.kind.as_str(), self.name),
            None => write!(
                f,
                "{} {} exists without ownership tags (annotate branchpipeline.dev/adopt=\"true\" to adopt it)",
                self.kind.as_str(),
                self.name
            ),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TagChange {
    pub pipeline: String,
    pub arn: String,
    pub set: Vec<Tag>,
    pub remove: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    pub create_projects: Vec<Project>,
    pub update_projects: Vec<Project>,
    pub create_pipelines: Vec<DesiredPipeline>,
    pub update_pipelines: Vec<PipelineDeclaration>,
    pub retag_pipelines: Vec<TagChange>,
    pub delete_pipelines: Vec<String>,
    pub delete_projects: Vec<String>,
    pub foreign: Vec<Foreign>,
}

impl Plan {
    /// Number of AWS write calls the plan makes.
    pub fn writes(&self) -> usize {
        self.create_projects.len()
            + self.update_projects.len()
            + self.create_pipelines.len()
            + self.update_pipelines.len()
            + self
                .retag_pipelines
                .iter()
                .map(|t| usize::from(!t.set.is_empty()) + usize::from(!t.remove.is_empty()))
                .sum::<usize>()
            + self.delete_pipelines.len()
            + self.delete_projects.len()
    }

    /// Whether the plan changes anything that already existed (as opposed to creating).
    pub fn changes_existing(&self) -> bool {
        !self.update_projects.is_empty()
            || !self.update_pipelines.is_empty()
            || !self.retag_pipelines.is_empty()
    }
}

/// What the observe step found.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// Desired pipelines that exist, by name.
    pub pipelines: BTreeMap<String, ObservedPipeline>,
    /// Desired projects that exist, by name.
    pub projects: BTreeMap<String, ObservedProject>,
    /// Pipelines tagged as this resource's that it no longer renders.
    pub stale_pipelines: Vec<String>,
    /// Projects tagged as this resource's that it no longer renders.
    pub stale_projects: Vec<String>,
}

pub struct Owner<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    /// `branchpipeline.dev/adopt: "true"`: untagged resources with rendered names are taken over.
    pub adopt: bool,
}

impl Owner<'_> {
    fn allows(&self, kind: Kind, name: &str, tags: &[Tag]) -> Result<(), Foreign> {
        match ownership(tags, self.namespace, self.name) {
            Ownership::Ours => Ok(()),
            Ownership::Untagged if self.adopt => Ok(()),
            Ownership::Untagged => Err(Foreign {
                kind,
                name: name.to_string(),
                owner: None,
            }),
            Ownership::Other(owner) => Err(Foreign {
                kind,
                name: name.to_string(),
                owner: Some(owner),
            }),
        }
    }
}

pub fn plan(desired: &DesiredState, observed: &Observed, owner: &Owner<'_>) -> Plan {
    let mut plan = Plan::default();
    for project in &desired.projects {
        match observed.projects.get(&project.name) {
            None => plan.create_projects.push(project.clone()),
            Some(seen) => match owner.allows(Kind::Project, &project.name, &seen.project.tags) {
                Err(foreign) => plan.foreign.push(foreign),
                Ok(()) if seen.project != *project || !seen.unmanaged.is_empty() => {
                    plan.update_projects.push(project.clone())
                }
                Ok(()) => {}
            },
        }
    }
    for desired in &desired.pipelines {
        let name = &desired.pipeline.name;
        let Some(seen) = observed.pipelines.get(name) else {
            plan.create_pipelines.push(desired.clone());
            continue;
        };
        // Tags unread means observe knew the pipeline as ours (see observe::TagAudit).
        if let Some(tags) = &seen.tags
            && let Err(foreign) = owner.allows(Kind::Pipeline, name, tags)
        {
            plan.foreign.push(foreign);
            continue;
        }
        if pipeline_differs(&desired.pipeline, seen) {
            plan.update_pipelines.push(desired.pipeline.clone());
        }
        if let Some(tags) = &seen.tags
            && let Some(change) = tag_change(name, &seen.arn, &desired.tags, tags)
        {
            plan.retag_pipelines.push(change);
        }
    }
    plan.delete_pipelines = observed.stale_pipelines.clone();
    plan.delete_projects = observed.stale_projects.clone();
    plan
}

/// Compares with AWS's `version` cleared; any field AWS holds that the controller never sets is
/// drift too.
pub fn pipeline_differs(desired: &PipelineDeclaration, seen: &ObservedPipeline) -> bool {
    let mut observed = seen.declaration.clone();
    observed.version = None;
    observed != *desired || !seen.unmanaged.is_empty()
}

/// Tags to set and keys to remove. Keys under `aws:` belong to AWS and are left alone.
pub fn tag_change(pipeline: &str, arn: &str, desired: &[Tag], seen: &[Tag]) -> Option<TagChange> {
    let seen_map: BTreeMap<&str, &str> = seen
        .iter()
        .map(|t| (t.key.as_str(), t.value.as_str()))
        .collect();
    let set: Vec<Tag> = desired
        .iter()
        .filter(|t| seen_map.get(t.key.as_str()) != Some(&t.value.as_str()))
        .cloned()
        .collect();
    let remove: Vec<String> = seen
        .iter()
        .filter(|t| !t.key.starts_with("aws:") && !desired.iter().any(|d| d.key == t.key))
        .map(|t| t.key.clone())
        .collect();
    (!set.is_empty() || !remove.is_empty()).then(|| TagChange {
        pipeline: pipeline.to_string(),
        arn: arn.to_string(),
        set,
        remove,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render;

    fn desired() -> DesiredState {
        crate::fixtures::example_desired()
    }

    const OWNER: Owner<'static> = Owner {
        namespace: "team-orders",
        name: "orders-api",
        adopt: false,
    };

    /// What AWS would report right after creating everything the example renders.
    fn in_sync(state: &DesiredState) -> Observed {
        let mut observed = Observed::default();
        for (i, p) in state.pipelines.iter().enumerate() {
            let mut declaration = p.pipeline.clone();
            declaration.version = Some(i as i32 + 1);
            observed.pipelines.insert(
                p.pipeline.name.clone(),
                ObservedPipeline {
                    declaration,
                    unmanaged: vec![],
                    arn: format!(
                        "arn:aws:codepipeline:us-east-1:111122223333:{}",
                        p.pipeline.name
                    ),
                    tags: Some(p.tags.clone()),
                },
            );
        }
        for p in &state.projects {
            observed.projects.insert(
                p.name.clone(),
                ObservedProject {
                    project: p.clone(),
                    unmanaged: vec![],
                },
            );
        }
        observed
    }

    #[test]
    fn nothing_observed_creates_everything() {
        let state = desired();
        let plan = plan(&state, &Observed::default(), &OWNER);
        assert_eq!(plan.create_projects.len(), 4);
        assert_eq!(plan.create_pipelines.len(), 2);
        assert_eq!(plan.writes(), 6);
    }

    #[test]
    fn in_sync_plans_no_writes() {
        let state = desired();
        let plan = plan(&state, &in_sync(&state), &OWNER);
        assert_eq!(plan, Plan::default());
        assert_eq!(plan.writes(), 0);
    }

    #[test]
    fn one_changed_project_is_one_update() {
        let state = desired();
        let observed = in_sync(&state);
        let mut changed = state.clone();
        changed.projects[1].environment.compute_type = "BUILD_GENERAL1_LARGE".into();
        let plan = plan(&changed, &observed, &OWNER);
        assert_eq!(plan.update_projects, vec![changed.projects[1].clone()]);
        assert_eq!(plan.writes(), 1);
    }

    #[test]
    fn pipeline_drift_and_unmanaged_fields_update_the_pipeline() {
        let state = desired();
        let mut observed = in_sync(&state);
        let name = &state.pipelines[0].pipeline.name;
        observed
            .pipelines
            .get_mut(name)
            .expect("present in the fixture")
            .declaration
            .stages
            .pop();
        let p = plan(&state, &observed, &OWNER);
        assert_eq!(
            p.update_pipelines,
            vec![state.pipelines[0].pipeline.clone()]
        );

        let mut observed = in_sync(&state);
        observed
            .pipelines
            .get_mut(name)
            .expect("present in the fixture")
            .unmanaged = vec!["stages[1].blockers".into()];
        assert_eq!(plan(&state, &observed, &OWNER).update_pipelines.len(), 1);
    }

    #[test]
    fn unmanaged_project_settings_update_the_project() {
        let state = desired();
        let mut observed = in_sync(&state);
        let name = state.projects[2].name.clone();
        observed
            .projects
            .get_mut(&name)
            .expect("present in the fixture")
            .unmanaged = vec!["environment.environmentVariables".into()];
        let p = plan(&state, &observed, &OWNER);
        assert_eq!(p.update_projects, vec![state.projects[2].clone()]);
    }

    #[test]
    fn tags_are_set_and_removed() {
        let desired = vec![
            Tag {
                key: "a".into(),
                value: "1".into(),
            },
            Tag {
                key: "b".into(),
                value: "2".into(),
            },
        ];
        let seen = vec![
            Tag {
                key: "a".into(),
                value: "0".into(),
            },
            Tag {
                key: "c".into(),
                value: "3".into(),
            },
            Tag {
                key: "aws:cloudformation:stack".into(),
                value: "x".into(),
            },
        ];
        let change = tag_change("p", "arn", &desired, &seen).expect("present in the fixture");
        assert_eq!(change.set, desired);
        assert_eq!(change.remove, vec!["c".to_string()]);
        assert_eq!(tag_change("p", "arn", &desired, &desired), None);
    }

    #[test]
    fn foreign_resources_are_never_planned() {
        let state = desired();
        let mut observed = in_sync(&state);
        let name = state.pipelines[1].pipeline.name.clone();
        let other = render::owner_tags("team-payments", "orders-api");
        let seen = observed
            .pipelines
            .get_mut(&name)
            .expect("present in the fixture");
        seen.tags = Some(
            other
                .into_iter()
                .map(|(key, value)| Tag { key, value })
                .collect(),
        );
        seen.declaration.stages.pop();
        let plan = plan(&state, &observed, &OWNER);
        assert!(plan.update_pipelines.is_empty());
        assert!(plan.retag_pipelines.is_empty());
        assert_eq!(
            plan.foreign,
            vec![Foreign {
                kind: Kind::Pipeline,
                name,
                owner: Some("team-payments/orders-api".into())
            }]
        );
    }

    #[test]
    fn untagged_resources_need_adopt() {
        let state = desired();
        let mut observed = in_sync(&state);
        let name = state.projects[0].name.clone();
        observed
            .projects
            .get_mut(&name)
            .expect("present in the fixture")
            .project
            .tags
            .clear();
        let p = plan(&state, &observed, &OWNER);
        assert_eq!(
            p.foreign,
            vec![Foreign {
                kind: Kind::Project,
                name: name.clone(),
                owner: None
            }]
        );
        assert!(p.update_projects.is_empty());

        let adopt = Owner {
            adopt: true,
            ..OWNER
        };
        let p = plan(&state, &observed, &adopt);
        assert!(p.foreign.is_empty());
        assert_eq!(
            p.update_projects.len(),
            1,
            "adopting writes the ownership tags"
        );
    }

    #[test]
    fn stale_resources_are_deleted() {
        let state = desired();
        let mut observed = in_sync(&state);
        observed.stale_pipelines = vec!["team-orders-orders-api-hotfix".into()];
        observed.stale_projects = vec!["team-orders-orders-api-hotfix-lint".into()];
        let p = plan(&state, &observed, &OWNER);
        assert_eq!(p.delete_pipelines, observed.stale_pipelines);
        assert_eq!(p.delete_projects, observed.stale_projects);
        assert_eq!(p.writes(), 2);
    }

    #[test]
    fn ownership_from_tags() {
        let tags: Vec<Tag> = render::owner_tags("ns", "n")
            .into_iter()
            .map(|(key, value)| Tag { key, value })
            .collect();
        assert_eq!(ownership(&tags, "ns", "n"), Ownership::Ours);
        assert_eq!(ownership(&tags, "ns", "m"), Ownership::Other("ns/n".into()));
        assert_eq!(ownership(&[], "ns", "n"), Ownership::Untagged);
    }
}
