//! Compiles a `BranchPipeline` into the AWS state it should produce. Pure: no client, no I/O,
//! and the same input always gives the same bytes.
//!
//! Environments are grouped by `environments[].pipeline`; each group becomes one CodePipeline V2
//! pipeline that builds once (`spec.stages`) and then runs one `deploy-<env>` stage per
//! environment. A stage whose environment does not take every branch that can start the pipeline
//! is guarded by a `VariableCheck` entry condition, so one pipeline serves many branches.

pub mod branches;
pub mod model;

use std::collections::BTreeMap;

pub use model::*;

use crate::api::*;
use crate::naming;
use crate::validate::{self, FieldError};

pub const SOURCE_STAGE: &str = "Source";
pub const SOURCE_ACTION: &str = "Source";
pub const SOURCE_ARTIFACT: &str = "SourceOutput";
pub const SOURCE_NAMESPACE: &str = "SourceVariables";
pub const BUILD_ARTIFACT: &str = "BuildOutput";
pub const APPROVAL_ACTION: &str = "approve";
pub const DEPLOY_ACTION: &str = "deploy";
pub const BRANCH_RULE: &str = "BranchFilter";
pub const BRANCH_VARIABLE: &str = "#{SourceVariables.BranchName}";

pub const TAG_NAMESPACE: &str = "branchpipeline.dev/namespace";
pub const TAG_NAME: &str = "branchpipeline.dev/name";
pub const TAG_MANAGED_BY: &str = "branchpipeline.dev/managed-by";
pub const MANAGER: &str = "branchpipeline-controller";

/// Action configuration values are limited to 1000 characters (CodePipeline quotas).
pub const MAX_CONFIG_VALUE: usize = 1000;

/// Validates and renders. Errors carry the field path that caused them.
pub fn render(bp: &BranchPipeline) -> Result<DesiredState, Vec<FieldError>> {
    let errors = validate::validate(bp);
    if !errors.is_empty() {
        return Err(errors);
    }
    let ctx = Ctx {
        namespace: bp.metadata.namespace.as_deref().unwrap_or_default(),
        name: bp.metadata.name.as_deref().unwrap_or_default(),
        spec: &bp.spec,
        errors: Vec::new(),
    };
    ctx.render()
}

/// The ownership tags every managed resource carries, keyed by tag key.
pub fn owner_tags(namespace: &str, name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (TAG_MANAGED_BY.to_string(), MANAGER.to_string()),
        (TAG_NAME.to_string(), name.to_string()),
        (TAG_NAMESPACE.to_string(), namespace.to_string()),
    ])
}

struct Ctx<'a> {
    namespace: &'a str,
    name: &'a str,
    spec: &'a BranchPipelineSpec,
    errors: Vec<FieldError>,
}

/// A pipeline group: its name and its environments with their indexes in the spec.
struct Group<'a> {
    name: &'a str,
    envs: Vec<(usize, &'a EnvironmentSpec)>,
}

impl<'a> Ctx<'a> {
    fn render(mut self) -> Result<DesiredState, Vec<FieldError>> {
        let mut state = DesiredState::default();
        for group in self.groups() {
            let (pipeline, projects) = self.group(&group);
            state.pipelines.push(pipeline);
            state.projects.extend(projects);
        }
        if self.errors.is_empty() {
            Ok(state)
        } else {
            Err(self.errors)
        }
    }

    /// Groups in order of first appearance, so the default group usually comes first.
    fn groups(&self) -> Vec<Group<'a>> {
        let mut groups: Vec<Group<'a>> = Vec::new();
        for (i, env) in self.spec.environments.iter().enumerate() {
            match groups.iter_mut().find(|g| g.name == env.group()) {
                Some(g) => g.envs.push((i, env)),
                None => groups.push(Group {
                    name: env.group(),
                    envs: vec![(i, env)],
                }),
            }
        }
        groups
    }

    fn tags(&self) -> Vec<Tag> {
        let mut tags = owner_tags(self.namespace, self.name);
        for (k, v) in &self.spec.tags {
            tags.insert(k.clone(), v.clone());
        }
        tags.into_iter()
            .map(|(key, value)| Tag { key, value })
            .collect()
    }

    fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError::new(path, message));
    }

    fn check_config(&mut self, path: &str, action: &Action) {
        for (key, value) in &action.configuration {
            if value.len() > MAX_CONFIG_VALUE {
                self.error(
                    path.to_string(),
                    format!(
                        "renders action {:?} configuration {key} of {} characters; CodePipeline allows {MAX_CONFIG_VALUE}, so shorten it",
                        action.name,
                        value.len()
                    ),
                );
            }
        }
    }

    fn group(&mut self, group: &Group<'a>) -> (DesiredPipeline, Vec<Project>) {
        let suffix = (group.name != DEFAULT_GROUP).then_some(group.name);
        let pipeline_name = naming::pipeline_name(self.namespace, self.name, suffix);
        if !naming::is_valid_pipeline_name(&pipeline_name) {
            self.error(
                "metadata.name",
                format!("renders pipeline name {pipeline_name:?}, which CodePipeline rejects; use a DNS-1123 name"),
            );
        }

        let envs = &group.envs;
        let all_patterns = unique(
            envs.iter()
                .filter_map(|(_, e)| e.branches.as_ref())
                .flatten(),
        );
        let automatic = unique(
            envs.iter()
                .filter(|(_, e)| e.trigger == Trigger::Automatic)
                .filter_map(|(_, e)| e.branches.as_ref())
                .flatten(),
        );
        let source_branch = self.source_branch(&all_patterns);
        let mut starting = all_patterns.clone();
        if !branches::covers(&starting, &source_branch) {
            starting.push(source_branch.clone());
        }

        let mut projects = Vec::new();
        let mut stages = vec![self.source_stage(&source_branch, !automatic.is_empty())];
        for (i, stage) in self.spec.stages.iter().enumerate() {
            let project = self.build_project(&pipeline_name, i, stage);
            let last = i + 1 == self.spec.stages.len();
            stages.push(build_stage(&stage.name, &project.name, last));
            projects.push(project);
        }

        let shared_deploy = naming::project_name(&pipeline_name, "deploy");
        if envs.iter().any(|(_, e)| e.deploy.is_none()) {
            projects.push(self.deploy_project(&shared_deploy, None));
        }
        for &(i, env) in envs {
            let project = match &env.deploy {
                Some(overrides) => {
                    let name =
                        naming::project_name(&pipeline_name, &format!("deploy-{}", env.name));
                    let project = self.deploy_project(&name, Some((env, overrides)));
                    let name = project.name.clone();
                    projects.push(project);
                    name
                }
                None => shared_deploy.clone(),
            };
            let env_patterns = self.feeding_branches(i);
            let stage = self.environment_stage(i, env, &project, &env_patterns, &starting);
            stages.push(stage);
        }

        for project in &projects {
            if !naming::is_valid_project_name(&project.name) {
                self.error(
                    "metadata.name",
                    format!(
                        "renders CodeBuild project name {:?}, which CodeBuild rejects",
                        project.name
                    ),
                );
            }
        }
        if automatic.len() > validate::MAX_PATTERNS {
            let at = envs
                .iter()
                .rev()
                .find(|(_, e)| e.trigger == Trigger::Automatic && e.branches.is_some())
                .map(|(i, _)| *i);
            self.error(
                format!("spec.environments[{}].branches", at.unwrap_or_default()),
                format!(
                    "pipeline {:?} would trigger on {} branch patterns; a V2 push trigger takes at most {}, so merge patterns with wildcards or move environments to another pipeline",
                    group.name,
                    automatic.len(),
                    validate::MAX_PATTERNS
                ),
            );
        }

        // Stages hold at most an approval and a deploy today; this keeps a future multi-action
        // stage from silently crossing the quota.
        for stage in &stages {
            if stage.actions.len() > validate::MAX_ACTIONS_PER_STAGE {
                self.error(
                    "spec.environments",
                    format!(
                        "stage {:?} would have {} actions; CodePipeline allows {}",
                        stage.name,
                        stage.actions.len(),
                        validate::MAX_ACTIONS_PER_STAGE
                    ),
                );
            }
        }

        let triggers = if automatic.is_empty() {
            Vec::new()
        } else {
            vec![self.push_trigger(automatic)]
        };
        let declaration = PipelineDeclaration {
            name: pipeline_name,
            role_arn: self.spec.pipeline_role_arn.clone(),
            artifact_store: ArtifactStore {
                type_: "S3".into(),
                location: self.spec.artifact_bucket.clone(),
            },
            stages,
            version: None,
            execution_mode: self.spec.execution_mode.as_str().into(),
            pipeline_type: "V2".into(),
            variables: self
                .spec
                .variables
                .iter()
                .map(|v| PipelineVariable {
                    name: v.name.clone(),
                    default_value: v.default_value.clone(),
                    description: v.description.clone(),
                })
                .collect(),
            triggers,
        };
        let pipeline = DesiredPipeline {
            pipeline: declaration,
            tags: self.tags(),
            environments: envs.iter().map(|(_, e)| e.name.clone()).collect(),
            branches: starting,
            projects: projects.iter().map(|p| p.name.clone()).collect(),
        };
        (pipeline, projects)
    }

    /// The branch a manual start builds. The spec's default branch when this pipeline deploys
    /// it; otherwise the pipeline's first literal branch, so that "Release change" on, say, the
    /// production pipeline builds `main` rather than a branch no environment of it takes.
    fn source_branch(&self, patterns: &[String]) -> String {
        let default = &self.spec.source.default_branch;
        if patterns.is_empty() || branches::covers(patterns, default) {
            return default.clone();
        }
        patterns
            .iter()
            .find(|p| branches::is_literal(p))
            .cloned()
            .unwrap_or_else(|| default.clone())
    }

    /// Branch patterns that deploy to environment `i`, following `promoteFrom` to its root.
    fn feeding_branches(&self, mut i: usize) -> Vec<String> {
        // Validation guarantees promoteFrom points strictly backwards, so this terminates.
        loop {
            let env = &self.spec.environments[i];
            if let Some(branches) = &env.branches {
                return branches.clone();
            }
            let from = env.promote_from.as_deref().unwrap_or_default();
            match self.spec.environments[..i]
                .iter()
                .position(|e| e.name == from)
            {
                Some(j) => i = j,
                None => return Vec::new(),
            }
        }
    }

    fn source_stage(&self, branch: &str, detect_changes: bool) -> Stage {
        let source = &self.spec.source;
        let configuration = BTreeMap::from([
            ("BranchName".to_string(), branch.to_string()),
            ("ConnectionArn".to_string(), source.connection_arn.clone()),
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

    fn push_trigger(&self, branches: Vec<String>) -> PipelineTrigger {
        let file_paths = self
            .spec
            .source
            .file_paths
            .as_ref()
            .map(|f| FilterCriteria {
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
            },
        }
    }

    fn build_project(&self, pipeline: &str, i: usize, stage: &StageSpec) -> Project {
        let settings = validate::apply_overrides(&self.spec.defaults, &stage.overrides());
        let buildspec = stage
            .buildspec
            .clone()
            .unwrap_or_else(|| format!("{}/{}.yml", self.buildspec_dir(), stage.name));
        let description = format!(
            "Build stage {} ({} of {}) of {}/{}, managed by {MANAGER}",
            stage.name,
            i + 1,
            self.spec.stages.len(),
            self.namespace,
            self.name
        );
        self.project(
            naming::project_name(pipeline, &stage.name),
            description,
            buildspec,
            &settings,
        )
    }

    fn deploy_project(
        &self,
        name: &str,
        env: Option<(&EnvironmentSpec, &BuildOverrides)>,
    ) -> Project {
        let deploy = self.spec.deploy.clone().unwrap_or_default();
        let base = validate::effective_deploy_defaults(self.spec);
        let (settings, description) = match env {
            Some((env, overrides)) => (
                validate::apply_overrides(&base, overrides),
                format!(
                    "Deploy to {} of {}/{}, managed by {MANAGER}",
                    env.name, self.namespace, self.name
                ),
            ),
            None => (
                base,
                format!(
                    "Deploy for {}/{}, managed by {MANAGER}",
                    self.namespace, self.name
                ),
            ),
        };
        let buildspec = deploy
            .buildspec
            .unwrap_or_else(|| format!("{}/deploy.yml", self.buildspec_dir()));
        self.project(name.to_string(), description, buildspec, &settings)
    }

    fn buildspec_dir(&self) -> &str {
        self.spec.buildspec_dir.trim_end_matches('/')
    }

    fn project(
        &self,
        name: String,
        description: String,
        buildspec: String,
        s: &BuildDefaults,
    ) -> Project {
        Project {
            name,
            description,
            source: ProjectSource {
                type_: "CODEPIPELINE".into(),
                buildspec,
            },
            artifacts: ProjectArtifacts {
                type_: "CODEPIPELINE".into(),
            },
            environment: ProjectEnvironment {
                type_: s.environment_type.as_str().into(),
                image: s.image.clone(),
                compute_type: s.compute_type.as_str().into(),
                privileged_mode: s.privileged,
                image_pull_credentials_type: "CODEBUILD".into(),
            },
            service_role: self.spec.build_role_arn.clone(),
            timeout_in_minutes: s.timeout_minutes as i32,
            tags: self.tags(),
        }
    }

    fn environment_stage(
        &mut self,
        i: usize,
        env: &EnvironmentSpec,
        project: &str,
        env_patterns: &[String],
        starting: &[String],
    ) -> Stage {
        let base = format!("spec.environments[{i}]");
        let mut actions = Vec::new();
        if let Some(approval) = &env.approval {
            let mut configuration = BTreeMap::new();
            if let Some(arn) = &approval.notification_arn {
                configuration.insert("NotificationArn".to_string(), arn.clone());
            }
            if let Some(data) = &approval.custom_data {
                configuration.insert("CustomData".to_string(), data.clone());
            }
            actions.push(Action {
                name: APPROVAL_ACTION.into(),
                action_type_id: action_type("Approval", "AWS", "Manual"),
                run_order: 1,
                configuration,
                output_artifacts: Vec::new(),
                input_artifacts: Vec::new(),
                namespace: None,
            });
        }
        let deploy = Action {
            name: DEPLOY_ACTION.into(),
            action_type_id: action_type("Build", "AWS", "CodeBuild"),
            run_order: actions.len() as i32 + 1,
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
        };
        self.check_config(&format!("{base}.variables"), &deploy);
        actions.push(deploy);

        let before_entry = if starting.iter().all(|p| branches::covers(env_patterns, p)) {
            None
        } else {
            let rule = branch_rule(env_patterns);
            if rule.configuration["Value"].len() > MAX_CONFIG_VALUE {
                let field = if env.branches.is_some() {
                    "branches"
                } else {
                    "promoteFrom"
                };
                self.error(
                    format!("{base}.{field}"),
                    format!(
                        "the branch condition for {:?} would exceed {MAX_CONFIG_VALUE} characters; use fewer or shorter patterns",
                        env.name
                    ),
                );
            }
            Some(BeforeEntryConditions {
                conditions: vec![StageCondition {
                    result: "SKIP".into(),
                    rules: vec![rule],
                }],
            })
        };
        Stage {
            name: format!("deploy-{}", env.name),
            actions,
            before_entry,
            on_failure: self.spec.rollback_on_failure.then(|| FailureConditions {
                result: "ROLLBACK".into(),
            }),
        }
    }
}

fn build_stage(name: &str, project: &str, last: bool) -> Stage {
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

/// The entry rule that lets a `deploy-<env>` stage run only for the branches feeding it.
///
/// Follows the CodePipeline User Guide, "VariableCheck" rule reference: rule type
/// `Rule/AWS/VariableCheck/1`, configuration keys `Variable`, `Value` and `Operator`, with
/// operators `EQ`, `CONTAINS`, `MATCHES` (java.util.regex.Pattern syntax) and `NE`. The stage's
/// `beforeEntry` condition applies its result (`SKIP`) when the rule does not pass (User Guide,
/// "How do stage conditions work?").
fn branch_rule(patterns: &[String]) -> Rule {
    let (operator, value) = match patterns {
        [single] if branches::is_literal(single) => ("EQ", single.clone()),
        _ => ("MATCHES", branches::to_java_regex(patterns)),
    };
    Rule {
        name: BRANCH_RULE.into(),
        rule_type_id: RuleTypeId {
            category: "Rule".into(),
            owner: "AWS".into(),
            provider: "VariableCheck".into(),
            version: "1".into(),
        },
        configuration: BTreeMap::from([
            ("Operator".to_string(), operator.to_string()),
            ("Value".to_string(), value),
            ("Variable".to_string(), BRANCH_VARIABLE.to_string()),
        ]),
    }
}

/// CodeBuild action `EnvironmentVariables`: a JSON array of `{name, value, type}`.
fn environment_variables(env: &EnvironmentSpec) -> String {
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

fn unique<'s>(items: impl Iterator<Item = &'s String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in items {
        if !out.contains(item) {
            out.push(item.clone());
        }
    }
    out
}
