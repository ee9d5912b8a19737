//! Maps the render model to and from the AWS SDK types.
//!
//! `from_sdk_*` also normalizes: AWS fills defaults (`runOrder: 1`, empty artifact lists, an
//! unset privileged mode), returns configuration as unordered maps, and adds a `version`.
//! Normalized observed state compares equal to rendered state when nothing drifted, so the
//! reconciler can skip writes on an empty diff.

use std::collections::BTreeMap;

use aws_sdk_codebuild as cb;
use aws_sdk_codepipeline as cp;
use aws_smithy_types::error::operation::BuildError;

use crate::render::model::*;

// ---- CodePipeline: model -> SDK ----

pub fn pipeline_to_sdk(
    p: &PipelineDeclaration,
) -> Result<cp::types::PipelineDeclaration, BuildError> {
    let mut b = cp::types::PipelineDeclaration::builder()
        .name(&p.name)
        .role_arn(&p.role_arn)
        .artifact_store(
            cp::types::ArtifactStore::builder()
                .r#type(cp::types::ArtifactStoreType::from(
                    p.artifact_store.type_.as_str(),
                ))
                .location(&p.artifact_store.location)
                .build()?,
        )
        .set_version(p.version)
        .execution_mode(cp::types::ExecutionMode::from(p.execution_mode.as_str()))
        .pipeline_type(cp::types::PipelineType::from(p.pipeline_type.as_str()));
    for stage in &p.stages {
        b = b.stages(stage_to_sdk(stage)?);
    }
    for v in &p.variables {
        b = b.variables(
            cp::types::PipelineVariableDeclaration::builder()
                .name(&v.name)
                .set_default_value(v.default_value.clone())
                .set_description(v.description.clone())
                .build()?,
        );
    }
    for t in &p.triggers {
        b = b.triggers(trigger_to_sdk(t)?);
    }
    b.build()
}

fn stage_to_sdk(s: &Stage) -> Result<cp::types::StageDeclaration, BuildError> {
    let mut b = cp::types::StageDeclaration::builder().name(&s.name);
    for a in &s.actions {
        b = b.actions(action_to_sdk(a)?);
    }
    if let Some(before) = &s.before_entry {
        let mut cb = cp::types::BeforeEntryConditions::builder();
        for c in &before.conditions {
            cb = cb.conditions(condition_to_sdk(c)?);
        }
        b = b.before_entry(cb.build()?);
    }
    if let Some(on_failure) = &s.on_failure {
        b = b.on_failure(
            cp::types::FailureConditions::builder()
                .result(cp::types::Result::from(on_failure.result.as_str()))
                .build(),
        );
    }
    b.build()
}

fn condition_to_sdk(c: &StageCondition) -> Result<cp::types::Condition, BuildError> {
    let mut b = cp::types::Condition::builder().result(cp::types::Result::from(c.result.as_str()));
    for r in &c.rules {
        let id = cp::types::RuleTypeId::builder()
            .category(cp::types::RuleCategory::from(
                r.rule_type_id.category.as_str(),
            ))
            .owner(cp::types::RuleOwner::from(r.rule_type_id.owner.as_str()))
            .provider(&r.rule_type_id.provider)
            .version(&r.rule_type_id.version)
            .build()?;
        b = b.rules(
            cp::types::RuleDeclaration::builder()
                .name(&r.name)
                .rule_type_id(id)
                .set_configuration(Some(r.configuration.clone().into_iter().collect()))
                .build()?,
        );
    }
    Ok(b.build())
}

fn action_to_sdk(a: &Action) -> Result<cp::types::ActionDeclaration, BuildError> {
    let id = cp::types::ActionTypeId::builder()
        .category(cp::types::ActionCategory::from(
            a.action_type_id.category.as_str(),
        ))
        .owner(cp::types::ActionOwner::from(
            a.action_type_id.owner.as_str(),
        ))
        .provider(&a.action_type_id.provider)
        .version(&a.action_type_id.version)
        .build()?;
    let mut b = cp::types::ActionDeclaration::builder()
        .name(&a.name)
        .action_type_id(id)
        .run_order(a.run_order)
        .set_configuration(Some(a.configuration.clone().into_iter().collect()))
        .set_namespace(a.namespace.clone())
        .set_output_artifacts(Some(Vec::new()))
        .set_input_artifacts(Some(Vec::new()));
    for o in &a.output_artifacts {
        b = b.output_artifacts(cp::types::OutputArtifact::builder().name(&o.name).build()?);
    }
    for i in &a.input_artifacts {
        b = b.input_artifacts(cp::types::InputArtifact::builder().name(&i.name).build()?);
    }
    b.build()
}

fn trigger_to_sdk(
    t: &PipelineTrigger,
) -> Result<cp::types::PipelineTriggerDeclaration, BuildError> {
    let mut git = cp::types::GitConfiguration::builder()
        .source_action_name(&t.git_configuration.source_action_name);
    for push in &t.git_configuration.push {
        let branches = push.branches.as_ref().map(|f| {
            cp::types::GitBranchFilterCriteria::builder()
                .set_includes(non_empty(&f.includes))
                .set_excludes(non_empty(&f.excludes))
                .build()
        });
        let file_paths = push.file_paths.as_ref().map(|f| {
            cp::types::GitFilePathFilterCriteria::builder()
                .set_includes(non_empty(&f.includes))
                .set_excludes(non_empty(&f.excludes))
                .build()
        });
        git = git.push(
            cp::types::GitPushFilter::builder()
                .set_branches(branches)
                .set_file_paths(file_paths)
                .build(),
        );
    }
    for pr in &t.git_configuration.pull_request {
        let events = pr
            .events
            .iter()
            .map(|e| cp::types::GitPullRequestEventType::from(e.as_str()))
            .collect::<Vec<_>>();
        let branches = pr.branches.as_ref().map(|f| {
            cp::types::GitBranchFilterCriteria::builder()
                .set_includes(non_empty(&f.includes))
                .set_excludes(non_empty(&f.excludes))
                .build()
        });
        let file_paths = pr.file_paths.as_ref().map(|f| {
            cp::types::GitFilePathFilterCriteria::builder()
                .set_includes(non_empty(&f.includes))
                .set_excludes(non_empty(&f.excludes))
                .build()
        });
        git = git.pull_request(
            cp::types::GitPullRequestFilter::builder()
                .set_events((!events.is_empty()).then_some(events))
                .set_branches(branches)
                .set_file_paths(file_paths)
                .build(),
        );
    }
    cp::types::PipelineTriggerDeclaration::builder()
        .provider_type(cp::types::PipelineTriggerProviderType::from(
            t.provider_type.as_str(),
        ))
        .git_configuration(git.build()?)
        .build()
}

fn non_empty(v: &[String]) -> Option<Vec<String>> {
    (!v.is_empty()).then(|| v.to_vec())
}

pub fn tags_to_pipeline_sdk(tags: &[Tag]) -> Result<Vec<cp::types::Tag>, BuildError> {
    tags.iter()
        .map(|t| {
            cp::types::Tag::builder()
                .key(&t.key)
                .value(&t.value)
                .build()
        })
        .collect()
}

// ---- CodePipeline: SDK -> model (normalized) ----

/// The normalized model of an observed pipeline. Fields the controller never sets but someone
/// could (an action role, stage blockers, pull-request triggers) are listed in `unmanaged`, so
/// they count as drift rather than vanish silently.
pub fn pipeline_from_sdk(p: &cp::types::PipelineDeclaration) -> (PipelineDeclaration, Vec<String>) {
    let mut unmanaged = Vec::new();
    if p.artifact_stores.as_ref().is_some_and(|m| !m.is_empty()) {
        unmanaged.push("artifactStores".to_string());
    }
    let stages = p
        .stages
        .iter()
        .enumerate()
        .map(|(i, s)| stage_from_sdk(s, &format!("stages[{i}]"), &mut unmanaged))
        .collect();
    let triggers = p
        .triggers
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, t)| trigger_from_sdk(t, &format!("triggers[{i}]"), &mut unmanaged))
        .collect();
    let declaration = PipelineDeclaration {
        name: p.name.clone(),
        role_arn: p.role_arn.clone(),
        artifact_store: ArtifactStore {
            type_: p
                .artifact_store
                .as_ref()
                .map(|s| s.r#type.as_str().to_string())
                .unwrap_or_default(),
            location: p
                .artifact_store
                .as_ref()
                .map(|s| s.location.clone())
                .unwrap_or_default(),
        },
        stages,
        version: p.version,
        // Unset means the API default (CodePipeline API Reference, PipelineDeclaration).
        execution_mode: p
            .execution_mode
            .as_ref()
            .map_or("SUPERSEDED", |m| m.as_str())
            .to_string(),
        pipeline_type: p
            .pipeline_type
            .as_ref()
            .map_or("V1", |t| t.as_str())
            .to_string(),
        variables: p
            .variables
            .iter()
            .flatten()
            .map(|v| PipelineVariable {
                name: v.name.clone(),
                default_value: v.default_value.clone(),
                description: v.description.clone(),
            })
            .collect(),
        triggers,
    };
    (declaration, unmanaged)
}

fn stage_from_sdk(
    s: &cp::types::StageDeclaration,
    path: &str,
    unmanaged: &mut Vec<String>,
) -> Stage {
    if s.blockers.as_ref().is_some_and(|b| !b.is_empty()) {
        unmanaged.push(format!("{path}.blockers"));
    }
    if s.on_success.is_some() {
        unmanaged.push(format!("{path}.onSuccess"));
    }
    let on_failure = s.on_failure.as_ref().and_then(|f| {
        if f.retry_configuration.is_some() || f.conditions.as_ref().is_some_and(|c| !c.is_empty()) {
            unmanaged.push(format!("{path}.onFailure"));
        }
        f.result.as_ref().map(|r| FailureConditions {
            result: r.as_str().to_string(),
        })
    });
    let before_entry = s.before_entry.as_ref().map(|b| BeforeEntryConditions {
        conditions: b.conditions.iter().map(condition_from_sdk).collect(),
    });
    Stage {
        name: s.name.clone(),
        actions: s
            .actions
            .iter()
            .enumerate()
            .map(|(i, a)| action_from_sdk(a, &format!("{path}.actions[{i}]"), unmanaged))
            .collect(),
        before_entry,
        on_failure,
    }
}

fn condition_from_sdk(c: &cp::types::Condition) -> StageCondition {
    StageCondition {
        result: c
            .result
            .as_ref()
            .map(|r| r.as_str().to_string())
            .unwrap_or_default(),
        rules: c
            .rules
            .iter()
            .flatten()
            .map(|r| Rule {
                name: r.name.clone(),
                rule_type_id: r
                    .rule_type_id
                    .as_ref()
                    .map(|id| RuleTypeId {
                        category: id.category.as_str().to_string(),
                        owner: id.owner.as_ref().map_or("AWS", |o| o.as_str()).to_string(),
                        provider: id.provider.clone(),
                        version: id.version.clone().unwrap_or_else(|| "1".into()),
                    })
                    .unwrap_or_else(|| RuleTypeId {
                        category: String::new(),
                        owner: String::new(),
                        provider: String::new(),
                        version: String::new(),
                    }),
                configuration: sorted(r.configuration.as_ref()),
            })
            .collect(),
    }
}

fn action_from_sdk(
    a: &cp::types::ActionDeclaration,
    path: &str,
    unmanaged: &mut Vec<String>,
) -> Action {
    if a.role_arn.is_some() {
        unmanaged.push(format!("{path}.roleArn"));
    }
    if a.commands.as_ref().is_some_and(|c| !c.is_empty()) {
        unmanaged.push(format!("{path}.commands"));
    }
    if a.environment_variables
        .as_ref()
        .is_some_and(|e| !e.is_empty())
    {
        unmanaged.push(format!("{path}.environmentVariables"));
    }
    let id = a.action_type_id.as_ref();
    Action {
        name: a.name.clone(),
        action_type_id: ActionTypeId {
            category: id
                .map(|i| i.category.as_str().to_string())
                .unwrap_or_default(),
            owner: id.map(|i| i.owner.as_str().to_string()).unwrap_or_default(),
            provider: id.map(|i| i.provider.clone()).unwrap_or_default(),
            version: id.map(|i| i.version.clone()).unwrap_or_default(),
        },
        // CodePipeline treats an unset runOrder as 1.
        run_order: a.run_order.unwrap_or(1),
        configuration: sorted(a.configuration.as_ref()),
        output_artifacts: a
            .output_artifacts
            .iter()
            .flatten()
            .map(|o| Artifact {
                name: o.name.clone(),
            })
            .collect(),
        input_artifacts: a
            .input_artifacts
            .iter()
            .flatten()
            .map(|i| Artifact {
                name: i.name.clone(),
            })
            .collect(),
        namespace: a.namespace.clone(),
    }
}

fn trigger_from_sdk(
    t: &cp::types::PipelineTriggerDeclaration,
    path: &str,
    unmanaged: &mut Vec<String>,
) -> PipelineTrigger {
    let git = t.git_configuration.as_ref();
    let pull_request = git
        .and_then(|g| g.pull_request.as_ref())
        .into_iter()
        .flatten()
        .map(pull_request_from_sdk)
        .collect();
    let push = git
        .and_then(|g| g.push.as_ref())
        .into_iter()
        .flatten()
        .map(|p| {
            if p.tags.is_some() {
                unmanaged.push(format!("{path}.gitConfiguration.push.tags"));
            }
            GitPushFilter {
                branches: p.branches.as_ref().map(|b| FilterCriteria {
                    includes: b.includes.clone().unwrap_or_default(),
                    excludes: b.excludes.clone().unwrap_or_default(),
                }),
                file_paths: p.file_paths.as_ref().map(|f| FilterCriteria {
                    includes: f.includes.clone().unwrap_or_default(),
                    excludes: f.excludes.clone().unwrap_or_default(),
                }),
            }
        })
        .collect();
    PipelineTrigger {
        provider_type: t.provider_type.as_str().to_string(),
        git_configuration: GitConfiguration {
            source_action_name: git
                .map(|g| g.source_action_name.clone())
                .unwrap_or_default(),
            push,
            pull_request,
        },
    }
}

fn pull_request_from_sdk(p: &cp::types::GitPullRequestFilter) -> GitPullRequestFilter {
    let criteria = |f: Option<&Vec<String>>, g: Option<&Vec<String>>| FilterCriteria {
        includes: f.cloned().unwrap_or_default(),
        excludes: g.cloned().unwrap_or_default(),
    };
    GitPullRequestFilter {
        events: p
            .events
            .iter()
            .flatten()
            .map(|e| e.as_str().to_string())
            .collect(),
        branches: p
            .branches
            .as_ref()
            .map(|b| criteria(b.includes.as_ref(), b.excludes.as_ref())),
        file_paths: p
            .file_paths
            .as_ref()
            .map(|f| criteria(f.includes.as_ref(), f.excludes.as_ref())),
    }
}

fn sorted(map: Option<&std::collections::HashMap<String, String>>) -> BTreeMap<String, String> {
    map.map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

pub fn tags_from_pipeline_sdk(tags: &[cp::types::Tag]) -> Vec<Tag> {
    let mut out: Vec<Tag> = tags
        .iter()
        .map(|t| Tag {
            key: t.key.clone(),
            value: t.value.clone(),
        })
        .collect();
    out.sort();
    out
}

// ---- CodeBuild ----

pub fn project_environment_to_sdk(
    p: &Project,
) -> Result<cb::types::ProjectEnvironment, BuildError> {
    let e = &p.environment;
    cb::types::ProjectEnvironment::builder()
        .r#type(cb::types::EnvironmentType::from(e.type_.as_str()))
        .image(&e.image)
        .compute_type(cb::types::ComputeType::from(e.compute_type.as_str()))
        .privileged_mode(e.privileged_mode)
        .image_pull_credentials_type(cb::types::ImagePullCredentialsType::from(
            e.image_pull_credentials_type.as_str(),
        ))
        .build()
}

pub fn project_source_to_sdk(p: &Project) -> Result<cb::types::ProjectSource, BuildError> {
    cb::types::ProjectSource::builder()
        .r#type(cb::types::SourceType::from(p.source.type_.as_str()))
        .buildspec(&p.source.buildspec)
        .build()
}

pub fn project_artifacts_to_sdk(p: &Project) -> Result<cb::types::ProjectArtifacts, BuildError> {
    cb::types::ProjectArtifacts::builder()
        .r#type(cb::types::ArtifactsType::from(p.artifacts.type_.as_str()))
        .build()
}

pub fn project_tags_to_sdk(p: &Project) -> Vec<cb::types::Tag> {
    p.tags
        .iter()
        .map(|t| {
            cb::types::Tag::builder()
                .key(&t.key)
                .value(&t.value)
                .build()
        })
        .collect()
}

/// Fills every managed project field into a CreateProject or UpdateProject input builder;
/// the two builders are distinct types with the same setters.
macro_rules! project_input {
    ($builder:expr, $p:expr) => {{
        let p: &Project = $p;
        Ok($builder
            .name(&p.name)
            .description(&p.description)
            .source(project_source_to_sdk(p)?)
            .artifacts(project_artifacts_to_sdk(p)?)
            .environment(project_environment_to_sdk(p)?)
            .service_role(&p.service_role)
            .timeout_in_minutes(p.timeout_in_minutes)
            .set_tags(Some(project_tags_to_sdk(p))))
    }};
}

/// The full CreateProject input.
pub fn create_project_input(
    p: &Project,
) -> Result<cb::operation::create_project::builders::CreateProjectInputBuilder, BuildError> {
    project_input!(
        cb::operation::create_project::CreateProjectInput::builder(),
        p
    )
}

/// The UpdateProject input. It names every managed field, so the result equals a fresh create
/// (CodeBuild API Reference, UpdateProject: fields present replace the stored ones).
pub fn update_project_input(
    p: &Project,
) -> Result<cb::operation::update_project::builders::UpdateProjectInputBuilder, BuildError> {
    project_input!(
        cb::operation::update_project::UpdateProjectInput::builder(),
        p
    )
}

/// Project settings the controller never sets and that its UpdateProject (which sends the whole
/// `environment`) takes away again. Settings UpdateProject cannot clear by omission (VPC,
/// cache, logs) are left alone rather than reported, or they would look drifted forever.
pub fn project_unmanaged(p: &cb::types::Project) -> Vec<String> {
    let mut unmanaged = Vec::new();
    let env = p.environment.as_ref();
    if env
        .and_then(|e| e.environment_variables.as_ref())
        .is_some_and(|v| !v.is_empty())
    {
        unmanaged.push("environment.environmentVariables".to_string());
    }
    if env.and_then(|e| e.certificate.as_ref()).is_some() {
        unmanaged.push("environment.certificate".to_string());
    }
    if env.and_then(|e| e.registry_credential.as_ref()).is_some() {
        unmanaged.push("environment.registryCredential".to_string());
    }
    unmanaged
}

/// The normalized model of an observed project; CodeBuild fills defaults for unset fields.
pub fn project_from_sdk(p: &cb::types::Project) -> Project {
    let env = p.environment.as_ref();
    let mut tags: Vec<Tag> = p
        .tags
        .iter()
        .flatten()
        .map(|t| Tag {
            key: t.key.clone().unwrap_or_default(),
            value: t.value.clone().unwrap_or_default(),
        })
        .collect();
    tags.sort();
    Project {
        name: p.name.clone().unwrap_or_default(),
        description: p.description.clone().unwrap_or_default(),
        source: ProjectSource {
            type_: p
                .source
                .as_ref()
                .map(|s| s.r#type.as_str().to_string())
                .unwrap_or_default(),
            buildspec: p
                .source
                .as_ref()
                .and_then(|s| s.buildspec.clone())
                .unwrap_or_default(),
        },
        artifacts: ProjectArtifacts {
            type_: p
                .artifacts
                .as_ref()
                .map(|a| a.r#type.as_str().to_string())
                .unwrap_or_default(),
        },
        environment: ProjectEnvironment {
            type_: env
                .map(|e| e.r#type.as_str().to_string())
                .unwrap_or_default(),
            image: env.map(|e| e.image.clone()).unwrap_or_default(),
            compute_type: env
                .map(|e| e.compute_type.as_str().to_string())
                .unwrap_or_default(),
            privileged_mode: env.and_then(|e| e.privileged_mode).unwrap_or(false),
            image_pull_credentials_type: env
                .and_then(|e| e.image_pull_credentials_type.as_ref())
                .map_or("CODEBUILD", |t| t.as_str())
                .to_string(),
        },
        service_role: p.service_role.clone().unwrap_or_default(),
        // CodeBuild's default build timeout is 60 minutes.
        timeout_in_minutes: p.timeout_in_minutes.unwrap_or(60),
        tags,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> DesiredState {
        crate::fixtures::example_desired()
    }

    #[test]
    fn pipelines_round_trip_through_sdk_builders() {
        for desired in example().pipelines {
            let sdk = pipeline_to_sdk(&desired.pipeline).expect("SDK accepts every required field");
            let (back, unmanaged) = pipeline_from_sdk(&sdk);
            assert!(unmanaged.is_empty(), "{unmanaged:?}");
            assert_eq!(back, desired.pipeline);
            let tags = tags_to_pipeline_sdk(&desired.tags).expect("test input is valid");
            assert_eq!(tags_from_pipeline_sdk(&tags), desired.tags);
        }
    }

    #[test]
    fn projects_round_trip_through_sdk_builders() {
        for project in example().projects {
            let input = create_project_input(&project)
                .expect("test input is valid")
                .build()
                .expect("test input is valid");
            let observed = cb::types::Project::builder()
                .name(input.name().expect("test input is valid"))
                .description(input.description().expect("test input is valid"))
                .set_source(input.source().cloned())
                .set_artifacts(input.artifacts().cloned())
                .set_environment(input.environment().cloned())
                .service_role(input.service_role().expect("test input is valid"))
                .set_timeout_in_minutes(input.timeout_in_minutes())
                .set_tags(Some(input.tags().to_vec()))
                .build();
            assert_eq!(project_from_sdk(&observed), project);
        }
    }

    #[test]
    fn aws_defaults_normalize_away() {
        let desired = &example().pipelines[0].pipeline;
        let mut sdk = pipeline_to_sdk(desired).expect("test input is valid");
        sdk.version = Some(3);
        for stage in &mut sdk.stages {
            for action in &mut stage.actions {
                if action.run_order == Some(1) {
                    action.run_order = None;
                }
            }
        }
        let (mut back, _) = pipeline_from_sdk(&sdk);
        assert_eq!(back.version, Some(3));
        back.version = None;
        assert_eq!(&back, desired);
    }

    #[test]
    fn unmanaged_fields_are_reported() {
        let desired = &example().pipelines[0].pipeline;
        let mut sdk = pipeline_to_sdk(desired).expect("test input is valid");
        sdk.stages[1].actions[0].role_arn = Some("arn:aws:iam::1:role/x".into());
        let (_, unmanaged) = pipeline_from_sdk(&sdk);
        assert_eq!(unmanaged, vec!["stages[1].actions[0].roleArn".to_string()]);
    }
}
