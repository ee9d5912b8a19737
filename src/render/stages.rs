//! The stages of one pipeline: source, build, and one per environment. Pure.

use std::collections::BTreeMap;

use super::model::*;
use super::{
    APPROVAL_ACTION, BUILD_ARTIFACT, DEPLOY_ACTION, DEPLOY_STAGE_PREFIX, SOURCE_ACTION,
    SOURCE_ARTIFACT, SOURCE_NAMESPACE, SOURCE_STAGE, routing,
};
use crate::api::{ApprovalSpec, PullRequestEvent};
use crate::resolved::{Environment, PullRequests, ValidatedSpec};

pub(super) fn source(spec: &ValidatedSpec, branch: &str, detect_changes: bool) -> Stage {
    let source = &spec.source;
    let configuration = BTreeMap::from([
        ("BranchName".to_string(), branch.to_string()),
        ("ConnectionArn".to_string(), spec.connection_arn.clone()),
        ("DetectChanges".to_string(), detect_changes.to_string()),
        ("FullRepositoryId".to_string(), source.repository.clone()),
        ("OutputArtifactFormat".to_string(), "CODE_ZIP".to_string()),
    ]);
    Stage {
        name: SOURCE_STAGE.into(),
        actions: vec![Action {
            name: SOURCE_ACTION.into(),
            action_type_id: action_type("Source", "AWS", "CodeStarSourceConnection"),
            run_order: 1,
            configuration,
            output_artifacts: vec![artifact(SOURCE_ARTIFACT)],
            input_artifacts: Vec::new(),
            namespace: Some(SOURCE_NAMESPACE.into()),
        }],
        before_entry: None,
        on_failure: None,
    }
}

pub(super) fn push_trigger(spec: &ValidatedSpec, branches: Vec<String>) -> PipelineTrigger {
    let file_paths = spec.source.file_paths.as_ref().map(|f| FilterCriteria {
        includes: f.includes.clone(),
        excludes: f.excludes.clone(),
    });
    PipelineTrigger {
        provider_type: "CodeStarSourceConnection".into(),
        git_configuration: GitConfiguration {
            source_action_name: SOURCE_ACTION.into(),
            push: vec![GitPushFilter {
                branches: Some(FilterCriteria {
                    includes: branches,
                    excludes: Vec::new(),
                }),
                file_paths,
            }],
            pull_request: Vec::new(),
        },
    }
}

/// The pull-request events a build starts on. CLOSED is accepted in the spec, as CodePipeline
/// accepts it (GitPullRequestFilter `events`: OPEN, UPDATED, CLOSED), but a closed pull request
/// has nothing left to check and no head to report on, so it never triggers.
pub(super) fn building_events(prs: &PullRequests) -> Vec<String> {
    prs.events
        .iter()
        .filter(|e| e.as_str() != PullRequestEvent::Closed.as_str())
        .cloned()
        .collect()
}

/// A pull-request trigger (CodePipeline API Reference, GitPullRequestFilter): the events that
/// build, and the destination branches.
pub(super) fn pull_request_trigger(spec: &ValidatedSpec, prs: &PullRequests) -> PipelineTrigger {
    let file_paths = spec.source.file_paths.as_ref().map(|f| FilterCriteria {
        includes: f.includes.clone(),
        excludes: f.excludes.clone(),
    });
    PipelineTrigger {
        provider_type: "CodeStarSourceConnection".into(),
        git_configuration: GitConfiguration {
            source_action_name: SOURCE_ACTION.into(),
            push: Vec::new(),
            pull_request: vec![GitPullRequestFilter {
                events: building_events(prs),
                branches: Some(FilterCriteria {
                    includes: prs.branches.clone(),
                    excludes: Vec::new(),
                }),
                file_paths,
            }],
        },
    }
}

pub(super) fn build(name: &str, project: &str, last: bool) -> Stage {
    Stage {
        name: name.to_string(),
        actions: vec![Action {
            name: name.to_string(),
            action_type_id: action_type("Build", "AWS", "CodeBuild"),
            run_order: 1,
            configuration: BTreeMap::from([("ProjectName".to_string(), project.to_string())]),
            output_artifacts: if last {
                vec![artifact(BUILD_ARTIFACT)]
            } else {
                Vec::new()
            },
            input_artifacts: vec![artifact(SOURCE_ARTIFACT)],
            namespace: None,
        }],
        before_entry: None,
        on_failure: None,
    }
}

/// `deploy-<env>`: an optional approval, then the deploy action, entered only by the executions
/// [`routing::condition`] lets in.
pub(super) fn environment(
    spec: &ValidatedSpec,
    env: &Environment,
    project: &str,
    push_starting: &[String],
) -> Stage {
    let mut actions = Vec::new();
    if let Some(approval) = &env.approval {
        actions.push(approval_action(approval));
    }
    actions.push(deploy_action(env, project, actions.len() as i32 + 1));
    Stage {
        name: stage_name(&env.name),
        actions,
        before_entry: Some(routing::condition(spec, env, push_starting)),
        on_failure: spec.rollback_on_failure.then(|| FailureConditions {
            result: "ROLLBACK".into(),
        }),
    }
}

pub fn stage_name(environment: &str) -> String {
    format!("{DEPLOY_STAGE_PREFIX}{environment}")
}

fn approval_action(approval: &ApprovalSpec) -> Action {
    let mut configuration = BTreeMap::new();
    if let Some(arn) = &approval.notification_arn {
        configuration.insert("NotificationArn".to_string(), arn.clone());
    }
    if let Some(data) = &approval.custom_data {
        configuration.insert("CustomData".to_string(), data.clone());
    }
    Action {
        name: APPROVAL_ACTION.into(),
        action_type_id: action_type("Approval", "AWS", "Manual"),
        run_order: 1,
        configuration,
        output_artifacts: Vec::new(),
        input_artifacts: Vec::new(),
        namespace: None,
    }
}

fn deploy_action(env: &Environment, project: &str, run_order: i32) -> Action {
    Action {
        name: DEPLOY_ACTION.into(),
        action_type_id: action_type("Build", "AWS", "CodeBuild"),
        run_order,
        configuration: BTreeMap::from([
            (
                "EnvironmentVariables".to_string(),
                environment_variables(env),
            ),
            ("PrimarySource".to_string(), SOURCE_ARTIFACT.to_string()),
            ("ProjectName".to_string(), project.to_string()),
        ]),
        output_artifacts: Vec::new(),
        input_artifacts: vec![artifact(SOURCE_ARTIFACT), artifact(BUILD_ARTIFACT)],
        namespace: None,
    }
}

/// CodeBuild action `EnvironmentVariables`: a JSON array of `{name, value, type}`.
fn environment_variables(env: &Environment) -> String {
    let mut vars =
        vec![serde_json::json!({"name": "DEPLOY_ENV", "value": env.name, "type": "PLAINTEXT"})];
    for (name, value) in &env.variables {
        vars.push(serde_json::json!({"name": name, "value": value, "type": "PLAINTEXT"}));
    }
    serde_json::Value::Array(vars).to_string()
}

fn action_type(category: &str, owner: &str, provider: &str) -> ActionTypeId {
    ActionTypeId {
        category: category.into(),
        owner: owner.into(),
        provider: provider.into(),
        version: "1".into(),
    }
}

fn artifact(name: &str) -> Artifact {
    Artifact { name: name.into() }
}
