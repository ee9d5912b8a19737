//! AWS limits only the rendered form can show, reported at the spec field to change. Pure.

use super::model::*;
use super::stages::stage_name;
use crate::naming;
use crate::resolved::{Feed, Group, ValidatedSpec};
use crate::validate::FieldError;
use crate::validate::limits::{MAX_ACTIONS_PER_STAGE, MAX_CONFIG_VALUE, MAX_PATTERNS};

pub(super) fn pipeline(
    spec: &ValidatedSpec,
    group: &Group<'_>,
    pipeline: &DesiredPipeline,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if !naming::is_valid_pipeline_name(&pipeline.pipeline.name) {
        errors.push(FieldError::new(
            "metadata.name",
            format!(
                "renders pipeline name {:?}, which CodePipeline rejects; use a DNS-1123 name",
                pipeline.pipeline.name
            ),
        ));
    }
    trigger_patterns(group, pipeline, &mut errors);
    for stage in &pipeline.pipeline.stages {
        // Stages hold at most an approval and a deploy today; this keeps a future multi-action
        // stage from silently crossing the quota.
        if stage.actions.len() > MAX_ACTIONS_PER_STAGE {
            errors.push(FieldError::new(
                "spec.environments",
                format!(
                    "stage {:?} would have {} actions; CodePipeline allows {MAX_ACTIONS_PER_STAGE}",
                    stage.name,
                    stage.actions.len()
                ),
            ));
        }
    }
    for env in &group.environments {
        let Some(stage) = pipeline
            .pipeline
            .stages
            .iter()
            .find(|s| s.name == stage_name(&env.name))
        else {
            continue;
        };
        config_sizes(spec, env.index, &env.feed, stage, &mut errors);
    }
    errors
}

pub(super) fn projects(projects: &[Project]) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for project in projects {
        if !naming::is_valid_project_name(&project.name) {
            errors.push(FieldError::new(
                "metadata.name",
                format!(
                    "renders CodeBuild project name {:?}, which CodeBuild rejects",
                    project.name
                ),
            ));
        }
    }
    errors
}

/// A V2 push trigger's branch filter takes at most [`MAX_PATTERNS`] includes.
fn trigger_patterns(group: &Group<'_>, pipeline: &DesiredPipeline, errors: &mut Vec<FieldError>) {
    let count = pipeline
        .pipeline
        .triggers
        .iter()
        .flat_map(|t| &t.git_configuration.push)
        .filter_map(|f| f.branches.as_ref())
        .map(|b| b.includes.len())
        .max()
        .unwrap_or(0);
    if count <= MAX_PATTERNS {
        return;
    }
    let at = group
        .environments
        .iter()
        .rev()
        .find(|e| e.feed == Feed::Automatic)
        .map(|e| e.index)
        .unwrap_or_default();
    errors.push(FieldError::new(
        format!("spec.environments[{at}].branches"),
        format!(
            "pipeline {:?} would trigger on {count} branch patterns; a V2 push trigger takes at most {MAX_PATTERNS}, so merge patterns with wildcards or move environments to another pipeline",
            group.name
        ),
    ));
}

/// Action and rule configuration values are at most [`MAX_CONFIG_VALUE`] characters.
fn config_sizes(
    spec: &ValidatedSpec,
    index: usize,
    feed: &Feed,
    stage: &Stage,
    errors: &mut Vec<FieldError>,
) {
    let base = format!("spec.environments[{index}]");
    let name = &spec.environments[index].name;
    for action in &stage.actions {
        for (key, value) in &action.configuration {
            let len = value.chars().count();
            if len > MAX_CONFIG_VALUE {
                errors.push(FieldError::new(
                    format!("{base}.variables"),
                    format!(
                        "renders action {:?} configuration {key} of {len} characters; CodePipeline allows {MAX_CONFIG_VALUE}, so shorten it",
                        action.name
                    ),
                ));
            }
        }
    }
    let rules = stage
        .before_entry
        .iter()
        .flat_map(|b| &b.conditions)
        .flat_map(|c| &c.rules);
    for rule in rules {
        if rule
            .configuration
            .values()
            .any(|v| v.chars().count() > MAX_CONFIG_VALUE)
        {
            let field = match feed {
                Feed::Promotion { .. } => "promoteFrom",
                _ => "branches",
            };
            errors.push(FieldError::new(
                format!("{base}.{field}"),
                format!(
                    "the branch condition for {name:?} would exceed {MAX_CONFIG_VALUE} characters; use fewer or shorter patterns"
                ),
            ));
        }
    }
}
