//! Carries out a [`Plan`]: projects before the pipelines that run them, stale pipelines before
//! the projects they ran.

use super::diff::{Kind, Plan};
use crate::aws::{AwsApi, AwsError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Created,
    Updated,
    Retagged,
    Deleted,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Created => "Created",
            Verb::Updated => "Updated",
            Verb::Retagged => "Retagged",
            Verb::Deleted => "Deleted",
        }
    }
}

/// One write that succeeded.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub verb: Verb,
    pub kind: Kind,
    pub name: String,
    /// For pipelines: the ARN after a create, the version after an update.
    pub arn: Option<String>,
    pub version: Option<i32>,
}

impl Change {
    fn new(verb: Verb, kind: Kind, name: &str) -> Self {
        Self {
            verb,
            kind,
            name: name.to_string(),
            arn: None,
            version: None,
        }
    }
}

/// Applies `plan`, recording each successful write in `done`, and stops at the first error so
/// the next attempt re-plans from what AWS then holds.
pub async fn apply(aws: &dyn AwsApi, plan: &Plan, done: &mut Vec<Change>) -> Result<(), AwsError> {
    for p in &plan.create_projects {
        aws.create_project(p).await?;
        done.push(Change::new(Verb::Created, Kind::Project, &p.name));
    }
    for p in &plan.update_projects {
        aws.update_project(p).await?;
        done.push(Change::new(Verb::Updated, Kind::Project, &p.name));
    }
    for p in &plan.create_pipelines {
        let arn = aws.create_pipeline(&p.pipeline, &p.tags).await?;
        done.push(Change {
            arn: Some(arn),
            version: Some(1),
            ..Change::new(Verb::Created, Kind::Pipeline, &p.pipeline.name)
        });
    }
    for p in &plan.update_pipelines {
        let version = aws.update_pipeline(p).await?;
        done.push(Change {
            version: Some(version),
            ..Change::new(Verb::Updated, Kind::Pipeline, &p.name)
        });
    }
    for t in &plan.retag_pipelines {
        if !t.set.is_empty() {
            aws.tag_pipeline(&t.arn, &t.set).await?;
        }
        if !t.remove.is_empty() {
            aws.untag_pipeline(&t.arn, &t.remove).await?;
        }
        done.push(Change::new(Verb::Retagged, Kind::Pipeline, &t.pipeline));
    }
    for name in &plan.delete_pipelines {
        aws.delete_pipeline(name).await?;
        done.push(Change::new(Verb::Deleted, Kind::Pipeline, name));
    }
    for name in &plan.delete_projects {
        aws.delete_project(name).await?;
        done.push(Change::new(Verb::Deleted, Kind::Project, name));
    }
    Ok(())
}
