//! Reads what AWS holds for one `BranchPipeline`: the resources it renders, and the ones tagged
//! as its own that it no longer renders. Read-only.

use std::collections::BTreeSet;

use super::diff::{Observed, Ownership, ownership};
use crate::aws::{AwsApi, AwsError};
use crate::naming;
use crate::render::model::DesiredState;

/// Names of every resource tagged as owned by `namespace/name`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Owned {
    pub pipelines: Vec<String>,
    pub projects: Vec<String>,
}

pub async fn observe(
    aws: &dyn AwsApi,
    desired: &DesiredState,
    namespace: &str,
    name: &str,
    hints: &Owned,
) -> Result<Observed, AwsError> {
    let mut observed = Observed::default();
    for p in &desired.pipelines {
        if let Some(seen) = aws.get_pipeline(&p.pipeline.name).await? {
            observed.pipelines.insert(p.pipeline.name.clone(), seen);
        }
    }
    let names: Vec<String> = desired.projects.iter().map(|p| p.name.clone()).collect();
    for seen in aws.get_projects(&names).await? {
        observed.projects.insert(seen.project.name.clone(), seen);
    }
    let mut exclude: BTreeSet<String> = desired
        .pipelines
        .iter()
        .map(|p| p.pipeline.name.clone())
        .collect();
    exclude.extend(names);
    let owned = discover_owned(aws, namespace, name, &exclude, hints).await?;
    observed.stale_pipelines = owned.pipelines;
    observed.stale_projects = owned.projects;
    Ok(observed)
}

/// Every name the controller renders for `namespace/name` starts with `<namespace>-<name>`
/// (sanitized for CodeBuild), shortened names included, so listing by that prefix and checking
/// tags finds them all without a tagging API. `hints` (names from the last status) catch
/// anything renamed since.
pub async fn discover_owned(
    aws: &dyn AwsApi,
    namespace: &str,
    name: &str,
    exclude: &BTreeSet<String>,
    hints: &Owned,
) -> Result<Owned, AwsError> {
    let base = format!("{namespace}-{name}");
    let pipeline_prefix = prefix(&base);
    let project_prefix = prefix(&naming::project_safe(&base));

    let mut pipeline_candidates: BTreeSet<String> = aws
        .list_pipelines()
        .await?
        .into_iter()
        .map(|p| p.name)
        .filter(|n| n.starts_with(&pipeline_prefix))
        .collect();
    pipeline_candidates.extend(hints.pipelines.iter().cloned());
    let mut owned = Owned::default();
    for candidate in pipeline_candidates
        .into_iter()
        .filter(|n| !exclude.contains(n))
    {
        if let Some((_, tags)) = aws.pipeline_tags(&candidate).await?
            && ownership(&tags, namespace, name) == Ownership::Ours
        {
            owned.pipelines.push(candidate);
        }
    }

    let mut project_candidates: BTreeSet<String> = aws
        .list_projects()
        .await?
        .into_iter()
        .filter(|n| n.starts_with(&project_prefix))
        .collect();
    project_candidates.extend(hints.projects.iter().cloned());
    let candidates: Vec<String> = project_candidates
        .into_iter()
        .filter(|n| !exclude.contains(n))
        .collect();
    if !candidates.is_empty() {
        for seen in aws.get_projects(&candidates).await? {
            if ownership(&seen.project.tags, namespace, name) == Ownership::Ours {
                owned.projects.push(seen.project.name);
            }
        }
    }
    owned.projects.sort();
    Ok(owned)
}

/// A prefix every rendered name keeps, even after shortening: `naming::fit` keeps at least the
/// first 80 characters.
fn prefix(base: &str) -> String {
    base.chars().take(80).collect()
}
